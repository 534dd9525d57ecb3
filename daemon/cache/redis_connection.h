#pragma once

// One Redis/Valkey connection driven by the EventLoop through hiredis's
// async API (an adapter in the style of hiredis/adapters/*.h: the
// ev.addRead/delRead/addWrite/delWrite/cleanup hooks set epoll interest).
//
// - Reconnects by itself (100 ms doubling to 2 s) until close().
// - AUTH / SELECT are sent first on every connection; it is ready once
//   they succeeded.  A subscriber connection SUBSCRIBEs instead and is
//   ready once every channel is confirmed.
// - Commands are pipelined: many in flight, answered in order.  Each has a
//   deadline; when the oldest misses it, the connection is dropped (Redis
//   answers in order, so everything behind it is stuck too) and every
//   pending command completes with a null reply.
//
// Lifetime: the redisAsyncContext is *not owned* here.  hiredis frees it
// after a failed connect callback and after every disconnect callback;
// this class only ever calls redisAsyncFree() itself (timeouts, close()),
// and forgets the pointer in the callbacks that end it.

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/config.h"
#include "core/event_loop.h"
#include "core/log.h"

namespace sark {

// The text of a string or status reply; empty for any other.
inline std::string_view replyText(const redisReply* r) {
  if (r == nullptr || (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_STATUS)) {
    return {};
  }
  return {r->str, r->len};
}

class RedisConnection {
public:
  // `reply` is null when the command failed without an answer (timeout,
  // connection lost); an error reply (REDIS_REPLY_ERROR) is passed on.
  // The reply is valid only during the call.
  using ReplyCallback = std::function<void(const redisReply* reply)>;
  // Subscriber: every pub/sub reply (confirmations and messages).
  using MessageCallback = std::function<void(const redisReply* reply)>;
  // Connection state changes: ready, or down (after a lost connection or
  // a failed attempt; `was_ready` tells which).
  using ReadyCallback = std::function<void()>;
  using DownCallback = std::function<void(std::string_view why, bool was_ready)>;

  RedisConnection(EventLoop& loop, const RedisEndpoint& endpoint, uint32_t timeout_ms,
                  std::string name);
  ~RedisConnection();
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  void setCallbacks(ReadyCallback on_ready, DownCallback on_down) {
    on_ready_ = std::move(on_ready);
    on_down_ = std::move(on_down);
  }
  // Makes this a subscriber connection (call before start()).
  void setSubscriptions(std::vector<std::string> channels, MessageCallback on_message) {
    channels_ = std::move(channels);
    on_message_ = std::move(on_message);
  }

  void start();
  // Frees the connection; pending callbacks are dropped, not called.
  void close();

  bool ready() const { return state_ == State::Ready; }
  size_t inFlight() const { return pending_.size(); }
  const std::string& name() const { return name_; }

  // Queues one command.  False (and `cb` is never called) when the
  // connection is not ready or hiredis refused it.
  bool command(const std::vector<std::string_view>& argv, ReplyCallback cb);

private:
  enum class State { Idle, Connecting, Handshake, Ready, Closed };

  struct Pending {
    uint64_t deadline_us;
    ReplyCallback cb;
  };

  // hiredis hooks (C callbacks; `ac->data` / `ev.data` is the connection).
  static void onConnectC(const redisAsyncContext* ac, int status);
  static void onDisconnectC(const redisAsyncContext* ac, int status);
  static void onReplyC(redisAsyncContext* ac, void* reply, void* privdata);
  static void onSubscribeReplyC(redisAsyncContext* ac, void* reply, void* privdata);
  static void addReadC(void* data);
  static void delReadC(void* data);
  static void addWriteC(void* data);
  static void delWriteC(void* data);
  static void cleanupC(void* data);

  void connect();
  void attach();
  void updateInterest();
  void onFdEvent(uint64_t gen, uint32_t events);
  void onConnected(int status);
  void startHandshake();
  bool send(const std::vector<std::string_view>& argv, ReplyCallback cb);
  void becomeReady();
  void onReply(Pending* p, const redisReply* reply);
  void onSubscribeReply(const redisReply* reply);
  void armTimeout();
  void onTimeout();
  // Frees the context (from outside hiredis callbacks, or deferred when
  // inside one); ends in onGone().
  void drop(std::string reason);
  // The context is gone (freed or about to be): forget it, schedule a
  // reconnect.
  void onGone(std::string_view why);

  EventLoop& loop_;
  RedisEndpoint endpoint_;
  uint32_t timeout_ms_;
  std::string name_;
  ReadyCallback on_ready_;
  DownCallback on_down_;
  std::vector<std::string> channels_;
  MessageCallback on_message_;

  redisAsyncContext* ac_{nullptr}; // not owned: see the header comment
  State state_{State::Idle};
  int fd_{-1};
  bool reading_{false};
  bool writing_{false};
  uint32_t interest_{0};
  uint64_t gen_{0}; // bumped per context, so stale fd events are ignored
  std::string drop_reason_;
  size_t handshake_left_{0};
  size_t subscribed_{0};
  std::deque<std::unique_ptr<Pending>> pending_;
  EventLoop::TimerId timeout_timer_{0};
  EventLoop::TimerId ready_timer_{0};
  EventLoop::TimerId reconnect_timer_{0};
  uint64_t backoff_ms_;
  uint64_t attempts_{0};
  LogRateLimiter lost_log_{10 * 1000000};
};

} // namespace sark
