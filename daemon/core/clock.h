#pragma once

// The two clocks of sarkd's code: monotonic microseconds for timers,
// deadlines and latencies, and wall-clock Unix milliseconds for the times
// other hosts and the module compare (when a decision was evaluated, when
// it expires, when an invalidation was issued).

#include <time.h>

#include <cstdint>

namespace sark {

// Monotonic time in microseconds (for timers and latency).
inline uint64_t monotonicUs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000u + static_cast<uint64_t>(ts.tv_nsec) / 1000u;
}

// Wall-clock Unix time in milliseconds (for EVALUATED_AT and logs).
inline uint64_t wallMs() {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000u + static_cast<uint64_t>(ts.tv_nsec) / 1000000u;
}

} // namespace sark
