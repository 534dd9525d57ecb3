#include "authz/policy_revision.h"

#include <utility>

#include "core/clock.h"

namespace sark {
namespace {

// An undefined document: OPA answers it with its provenance and nothing
// to evaluate.
constexpr const char* kProbePath = "/v1/data/sark_revision_probe?provenance=true";
// noticed() asks again at most this often.
constexpr uint64_t kMinProbeGapUs = 100 * 1000;

} // namespace

PolicyRevision::PolicyRevision(EventLoop& loop, OpaClient& opa, uint32_t poll_ms)
    : loop_(loop), opa_(opa), poll_ms_(poll_ms) {}

PolicyRevision::~PolicyRevision() { stop(); }

void PolicyRevision::start() {
  stopped_ = false;
  poll();
}

void PolicyRevision::stop() {
  stopped_ = true;
  loop_.cancelTimer(timer_);
  timer_ = 0;
}

void PolicyRevision::noticed(std::string_view seen) {
  if (stopped_ || seen == revision_) {
    return;
  }
  if (in_flight_) {
    again_ = true;
    return;
  }
  uint64_t since = monotonicUs() - last_probe_us_;
  if (since >= kMinProbeGapUs) {
    loop_.cancelTimer(timer_);
    poll();
  } else {
    scheduleNext(static_cast<uint32_t>((kMinProbeGapUs - since) / 1000) + 1);
  }
}

void PolicyRevision::poll() {
  timer_ = 0;
  if (stopped_ || in_flight_) {
    return;
  }
  in_flight_ = true;
  again_ = false;
  last_probe_us_ = monotonicUs();
  opa_.get(kProbePath, [this](const OpaResult& r) { onProbe(r); });
}

void PolicyRevision::scheduleNext(uint32_t delay_ms) {
  if (stopped_) {
    return;
  }
  loop_.cancelTimer(timer_);
  timer_ = loop_.addTimer(delay_ms, [this]() { poll(); });
}

void PolicyRevision::onProbe(const OpaResult& r) {
  in_flight_ = false;
  if (stopped_ || r.aborted) {
    return;
  }
  std::string why;
  rapidjson::Document doc;
  if (r.curl_code != CURLE_OK) {
    why = r.error_text;
  } else if (r.http_status != 200) {
    why = "HTTP " + std::to_string(r.http_status);
  } else {
    doc.Parse<rapidjson::kParseIterativeFlag>(r.body.data(), r.body.size());
    if (doc.HasParseError() || !doc.IsObject()) {
      why = "response is not a JSON object";
    }
  }
  if (!why.empty()) {
    // OPA being briefly unreachable does not change what it has loaded.
    uint64_t suppressed = 0;
    if (failure_log_.allow(monotonicUs(), suppressed)) {
      LogLine(LogLevel::Warn, "policy revision poll failed")
          .str("opa", r.server)
          .str("error", why)
          .str("revision", revision_)
          .unum("suppressed", suppressed);
    }
    scheduleNext(poll_ms_);
    return;
  }
  std::string revision = revisionFromProvenance(doc);
  if (revision.empty()) {
    uint64_t suppressed = 0;
    if (none_log_.allow(monotonicUs(), suppressed)) {
      LogLine(LogLevel::Warn, "OPA reports no bundle revision: decisions are not cached")
          .str("opa", r.server)
          .str("hint", "load the policies and data as a bundle with a revision "
                       "(opa build --revision, opa run --bundle)");
    }
  }
  bool first = !settled_;
  settled_ = true;
  if (revision != revision_ || first) {
    LogLine(LogLevel::Info, "policy revision changed")
        .str("from", revision_)
        .str("to", revision)
        .str("opa", r.server);
    revision_ = std::move(revision);
    if (on_change_) {
      on_change_(revision_);
    }
  }
  scheduleNext(again_ ? 0 : poll_ms_);
}

} // namespace sark
