#include "authz/provenance.h"

#include <openssl/evp.h>

#include <algorithm>
#include <string_view>
#include <utility>
#include <vector>

#include "core/handles.h"
#include "sark_proto.h"

namespace sark {
namespace {

bool plainRevision(std::string_view s) {
  if (s.empty() || s.size() > SARK_PROTO_MAX_REVISION) {
    return false;
  }
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '-' || c == '_' || c == ':' || c == '+' || c == '@' || c == '/';
  });
}

std::string digestOf(const std::vector<std::pair<std::string_view, std::string_view>>& bundles) {
  EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_len = 0;
  bool ok = ctx && EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) == 1;
  for (const auto& [name, revision] : bundles) {
    ok = ok && EVP_DigestUpdate(ctx.get(), name.data(), name.size()) == 1 &&
         EVP_DigestUpdate(ctx.get(), "", 1) == 1 &&
         EVP_DigestUpdate(ctx.get(), revision.data(), revision.size()) == 1 &&
         EVP_DigestUpdate(ctx.get(), "", 1) == 1;
  }
  ok = ok && EVP_DigestFinal_ex(ctx.get(), digest, &digest_len) == 1 && digest_len >= 8;
  if (!ok) {
    return {};
  }
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < 8; i++) {
    out.push_back(kHex[digest[i] >> 4]);
    out.push_back(kHex[digest[i] & 0xf]);
  }
  return out;
}

} // namespace

std::string revisionFromProvenance(const rapidjson::Value& answer) {
  if (!answer.IsObject()) {
    return {};
  }
  auto prov = answer.FindMember("provenance");
  if (prov == answer.MemberEnd() || !prov->value.IsObject()) {
    return {};
  }
  auto bundles = prov->value.FindMember("bundles");
  if (bundles == prov->value.MemberEnd() || !bundles->value.IsObject() ||
      bundles->value.MemberCount() == 0) {
    return {};
  }
  std::vector<std::pair<std::string_view, std::string_view>> all;
  for (const auto& b : bundles->value.GetObject()) {
    if (!b.value.IsObject()) {
      return {};
    }
    auto rev = b.value.FindMember("revision");
    if (rev == b.value.MemberEnd() || !rev->value.IsString() ||
        rev->value.GetStringLength() == 0) {
      return {};
    }
    all.emplace_back(std::string_view(b.name.GetString(), b.name.GetStringLength()),
                     std::string_view(rev->value.GetString(), rev->value.GetStringLength()));
  }
  if (all.size() == 1 && plainRevision(all.front().second)) {
    return std::string(all.front().second);
  }
  std::sort(all.begin(), all.end());
  return digestOf(all);
}

} // namespace sark
