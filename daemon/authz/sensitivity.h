#pragma once

// The sensitivity level of a tool (low, medium, high, critical), as a
// request names it: its names, and the order the per-level settings
// (GATEWAY_CACHE_TTL_<LEVEL>) are kept in.

#include <cstddef>
#include <string_view>

namespace sark {

// Tool sensitivity levels; each has its own decision-cache TTL ceiling.
enum class Sensitivity { Low = 0, Medium = 1, High = 2, Critical = 3 };

inline constexpr size_t kSensitivityCount = 4;

inline const char* sensitivityName(Sensitivity s) {
  switch (s) {
  case Sensitivity::Low:
    return "low";
  case Sensitivity::Medium:
    return "medium";
  case Sensitivity::High:
    return "high";
  case Sensitivity::Critical:
    return "critical";
  }
  return "medium";
}

// Exact, lower-case names only (the module sends them normalised).
inline bool parseSensitivity(std::string_view text, Sensitivity& out) {
  for (size_t i = 0; i < kSensitivityCount; i++) {
    auto s = static_cast<Sensitivity>(i);
    if (text == sensitivityName(s)) {
      out = s;
      return true;
    }
  }
  return false;
}

} // namespace sark
