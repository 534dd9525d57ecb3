#include "cache/cache_key.h"

#include <openssl/evp.h>

#include <vector>

#include "sark_key.h"

namespace sark {
namespace {

sark_key_field_t field(std::string_view s, bool present) {
  sark_key_field_t f;
  f.data = reinterpret_cast<const uint8_t*>(s.data());
  f.len = present ? s.size() : 0;
  f.present = present ? 1 : 0;
  return f;
}

std::vector<sark_key_field_t> fields(const std::vector<std::string_view>& items) {
  std::vector<sark_key_field_t> out;
  out.reserve(items.size());
  for (std::string_view item : items) {
    out.push_back(field(item, true));
  }
  return out;
}

} // namespace

std::string cacheKey(const AuthzRequest& req, std::string_view revision) {
  sark_key_input_t in;
  in.f[SARK_KEY_REVISION] = field(revision, true);
  in.f[SARK_KEY_USER_ID] = field(req.user_id, req.has(SARK_REQ_USER_ID));
  in.f[SARK_KEY_EMAIL] = field(req.user_email, req.has(SARK_REQ_USER_EMAIL));
  in.f[SARK_KEY_ACTION] = field(req.action, req.has(SARK_REQ_ACTION));
  in.f[SARK_KEY_SERVER] = field(req.server_name, req.has(SARK_REQ_SERVER_NAME));
  in.f[SARK_KEY_TOOL] = field(req.tool_name, req.has(SARK_REQ_TOOL_NAME));
  in.f[SARK_KEY_SENSITIVITY] = field(req.sensitivity, req.has(SARK_REQ_SENSITIVITY));
  in.f[SARK_KEY_PARAMETERS] = field(req.parameters, req.has(SARK_REQ_PARAMETERS));
  in.f[SARK_KEY_CONTEXT] = field(req.context, req.has(SARK_REQ_CONTEXT));
  in.f[SARK_KEY_SOURCE_AGENT] = field(req.source_agent, req.has(SARK_REQ_SOURCE_AGENT));
  in.f[SARK_KEY_TARGET_AGENT] = field(req.target_agent, req.has(SARK_REQ_TARGET_AGENT));
  std::vector<sark_key_field_t> roles = fields(req.roles);
  std::vector<sark_key_field_t> teams = fields(req.teams);
  in.roles = roles.data();
  in.nroles = roles.size();
  in.teams = teams.data();
  in.nteams = teams.size();

  std::vector<uint8_t> enc(sark_key_encoded_len(&in));
  size_t len = static_cast<size_t>(sark_key_encode(enc.data(), &in) - enc.data());

  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_len = 0;
  if (EVP_Digest(enc.data(), len, digest, &digest_len, EVP_sha256(), nullptr) != 1 ||
      digest_len != SARK_KEY_DIGEST_LEN) {
    return {};
  }
  std::string text(sark_key_text_len(&in), '\0');
  char* end = sark_key_text(text.data(), &in, digest);
  text.resize(static_cast<size_t>(end - text.data()));
  return text;
}

} // namespace sark
