#pragma once

// Cache invalidation across hosts (docs/design.md, Decision cache).
//
// Issuing (INVALIDATE_REQ from a module, after the module applied the
// pattern to its own L1):
//   1. record (pattern, issued_at) here, so L2 values it covers are misses;
//   2. PUBLISH sark:invalidate {"pattern","issued_at","origin","id"}; the
//      reply is the number N of subscribed hosts, this one included;
//   3. SCAN ... MATCH pattern + UNLINK the matching L2 keys;
//   4. answer INVALIDATE_RESP once N-1 other hosts acknowledged on
//      sark:invalidate:ack and the keys are gone, or after
//      CACHE_INVALIDATE_TIMEOUT_MS with what is known (status 1).
// Receiving (a message of another origin on sark:invalidate): record it,
// push INVALIDATE to every module connection, and PUBLISH the ack on the
// first module ack (all workers of one nginx share the L1 zone).
//
// A host whose subscription was down may have missed messages: every time
// the subscription is (re)established it invalidates everything evaluated
// before that moment ("authz:*"), in L2 for itself and in its modules' L1.
// The same happens at start-up (a restarted sarkd missed everything).

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>

#include "cache/channel_seal.h"
#include "cache/l2_cache.h"
#include "cache/recent_invalidations.h"
#include "cache/redis_client.h"
#include "cache/redis_connection.h"
#include "core/config.h"
#include "core/event_loop.h"
#include "core/log.h"
#include "proto/cache_frames.h"
#include "proto/module_server.h"

namespace sark {

inline constexpr std::string_view kInvalidateChannel = "sark:invalidate";
inline constexpr std::string_view kInvalidateAckChannel = "sark:invalidate:ack";

class Invalidator {
public:
  Invalidator(EventLoop& loop, const Config& cfg, RedisClient& redis, ModuleServer& server,
              RecentInvalidations& recent, L2Cache& l2);
  ~Invalidator();
  Invalidator(const Invalidator&) = delete;
  Invalidator& operator=(const Invalidator&) = delete;

  void start();
  void close();

  // ModuleServer handlers.
  bool onInvalidateRequest(uint64_t conn_id, uint32_t frame_id, const uint8_t* payload,
                           size_t len, std::string& err);
  void onAck(uint64_t conn_id, uint32_t push_id);
  void onModuleConnected(uint64_t conn_id);

  const std::string& hostId() const { return host_id_; }
  // Invalidations being carried out (answer not sent yet).
  size_t pending() const { return unanswered_; }

  struct Stats {
    uint64_t issued{0};    // asked by this host's modules
    uint64_t confirmed{0}; // every subscribed host applied it, L2 swept
    uint64_t partial{0};   // answered without every confirmation
    uint64_t received{0};  // from other hosts, applied here
  };
  const Stats& stats() const { return stats_; }

private:
  struct Op {
    uint64_t id{0};
    uint64_t conn_id{0};
    uint32_t frame_id{0};
    std::string pattern;
    uint64_t issued_at{0};
    uint64_t started_us{0};
    bool answered{false};
    bool published{false};
    bool publish_failed{false};
    uint32_t subscribers{0};
    std::set<std::string> acked_by;
    bool scan_done{false};
    bool scan_failed{false};
    uint32_t unlinks_in_flight{0};
    uint32_t deleted{0};
    EventLoop::TimerId timer{0};
  };
  struct Push {
    std::string origin;
    uint64_t op_id;
    EventLoop::TimerId timer;
  };

  void answer(uint64_t conn_id, uint32_t frame_id, const InvalidateResult& r);
  void publish(Op& op);
  void scan(uint64_t op_id, std::string cursor);
  void check(uint64_t op_id);
  void finish(Op& op);
  void maybeErase(uint64_t op_id);
  void onMessage(const redisReply* r);
  void onRemoteInvalidate(std::string_view payload);
  void onRemoteAck(std::string_view payload);
  void publishAck(const std::string& origin, uint64_t op_id);
  // Records a pattern and pushes it to every module; `track` = wait for
  // a module ack and publish it for `origin`.
  void applyLocally(std::string_view pattern, uint64_t issued_at, bool track,
                    const std::string& origin, uint64_t op_id);
  uint32_t nextPushId();

  EventLoop& loop_;
  const Config& cfg_;
  RedisClient& redis_;
  ModuleServer& server_;
  RecentInvalidations& recent_;
  L2Cache& l2_;
  ChannelSeal seal_;
  std::string host_id_;
  std::unique_ptr<RedisConnection> subscriber_;
  uint64_t next_op_id_{1};
  uint32_t next_push_id_{1};
  Stats stats_;
  size_t unanswered_{0};
  std::unordered_map<uint64_t, std::unique_ptr<Op>> ops_;
  std::unordered_map<uint32_t, Push> pushes_;
  LogRateLimiter bad_message_log_{10 * 1000000};
};

} // namespace sark
