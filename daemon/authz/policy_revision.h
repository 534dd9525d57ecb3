#pragma once

// The policy revision: which policies and data OPA decided with.
//
// A decision's revision always comes with the decision itself: sarkd asks
// OPA for its provenance in the same evaluation (`?provenance=true`), and
// the revisions of the bundles OPA loaded say exactly which policies and
// data produced the answer (a bundle owns its roots: nothing else can
// change them).  That revision stamps the answer, its audit row and its
// cache keys (docs/design.md, "Policy revision").
//
// PolicyRevision only follows the revision OPA serves now, so that the
// workers key their L1 with it and cached decisions of another revision
// are not used: it asks OPA for its provenance every OPA_REVISION_POLL_MS,
// and at once when an answer carries a revision it does not know.  When
// OPA reports no bundle revision (policies pushed one by one, or a bundle
// without a revision), no decision can say what made it: the revision is
// empty, nothing is cached, and a warning says why.

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "authz/opa_client.h"
#include "authz/provenance.h"
#include "core/event_loop.h"
#include "core/log.h"

namespace sark {

class PolicyRevision {
public:
  PolicyRevision(EventLoop& loop, OpaClient& opa, uint32_t poll_ms);
  ~PolicyRevision();
  PolicyRevision(const PolicyRevision&) = delete;
  PolicyRevision& operator=(const PolicyRevision&) = delete;

  void start();
  void stop();

  // The revision OPA serves, as last asked; empty when it reports none.
  const std::string& current() const { return revision_; }
  // Whether current() names a revision decisions can be cached under.
  bool known() const { return !revision_.empty(); }
  // Whether OPA has answered at least once (current() means something).
  bool settled() const { return settled_; }
  // An answer showed `seen`: ask OPA again now if it is not current().
  void noticed(std::string_view seen);
  // Called after every change of current(), to "" included.
  void setChangeListener(std::function<void(const std::string&)> listener) {
    on_change_ = std::move(listener);
  }

private:
  void poll();
  void onProbe(const OpaResult& r);
  void scheduleNext(uint32_t delay_ms);

  EventLoop& loop_;
  OpaClient& opa_;
  uint32_t poll_ms_;
  std::string revision_;
  bool settled_{false};
  std::function<void(const std::string&)> on_change_;
  EventLoop::TimerId timer_{0};
  bool in_flight_{false};
  bool again_{false}; // noticed() while a probe was in flight
  bool stopped_{true};
  uint64_t last_probe_us_{0};
  LogRateLimiter failure_log_{10 * 1000000};
  LogRateLimiter none_log_{600ull * 1000000};
};

} // namespace sark
