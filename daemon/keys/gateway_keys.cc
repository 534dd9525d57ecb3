#include "keys/gateway_keys.h"

#include <openssl/sha.h>
#include <sys/random.h>

#include "sark_proto.h"

namespace sark {

const char* const kGatewayKeysSql = R"sql(
CREATE TABLE gateway_keys (
    id text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9_-]{1,64}$'),
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    key_hash bytea NOT NULL UNIQUE CHECK (octet_length(key_hash) = 32),
    scopes text[] NOT NULL DEFAULT '{authorize,audit}'
        CHECK (scopes <@ ARRAY['authorize', 'audit']::text[]),
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz,
    revoked_at timestamptz,
    last_used_at timestamptz
);
CREATE UNIQUE INDEX gateway_keys_active_name ON gateway_keys (name)
    WHERE revoked_at IS NULL;
)sql";

namespace {

constexpr char kHex[] = "0123456789abcdef";

std::string toHex(const unsigned char* p, size_t n) {
  std::string out;
  out.reserve(2 * n);
  for (size_t i = 0; i < n; i++) {
    out += kHex[p[i] >> 4];
    out += kHex[p[i] & 0xf];
  }
  return out;
}

int hexDigit(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  return -1;
}

} // namespace

bool newGatewayKey(std::string& key, std::string& id) {
  unsigned char secret[16];
  unsigned char tag[6];
  if (getrandom(secret, sizeof(secret), 0) != static_cast<ssize_t>(sizeof(secret)) ||
      getrandom(tag, sizeof(tag), 0) != static_cast<ssize_t>(sizeof(tag))) {
    return false;
  }
  key = std::string(kKeyPrefix) + toHex(secret, sizeof(secret));
  id = "gk_" + toHex(tag, sizeof(tag));
  return true;
}

std::string keyHashHex(std::string_view key) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(key.data()), key.size(), digest);
  return toHex(digest, sizeof(digest));
}

bool hexToBytes(std::string_view hex, std::string& out) {
  if (hex.size() != 2 * SARK_KEY_HASH_LEN) {
    return false;
  }
  out.clear();
  for (size_t i = 0; i < hex.size(); i += 2) {
    int hi = hexDigit(hex[i]);
    int lo = hexDigit(hex[i + 1]);
    if (hi < 0 || lo < 0) {
      return false;
    }
    out += static_cast<char>(hi << 4 | lo);
  }
  return true;
}

bool validKeyId(std::string_view id) {
  if (id.empty() || id.size() > SARK_KEY_MAX_ID) {
    return false;
  }
  for (char c : id) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
          c == '_' || c == '-')) {
      return false;
    }
  }
  return true;
}

bool parseScopes(std::string_view list, uint32_t& bits) {
  bits = 0;
  while (true) {
    size_t comma = list.find(',');
    std::string_view name = list.substr(0, comma);
    if (name == "authorize") {
      bits |= SARK_KEY_SCOPE_AUTHORIZE;
    } else if (name == "audit") {
      bits |= SARK_KEY_SCOPE_AUDIT;
    } else {
      return false; // an unknown or empty name
    }
    if (comma == std::string_view::npos) {
      return true;
    }
    list = list.substr(comma + 1);
  }
}

} // namespace sark
