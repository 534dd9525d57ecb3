#include "proto/module_server.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/clock.h"
#include "core/log.h"
#include "proto/frame_builder.h"

namespace sark {
namespace {

constexpr size_t kInitialReadBuffer = 16 * 1024;
constexpr size_t kMaxReadBuffer = SARK_PROTO_HDR_LEN + SARK_PROTO_MAX_PAYLOAD;
// Unsent output per connection beyond which the peer is not keeping up.
constexpr size_t kMaxWriteBuffer = 16 * 1024 * 1024;
constexpr int kAcceptBatch = 64;
constexpr int kReadsPerEvent = 4;
constexpr uint64_t kAcceptPauseMs = 100;

bool fillAddress(const std::string& path, sockaddr_un& addr) {
  memset(&addr, 0, sizeof(addr));
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {
    return false;
  }
  memcpy(addr.sun_path, path.data(), path.size());
  return true;
}

const char* frameTypeName(uint8_t type) {
  switch (type) {
  case SARK_MSG_AUTHZ_REQ:
    return "AUTHZ_REQ";
  case SARK_MSG_AUTHZ_RESP:
    return "AUTHZ_RESP";
  case SARK_MSG_PING:
    return "PING";
  case SARK_MSG_PONG:
    return "PONG";
  case SARK_MSG_ERROR:
    return "ERROR";
  case SARK_MSG_REVISION:
    return "REVISION";
  case SARK_MSG_INVALIDATE_REQ:
    return "INVALIDATE_REQ";
  case SARK_MSG_INVALIDATE_RESP:
    return "INVALIDATE_RESP";
  case SARK_MSG_INVALIDATE:
    return "INVALIDATE";
  case SARK_MSG_INVALIDATE_ACK:
    return "INVALIDATE_ACK";
  case SARK_MSG_AUDIT_BATCH:
    return "AUDIT_BATCH";
  case SARK_MSG_AUDIT_ACK:
    return "AUDIT_ACK";
  case SARK_MSG_STATUS_REQ:
    return "STATUS_REQ";
  case SARK_MSG_STATUS_RESP:
    return "STATUS_RESP";
  case SARK_MSG_KEYS:
    return "KEYS";
  case SARK_MSG_KEY_USED:
    return "KEY_USED";
  case SARK_MSG_REGISTRY:
    return "REGISTRY";
  case SARK_MSG_AUDIT_QUERY_REQ:
    return "AUDIT_QUERY_REQ";
  case SARK_MSG_AUDIT_QUERY_RESP:
    return "AUDIT_QUERY_RESP";
  default:
    return "unknown";
  }
}

void encodeError(std::string& out, uint32_t id, std::string_view message) {
  FrameBuilder f(out, SARK_MSG_ERROR, id);
  f.str(SARK_ERR_MESSAGE, message);
  f.finish();
}

} // namespace

ModuleServer::ModuleServer(EventLoop& loop, const Config& cfg)
    : loop_(loop), cfg_(cfg), peers_(geteuid(), cfg.allowed_uids, cfg.allowed_gids) {}

ModuleServer::~ModuleServer() {
  loop_.cancelTimer(accept_pause_timer_);
  if (listen_fd_) {
    loop_.removeFd(listen_fd_.get());
  }
  closeAll();
  removeSocketFile();
}

bool ModuleServer::start(std::string& err) {
  const std::string& path = cfg_.socket_path;
  sockaddr_un addr;
  if (!fillAddress(path, addr)) {
    err = "socket path too long: " + path;
    return false;
  }

  struct stat st;
  if (lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      err = path + " exists and is not a socket";
      return false;
    }
    UniqueFd probe(socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!probe) {
      err = std::string("socket: ") + strerror(errno);
      return false;
    }
    int rc = connect(probe.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    if (rc == 0 || errno == EAGAIN || errno == EINPROGRESS) {
      err = "another sarkd is already listening on " + path;
      return false;
    }
    if (errno != ECONNREFUSED && errno != ENOENT) {
      err = "cannot check existing socket " + path + ": " + strerror(errno);
      return false;
    }
    if (unlink(path.c_str()) != 0 && errno != ENOENT) {
      err = "cannot remove stale socket " + path + ": " + strerror(errno);
      return false;
    }
    LogLine(LogLevel::Info, "removed stale socket").str("socket", path);
  } else if (errno != ENOENT) {
    err = "cannot stat " + path + ": " + strerror(errno);
    return false;
  }

  listen_fd_.reset(socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!listen_fd_) {
    err = std::string("socket: ") + strerror(errno);
    return false;
  }
  // The file is created owner-only and opened up to its mode and group
  // once both are set, so nobody connects in between.
  const mode_t old_umask = umask(0177);
  const int bound = bind(listen_fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  const int bind_errno = errno;
  umask(old_umask);
  if (bound != 0) {
    err = "bind " + path + ": " + strerror(bind_errno);
    return false;
  }
  socket_created_ = true;
  if (lstat(path.c_str(), &st) == 0) {
    socket_dev_ = st.st_dev;
    socket_ino_ = st.st_ino;
  }
  if (!setSocketPermissions(err)) {
    return false;
  }
  if (listen(listen_fd_.get(), 511) != 0) {
    err = "listen " + path + ": " + strerror(errno);
    return false;
  }
  if (!loop_.addFd(listen_fd_.get(), EPOLLIN, [this](uint32_t) { onAccept(); })) {
    err = "cannot watch the listening socket";
    return false;
  }
  accepting_ = true;
  loop_.addBeforeSleep([this]() { flushDirty(); });
  return true;
}

bool ModuleServer::setSocketPermissions(std::string& err) {
  const std::string& path = cfg_.socket_path;
  if (cfg_.socket_group_set &&
      lchown(path.c_str(), static_cast<uid_t>(-1), cfg_.socket_group) != 0) {
    err = "chgrp " + path + " to group " + std::to_string(cfg_.socket_group) +
          " (SARKD_SOCKET_GROUP): " + strerror(errno);
    return false;
  }
  if (chmod(path.c_str(), static_cast<mode_t>(cfg_.socket_mode)) != 0) {
    err = "chmod " + path + ": " + strerror(errno);
    return false;
  }
  // Still the file bound above (not replaced under us)?
  struct stat st;
  if (lstat(path.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode) || st.st_dev != socket_dev_ ||
      st.st_ino != socket_ino_) {
    err = path + " was replaced while sarkd set its permissions";
    return false;
  }
  return true;
}

bool ModuleServer::peerAllowed(int fd) {
  PeerCredentials peer;
  const bool known = readPeerCredentials(fd, peer);
  const int cred_errno = errno;
  if (known && peers_.allows(peer)) {
    return true;
  }
  peers_refused_++;
  uint64_t suppressed = 0;
  if (refused_log_.allow(monotonicUs(), suppressed)) {
    LogLine line(LogLevel::Warn, "connection refused: peer not allowed on the socket");
    if (known) {
      line.num("peer_pid", peer.pid).unum("peer_uid", peer.uid).unum("peer_gid", peer.gid);
    } else {
      line.str("error", std::string("SO_PEERCRED: ") + strerror(cred_errno));
    }
    line.unum("refused_total", peers_refused_).unum("suppressed", suppressed);
  }
  return false;
}

void ModuleServer::onAccept() {
  for (int i = 0; i < kAcceptBatch && accepting_; i++) {
    int fd = accept4(listen_fd_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        return;
      }
      if (errno == EINTR || errno == ECONNABORTED) {
        continue;
      }
      LogLine(LogLevel::Warn, "accept failed").str("error", strerror(errno));
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        pauseAccept(kAcceptPauseMs);
      }
      return;
    }
    UniqueFd owned(fd);
    if (!peerAllowed(fd)) {
      continue; // closed unread and unanswered
    }
    if (conns_.size() >= cfg_.max_connections) {
      std::string frame;
      encodeError(frame, 0, "too many connections");
      ssize_t ignored = send(fd, frame.data(), frame.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      (void)ignored;
      LogLine(LogLevel::Warn, "connection refused: too many connections")
          .unum("max_connections", cfg_.max_connections);
      continue;
    }
    auto c = std::make_unique<Connection>();
    c->id = next_conn_id_++;
    c->fd = std::move(owned);
    c->rcap = kInitialReadBuffer;
    c->rbuf = std::make_unique_for_overwrite<uint8_t[]>(c->rcap);
    c->interest = EPOLLIN;
    uint64_t id = c->id;
    if (!loop_.addFd(fd, EPOLLIN, [this, id](uint32_t ev) { onConnEvent(id, ev); })) {
      continue;
    }
    conns_.emplace(id, std::move(c));
    LogLine(LogLevel::Debug, "connection opened")
        .unum("conn", id)
        .unum("connections", conns_.size());
    if (connect_handler_) {
      connect_handler_(id);
    }
  }
}

void ModuleServer::pauseAccept(uint64_t ms) {
  if (!listen_fd_ || accept_pause_timer_ != 0) {
    return;
  }
  loop_.modifyFd(listen_fd_.get(), 0);
  accept_pause_timer_ = loop_.addTimer(ms, [this]() {
    accept_pause_timer_ = 0;
    if (listen_fd_ && accepting_) {
      loop_.modifyFd(listen_fd_.get(), EPOLLIN);
    }
  });
}

ModuleServer::Connection* ModuleServer::find(uint64_t id) {
  auto it = conns_.find(id);
  return it == conns_.end() ? nullptr : it->second.get();
}

void ModuleServer::onConnEvent(uint64_t id, uint32_t events) {
  Connection* c = find(id);
  if (c == nullptr) {
    return;
  }
  if (events & EPOLLOUT) {
    if (!flush(*c)) {
      closeConnection(id, c->close_reason, false);
      return;
    }
    updateInterest(*c);
  }
  bool readable = (c->interest & EPOLLIN) != 0;
  if (readable && (events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
    if (!readInput(*c)) {
      closeConnection(id, c->close_reason, false);
    }
    return;
  }
  if (events & (EPOLLHUP | EPOLLERR)) {
    closeConnection(id, "peer closed", false);
  }
}

bool ModuleServer::readInput(Connection& c) {
  for (int i = 0; i < kReadsPerEvent && !c.closing; i++) {
    size_t space = c.rcap - c.rlen;
    ssize_t n = read(c.fd.get(), c.rbuf.get() + c.rlen, space);
    if (n == 0) {
      c.close_reason = "peer closed";
      return false;
    }
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        return true;
      }
      c.close_reason = std::string("read: ") + strerror(errno);
      return false;
    }
    c.rlen += static_cast<size_t>(n);
    if (!processFrames(c)) {
      return true; // protocol error: closing after the ERROR frame is flushed
    }
    if (static_cast<size_t>(n) < space) {
      return true;
    }
  }
  return true;
}

bool ModuleServer::processFrames(Connection& c) {
  size_t off = 0;
  size_t need = 0;
  bool ok = true;
  while (!c.closing) {
    sark_frame_hdr_t h;
    int rc = sark_frame_hdr_decode(c.rbuf.get() + off, c.rlen - off, &h);
    if (rc == SARK_PROTO_AGAIN) {
      break;
    }
    if (rc != SARK_PROTO_OK) {
      protocolError(c, std::string("bad frame: ") + sark_proto_strerror(rc));
      ok = false;
      break;
    }
    size_t frame_len = SARK_PROTO_HDR_LEN + h.length;
    if (c.rlen - off < frame_len) {
      need = frame_len;
      break;
    }
    if (!handleFrame(c, h, c.rbuf.get() + off + SARK_PROTO_HDR_LEN)) {
      ok = false;
      break;
    }
    off += frame_len;
  }
  if (!ok) {
    c.rlen = 0;
    return false;
  }
  if (off > 0) {
    memmove(c.rbuf.get(), c.rbuf.get() + off, c.rlen - off);
    c.rlen -= off;
  }
  // Grow to hold the frame being received (bounded by the header check),
  // or shrink back once a large frame is done.
  size_t want = need > c.rcap ? need : c.rcap;
  if (need == 0 && c.rcap > 4 * kInitialReadBuffer && c.rlen <= kInitialReadBuffer) {
    want = kInitialReadBuffer;
  }
  if (want != c.rcap && want <= kMaxReadBuffer) {
    auto buf = std::make_unique_for_overwrite<uint8_t[]>(want);
    memcpy(buf.get(), c.rbuf.get(), c.rlen);
    c.rbuf = std::move(buf);
    c.rcap = want;
  }
  return true;
}

bool ModuleServer::handleFrame(Connection& c, const sark_frame_hdr_t& h, const uint8_t* payload) {
  switch (h.type) {
  case SARK_MSG_AUTHZ_REQ: {
    std::string err;
    if (!authz_handler_ || !authz_handler_(c.id, h.id, payload, h.length, err)) {
      protocolError(c, err.empty() ? "request rejected" : err, h.id);
      return false;
    }
    return true;
  }
  case SARK_MSG_INVALIDATE_REQ: {
    std::string err;
    if (!invalidate_handler_ || !invalidate_handler_(c.id, h.id, payload, h.length, err)) {
      protocolError(c, err.empty() ? "request rejected" : err, h.id);
      return false;
    }
    return true;
  }
  case SARK_MSG_AUDIT_BATCH:
    if (!audit_handler_) {
      protocolError(c, "audit batches are not accepted", h.id);
      return false;
    }
    audit_handler_(c.id, h.id, h.flags, payload, h.length);
    return true;
  case SARK_MSG_INVALIDATE_ACK:
    if (ack_handler_) {
      ack_handler_(c.id, h.id);
    }
    return true;
  case SARK_MSG_AUDIT_QUERY_REQ: {
    std::string err;
    if (!audit_query_handler_ || !audit_query_handler_(c.id, h.id, payload, h.length, err)) {
      protocolError(c, err.empty() ? "request rejected" : err, h.id);
      return false;
    }
    return true;
  }
  case SARK_MSG_KEY_USED:
    if (key_used_handler_) {
      key_used_handler_(payload, h.length);
    }
    return true;
  case SARK_MSG_PING: {
    FrameBuilder f(c.wbuf, SARK_MSG_PONG, h.id);
    f.finish();
    queued(c);
    return true;
  }
  case SARK_MSG_STATUS_REQ: {
    FrameBuilder f(c.wbuf, SARK_MSG_STATUS_RESP, h.id);
    f.str(SARK_STATUS_JSON, status_handler_ ? status_handler_() : std::string("{}"));
    f.finish();
    queued(c);
    return true;
  }
  default:
    protocolError(c, std::string("unexpected frame type ") + frameTypeName(h.type), h.id);
    return false;
  }
}

void ModuleServer::protocolError(Connection& c, std::string_view reason, uint32_t frame_id) {
  LogLine(LogLevel::Warn, "protocol error, closing connection")
      .unum("conn", c.id)
      .str("error", reason);
  encodeError(c.wbuf, frame_id, reason);
  c.closing = true;
  c.close_reason = std::string("protocol error: ").append(reason);
  markDirty(c);
}

void ModuleServer::sendAuthzResponse(uint64_t conn_id, uint32_t req_id, const Decision& d,
                                     const AnswerMeta& meta) {
  Connection* c = find(conn_id);
  if (c == nullptr || c->closing) {
    LogLine(LogLevel::Debug, "answer dropped: connection gone")
        .unum("conn", conn_id)
        .unum("id", req_id);
    return;
  }
  encodeAuthzResponse(c->wbuf, req_id, d, meta);
  queued(*c);
}

bool ModuleServer::sendFrame(uint64_t conn_id, std::string_view frame) {
  Connection* c = find(conn_id);
  if (c == nullptr || c->closing) {
    return false;
  }
  c->wbuf.append(frame);
  queued(*c);
  return true;
}

size_t ModuleServer::broadcast(std::string_view frame) {
  size_t n = 0;
  for (auto& [id, c] : conns_) {
    if (!c->closing) {
      c->wbuf.append(frame);
      queued(*c);
      n++;
    }
  }
  return n;
}

void ModuleServer::queued(Connection& c) {
  if (c.wbuf.size() - c.wpos > kMaxWriteBuffer) {
    LogLine(LogLevel::Warn, "write buffer full, closing connection")
        .unum("conn", c.id)
        .unum("pending_bytes", c.wbuf.size() - c.wpos);
    c.closing = true;
    c.close_reason = "write buffer full";
  }
  markDirty(c);
}

void ModuleServer::markDirty(Connection& c) {
  if (!c.dirty) {
    c.dirty = true;
    dirty_.push_back(c.id);
  }
}

void ModuleServer::flushDirty() {
  if (dirty_.empty()) {
    return;
  }
  std::vector<uint64_t> ids;
  ids.swap(dirty_);
  for (uint64_t id : ids) {
    Connection* c = find(id);
    if (c == nullptr) {
      continue;
    }
    c->dirty = false;
    bool ok = flush(*c);
    if (!ok || c->closing) {
      closeConnection(id, c->close_reason, false);
      continue;
    }
    updateInterest(*c);
  }
}

bool ModuleServer::flush(Connection& c) {
  while (c.wpos < c.wbuf.size()) {
    ssize_t n = send(c.fd.get(), c.wbuf.data() + c.wpos, c.wbuf.size() - c.wpos, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        break;
      }
      if (c.close_reason.empty()) {
        c.close_reason = std::string("write: ") + strerror(errno);
      }
      return false;
    }
    c.wpos += static_cast<size_t>(n);
  }
  if (c.wpos == c.wbuf.size()) {
    c.wpos = 0;
    if (c.wbuf.capacity() > 1024 * 1024) {
      std::string().swap(c.wbuf);
    } else {
      c.wbuf.clear();
    }
  } else if (c.wpos > 1024 * 1024 && c.wpos > c.wbuf.size() / 2) {
    c.wbuf.erase(0, c.wpos);
    c.wpos = 0;
  }
  return true;
}

void ModuleServer::updateInterest(Connection& c) {
  uint32_t want = 0;
  // still read while draining: what comes then is answered at once
  // (sarkd.cc), not left to the module's timeout
  if (!c.closing) {
    want |= EPOLLIN;
  }
  if (c.wpos < c.wbuf.size()) {
    want |= EPOLLOUT;
  }
  if (want != c.interest) {
    loop_.modifyFd(c.fd.get(), want);
    c.interest = want;
  }
}

void ModuleServer::closeConnection(uint64_t id, std::string_view reason, bool warn) {
  auto it = conns_.find(id);
  if (it == conns_.end()) {
    return;
  }
  // Log first: `reason` may point into the connection.
  LogLine(warn ? LogLevel::Warn : LogLevel::Debug, "connection closed")
      .unum("conn", id)
      .str("reason", reason.empty() ? std::string_view("closed") : reason)
      .unum("connections", conns_.size() - 1);
  loop_.removeFd(it->second->fd.get());
  conns_.erase(it);
}

void ModuleServer::startDrain() {
  draining_ = true;
  accepting_ = false;
  loop_.cancelTimer(accept_pause_timer_);
  accept_pause_timer_ = 0;
  if (listen_fd_) {
    loop_.removeFd(listen_fd_.get());
    listen_fd_.reset();
  }
  for (auto& [id, c] : conns_) {
    updateInterest(*c);
  }
}

bool ModuleServer::flushed() const {
  for (const auto& [id, c] : conns_) {
    if (c->wpos < c->wbuf.size()) {
      return false;
    }
  }
  return true;
}

void ModuleServer::closeAll() {
  while (!conns_.empty()) {
    auto it = conns_.begin();
    flush(*it->second);
    closeConnection(it->first, "shutdown", false);
  }
  dirty_.clear();
}

void ModuleServer::removeSocketFile() {
  if (!socket_created_) {
    return;
  }
  socket_created_ = false;
  const std::string& path = cfg_.socket_path;
  struct stat st;
  // Only remove our own socket: a newer sarkd may have replaced it.
  if (stat(path.c_str(), &st) == 0 && st.st_dev == socket_dev_ && st.st_ino == socket_ino_) {
    unlink(path.c_str());
  }
}

} // namespace sark
