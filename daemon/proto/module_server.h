#pragma once

// The Unix socket the nginx workers connect to: one connection per
// worker, frames decoded with the shared protocol header, answers written
// back in any order.  Besides AUTHZ_REQ/RESP it carries the cache frames:
// INVALIDATE_REQ/RESP and INVALIDATE_ACK from the module, REVISION and
// INVALIDATE pushed to it (on accept and whenever they happen).  Output is
// batched per loop iteration (before-sleep flush); EPOLLOUT is armed only
// while output is pending.
//
// Connections are addressed by a 64-bit id that is never reused, so an
// answer for a connection that has gone away is simply dropped.
//
// The socket file gets SARKD_SOCKET_MODE and, when set, the group
// SARKD_SOCKET_GROUP; each accepted peer is checked (peer_check.h) before
// anything is read from it or sent to it, and one that is not allowed is
// closed at once, counted and logged.

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/config.h"
#include "core/event_loop.h"
#include "core/handles.h"
#include "core/log.h"
#include "proto/decision.h"
#include "proto/peer_check.h"

namespace sark {

class ModuleServer {
public:
  // Handles one AUTHZ_REQ payload.  Returning false (with `err`) is a
  // protocol error: the connection gets an ERROR frame and is closed.
  using AuthzHandler = std::function<bool(uint64_t conn_id, uint32_t req_id,
                                          const uint8_t* payload, size_t len, std::string& err)>;
  // INVALIDATE_REQ: same contract as AuthzHandler.
  using InvalidateHandler = AuthzHandler;
  // INVALIDATE_ACK for push `id`.
  using AckHandler = std::function<void(uint64_t conn_id, uint32_t id)>;
  // AUDIT_BATCH (header flags passed on); always answered later with an
  // AUDIT_ACK through sendFrame().
  using AuditHandler = std::function<void(uint64_t conn_id, uint32_t id, uint16_t flags,
                                          const uint8_t* payload, size_t len)>;
  // A module connection was accepted (frames queued here go out first).
  using ConnectHandler = std::function<void(uint64_t conn_id)>;
  // STATUS_REQ: the JSON object STATUS_RESP carries
  using StatusHandler = std::function<std::string()>;
  // AUDIT_QUERY_REQ: same contract as AuthzHandler.
  using AuditQueryHandler = AuthzHandler;
  // KEY_USED (no answer)
  using KeyUsedHandler = std::function<void(const uint8_t* payload, size_t len)>;

  ModuleServer(EventLoop& loop, const Config& cfg);
  ~ModuleServer();
  ModuleServer(const ModuleServer&) = delete;
  ModuleServer& operator=(const ModuleServer&) = delete;

  void setAuthzHandler(AuthzHandler handler) { authz_handler_ = std::move(handler); }
  void setInvalidateHandler(InvalidateHandler handler) {
    invalidate_handler_ = std::move(handler);
  }
  void setAckHandler(AckHandler handler) { ack_handler_ = std::move(handler); }
  void setConnectHandler(ConnectHandler handler) { connect_handler_ = std::move(handler); }
  void setAuditHandler(AuditHandler handler) { audit_handler_ = std::move(handler); }
  void setStatusHandler(StatusHandler handler) { status_handler_ = std::move(handler); }
  void setKeyUsedHandler(KeyUsedHandler handler) { key_used_handler_ = std::move(handler); }
  void setAuditQueryHandler(AuditQueryHandler handler) {
    audit_query_handler_ = std::move(handler);
  }

  // Creates the socket (refusing to start when another sarkd answers on
  // it), sets its mode and starts accepting.
  bool start(std::string& err);

  // Queues an answer; dropped when the connection is gone.
  void sendAuthzResponse(uint64_t conn_id, uint32_t req_id, const Decision& d,
                         const AnswerMeta& meta);
  // Queues encoded frame bytes; false when the connection is gone.
  bool sendFrame(uint64_t conn_id, std::string_view frame);
  // Queues encoded frame bytes on every open connection; returns how many.
  size_t broadcast(std::string_view frame);

  // Stops accepting and stops reading requests; pending output still goes.
  void startDrain();
  // True when no connection has output left to write.
  bool flushed() const;
  // Writes what it can without waiting, then closes every connection.
  void closeAll();
  // Removes the socket file if it is still the one this process created.
  void removeSocketFile();

  size_t connectionCount() const { return conns_.size(); }
  // Connections closed at accept because the peer is not allowed.
  uint64_t peersRefused() const { return peers_refused_; }

private:
  struct Connection {
    uint64_t id{0};
    UniqueFd fd;
    std::unique_ptr<uint8_t[]> rbuf;
    size_t rcap{0};
    size_t rlen{0};
    std::string wbuf;
    size_t wpos{0};
    uint32_t interest{0};
    bool dirty{false};   // on the flush list
    bool closing{false}; // close once output is written (or at once on error)
    std::string close_reason;
  };

  void onAccept();
  // SO_PEERCRED check of an accepted connection; false: close it.
  bool peerAllowed(int fd);
  // chgrp/chmod of the socket file just bound.
  bool setSocketPermissions(std::string& err);
  void pauseAccept(uint64_t ms);
  void onConnEvent(uint64_t id, uint32_t events);
  bool readInput(Connection& c);
  bool processFrames(Connection& c);
  bool handleFrame(Connection& c, const sark_frame_hdr_t& h, const uint8_t* payload);
  // Queues an ERROR frame (id of the offending frame, 0 when unknown)
  // and marks the connection for closing.
  void protocolError(Connection& c, std::string_view reason, uint32_t frame_id = 0);
  void markDirty(Connection& c);
  void flushDirty();
  // Writes pending output; false when the connection failed.
  bool flush(Connection& c);
  void updateInterest(Connection& c);
  void closeConnection(uint64_t id, std::string_view reason, bool warn);
  Connection* find(uint64_t id);
  // Call after appending a frame to c.wbuf: enforces the output bound.
  void queued(Connection& c);

  EventLoop& loop_;
  const Config& cfg_;
  AuthzHandler authz_handler_;
  InvalidateHandler invalidate_handler_;
  AckHandler ack_handler_;
  ConnectHandler connect_handler_;
  AuditQueryHandler audit_query_handler_;
  KeyUsedHandler key_used_handler_;
  AuditHandler audit_handler_;
  StatusHandler status_handler_;
  UniqueFd listen_fd_;
  bool accepting_{false};
  bool draining_{false};
  EventLoop::TimerId accept_pause_timer_{0};
  dev_t socket_dev_{0};
  ino_t socket_ino_{0};
  bool socket_created_{false};
  uint64_t next_conn_id_{1};
  PeerPolicy peers_;
  uint64_t peers_refused_{0};
  LogRateLimiter refused_log_{10 * 1000000};
  std::unordered_map<uint64_t, std::unique_ptr<Connection>> conns_;
  std::vector<uint64_t> dirty_;
};

} // namespace sark
