#pragma once

// Who may talk to sarkd on its socket.  The socket file's mode and group
// decide who can connect at all; on top of that every accepted connection
// is checked by the kernel's view of the peer (SO_PEERCRED, taken when
// the peer called connect()): a peer is accepted when its uid is 0 or
// sarkd's own, or is one of SARKD_ALLOWED_UIDS, or when its gid is one of
// SARKD_ALLOWED_GIDS.  Supplementary groups do not count.
//
// The lists are user and group names or numeric ids, resolved once at
// start (an all-digit entry is an id).

#include <sys/types.h>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sark {

struct PeerCredentials {
  pid_t pid{0};
  uid_t uid{0};
  gid_t gid{0};
};

// The credentials of the process at the other end of Unix socket `fd`.
// False (errno set) when the kernel cannot tell.
bool readPeerCredentials(int fd, PeerCredentials& out);

// Resolves one user (name or uid) or group (name or gid).  False, with
// `why`, for an unknown name or an id out of range.
bool resolveUser(std::string_view text, uid_t& out, std::string& why);
bool resolveGroup(std::string_view text, gid_t& out, std::string& why);

// Comma lists of those (blanks around entries allowed; empty = none).
bool resolveUserList(std::string_view text, std::vector<uid_t>& out, std::string& why);
bool resolveGroupList(std::string_view text, std::vector<gid_t>& out, std::string& why);

class PeerPolicy {
public:
  PeerPolicy(uid_t self, std::vector<uid_t> uids, std::vector<gid_t> gids)
      : self_(self), uids_(std::move(uids)), gids_(std::move(gids)) {}

  bool allows(const PeerCredentials& peer) const;

private:
  uid_t self_;
  std::vector<uid_t> uids_;
  std::vector<gid_t> gids_;
};

} // namespace sark
