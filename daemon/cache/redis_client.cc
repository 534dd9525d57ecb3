#include "cache/redis_client.h"

#include <functional>

#include "core/clock.h"

namespace sark {

RedisClient::RedisClient(EventLoop& loop, const Config& cfg)
    : loop_(loop), cfg_(cfg),
      breaker_(cfg.redis_cb_threshold, cfg.redis_cb_open_ms, cfg.redis_cb_half_open) {
  for (uint32_t i = 0; i < cfg.redis_pool_size; i++) {
    auto c = std::make_unique<RedisConnection>(loop, cfg.redis, cfg.redis_timeout_ms,
                                               "cmd-" + std::to_string(i));
    c->setCallbacks(
        [this]() {
          ever_ready_ = true;
          warned_unreachable_ = false;
        },
        [this](std::string_view why, bool was_ready) {
          (void)was_ready;
          if (!ever_ready_ && !warned_unreachable_) {
            warned_unreachable_ = true;
            LogLine(LogLevel::Warn, "redis unreachable; L2 cache off until it connects")
                .str("redis", cfg_.redis.display())
                .str("error", why);
          }
          onFailure(why);
        });
    conns_.push_back(std::move(c));
  }
}

void RedisClient::start() {
  for (auto& c : conns_) {
    c->start();
  }
}

void RedisClient::close() {
  for (auto& c : conns_) {
    c->close();
  }
}

RedisConnection* RedisClient::pick(std::string_view route) {
  size_t n = conns_.size();
  size_t first = std::hash<std::string_view>{}(route) % n;
  for (size_t i = 0; i < n; i++) {
    RedisConnection* c = conns_[(first + i) % n].get();
    if (c->ready()) {
      return c;
    }
  }
  return nullptr;
}

bool RedisClient::usable() const {
  if (!breaker_.wouldAllow(monotonicUs())) {
    return false;
  }
  for (const auto& c : conns_) {
    if (c->ready()) {
      return true;
    }
  }
  return false;
}

bool RedisClient::command(std::string_view route, const std::vector<std::string_view>& argv,
                          ReplyCallback cb) {
  RedisConnection* c = pick(route);
  if (c == nullptr || !breaker_.allow(monotonicUs())) {
    return false;
  }
  bool sent = c->command(argv, [this, cb = std::move(cb)](const redisReply* r) {
    if (r == nullptr) {
      onFailure("no reply (timeout or connection lost)");
      cb(nullptr);
      return;
    }
    if (r->type == REDIS_REPLY_ERROR) {
      std::string err(r->str, r->len);
      uint64_t suppressed = 0;
      if (error_log_.allow(monotonicUs(), suppressed)) {
        LogLine(LogLevel::Warn, "redis error reply")
            .str("error", err)
            .unum("suppressed", suppressed);
      }
      onFailure(err);
      cb(nullptr);
      return;
    }
    onSuccess();
    cb(r);
  });
  if (!sent) {
    breaker_.onCancel();
  }
  return sent;
}

void RedisClient::reportFailure(std::string_view why) { onFailure(why); }

void RedisClient::onSuccess() {
  if (breaker_.onSuccess()) {
    LogLine(LogLevel::Info, "redis circuit breaker closed; L2 cache on")
        .str("redis", cfg_.redis.display());
  }
}

void RedisClient::onFailure(std::string_view why) {
  if (breaker_.onFailure(monotonicUs())) {
    LogLine(LogLevel::Warn, "redis circuit breaker open; L2 cache off")
        .str("redis", cfg_.redis.display())
        .str("error", why)
        .unum("retry_after_ms", cfg_.redis_cb_open_ms);
  }
}

} // namespace sark
