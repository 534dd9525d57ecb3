#include "authorizer.h"

#include <utility>

#include "clock.h"
#include "opa_answer.h"

namespace sark {
namespace {

constexpr size_t kMaxLoggedRequestId = 128;

} // namespace

Authorizer::Authorizer(const Config& cfg, OpaClient& opa, PolicyRevision& revision,
                       ModuleServer& server)
    : cfg_(cfg), opa_(opa), revision_(revision), server_(server) {}

bool Authorizer::onAuthzRequest(uint64_t conn_id, uint32_t req_id, const uint8_t* payload,
                                size_t len, std::string& err) {
  Pending p{conn_id, req_id, Sensitivity::Medium, monotonicUs(), {}};
  AuthzRequest req;
  if (!decodeAuthzRequest(payload, len, req, err)) {
    return false;
  }
  p.request_id.assign(truncateUtf8(req.request_id, kMaxLoggedRequestId));

  std::string body;
  std::string deny_reason;
  if (!buildOpaInput(req, p.sensitivity, body, deny_reason)) {
    answer(p, Decision::deny(std::move(deny_reason)), nullptr);
    return true;
  }

  pending_++;
  bool queued = opa_.evaluate(std::move(body), [this, p](const OpaResult& r) {
    pending_--;
    onOpaResult(p, r);
  });
  if (!queued) {
    pending_--;
    Decision d = Decision::outage("GW-503", "sarkd overloaded", 1);
    uint64_t suppressed = 0;
    if (outage_log_.allow(monotonicUs(), suppressed)) {
      LogLine(LogLevel::Warn, "overloaded: OPA queue full")
          .unum("max_inflight", cfg_.max_inflight)
          .unum("suppressed", suppressed);
    }
    answer(p, d, nullptr);
  }
  return true;
}

void Authorizer::onOpaResult(const Pending& p, const OpaResult& r) {
  Decision d = mapOpaAnswer(r, cfg_.ttlFor(p.sensitivity), cfg_.opa_timeout_ms);
  if (d.decision == SARK_DECISION_OUTAGE && !r.aborted) {
    bool fail_open = !cfg_.opa_fail_closed &&
                     (p.sensitivity == Sensitivity::Low || p.sensitivity == Sensitivity::Medium);
    if (fail_open) {
      LogLine(LogLevel::Warn, "fail-open: allowing during OPA outage")
          .str("error_code", d.error_code)
          .str("error", d.reason)
          .str("sensitivity", sensitivityName(p.sensitivity))
          .str("request_id", p.request_id);
      Decision open;
      open.decision = SARK_DECISION_ALLOW;
      open.reason = "fail-open: " + d.reason;
      open.cache_ttl = 0;
      d = std::move(open);
    } else {
      logOutage(d, r);
    }
  }
  answer(p, d, &r);
}

void Authorizer::logOutage(const Decision& d, const OpaResult& r) {
  uint64_t suppressed = 0;
  if (outage_log_.allow(monotonicUs(), suppressed)) {
    LogLine(LogLevel::Warn, "OPA outage")
        .str("error_code", d.error_code)
        .str("error", d.reason)
        .str("opa", r.server)
        .unum("suppressed", suppressed);
  }
}

void Authorizer::answer(const Pending& p, const Decision& d, const OpaResult* r) {
  server_.sendAuthzResponse(p.conn_id, p.req_id, d, revision_.current(), wallMs());
  if (cfg_.enable_profiling) {
    LogLine(LogLevel::Info, "decision profile")
        .str("request_id", p.request_id)
        .str("decision", decisionName(d.decision))
        .unum("opa_us", r != nullptr ? r->opa_us : 0)
        .unum("queue_us", r != nullptr ? r->queue_us : 0)
        .unum("total_us", monotonicUs() - p.received_us);
  } else if (logEnabled(LogLevel::Debug)) {
    LogLine(LogLevel::Debug, "decision")
        .unum("conn", p.conn_id)
        .unum("id", p.req_id)
        .str("request_id", p.request_id)
        .str("decision", decisionName(d.decision))
        .str("reason", d.reason)
        .unum("cache_ttl", d.cache_ttl);
  }
}

} // namespace sark
