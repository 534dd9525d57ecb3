#pragma once

// Gateway API keys (docs/design.md, Gateway keys): what the daemon and the
// `sarkd keys` commands share.  A key is "sark_gw_" + 32 lowercase hex
// digits (128 random bits); only its SHA-256 is stored, in table
// gateway_keys, with an id ("gk_" + 12 hex), a name, scopes, an expiry
// and the time of its last use.  Changes are announced on the Redis
// channel sark:keys: {"op":"revoke","key_hash":"<hex>"} or
// {"op":"changed"}.

#include <cstdint>
#include <string>
#include <string_view>

namespace sark {

inline constexpr std::string_view kKeysChannel = "sark:keys";
inline constexpr std::string_view kKeyPrefix = "sark_gw_";

// Migration 4 (audit_schema.h's list).
extern const char* const kGatewayKeysSql;

// A new key and its id, from the kernel's random source; false when it
// cannot be read.
bool newGatewayKey(std::string& key, std::string& id);
// SHA-256 of `key` as 64 lowercase hex digits.
std::string keyHashHex(std::string_view key);
// 32 raw bytes from 64 hex digits; false when `hex` is not that.
bool hexToBytes(std::string_view hex, std::string& out);
// [A-Za-z0-9_-]{1,64}
bool validKeyId(std::string_view id);
// "authorize,audit" -> SARK_KEY_SCOPE_* bits; false on an unknown name.
bool parseScopes(std::string_view list, uint32_t& bits);

} // namespace sark
