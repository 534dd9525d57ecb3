#include "proto/peer_check.h"

#include <grp.h>
#include <pwd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

#include "core/config.h"

namespace sark {
namespace {

std::string_view trimBlanks(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

// An all-digit entry is a numeric id; -1 (the "no change" id of chown) and
// anything above it are not ids.
bool parseId(std::string_view text, uint32_t& out) {
  uint64_t v = 0;
  if (text.size() > 10 || !parseUint(text, v) || v >= 0xffffffffu) {
    return false;
  }
  out = static_cast<uint32_t>(v);
  return true;
}

bool allDigits(std::string_view text) {
  return !text.empty() &&
         std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Buffer size for the *_r look-ups.
size_t lookupBufferSize(int name) {
  long n = sysconf(name);
  return n > 0 ? static_cast<size_t>(n) : 16384;
}

template <typename Id, typename Resolve>
bool resolveList(std::string_view text, std::vector<Id>& out, std::string& why,
                 Resolve resolve) {
  std::vector<Id> ids;
  if (trimBlanks(text).empty()) {
    out.clear();
    return true;
  }
  while (true) {
    size_t comma = text.find(',');
    std::string_view one = trimBlanks(text.substr(0, comma));
    Id id;
    if (one.empty()) {
      why = "has an empty entry";
      return false;
    }
    if (!resolve(one, id, why)) {
      return false;
    }
    if (std::find(ids.begin(), ids.end(), id) == ids.end()) {
      ids.push_back(id);
    }
    if (comma == std::string_view::npos) {
      break;
    }
    text.remove_prefix(comma + 1);
  }
  out = std::move(ids);
  return true;
}

} // namespace

bool readPeerCredentials(int fd, PeerCredentials& out) {
  struct ucred cred;
  socklen_t len = sizeof(cred);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    return false;
  }
  if (len != sizeof(cred)) {
    errno = EPROTO;
    return false;
  }
  out.pid = cred.pid;
  out.uid = cred.uid;
  out.gid = cred.gid;
  return true;
}

bool resolveUser(std::string_view text, uid_t& out, std::string& why) {
  uint32_t id;
  if (allDigits(text)) {
    if (!parseId(text, id)) {
      why = "user id " + std::string(text) + " is out of range";
      return false;
    }
    out = static_cast<uid_t>(id);
    return true;
  }
  std::string name(text);
  std::string buf(lookupBufferSize(_SC_GETPW_R_SIZE_MAX), '\0');
  struct passwd pw;
  struct passwd* found = nullptr;
  int rc;
  while ((rc = getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &found)) == ERANGE &&
         buf.size() < (1u << 20)) {
    buf.resize(buf.size() * 2);
  }
  if (rc != 0 || found == nullptr) {
    why = "unknown user \"" + name + "\"" + (rc != 0 ? std::string(": ") + strerror(rc) : "");
    return false;
  }
  out = found->pw_uid;
  return true;
}

bool resolveGroup(std::string_view text, gid_t& out, std::string& why) {
  uint32_t id;
  if (allDigits(text)) {
    if (!parseId(text, id)) {
      why = "group id " + std::string(text) + " is out of range";
      return false;
    }
    out = static_cast<gid_t>(id);
    return true;
  }
  std::string name(text);
  std::string buf(lookupBufferSize(_SC_GETGR_R_SIZE_MAX), '\0');
  struct group gr;
  struct group* found = nullptr;
  int rc;
  while ((rc = getgrnam_r(name.c_str(), &gr, buf.data(), buf.size(), &found)) == ERANGE &&
         buf.size() < (1u << 20)) {
    buf.resize(buf.size() * 2);
  }
  if (rc != 0 || found == nullptr) {
    why = "unknown group \"" + name + "\"" + (rc != 0 ? std::string(": ") + strerror(rc) : "");
    return false;
  }
  out = found->gr_gid;
  return true;
}

bool resolveUserList(std::string_view text, std::vector<uid_t>& out, std::string& why) {
  return resolveList(text, out, why, resolveUser);
}

bool resolveGroupList(std::string_view text, std::vector<gid_t>& out, std::string& why) {
  return resolveList(text, out, why, resolveGroup);
}

bool PeerPolicy::allows(const PeerCredentials& peer) const {
  if (peer.uid == 0 || peer.uid == self_) {
    return true;
  }
  if (std::find(uids_.begin(), uids_.end(), peer.uid) != uids_.end()) {
    return true;
  }
  return std::find(gids_.begin(), gids_.end(), peer.gid) != gids_.end();
}

} // namespace sark
