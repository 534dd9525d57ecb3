#pragma once

// A dependency's circuit breaker: `threshold` consecutive failures open
// it; after `open_ms` it is half-open and lets `half_open_max` trial
// operations through; a success then closes it, a failure opens it again.
// Times come from the caller (monotonic microseconds) so it is testable.

#include <cstdint>

namespace sark {

class CircuitBreaker {
public:
  enum class State { Closed, Open, HalfOpen };

  CircuitBreaker(uint32_t threshold, uint64_t open_ms, uint32_t half_open_max)
      : threshold_(threshold), open_us_(open_ms * 1000), half_open_max_(half_open_max) {}

  // May an operation start now?  Takes a trial slot when half-open; the
  // operation must then report success or failure.
  bool allow(uint64_t now_us);
  // Would allow() let one through now (no slot taken)?
  bool wouldAllow(uint64_t now_us) const;

  // Outcome of an operation.  They return the state change they caused
  // (true = the breaker just opened / just closed) for logging.
  bool onSuccess();
  bool onFailure(uint64_t now_us);
  // An allowed operation that never ran (gives its trial slot back).
  void onCancel();

  State state() const { return state_; }
  uint32_t consecutiveFailures() const { return failures_; }
  static const char* name(State s);

private:
  uint32_t threshold_;
  uint64_t open_us_;
  uint32_t half_open_max_;
  State state_{State::Closed};
  uint32_t failures_{0};
  uint32_t trials_{0};
  uint64_t open_until_us_{0};
};

} // namespace sark
