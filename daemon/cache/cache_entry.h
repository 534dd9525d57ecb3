#pragma once

// One decision as stored in the L2 cache (Redis), and the rules for how
// long a decision may be cached.
//
// Value (JSON object, one per key):
//   {"allow":bool, "reason":str, "filtered_parameters":obj (allow only),
//    "cache_ttl":int, "max_delegation_depth":int (a2a only),
//    "policy_revision":str, "evaluated_at":ms, "expires_at":ms}
// Times are Unix milliseconds.

#include <cstdint>
#include <string>
#include <string_view>

#include "proto/decision.h"

namespace sark {

struct CachedDecision {
  bool allow{false};
  std::string reason;
  std::string filtered_params; // JSON object text; empty = none
  uint32_t cache_ttl{0};
  int32_t max_delegation_depth{-1}; // -1 = none
  std::string policy_revision;
  uint64_t evaluated_at{0};
  uint64_t expires_at{0};

  Decision toDecision() const;
};

// Appends the JSON value to `out`.  False only when a string is not valid
// UTF-8 (nothing usable was written then).
bool encodeCachedDecision(const CachedDecision& c, std::string& out);

// Parses a stored value.  False (with `err`) for anything that is not
// exactly the shape above: such a value is treated as a miss.
bool decodeCachedDecision(std::string_view text, CachedDecision& out, std::string& err);

// The moment a fresh answer stops being cacheable, in Unix ms, or 0 when
// it must not be cached at all:
//   allow  -> now + d.cache_ttl (already min(policy, sensitivity));
//   deny   -> now + min(d.cache_ttl, negative_ttl, sensitivity_ttl): the
//             policy's 0 means never, as for an allow;
//   outage (and any ttl of 0) -> 0.
// `not_after` (the token's exp, 0 = none) caps the result; a result not
// after `now` is 0.
uint64_t cacheExpiry(const Decision& d, uint64_t now_ms, uint64_t not_after_ms,
                     uint32_t negative_ttl_s, uint32_t sensitivity_ttl_s);

// The expiry to hand to one requester of a cached answer: `expires_at`
// capped by that requester's `not_after` (0 = none); 0 when that is not
// after `now` (the module must not cache then).
uint64_t capExpiry(uint64_t expires_at, uint64_t not_after_ms, uint64_t now_ms);

} // namespace sark
