#include "policy_revision.h"

#include <openssl/evp.h>
#include <rapidjson/document.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "clock.h"
#include "handles.h"

namespace sark {

bool computePolicyRevision(std::string_view body, std::string& revision, std::string& err) {
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseIterativeFlag>(body.data(), body.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    err = "response is not a JSON object";
    return false;
  }
  auto result = doc.FindMember("result");
  if (result == doc.MemberEnd() || !result->value.IsArray()) {
    err = "response has no result array";
    return false;
  }
  std::vector<std::pair<std::string_view, std::string_view>> policies;
  for (const auto& p : result->value.GetArray()) {
    if (!p.IsObject()) {
      err = "policy entry is not an object";
      return false;
    }
    auto id = p.FindMember("id");
    auto raw = p.FindMember("raw");
    if (id == p.MemberEnd() || !id->value.IsString() || raw == p.MemberEnd() ||
        !raw->value.IsString()) {
      err = "policy entry lacks id or raw";
      return false;
    }
    policies.emplace_back(std::string_view(id->value.GetString(), id->value.GetStringLength()),
                          std::string_view(raw->value.GetString(), raw->value.GetStringLength()));
  }
  std::sort(policies.begin(), policies.end());

  EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_len = 0;
  bool ok = ctx && EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) == 1;
  for (const auto& [id, raw] : policies) {
    ok = ok && EVP_DigestUpdate(ctx.get(), id.data(), id.size()) == 1 &&
         EVP_DigestUpdate(ctx.get(), raw.data(), raw.size()) == 1;
  }
  ok = ok && EVP_DigestFinal_ex(ctx.get(), digest, &digest_len) == 1 && digest_len >= 8;
  if (!ok) {
    err = "SHA-256 failed";
    return false;
  }
  static const char kHex[] = "0123456789abcdef";
  revision.clear();
  for (unsigned i = 0; i < 8; i++) {
    revision.push_back(kHex[digest[i] >> 4]);
    revision.push_back(kHex[digest[i] & 0xf]);
  }
  return true;
}

PolicyRevision::PolicyRevision(EventLoop& loop, OpaClient& opa, uint32_t poll_ms)
    : loop_(loop), opa_(opa), poll_ms_(poll_ms) {}

PolicyRevision::~PolicyRevision() { stop(); }

void PolicyRevision::start() {
  stopped_ = false;
  poll();
}

void PolicyRevision::stop() {
  stopped_ = true;
  loop_.cancelTimer(timer_);
  timer_ = 0;
}

void PolicyRevision::poll() {
  timer_ = 0;
  if (stopped_ || in_flight_) {
    return;
  }
  in_flight_ = true;
  opa_.get("/v1/policies", [this](const OpaResult& r) { onPolicies(r); });
}

void PolicyRevision::scheduleNext() {
  if (!stopped_ && timer_ == 0) {
    timer_ = loop_.addTimer(poll_ms_, [this]() { poll(); });
  }
}

void PolicyRevision::onPolicies(const OpaResult& r) {
  in_flight_ = false;
  if (stopped_ || r.aborted) {
    return;
  }
  std::string why;
  std::string revision;
  if (r.curl_code != CURLE_OK) {
    why = r.error_text;
  } else if (r.http_status != 200) {
    why = "HTTP " + std::to_string(r.http_status);
  } else {
    computePolicyRevision(r.body, revision, why);
  }
  if (revision.empty()) {
    // Keep the last known revision: OPA being briefly unreachable does not
    // change the policies it has loaded.
    uint64_t suppressed = 0;
    if (failure_log_.allow(monotonicUs(), suppressed)) {
      LogLine(LogLevel::Warn, "policy revision poll failed")
          .str("opa", r.server)
          .str("error", why)
          .str("revision", revision_)
          .unum("suppressed", suppressed);
    }
  } else if (revision != revision_) {
    LogLine(LogLevel::Info, "policy revision changed")
        .str("from", revision_)
        .str("to", revision)
        .str("opa", r.server);
    revision_ = std::move(revision);
    known_ = true;
    if (on_change_) {
      on_change_(revision_);
    }
  }
  scheduleNext();
}

} // namespace sark
