#include "cache/channel_seal.h"

#include "cache/redis_connection.h"

namespace sark {

// No L2 key begins so ("authz:..."): a sealed value never verifies as a
// message, nor a message as a value.
std::string ChannelSeal::scope(std::string_view channel) {
  return "channel " + std::string(channel);
}

bool ChannelSeal::seal(std::string_view channel, std::string_view message, std::string& out) {
  return seal_.seal(scope(channel), message, out);
}

bool ChannelSeal::open(std::string_view channel, std::string_view text,
                       std::string_view& message) {
  return seal_.open(scope(channel), text, message) == L2Seal::Open::Ok;
}

ChannelSeal::Received ChannelSeal::receive(const redisReply* r, std::string_view& channel,
                                           std::string_view& message) {
  if (r == nullptr || r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
      replyText(r->element[0]) != "message") {
    return Received::Other;
  }
  channel = replyText(r->element[1]);
  return open(channel, replyText(r->element[2]), message) ? Received::Sealed
                                                           : Received::Unsealed;
}

} // namespace sark
