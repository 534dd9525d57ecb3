#include "cache/l2_seal.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/params.h>

namespace sark {
namespace {

constexpr std::string_view kPrefix = "sark1:";
constexpr size_t kHexTag = 64;
// What the MAC starts with (NUL included), so no other use of the key
// yields the same input.
constexpr char kDomainText[] = "sark-gateway L2 value v1";
constexpr std::string_view kDomain(kDomainText, sizeof(kDomainText));
constexpr char kHexDigits[] = "0123456789abcdef";

} // namespace

L2Seal::L2Seal(std::string_view key) {
  if (key.empty()) {
    return;
  }
  algorithm_.reset(EVP_MAC_fetch(nullptr, "HMAC", nullptr));
  if (!algorithm_) {
    return;
  }
  keyed_.reset(EVP_MAC_CTX_new(algorithm_.get()));
  if (!keyed_) {
    return;
  }
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_end(),
  };
  ready_ = EVP_MAC_init(keyed_.get(), reinterpret_cast<const unsigned char*>(key.data()),
                        key.size(), params) == 1;
}

bool L2Seal::mac(std::string_view redis_key, std::string_view body, uint8_t out[kTagBytes]) {
  if (!ready_) {
    return false;
  }
  uint8_t len[4] = {
      static_cast<uint8_t>(redis_key.size() >> 24), static_cast<uint8_t>(redis_key.size() >> 16),
      static_cast<uint8_t>(redis_key.size() >> 8), static_cast<uint8_t>(redis_key.size())};
  size_t n = 0;
  EVP_MAC_CTX* c = keyed_.get();
  // A null key restarts the MAC with the key given at construction.
  return redis_key.size() <= UINT32_MAX && EVP_MAC_init(c, nullptr, 0, nullptr) == 1 &&
         EVP_MAC_update(c, reinterpret_cast<const unsigned char*>(kDomain.data()),
                        kDomain.size()) == 1 &&
         EVP_MAC_update(c, len, sizeof(len)) == 1 &&
         EVP_MAC_update(c, reinterpret_cast<const unsigned char*>(redis_key.data()),
                        redis_key.size()) == 1 &&
         EVP_MAC_update(c, reinterpret_cast<const unsigned char*>(body.data()), body.size()) ==
             1 &&
         EVP_MAC_final(c, out, &n, kTagBytes) == 1 && n == kTagBytes;
}

bool L2Seal::seal(std::string_view redis_key, std::string_view body, std::string& out) {
  uint8_t tag[kTagBytes];
  if (!mac(redis_key, body, tag)) {
    return false;
  }
  out.reserve(out.size() + kPrefix.size() + kHexTag + 1 + body.size());
  out.append(kPrefix);
  for (uint8_t b : tag) {
    out.push_back(kHexDigits[b >> 4]);
    out.push_back(kHexDigits[b & 0x0f]);
  }
  out.push_back(':');
  out.append(body);
  return true;
}

L2Seal::Open L2Seal::open(std::string_view redis_key, std::string_view value,
                          std::string_view& body) {
  if (value.size() < kPrefix.size() + kHexTag + 1 || !value.starts_with(kPrefix) ||
      value[kPrefix.size() + kHexTag] != ':') {
    return Open::Untagged;
  }
  std::string_view given = value.substr(kPrefix.size(), kHexTag);
  std::string_view rest = value.substr(kPrefix.size() + kHexTag + 1);
  uint8_t tag[kTagBytes];
  if (!mac(redis_key, rest, tag)) {
    return Open::Error;
  }
  char want[kHexTag];
  for (size_t i = 0; i < kTagBytes; i++) {
    want[2 * i] = kHexDigits[tag[i] >> 4];
    want[2 * i + 1] = kHexDigits[tag[i] & 0x0f];
  }
  if (CRYPTO_memcmp(want, given.data(), kHexTag) != 0) {
    return Open::BadTag;
  }
  body = rest;
  return Open::Ok;
}

const char* L2Seal::describe(Open result) {
  switch (result) {
  case Open::Ok:
    return "ok";
  case Open::Untagged:
    return "value carries no tag";
  case Open::BadTag:
    return "tag does not verify (other key, moved from another Redis key, or changed)";
  case Open::Error:
    return "MAC could not be computed";
  }
  return "unknown";
}

} // namespace sark
