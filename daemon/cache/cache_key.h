#pragma once

// The L2 key of a decision request, computed by sarkd itself from the
// request it decoded (shared/sark_key.h: the module computes the same key
// for its L1 zone).  A client never supplies a key.

#include <string>
#include <string_view>

#include "proto/decision.h"

namespace sark {

// The text form "authz:{user}:{action}:{server}:{tool}:{sensitivity}:{hex}"
// of the request's key under policy revision `revision`; empty when the
// request cannot be keyed (SHA-256 failed).
std::string cacheKey(const AuthzRequest& req, std::string_view revision);

} // namespace sark
