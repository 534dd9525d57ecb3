#include "authz/authorizer.h"

#include <utility>

#include "authz/opa_answer.h"
#include "cache/cache_key.h"
#include "core/clock.h"

namespace sark {
namespace {

constexpr size_t kMaxLoggedRequestId = 128;

} // namespace

Authorizer::Authorizer(const Config& cfg, OpaClient& opa, PolicyRevision& revision,
                       ModuleServer& server, L2Cache& l2, RecentInvalidations& recent)
    : cfg_(cfg), opa_(opa), revision_(revision), server_(server), l2_(l2), recent_(recent) {}

uint64_t Authorizer::notAfter(const AuthzRequest& req) {
  if (!req.has(SARK_REQ_NOT_AFTER)) {
    return 0;
  }
  if (req.not_after.size() != 8) {
    uint64_t suppressed = 0;
    if (bad_request_log_.allow(monotonicUs(), suppressed)) {
      LogLine(LogLevel::Warn, "request not cached")
          .str("error", "NOT_AFTER is not a u64")
          .unum("suppressed", suppressed);
    }
    return 1; // in the past: nothing of it may be cached
  }
  return sark_get_u64(reinterpret_cast<const uint8_t*>(req.not_after.data()));
}

bool Authorizer::onAuthzRequest(uint64_t conn_id, uint32_t req_id, const uint8_t* payload,
                                size_t len, std::string& err) {
  AuthzRequest req;
  if (!decodeAuthzRequest(payload, len, req, err)) {
    return false;
  }
  stats_.requests++;
  Requester w{conn_id, req_id, monotonicUs(), 0,
              std::string(truncateUtf8(req.request_id, kMaxLoggedRequestId))};

  auto f = std::make_unique<Flight>();
  std::string deny_reason;
  if (!buildOpaInput(req, f->sensitivity, f->input, deny_reason)) {
    pending_++;
    AnswerMeta meta{revision_.current(), wallMs(), SARK_CACHE_MISS, 0};
    answerOne(w, Decision::deny(std::move(deny_reason)), meta, nullptr, 0);
    return true;
  }
  w.not_after = notAfter(req);
  f->a2a = isA2aAction(req.action);
  pending_++;

  auto it = by_input_.find(f->input);
  if (it != by_input_.end()) {
    stats_.coalesced++;
    flights_.at(it->second)->waiters.push_back(std::move(w));
    return true;
  }
  if (revision_.known()) {
    f->key_revision = revision_.current();
    f->key = cacheKey(req, f->key_revision);
  }
  f->id = next_flight_id_++;
  f->waiters.push_back(std::move(w));
  uint64_t id = f->id;
  Flight& flight = *f;
  by_input_.emplace(flight.input, id);
  flights_.emplace(id, std::move(f));
  flight.l2_us = monotonicUs();
  bool looking = !flight.key.empty() &&
                 l2_.lookup(flight.key, [this, id](const CachedDecision* hit) {
                   onL2Result(id, hit);
                 });
  if (!looking) {
    flight.l2_us = 0;
    startOpa(id);
  }
  return true;
}

void Authorizer::onL2Result(uint64_t flight_id, const CachedDecision* hit) {
  auto it = flights_.find(flight_id);
  if (it == flights_.end()) {
    return;
  }
  Flight& f = *it->second;
  f.l2_us = monotonicUs() - f.l2_us;
  if (hit == nullptr) {
    stats_.l2_misses++;
    startOpa(flight_id);
    return;
  }
  stats_.l2_hits++;
  AnswerMeta meta{hit->policy_revision, hit->evaluated_at, SARK_CACHE_L2, hit->expires_at};
  complete(f, hit->toDecision(), meta, nullptr);
}

void Authorizer::startOpa(uint64_t flight_id) {
  Flight& f = *flights_.at(flight_id);
  f.evaluated_at = wallMs();
  stats_.evaluations++;
  bool queued = opa_.evaluate(f.input, f.a2a, [this, flight_id](const OpaResult& r) {
    onOpaResult(flight_id, r);
  });
  if (!queued) {
    uint64_t suppressed = 0;
    if (outage_log_.allow(monotonicUs(), suppressed)) {
      LogLine(LogLevel::Warn, "overloaded: OPA queue full")
          .unum("max_inflight", cfg_.max_inflight)
          .unum("suppressed", suppressed);
    }
    AnswerMeta meta{revision_.current(), f.evaluated_at, SARK_CACHE_MISS, 0};
    complete(f, Decision::outage("GW-503", "sarkd overloaded", 1), meta, nullptr);
  }
}

void Authorizer::onOpaResult(uint64_t flight_id, const OpaResult& r) {
  auto it = flights_.find(flight_id);
  if (it == flights_.end()) {
    return;
  }
  Flight& f = *it->second;
  uint32_t sensitivity_ttl = cfg_.ttlFor(f.sensitivity);
  std::string evaluated_under;
  Decision d = mapOpaAnswer(r, sensitivity_ttl, cfg_.opa_timeout_ms, evaluated_under);
  if (d.decision != SARK_DECISION_OUTAGE) {
    revision_.noticed(evaluated_under);
  }
  bool fail_open = false;
  if (d.decision == SARK_DECISION_OUTAGE && !r.aborted) {
    fail_open = !cfg_.opa_fail_closed &&
                (f.sensitivity == Sensitivity::Low || f.sensitivity == Sensitivity::Medium);
    if (fail_open) {
      LogLine(LogLevel::Warn, "fail-open: allowing during OPA outage")
          .str("error_code", d.error_code)
          .str("error", d.reason)
          .str("sensitivity", sensitivityName(f.sensitivity))
          .str("request_id", f.waiters.front().request_id)
          .unum("requests", f.waiters.size());
      Decision open;
      open.decision = SARK_DECISION_ALLOW;
      open.reason = "fail-open: " + d.reason;
      open.cache_ttl = 0;
      d = std::move(open);
    } else {
      logOutage(d, r);
    }
  }

  // Cached only under a key of the revision that made the decision.
  uint64_t now = wallMs();
  uint64_t expires = 0;
  bool cacheable = !f.key.empty() && !fail_open && d.decision != SARK_DECISION_OUTAGE &&
                   evaluated_under == f.key_revision &&
                   !recent_.invalidates(f.key, f.evaluated_at, now);
  if (d.decision == SARK_DECISION_OUTAGE || fail_open) {
    evaluated_under = revision_.current();
  }
  if (cacheable) {
    expires = cacheExpiry(d, f.evaluated_at, f.waiters.front().not_after,
                          cfg_.cache_negative_ttl, sensitivity_ttl);
    if (expires <= now) {
      expires = 0;
    }
  }
  if (expires != 0) {
    // Before answering: a request for this key arriving after the answer
    // goes to the same Redis connection, behind this SET.
    CachedDecision v;
    v.allow = d.decision == SARK_DECISION_ALLOW;
    v.reason = d.reason;
    v.filtered_params = d.filtered_params;
    v.cache_ttl = d.cache_ttl;
    v.max_delegation_depth = d.max_delegation_depth;
    v.policy_revision = evaluated_under;
    v.evaluated_at = f.evaluated_at;
    v.expires_at = expires;
    l2_.store(f.key, v);
  }
  AnswerMeta meta{evaluated_under, f.evaluated_at, SARK_CACHE_MISS, expires};
  complete(f, d, meta, &r);
}

void Authorizer::complete(Flight& f, const Decision& d, const AnswerMeta& meta,
                          const OpaResult* r) {
  for (const Requester& w : f.waiters) {
    answerOne(w, d, meta, r, f.l2_us);
  }
  by_input_.erase(f.input);
  flights_.erase(f.id); // destroys f
}

void Authorizer::logOutage(const Decision& d, const OpaResult& r) {
  uint64_t suppressed = 0;
  if (outage_log_.allow(monotonicUs(), suppressed)) {
    LogLine(LogLevel::Warn, "OPA outage")
        .str("error_code", d.error_code)
        .str("error", d.reason)
        .str("detail", d.detail)
        .str("opa", r.server)
        .unum("suppressed", suppressed);
  }
}

void Authorizer::answerOne(const Requester& w, const Decision& d, const AnswerMeta& meta,
                           const OpaResult* r, uint64_t l2_us) {
  pending_--;
  AnswerMeta mine = meta;
  uint64_t now = wallMs();
  if (mine.expires_at_ms != 0) {
    mine.expires_at_ms = capExpiry(mine.expires_at_ms, w.not_after, now);
  }
  if (mine.expires_at_ms != 0) {
    stats_.cacheable++;
  }
  server_.sendAuthzResponse(w.conn_id, w.req_id, d, mine);
  const char* cache = mine.cache_layer == SARK_CACHE_L2 ? "L2" : "MISS";
  if (cfg_.enable_profiling) {
    LogLine(LogLevel::Info, "decision profile")
        .str("request_id", w.request_id)
        .str("decision", decisionName(d.decision))
        .str("cache", cache)
        .unum("l2_us", l2_us)
        .unum("opa_us", r != nullptr ? r->opa_us : 0)
        .unum("queue_us", r != nullptr ? r->queue_us : 0)
        .unum("total_us", monotonicUs() - w.received_us);
  } else if (logEnabled(LogLevel::Debug)) {
    LogLine(LogLevel::Debug, "decision")
        .unum("conn", w.conn_id)
        .unum("id", w.req_id)
        .str("request_id", w.request_id)
        .str("decision", decisionName(d.decision))
        .str("reason", d.reason)
        .str("cache", cache)
        .unum("cache_ttl", d.cache_ttl)
        .unum("expires_at", mine.expires_at_ms);
  }
}

} // namespace sark
