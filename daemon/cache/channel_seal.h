#pragma once

// Messages on sark's Redis channels (invalidations and their
// acknowledgements, key revocations, registry changes) are sealed as L2
// values are (l2_seal.h): an HMAC-SHA-256 tag under CACHE_L2_HMAC_KEY,
// bound to the channel.  A writer of Redis without the key can neither
// forge a message nor move one to another channel; a message that does
// not verify is dropped.  Without a key (L2 off) nothing verifies: there
// is no Redis to talk over then.

#include <hiredis/hiredis.h>

#include <string>
#include <string_view>

#include "cache/l2_seal.h"

namespace sark {

class ChannelSeal {
public:
  explicit ChannelSeal(std::string_view key) : seal_(key) {}

  // Appends the sealed `message` for `channel` to `out`; false when the
  // MAC cannot be computed.
  bool seal(std::string_view channel, std::string_view message, std::string& out);

  // The message in `text`, received on `channel`, when it verifies.
  bool open(std::string_view channel, std::string_view text, std::string_view& message);

  // A subscriber's reply: a pub/sub message whose seal verifies (its
  // channel and message set), one whose seal does not (its channel set),
  // or another reply.
  enum class Received { Sealed, Unsealed, Other };
  Received receive(const redisReply* r, std::string_view& channel, std::string_view& message);

private:
  static std::string scope(std::string_view channel);

  L2Seal seal_;
};

} // namespace sark
