#include "core/circuit_breaker.h"

namespace sark {

bool CircuitBreaker::wouldAllow(uint64_t now_us) const {
  switch (state_) {
  case State::Closed:
    return true;
  case State::Open:
    return now_us >= open_until_us_ && half_open_max_ > 0;
  case State::HalfOpen:
    return trials_ < half_open_max_;
  }
  return false;
}

bool CircuitBreaker::allow(uint64_t now_us) {
  if (state_ == State::Open && now_us >= open_until_us_) {
    state_ = State::HalfOpen;
    trials_ = 0;
  }
  switch (state_) {
  case State::Closed:
    return true;
  case State::Open:
    return false;
  case State::HalfOpen:
    if (trials_ < half_open_max_) {
      trials_++;
      return true;
    }
    return false;
  }
  return false;
}

bool CircuitBreaker::onSuccess() {
  failures_ = 0;
  if (state_ == State::HalfOpen) {
    state_ = State::Closed;
    trials_ = 0;
    return true;
  }
  return false;
}

bool CircuitBreaker::onFailure(uint64_t now_us) {
  switch (state_) {
  case State::Closed:
    if (++failures_ < threshold_) {
      return false;
    }
    break;
  case State::Open:
    return false; // late outcome of an operation started before it opened
  case State::HalfOpen:
    break;
  }
  state_ = State::Open;
  open_until_us_ = now_us + open_us_;
  trials_ = 0;
  return true;
}

void CircuitBreaker::onCancel() {
  if (state_ == State::HalfOpen && trials_ > 0) {
    trials_--;
  }
}

const char* CircuitBreaker::name(State s) {
  switch (s) {
  case State::Closed:
    return "closed";
  case State::Open:
    return "open";
  case State::HalfOpen:
    return "half_open";
  }
  return "closed";
}

} // namespace sark
