#include "cache/l2_cache.h"

#include "core/clock.h"

namespace sark {

L2Cache::L2Cache(const Config& cfg, RedisClient& redis, RecentInvalidations& recent,
                 const PolicyRevision& revision)
    : cfg_(cfg), redis_(redis), recent_(recent), revision_(revision),
      seal_(cfg.cache_l2_hmac_key) {}

bool L2Cache::usable() const { return cfg_.cache_l2_enabled && feed_live_ && redis_.usable(); }

bool L2Cache::valid(const std::string& key, const CachedDecision& value, uint64_t now_ms) {
  return revision_.known() && value.policy_revision == revision_.current() &&
         value.expires_at > now_ms && !recent_.invalidates(key, value.evaluated_at, now_ms);
}

bool L2Cache::lookup(const std::string& key, LookupCallback done) {
  if (!cfg_.cache_l2_enabled || !feed_live_) {
    return false;
  }
  auto on_reply = [this, key, done = std::move(done)](const redisReply* r) {
    if (r == nullptr) {
      stats_.errors++;
      done(nullptr);
      return;
    }
    if (r->type != REDIS_REPLY_STRING) {
      stats_.misses++; // nil: not cached
      done(nullptr);
      return;
    }
    std::string_view body;
    L2Seal::Open opened = seal_.open(key, std::string_view(r->str, r->len), body);
    if (opened == L2Seal::Open::Error) {
      stats_.errors++;
      done(nullptr);
      return;
    }
    if (opened != L2Seal::Open::Ok) {
      stats_.unauthenticated++;
      uint64_t suppressed = 0;
      if (bad_tag_log_.allow(monotonicUs(), suppressed)) {
        LogLine(LogLevel::Warn, "L2 value failed authentication; deleting it")
            .str("key", truncateUtf8(key, 256))
            .str("error", L2Seal::describe(opened))
            .unum("l2_unauthenticated", stats_.unauthenticated)
            .unum("suppressed", suppressed);
      }
      remove(key);
      done(nullptr);
      return;
    }
    CachedDecision value;
    std::string err;
    uint64_t now = wallMs();
    if (!decodeCachedDecision(body, value, err)) {
      uint64_t suppressed = 0;
      if (bad_value_log_.allow(monotonicUs(), suppressed)) {
        LogLine(LogLevel::Warn, "unusable L2 value, deleting it")
            .str("key", truncateUtf8(key, 256))
            .str("error", err)
            .unum("suppressed", suppressed);
      }
      stats_.stale++;
      remove(key);
      done(nullptr);
      return;
    }
    // Still attached to a live feed?  A value checked against the recent
    // patterns is only trustworthy while no message can have been missed.
    if (!feed_live_ || !valid(key, value, now)) {
      stats_.stale++;
      if (feed_live_) {
        remove(key);
      }
      done(nullptr);
      return;
    }
    stats_.hits++;
    done(&value);
  };
  return redis_.command(key, {"GET", key}, std::move(on_reply));
}

void L2Cache::store(const std::string& key, const CachedDecision& value) {
  if (!usable()) {
    return;
  }
  uint64_t now = wallMs();
  if (value.expires_at <= now) {
    return;
  }
  std::string body;
  std::string sealed;
  if (!encodeCachedDecision(value, body) || !seal_.seal(key, body, sealed)) {
    return;
  }
  std::string px = std::to_string(value.expires_at - now);
  bool sent = redis_.command(key, {"SET", key, sealed, "PX", px}, [this](const redisReply* r) {
    if (r == nullptr) {
      stats_.errors++;
    }
  });
  if (sent) {
    stats_.stores++;
  }
}

void L2Cache::remove(const std::string& key) {
  redis_.command(key, {"DEL", key}, [](const redisReply*) {});
}

} // namespace sark
