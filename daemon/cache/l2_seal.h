#pragma once

// Authenticated L2 values.  Whoever can write to Redis must not be able to
// grant access, so every value sarkd stores carries an HMAC-SHA-256 tag
// made with CACHE_L2_HMAC_KEY (the same key on every sarkd host):
//
//   sark1:<64 lowercase hex: the tag>:<the decision, cache_entry.h>
//
// The tag covers a version string, the Redis key (length first) and the
// decision text, so a value is good only under the key it was stored
// for: a valid value copied to another key does not verify.  A value is
// checked, in constant time, before any of it is parsed.

#include <cstdint>
#include <string>
#include <string_view>

#include "core/handles.h"

namespace sark {

class L2Seal {
public:
  // An empty key makes a seal that can neither seal nor open (L2 off).
  explicit L2Seal(std::string_view key);
  L2Seal(const L2Seal&) = delete;
  L2Seal& operator=(const L2Seal&) = delete;

  enum class Open {
    Ok,        // `body` is the decision text
    Untagged,  // not of the sealed shape: no tag at all
    BadTag,    // a tag that does not verify (other key, other Redis key, changed text)
    Error,     // the MAC could not be computed (out of memory)
  };

  // Appends the sealed value of `body`, stored under `redis_key`, to
  // `out`.  False (out unchanged) when the MAC cannot be computed.
  bool seal(std::string_view redis_key, std::string_view body, std::string& out);

  // Checks `value`, read from `redis_key`.
  Open open(std::string_view redis_key, std::string_view value, std::string_view& body);

  static const char* describe(Open result);

private:
  static constexpr size_t kTagBytes = 32;
  bool mac(std::string_view redis_key, std::string_view body, uint8_t out[kTagBytes]);

  EvpMacPtr algorithm_;
  EvpMacCtxPtr keyed_; // initialised with the key once; re-initialised per use
  bool ready_{false};
};

} // namespace sark
