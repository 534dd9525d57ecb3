#pragma once

// The decision path for one AUTHZ_REQ: decode and check it, build the OPA
// input, then
//   - join the evaluation already running for the very same input, if any
//     (coalescing: one OPA call for all concurrent requests whose whole
//     policy input is identical, gateway_metadata included, from any
//     connection);
//   - else, when the policy revision is known, compute the request's cache
//     key (cache_key.h: from the decoded request, never taken from the
//     client), look it up in L2, and on a miss ask OPA and store its answer
//     in L2 under that key.
// Every answer is stamped with the revision OPA reported with it, in the
// same evaluation (policy_revision.h); it is cached only under a key of
// that very revision.  Answers carry SARK_RESP_EXPIRES_AT when the module
// may cache them: never past the requester's token expiry
// (SARK_REQ_NOT_AFTER), never for outages, fail-open answers, invalid
// requests or a cache_ttl of 0, never when an invalidation covers it.

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "authz/opa_client.h"
#include "authz/policy_revision.h"
#include "cache/cache_entry.h"
#include "cache/l2_cache.h"
#include "cache/recent_invalidations.h"
#include "core/config.h"
#include "core/event_loop.h"
#include "core/log.h"
#include "proto/decision.h"
#include "proto/module_server.h"

namespace sark {

class Authorizer {
public:
  Authorizer(const Config& cfg, OpaClient& opa, PolicyRevision& revision, ModuleServer& server,
             L2Cache& l2, RecentInvalidations& recent);
  Authorizer(const Authorizer&) = delete;
  Authorizer& operator=(const Authorizer&) = delete;

  // ModuleServer::AuthzHandler.
  bool onAuthzRequest(uint64_t conn_id, uint32_t req_id, const uint8_t* payload, size_t len,
                      std::string& err);

  // Requests accepted and not answered yet.
  size_t pending() const { return pending_; }

  struct Stats {
    uint64_t requests{0};
    uint64_t coalesced{0}; // joined an evaluation already running
    uint64_t l2_hits{0};
    uint64_t l2_misses{0};
    uint64_t evaluations{0}; // OPA calls
    uint64_t cacheable{0};   // answers given with an expiry
  };
  const Stats& stats() const { return stats_; }

private:
  // One request waiting for its answer.
  struct Requester {
    uint64_t conn_id;
    uint32_t req_id;
    uint64_t received_us;
    uint64_t not_after; // Unix ms, 0 = no token expiry
    std::string request_id;
  };
  // One evaluation, shared by every requester of the same policy input.
  struct Flight {
    uint64_t id{0};
    std::string input;        // the OPA request body; by_input_'s key
    std::string key;          // the L2 key; empty = not cacheable
    std::string key_revision; // the revision `key` is computed under
    Sensitivity sensitivity{Sensitivity::Medium};
    bool a2a{false};          // asks the sark.a2a document
    std::vector<Requester> waiters;
    uint64_t evaluated_at{0}; // Unix ms, when the OPA call started
    uint64_t l2_us{0};
  };

  uint64_t notAfter(const AuthzRequest& req);
  void startOpa(uint64_t flight_id);
  void onL2Result(uint64_t flight_id, const CachedDecision* hit);
  void onOpaResult(uint64_t flight_id, const OpaResult& r);
  // Answers every requester of the flight and forgets it.
  void complete(Flight& f, const Decision& d, const AnswerMeta& meta, const OpaResult* r);
  void answerOne(const Requester& w, const Decision& d, const AnswerMeta& meta,
                 const OpaResult* r, uint64_t l2_us);
  void logOutage(const Decision& d, const OpaResult& r);

  const Config& cfg_;
  OpaClient& opa_;
  PolicyRevision& revision_;
  ModuleServer& server_;
  L2Cache& l2_;
  RecentInvalidations& recent_;
  size_t pending_{0};
  uint64_t next_flight_id_{1};
  std::unordered_map<uint64_t, std::unique_ptr<Flight>> flights_;
  std::unordered_map<std::string, uint64_t> by_input_;
  Stats stats_;
  LogRateLimiter outage_log_{1000000};
  LogRateLimiter bad_request_log_{10 * 1000000};
};

} // namespace sark
