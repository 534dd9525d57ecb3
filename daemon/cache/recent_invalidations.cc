#include "cache/recent_invalidations.h"

#include <algorithm>

#include "cache/glob.h"

namespace sark {

void RecentInvalidations::expire(uint64_t now_ms) {
  if (now_ms < max_age_ms_) {
    return;
  }
  uint64_t horizon = now_ms - max_age_ms_;
  std::erase_if(entries_, [horizon](const Entry& e) { return e.issued_at < horizon; });
  if (floor_ != 0 && floor_ < horizon) {
    floor_ = 0;
  }
}

void RecentInvalidations::record(std::string_view pattern, uint64_t issued_at, uint64_t now_ms) {
  expire(now_ms);
  if (issued_at <= floor_) {
    return; // already covered
  }
  for (Entry& e : entries_) {
    if (e.pattern == pattern) {
      e.issued_at = std::max(e.issued_at, issued_at);
      return;
    }
  }
  if (capacity_ == 0) {
    floor_ = std::max(floor_, issued_at);
    return;
  }
  if (entries_.size() >= capacity_) {
    auto oldest = std::min_element(entries_.begin(), entries_.end(),
                                   [](const Entry& a, const Entry& b) {
                                     return a.issued_at < b.issued_at;
                                   });
    floor_ = std::max(floor_, oldest->issued_at);
    entries_.erase(oldest);
    // Entries at or below the new floor are redundant now.
    uint64_t f = floor_;
    std::erase_if(entries_, [f](const Entry& e) { return e.issued_at <= f; });
    if (issued_at <= floor_) {
      return;
    }
  }
  entries_.push_back(Entry{std::string(pattern), issued_at});
}

bool RecentInvalidations::invalidates(std::string_view key, uint64_t evaluated_at,
                                      uint64_t now_ms) {
  expire(now_ms);
  if (floor_ != 0 && evaluated_at <= floor_ + skew_ms_) {
    return true;
  }
  for (const Entry& e : entries_) {
    if (e.issued_at + skew_ms_ >= evaluated_at && globMatch(e.pattern, key)) {
      return true;
    }
  }
  return false;
}

std::vector<RecentInvalidations::Entry> RecentInvalidations::snapshot(uint64_t now_ms) {
  expire(now_ms);
  std::vector<Entry> out;
  out.reserve(entries_.size() + 1);
  if (floor_ != 0) {
    out.push_back(Entry{"authz:*", floor_});
  }
  size_t first = out.size();
  out.insert(out.end(), entries_.begin(), entries_.end());
  std::sort(out.begin() + static_cast<std::ptrdiff_t>(first), out.end(),
            [](const Entry& a, const Entry& b) { return a.issued_at < b.issued_at; });
  return out;
}

} // namespace sark
