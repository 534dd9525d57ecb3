#include "proto/decision.h"

#include <utility>

#include "core/json_util.h"
#include "proto/frame_builder.h"

namespace sark {
namespace {

// Longest REASON we send; a policy reason is shown to users, not stored.
constexpr size_t kMaxReason = 4096;

const char* requestFieldName(uint16_t tag) {
  switch (tag) {
  case SARK_REQ_ACTION:
    return "action";
  case SARK_REQ_SERVER_NAME:
    return "server_name";
  case SARK_REQ_TOOL_NAME:
    return "tool_name";
  case SARK_REQ_PARAMETERS:
    return "parameters";
  case SARK_REQ_SENSITIVITY:
    return "sensitivity_level";
  case SARK_REQ_USER_ID:
    return "user.id";
  case SARK_REQ_USER_EMAIL:
    return "user.email";
  case SARK_REQ_CONTEXT:
    return "context";
  case SARK_REQ_GATEWAY_METADATA:
    return "gateway_metadata";
  case SARK_REQ_REQUEST_ID:
    return "request_id";
  case SARK_REQ_CLIENT_IP:
    return "client_ip";
  case SARK_REQ_NOT_AFTER:
    return "not_after";
  case SARK_REQ_SOURCE_AGENT:
    return "source_agent";
  case SARK_REQ_TARGET_AGENT:
    return "target_agent";
  default:
    return "unknown";
  }
}

std::string_view* singleField(AuthzRequest& req, uint16_t tag) {
  switch (tag) {
  case SARK_REQ_ACTION:
    return &req.action;
  case SARK_REQ_SERVER_NAME:
    return &req.server_name;
  case SARK_REQ_TOOL_NAME:
    return &req.tool_name;
  case SARK_REQ_PARAMETERS:
    return &req.parameters;
  case SARK_REQ_SENSITIVITY:
    return &req.sensitivity;
  case SARK_REQ_USER_ID:
    return &req.user_id;
  case SARK_REQ_USER_EMAIL:
    return &req.user_email;
  case SARK_REQ_CONTEXT:
    return &req.context;
  case SARK_REQ_GATEWAY_METADATA:
    return &req.gateway_metadata;
  case SARK_REQ_REQUEST_ID:
    return &req.request_id;
  case SARK_REQ_CLIENT_IP:
    return &req.client_ip;
  case SARK_REQ_NOT_AFTER:
    return &req.not_after;
  case SARK_REQ_SOURCE_AGENT:
    return &req.source_agent;
  case SARK_REQ_TARGET_AGENT:
    return &req.target_agent;
  default:
    return nullptr;
  }
}

// Writes one embedded JSON object field (validated, copied verbatim).
bool writeObjectField(JsonWriter& w, const AuthzRequest& req, uint16_t tag,
                      std::string_view text, std::string& deny_reason) {
  const char* name = requestFieldName(tag);
  w.Key(name);
  if (!req.has(tag)) {
    w.StartObject();
    w.EndObject();
    return true;
  }
  switch (checkJsonObject(text)) {
  case JsonObjectCheck::Ok:
    w.RawValue(text.data(), text.size(), rapidjson::kObjectType);
    return true;
  case JsonObjectCheck::NotObject:
    deny_reason = std::string("invalid request: ") + name + " is not a JSON object";
    return false;
  case JsonObjectCheck::TooDeep:
    deny_reason = std::string("invalid request: ") + name + " is nested too deeply";
    return false;
  case JsonObjectCheck::Invalid:
    break;
  }
  deny_reason = std::string("invalid request: ") + name + " is not valid JSON";
  return false;
}

bool writeString(JsonWriter& w, std::string_view value, const char* name,
                 std::string& deny_reason) {
  const char* data = value.data() != nullptr ? value.data() : "";
  if (!w.String(data, static_cast<rapidjson::SizeType>(value.size()))) {
    deny_reason = std::string("invalid request: ") + name + " is not valid UTF-8";
    return false;
  }
  return true;
}

bool writeOptionalString(JsonWriter& w, const AuthzRequest& req, uint16_t tag,
                         std::string_view value, const char* key, std::string& deny_reason) {
  if (!req.has(tag)) {
    return true;
  }
  w.Key(key);
  return writeString(w, value, requestFieldName(tag), deny_reason);
}

bool writeStringArray(JsonWriter& w, const char* key, const std::vector<std::string_view>& items,
                      const char* name, std::string& deny_reason) {
  w.Key(key);
  w.StartArray();
  for (std::string_view item : items) {
    if (!writeString(w, item, name, deny_reason)) {
      return false;
    }
  }
  w.EndArray();
  return true;
}

} // namespace

bool decodeAuthzRequest(const uint8_t* payload, size_t len, AuthzRequest& req, std::string& err) {
  size_t off = 0;
  sark_tlv_t t;
  int rc;
  while ((rc = sark_tlv_next(payload, len, &off, &t)) == SARK_PROTO_OK) {
    std::string_view value(reinterpret_cast<const char*>(t.value), t.len);
    if (t.tag == SARK_REQ_USER_ROLE) {
      req.roles.push_back(value);
      continue;
    }
    if (t.tag == SARK_REQ_USER_TEAM) {
      req.teams.push_back(value);
      continue;
    }
    std::string_view* field = singleField(req, t.tag);
    if (field == nullptr) {
      continue; // unknown tag: skipped by design
    }
    if (req.has(t.tag) && req.duplicate_tag == 0) {
      req.duplicate_tag = t.tag;
    }
    req.present |= 1u << t.tag;
    *field = value;
  }
  if (rc != SARK_PROTO_END) {
    err = std::string("AUTHZ_REQ payload: ") + sark_proto_strerror(rc);
    return false;
  }
  return true;
}

bool isA2aAction(std::string_view action) { return action.starts_with("a2a:"); }

namespace {

// The agent-to-agent input (docs/design.md, Agent-to-agent decisions):
// {"action", "source_agent", "target_agent", "tool_name", "parameters",
// "context"}, the policy document sark.a2a.
bool buildA2aInput(const AuthzRequest& req, JsonWriter& w, std::string& deny_reason) {
  if (!req.has(SARK_REQ_SOURCE_AGENT) || !req.has(SARK_REQ_TARGET_AGENT)) {
    deny_reason = "invalid request: an a2a action needs source_agent and target_agent";
    return false;
  }
  w.Key("action");
  if (!writeString(w, req.action, "action", deny_reason) ||
      !writeObjectField(w, req, SARK_REQ_SOURCE_AGENT, req.source_agent, deny_reason) ||
      !writeObjectField(w, req, SARK_REQ_TARGET_AGENT, req.target_agent, deny_reason) ||
      !writeOptionalString(w, req, SARK_REQ_TOOL_NAME, req.tool_name, "tool_name", deny_reason) ||
      !writeObjectField(w, req, SARK_REQ_PARAMETERS, req.parameters, deny_reason) ||
      !writeObjectField(w, req, SARK_REQ_CONTEXT, req.context, deny_reason)) {
    return false;
  }
  return true;
}

} // namespace

bool buildOpaInput(const AuthzRequest& req, Sensitivity& sensitivity, std::string& body,
                   std::string& deny_reason) {
  if (req.duplicate_tag != 0) {
    deny_reason =
        std::string("invalid request: duplicate ") + requestFieldName(req.duplicate_tag) + " field";
    return false;
  }
  if (!req.has(SARK_REQ_ACTION) || req.action.empty()) {
    deny_reason = "invalid request: missing action";
    return false;
  }
  // The limits the module applies before it asks (docs/design.md).
  const std::pair<uint16_t, std::string_view> names[] = {
      {SARK_REQ_ACTION, req.action},
      {SARK_REQ_SERVER_NAME, req.server_name},
      {SARK_REQ_TOOL_NAME, req.tool_name}};
  for (const auto& [tag, value] : names) {
    if (value.size() > SARK_PROTO_MAX_NAME) {
      deny_reason = std::string("invalid request: ") + requestFieldName(tag) + " is longer than " +
                    std::to_string(SARK_PROTO_MAX_NAME) + " bytes";
      return false;
    }
  }
  if (req.roles.size() > SARK_PROTO_MAX_ROLES || req.teams.size() > SARK_PROTO_MAX_ROLES) {
    deny_reason = "invalid request: more than " + std::to_string(SARK_PROTO_MAX_ROLES) +
                  " roles or teams";
    return false;
  }
  sensitivity = Sensitivity::Medium;
  if (req.has(SARK_REQ_SENSITIVITY) && !parseSensitivity(req.sensitivity, sensitivity)) {
    deny_reason = "invalid request: sensitivity_level must be low, medium, high or critical";
    return false;
  }

  body.clear();
  body.reserve(256 + req.parameters.size() + req.context.size() + req.gateway_metadata.size() +
               req.source_agent.size() + req.target_agent.size());
  StringOutStream os(body);
  JsonWriter w(os);
  w.StartObject();
  w.Key("input");
  w.StartObject();

  if (isA2aAction(req.action)) {
    if (!buildA2aInput(req, w, deny_reason)) {
      return false;
    }
    w.EndObject();
    w.EndObject();
    return true;
  }
  if (req.has(SARK_REQ_SOURCE_AGENT) || req.has(SARK_REQ_TARGET_AGENT)) {
    deny_reason = "invalid request: source_agent and target_agent go with a2a actions only";
    return false;
  }

  w.Key("action");
  if (!writeString(w, req.action, "action", deny_reason)) {
    return false;
  }
  if (!writeOptionalString(w, req, SARK_REQ_SERVER_NAME, req.server_name, "server_name",
                           deny_reason) ||
      !writeOptionalString(w, req, SARK_REQ_TOOL_NAME, req.tool_name, "tool_name", deny_reason)) {
    return false;
  }
  if (!writeObjectField(w, req, SARK_REQ_PARAMETERS, req.parameters, deny_reason)) {
    return false;
  }
  w.Key("sensitivity_level");
  w.String(sensitivityName(sensitivity));

  w.Key("user");
  w.StartObject();
  if (!writeOptionalString(w, req, SARK_REQ_USER_ID, req.user_id, "id", deny_reason) ||
      !writeOptionalString(w, req, SARK_REQ_USER_EMAIL, req.user_email, "email", deny_reason) ||
      !writeStringArray(w, "roles", req.roles, "user.roles", deny_reason) ||
      !writeStringArray(w, "teams", req.teams, "user.teams", deny_reason)) {
    return false;
  }
  w.EndObject();

  if (!writeObjectField(w, req, SARK_REQ_CONTEXT, req.context, deny_reason) ||
      !writeObjectField(w, req, SARK_REQ_GATEWAY_METADATA, req.gateway_metadata, deny_reason)) {
    return false;
  }
  w.EndObject();
  w.EndObject();
  return true;
}

const char* decisionName(uint8_t decision) {
  switch (decision) {
  case SARK_DECISION_ALLOW:
    return "allow";
  case SARK_DECISION_DENY:
    return "deny";
  default:
    return "outage";
  }
}

std::string_view truncateUtf8(std::string_view s, size_t max) {
  if (s.size() <= max) {
    return s;
  }
  size_t cut = max;
  // Step back over continuation bytes to the start of the cut sequence.
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xc0) == 0x80) {
    cut--;
  }
  return s.substr(0, cut);
}

void encodeAuthzResponse(std::string& out, uint32_t id, const Decision& d, const AnswerMeta& meta) {
  FrameBuilder f(out, SARK_MSG_AUTHZ_RESP, id);
  f.u8(SARK_RESP_DECISION, d.decision);
  f.str(SARK_RESP_REASON, truncateUtf8(d.reason, kMaxReason));
  if (d.decision == SARK_DECISION_ALLOW && !d.filtered_params.empty()) {
    f.str(SARK_RESP_FILTERED_PARAMS, d.filtered_params);
  }
  f.u32(SARK_RESP_CACHE_TTL, d.cache_ttl);
  if (d.max_delegation_depth >= 0 && d.decision != SARK_DECISION_OUTAGE) {
    f.u32(SARK_RESP_MAX_DELEGATION, static_cast<uint32_t>(d.max_delegation_depth));
  }
  f.str(SARK_RESP_POLICY_REVISION, meta.policy_revision);
  f.u64(SARK_RESP_EVALUATED_AT, meta.evaluated_at_ms);
  f.u8(SARK_RESP_CACHE_LAYER, meta.cache_layer);
  if (meta.expires_at_ms != 0 && d.decision != SARK_DECISION_OUTAGE) {
    f.u64(SARK_RESP_EXPIRES_AT, meta.expires_at_ms);
  }
  if (d.decision == SARK_DECISION_OUTAGE) {
    f.str(SARK_RESP_ERROR_CODE, d.error_code);
    f.u32(SARK_RESP_RETRY_AFTER, d.retry_after);
  }
  f.finish();
}

} // namespace sark
