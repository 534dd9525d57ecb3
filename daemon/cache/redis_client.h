#pragma once

// The pool of Redis command connections (VALKEY_POOL_SIZE) behind one
// circuit breaker.  A command is routed by a hash of its key, so commands
// on one key keep their order (a SET is seen by every later GET).
// Failures (timeouts, lost connections, failed connects, error replies)
// count towards the breaker; while it is open every command is refused
// at once, so callers skip Redis entirely.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "cache/redis_connection.h"
#include "core/circuit_breaker.h"
#include "core/config.h"
#include "core/event_loop.h"
#include "core/log.h"

namespace sark {

class RedisClient {
public:
  // `reply` is null for any failure (including an error reply).
  using ReplyCallback = RedisConnection::ReplyCallback;

  RedisClient(EventLoop& loop, const Config& cfg);
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  void start();
  void close();

  // Could a command be sent now (breaker lets it through, a connection is
  // ready)?  Takes nothing.
  bool usable() const;
  // Sends `argv` on the connection for `route`.  False (and `cb` is never
  // called) when the breaker refuses or no connection is ready.
  bool command(std::string_view route, const std::vector<std::string_view>& argv,
               ReplyCallback cb);

  // Reports a failure seen outside a command (e.g. the subscriber lost).
  void reportFailure(std::string_view why);

  CircuitBreaker::State breakerState() const { return breaker_.state(); }

private:
  RedisConnection* pick(std::string_view route);
  void onSuccess();
  void onFailure(std::string_view why);

  EventLoop& loop_;
  const Config& cfg_;
  CircuitBreaker breaker_;
  std::vector<std::unique_ptr<RedisConnection>> conns_;
  bool warned_unreachable_{false};
  bool ever_ready_{false};
  LogRateLimiter error_log_{10 * 1000000};
};

} // namespace sark
