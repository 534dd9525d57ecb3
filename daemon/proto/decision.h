#pragma once

// The decision path's data: decoding an AUTHZ_REQ, building the OPA input
// document (docs/design.md, Policy contract), and encoding the AUTHZ_RESP.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "authz/sensitivity.h"
#include "sark_proto.h"

namespace sark {

// Views into the request frame's payload; valid only while it is.
struct AuthzRequest {
  std::string_view action;
  std::string_view server_name;
  std::string_view tool_name;
  std::string_view parameters;
  std::string_view sensitivity;
  std::string_view user_id;
  std::string_view user_email;
  std::string_view context;
  std::string_view gateway_metadata;
  std::string_view request_id;
  std::string_view client_ip;
  std::string_view not_after; // raw 8-byte big-endian Unix ms (the token's exp)
  std::string_view source_agent; // JSON object text (a2a:* actions)
  std::string_view target_agent;
  std::vector<std::string_view> roles;
  std::vector<std::string_view> teams;
  uint32_t present{0};       // bit per single-valued tag seen
  uint16_t duplicate_tag{0}; // first single-valued tag seen twice, 0 = none

  bool has(uint16_t tag) const { return (present & (1u << tag)) != 0; }
};

// Splits the TLV payload.  Returns false only for a malformed payload
// (a field running past the end): a protocol error.  Unknown tags are
// skipped.
bool decodeAuthzRequest(const uint8_t* payload, size_t len, AuthzRequest& req, std::string& err);

// a2a:* actions are agent-to-agent decisions: their input is the a2a
// shape, their policy document sark.a2a.
bool isA2aAction(std::string_view action);

// Validates the request content and writes the OPA request body
// {"input": {...}} into `body`.  On invalid content returns false and
// sets `deny_reason` ("invalid request: ...").  `sensitivity` receives the
// effective level (default medium).
bool buildOpaInput(const AuthzRequest& req, Sensitivity& sensitivity, std::string& body,
                   std::string& deny_reason);

// The answer for one request.
struct Decision {
  uint8_t decision{SARK_DECISION_DENY};
  std::string reason;
  std::string filtered_params; // JSON object text; empty = none
  uint32_t cache_ttl{0};
  std::string error_code; // outage only, e.g. "OPA-001"
  std::string detail;     // outage only: what failed, for the log, never sent
  uint32_t retry_after{0}; // outage only, seconds
  int32_t max_delegation_depth{-1}; // a2a: the policy's; -1 = none

  static Decision deny(std::string reason) {
    Decision d;
    d.reason = std::move(reason);
    return d;
  }
  static Decision outage(const char* code, std::string reason, uint32_t retry_after) {
    Decision d;
    d.decision = SARK_DECISION_OUTAGE;
    d.reason = std::move(reason);
    d.error_code = code;
    d.retry_after = retry_after;
    return d;
  }
};

const char* decisionName(uint8_t decision);

// Where an answer came from and how long the module may cache it.
struct AnswerMeta {
  std::string_view policy_revision;
  uint64_t evaluated_at_ms{0};
  uint8_t cache_layer{SARK_CACHE_MISS};
  uint64_t expires_at_ms{0}; // Unix ms; 0 = the module must not cache it
};

// Appends the AUTHZ_RESP frame for request `id` to `out`.
void encodeAuthzResponse(std::string& out, uint32_t id, const Decision& d, const AnswerMeta& meta);

// Cuts `s` to at most `max` bytes without splitting a UTF-8 sequence.
std::string_view truncateUtf8(std::string_view s, size_t max);

} // namespace sark
