#pragma once

// Maps the outcome of a POST /v1/data/sark/gateway to a Decision
// (docs/design.md, Policy contract: an undefined or non-object result is a
// deny; a non-boolean allow, an HTTP error, a timeout or an unreachable
// server is an outage).

#include <cstdint>
#include <string>

#include "authz/opa_client.h"
#include "proto/decision.h"

namespace sark {

// `sensitivity_ttl` caps the policy's cache_ttl; `timeout_ms` is quoted
// in the timeout reason.  `revision` receives the revision OPA reported
// with the answer, in the same evaluation (revisionFromProvenance()):
// empty when it reported none.
Decision mapOpaAnswer(const OpaResult& result, uint32_t sensitivity_ttl, uint32_t timeout_ms,
                      std::string& revision);

} // namespace sark
