#pragma once

// Tracks the revision of the policies OPA has loaded: polls
// GET /v1/policies every OPA_REVISION_POLL_MS and hashes them.  The
// revision goes into every answer (and, later, every cache key).

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "event_loop.h"
#include "log.h"
#include "opa_client.h"

namespace sark {

// First 16 hex chars of SHA-256 over id+raw of every policy, sorted by id,
// from a /v1/policies response body.  False when the body is not the
// expected shape.
bool computePolicyRevision(std::string_view body, std::string& revision, std::string& err);

class PolicyRevision {
public:
  PolicyRevision(EventLoop& loop, OpaClient& opa, uint32_t poll_ms);
  ~PolicyRevision();
  PolicyRevision(const PolicyRevision&) = delete;
  PolicyRevision& operator=(const PolicyRevision&) = delete;

  void start();
  void stop();

  const std::string& current() const { return revision_; }
  // False until the first successful poll ("unknown").
  bool known() const { return known_; }
  // Called after every change of the revision (the first one included).
  void setChangeListener(std::function<void(const std::string&)> listener) {
    on_change_ = std::move(listener);
  }

private:
  void poll();
  void onPolicies(const OpaResult& r);
  void scheduleNext();

  EventLoop& loop_;
  OpaClient& opa_;
  uint32_t poll_ms_;
  std::string revision_{"unknown"};
  bool known_{false};
  std::function<void(const std::string&)> on_change_;
  EventLoop::TimerId timer_{0};
  bool in_flight_{false};
  bool stopped_{true};
  LogRateLimiter failure_log_{10 * 1000000};
};

} // namespace sark
