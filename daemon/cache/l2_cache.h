#pragma once

// The shared decision cache in Redis/Valkey (docs/design.md, Decision
// cache): GET a decision by its key (computed by sarkd, cache_key.h), SET
// fresh ones with their TTL (PX), DEL stale ones.  A value is used only when it was made under the
// current policy revision, has not expired, and no invalidation pattern
// recorded here (RecentInvalidations) covers it; anything else is a miss.
// It is used only while the invalidation feed (pub/sub) is live, so a
// value another host invalidated is never served from here.
// Every Redis problem is a miss, never an error.
//
// Values are sealed (l2_seal.h): one whose tag does not verify under its
// key, or that has none, is not parsed at all; it is a miss, deleted,
// counted (Stats::unauthenticated) and logged.

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "authz/policy_revision.h"
#include "cache/cache_entry.h"
#include "cache/l2_seal.h"
#include "cache/recent_invalidations.h"
#include "cache/redis_client.h"
#include "core/config.h"
#include "core/log.h"

namespace sark {

class L2Cache {
public:
  // `hit` is null for a miss; valid only during the call.
  using LookupCallback = std::function<void(const CachedDecision* hit)>;

  L2Cache(const Config& cfg, RedisClient& redis, RecentInvalidations& recent,
          const PolicyRevision& revision);
  L2Cache(const L2Cache&) = delete;
  L2Cache& operator=(const L2Cache&) = delete;

  void setFeedLive(bool live) { feed_live_ = live; }
  bool feedLive() const { return feed_live_; }

  // Whether a lookup would go to Redis now.
  bool usable() const;

  // GET `key`.  False (and `done` is never called) when L2 is not usable.
  bool lookup(const std::string& key, LookupCallback done);
  // SET `key` (fire and forget); skipped when L2 is not usable.
  void store(const std::string& key, const CachedDecision& value);

  // Is `value` (read from `key`) still good to serve?
  bool valid(const std::string& key, const CachedDecision& value, uint64_t now_ms);

  struct Stats {
    uint64_t hits{0};
    uint64_t misses{0};
    uint64_t stale{0};
    uint64_t errors{0};
    uint64_t stores{0};
    uint64_t unauthenticated{0}; // values whose tag did not verify, or had none
  };
  const Stats& stats() const { return stats_; }

private:
  void remove(const std::string& key);

  const Config& cfg_;
  RedisClient& redis_;
  RecentInvalidations& recent_;
  const PolicyRevision& revision_;
  L2Seal seal_;
  bool feed_live_{false};
  Stats stats_;
  LogRateLimiter bad_value_log_{10 * 1000000};
  LogRateLimiter bad_tag_log_{10 * 1000000};
};

} // namespace sark
