#pragma once

// The invalidation patterns of the last few minutes, so a cached decision
// (L2 value, or a value being evaluated while the pattern arrived) that
// matches one issued at or after the decision's evaluation is treated as
// a miss.  Entries are kept while a decision evaluated before them could
// still be alive (the largest possible TTL); at most `capacity` are kept,
// and dropping one early raises a floor instead: every decision evaluated
// at or before the floor is stale.
//
// Hosts' clocks differ, so "before" has a margin: a decision evaluated up
// to `skew_ms` after a matching pattern's issue time is stale too (sarkd
// passes SARK_INVALIDATION_SKEW_MS, the window the module applies to L1).

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sark {

class RecentInvalidations {
public:
  struct Entry {
    std::string pattern;
    uint64_t issued_at; // Unix ms
  };

  // `max_age_ms`: how long an entry can matter (largest TTL plus skew).
  RecentInvalidations(uint64_t max_age_ms, size_t capacity, uint64_t skew_ms = 0)
      : max_age_ms_(max_age_ms), capacity_(capacity), skew_ms_(skew_ms) {}

  void record(std::string_view pattern, uint64_t issued_at, uint64_t now_ms);

  // True when a decision under `key` evaluated at `evaluated_at` must not
  // be used any more.
  bool invalidates(std::string_view key, uint64_t evaluated_at, uint64_t now_ms);

  // Entries still in force, oldest issue first, for a module that has just
  // connected; a raised floor comes first as ("authz:*", floor).
  std::vector<Entry> snapshot(uint64_t now_ms);

  uint64_t floor() const { return floor_; }
  size_t size() const { return entries_.size(); }

private:
  void expire(uint64_t now_ms);

  uint64_t max_age_ms_;
  size_t capacity_;
  uint64_t skew_ms_;
  uint64_t floor_{0};
  std::vector<Entry> entries_; // unordered; small (capacity)
};

} // namespace sark
