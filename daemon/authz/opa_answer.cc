#include "authz/opa_answer.h"

#include <rapidjson/document.h>

#include <algorithm>
#include <string>

#include "authz/provenance.h"
#include "core/json_util.h"

namespace sark {
namespace {

constexpr uint32_t kRetryTimeout = 1;
constexpr uint32_t kRetryUnreachable = 5;
constexpr uint32_t kRetryOther = 2;
constexpr uint32_t kDefaultAllowTtl = 60;
constexpr size_t kMaxOpaErrorText = 200;
// Room left in a frame for the other answer fields.
constexpr size_t kMaxFilteredParams = SARK_PROTO_MAX_PAYLOAD - 64 * 1024;
// The largest max_delegation_depth passed on (a policy's is a handful).
constexpr uint32_t kMaxDelegationDepth = 1000;

using Document = rapidjson::Document;
using Value = rapidjson::Value;

bool parseJson(const std::string& body, Document& doc) {
  doc.Parse<rapidjson::kParseIterativeFlag>(body.data(), body.size());
  return !doc.HasParseError();
}

// "policy evaluation failed" for the client; the log gets
// "HTTP <code>[: <opa code>: <opa message>]", which may name policy files.
Decision httpFailure(const OpaResult& r) {
  std::string reason = "HTTP " + std::to_string(r.http_status);
  Document doc;
  if (parseJson(r.body, doc) && doc.IsObject()) {
    std::string detail;
    auto code = doc.FindMember("code");
    if (code != doc.MemberEnd() && code->value.IsString()) {
      detail.assign(code->value.GetString(), code->value.GetStringLength());
    }
    auto message = doc.FindMember("message");
    if (message != doc.MemberEnd() && message->value.IsString()) {
      if (!detail.empty()) {
        detail += ": ";
      }
      detail.append(message->value.GetString(), message->value.GetStringLength());
    }
    // Evaluation errors carry the specific cause in errors[0].
    auto errors = doc.FindMember("errors");
    if (errors != doc.MemberEnd() && errors->value.IsArray() && !errors->value.Empty() &&
        errors->value[0].IsObject()) {
      const Value& first = errors->value[0];
      for (const char* field : {"code", "message"}) {
        auto it = first.FindMember(field);
        if (it != first.MemberEnd() && it->value.IsString()) {
          detail += detail.empty() ? "" : ": ";
          detail.append(it->value.GetString(), it->value.GetStringLength());
        }
      }
    }
    if (!detail.empty()) {
      reason += ": ";
      reason += truncateUtf8(detail, kMaxOpaErrorText);
    }
  } else if (r.http_status == 200) {
    reason += ": response is not a JSON object";
  }
  Decision d = Decision::outage("OPA-002", "policy evaluation failed", kRetryOther);
  d.detail = std::move(reason);
  return d;
}

uint32_t policyTtl(const Value& result, bool allow) {
  auto it = result.FindMember("cache_ttl");
  if (it == result.MemberEnd()) {
    return allow ? kDefaultAllowTtl : 0;
  }
  // Anything but a non-negative integer means "do not cache".
  if (!it->value.IsUint64()) {
    return 0;
  }
  return static_cast<uint32_t>(std::min<uint64_t>(it->value.GetUint64(), UINT32_MAX));
}

} // namespace

Decision mapOpaAnswer(const OpaResult& r, uint32_t sensitivity_ttl, uint32_t timeout_ms,
                      std::string& revision) {
  revision.clear();
  if (r.aborted) {
    return Decision::outage("GW-503", "sarkd shutting down", kRetryTimeout);
  }
  if (r.curl_code == CURLE_OPERATION_TIMEDOUT) {
    return Decision::outage(
        "OPA-003", "policy evaluation timed out after " + std::to_string(timeout_ms) + " ms",
        kRetryTimeout);
  }
  if (r.too_large) {
    return Decision::outage("OPA-002", "policy evaluation failed: response too large",
                            kRetryOther);
  }
  if (r.curl_code != CURLE_OK) {
    Decision d = Decision::outage("OPA-001", "policy engine unreachable", kRetryUnreachable);
    d.detail = r.error_text;
    return d;
  }
  if (r.http_status != 200) {
    return httpFailure(r);
  }

  Document doc;
  if (!parseJson(r.body, doc) || !doc.IsObject()) {
    return httpFailure(r);
  }
  revision = revisionFromProvenance(doc);
  auto result_it = doc.FindMember("result");
  if (result_it == doc.MemberEnd()) {
    return Decision::deny("Denied: policy returned no decision (undefined)");
  }
  const Value& result = result_it->value;
  if (!result.IsObject()) {
    return Decision::deny("Denied: policy result is not an object");
  }
  auto allow_it = result.FindMember("allow");
  if (allow_it == result.MemberEnd() || !allow_it->value.IsBool()) {
    return Decision::outage("OPA-002", "policy evaluation error: allow is not a boolean",
                            kRetryOther);
  }
  bool allow = allow_it->value.GetBool();

  Decision d;
  d.decision = allow ? SARK_DECISION_ALLOW : SARK_DECISION_DENY;
  auto reason_it = result.FindMember("reason");
  if (reason_it != result.MemberEnd() && reason_it->value.IsString()) {
    d.reason.assign(reason_it->value.GetString(), reason_it->value.GetStringLength());
  } else {
    d.reason = "Policy evaluation completed";
  }
  d.cache_ttl = std::min(policyTtl(result, allow), sensitivity_ttl);

  // sark.a2a's; anything but a small non-negative integer is left out
  auto depth = result.FindMember("max_delegation_depth");
  if (depth != result.MemberEnd() && depth->value.IsUint() &&
      depth->value.GetUint() <= kMaxDelegationDepth) {
    d.max_delegation_depth = static_cast<int32_t>(depth->value.GetUint());
  }

  if (allow) {
    auto fp = result.FindMember("filtered_parameters");
    if (fp != result.MemberEnd() && fp->value.IsObject()) {
      StringOutStream os(d.filtered_params);
      JsonWriter w(os);
      fp->value.Accept(w);
      if (d.filtered_params.size() > kMaxFilteredParams) {
        return Decision::outage("OPA-002",
                                "policy evaluation error: filtered_parameters too large",
                                kRetryOther);
      }
    }
  }
  return d;
}

} // namespace sark
