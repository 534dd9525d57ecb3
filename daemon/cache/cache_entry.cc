#include "cache/cache_entry.h"

#include <rapidjson/document.h>

#include <algorithm>

#include "core/json_util.h"

namespace sark {
namespace {

// Largest TTL anything may carry (the settings cap TTLs at one day).
constexpr uint64_t kMaxTtlMs = 86400ull * 1000;

} // namespace

Decision CachedDecision::toDecision() const {
  Decision d;
  d.decision = allow ? SARK_DECISION_ALLOW : SARK_DECISION_DENY;
  d.reason = reason;
  if (allow) {
    d.filtered_params = filtered_params;
  }
  d.cache_ttl = cache_ttl;
  d.max_delegation_depth = max_delegation_depth;
  return d;
}

bool encodeCachedDecision(const CachedDecision& c, std::string& out) {
  size_t start = out.size();
  StringOutStream os(out);
  JsonWriter w(os);
  bool ok = w.StartObject();
  ok = ok && w.Key("allow") && w.Bool(c.allow);
  ok = ok && w.Key("reason") &&
       w.String(c.reason.data(), static_cast<rapidjson::SizeType>(c.reason.size()));
  if (c.allow && !c.filtered_params.empty()) {
    ok = ok && w.Key("filtered_parameters") &&
         w.RawValue(c.filtered_params.data(), c.filtered_params.size(), rapidjson::kObjectType);
  }
  ok = ok && w.Key("cache_ttl") && w.Uint(c.cache_ttl);
  if (c.max_delegation_depth >= 0) {
    ok = ok && w.Key("max_delegation_depth") && w.Int(c.max_delegation_depth);
  }
  ok = ok && w.Key("policy_revision") &&
       w.String(c.policy_revision.data(),
                static_cast<rapidjson::SizeType>(c.policy_revision.size()));
  ok = ok && w.Key("evaluated_at") && w.Uint64(c.evaluated_at);
  ok = ok && w.Key("expires_at") && w.Uint64(c.expires_at);
  ok = ok && w.EndObject();
  if (!ok) {
    out.resize(start);
  }
  return ok;
}

bool decodeCachedDecision(std::string_view text, CachedDecision& out, std::string& err) {
  if (checkJsonObject(text) != JsonObjectCheck::Ok) {
    err = "not a JSON object";
    return false;
  }
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseIterativeFlag>(text.data(), text.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    err = "not a JSON object";
    return false;
  }
  auto field = [&doc](const char* name) -> const rapidjson::Value* {
    auto it = doc.FindMember(name);
    return it == doc.MemberEnd() ? nullptr : &it->value;
  };
  const rapidjson::Value* allow = field("allow");
  const rapidjson::Value* reason = field("reason");
  const rapidjson::Value* fp = field("filtered_parameters");
  const rapidjson::Value* ttl = field("cache_ttl");
  const rapidjson::Value* revision = field("policy_revision");
  const rapidjson::Value* evaluated = field("evaluated_at");
  const rapidjson::Value* expires = field("expires_at");
  const rapidjson::Value* depth = field("max_delegation_depth");
  if (allow == nullptr || !allow->IsBool()) {
    err = "allow is not a boolean";
    return false;
  }
  if (reason == nullptr || !reason->IsString()) {
    err = "reason is not a string";
    return false;
  }
  if (ttl == nullptr || !ttl->IsUint()) {
    err = "cache_ttl is not a non-negative integer";
    return false;
  }
  if (revision == nullptr || !revision->IsString()) {
    err = "policy_revision is not a string";
    return false;
  }
  if (evaluated == nullptr || !evaluated->IsUint64() || expires == nullptr ||
      !expires->IsUint64()) {
    err = "evaluated_at or expires_at is not a timestamp";
    return false;
  }
  if (fp != nullptr && (!fp->IsObject() || !allow->GetBool())) {
    err = "filtered_parameters is not an object of an allow";
    return false;
  }
  if (depth != nullptr && (!depth->IsUint() || depth->GetUint() > 1000)) {
    err = "max_delegation_depth is not a small non-negative integer";
    return false;
  }
  CachedDecision c;
  c.allow = allow->GetBool();
  c.max_delegation_depth = depth ? static_cast<int32_t>(depth->GetUint()) : -1;
  c.reason.assign(reason->GetString(), reason->GetStringLength());
  if (fp != nullptr) {
    StringOutStream os(c.filtered_params);
    JsonWriter w(os);
    fp->Accept(w);
  }
  c.cache_ttl = ttl->GetUint();
  c.policy_revision.assign(revision->GetString(), revision->GetStringLength());
  c.evaluated_at = evaluated->GetUint64();
  c.expires_at = expires->GetUint64();
  out = std::move(c);
  return true;
}

uint64_t cacheExpiry(const Decision& d, uint64_t now_ms, uint64_t not_after_ms,
                     uint32_t negative_ttl_s, uint32_t sensitivity_ttl_s) {
  uint64_t ttl_s;
  switch (d.decision) {
  case SARK_DECISION_ALLOW:
    ttl_s = d.cache_ttl;
    break;
  case SARK_DECISION_DENY:
    // the policy's cache_ttl (0: never cached), capped by the negative TTL
    ttl_s = std::min(d.cache_ttl, std::min(negative_ttl_s, sensitivity_ttl_s));
    break;
  default:
    return 0;
  }
  if (ttl_s == 0) {
    return 0;
  }
  uint64_t expires = now_ms + std::min<uint64_t>(ttl_s * 1000, kMaxTtlMs);
  return capExpiry(expires, not_after_ms, now_ms);
}

uint64_t capExpiry(uint64_t expires_at, uint64_t not_after_ms, uint64_t now_ms) {
  if (not_after_ms != 0 && not_after_ms < expires_at) {
    expires_at = not_after_ms;
  }
  return expires_at > now_ms ? expires_at : 0;
}

} // namespace sark
