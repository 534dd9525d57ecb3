#include "policy_revision.h"

#include <openssl/evp.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "clock.h"
#include "handles.h"
#include "sark_proto.h"

namespace sark {
namespace {

// An undefined document: OPA answers it with its provenance and nothing
// to evaluate.
constexpr const char* kProbePath = "/v1/data/sark_revision_probe?provenance=true";
// noticed() asks again at most this often.
constexpr uint64_t kMinProbeGapUs = 100 * 1000;

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

void PolicyRevision::noticed(std::string_view seen) {
  if (stopped_ || seen == revision_) {
    return;
  }
  if (in_flight_) {
    again_ = true;
    return;
  }
  uint64_t since = monotonicUs() - last_probe_us_;
  if (since >= kMinProbeGapUs) {
    loop_.cancelTimer(timer_);
    poll();
  } else {
    scheduleNext(static_cast<uint32_t>((kMinProbeGapUs - since) / 1000) + 1);
  }
}

void PolicyRevision::poll() {
  timer_ = 0;
  if (stopped_ || in_flight_) {
    return;
  }
  in_flight_ = true;
  again_ = false;
  last_probe_us_ = monotonicUs();
  opa_.get(kProbePath, [this](const OpaResult& r) { onProbe(r); });
}

void PolicyRevision::scheduleNext(uint32_t delay_ms) {
  if (stopped_) {
    return;
  }
  loop_.cancelTimer(timer_);
  timer_ = loop_.addTimer(delay_ms, [this]() { poll(); });
}

void PolicyRevision::onProbe(const OpaResult& r) {
  in_flight_ = false;
  if (stopped_ || r.aborted) {
    return;
  }
  std::string why;
  rapidjson::Document doc;
  if (r.curl_code != CURLE_OK) {
    why = r.error_text;
  } else if (r.http_status != 200) {
    why = "HTTP " + std::to_string(r.http_status);
  } else {
    doc.Parse<rapidjson::kParseIterativeFlag>(r.body.data(), r.body.size());
    if (doc.HasParseError() || !doc.IsObject()) {
      why = "response is not a JSON object";
    }
  }
  if (!why.empty()) {
    // OPA being briefly unreachable does not change what it has loaded.
    uint64_t suppressed = 0;
    if (failure_log_.allow(monotonicUs(), suppressed)) {
      LogLine(LogLevel::Warn, "policy revision poll failed")
          .str("opa", r.server)
          .str("error", why)
          .str("revision", revision_)
          .unum("suppressed", suppressed);
    }
    scheduleNext(poll_ms_);
    return;
  }
  std::string revision = revisionFromProvenance(doc);
  if (revision.empty()) {
    uint64_t suppressed = 0;
    if (none_log_.allow(monotonicUs(), suppressed)) {
      LogLine(LogLevel::Warn, "OPA reports no bundle revision: decisions are not cached")
          .str("opa", r.server)
          .str("hint", "load the policies and data as a bundle with a revision "
                       "(opa build --revision, opa run --bundle)");
    }
  }
  bool first = !settled_;
  settled_ = true;
  if (revision != revision_ || first) {
    LogLine(LogLevel::Info, "policy revision changed")
        .str("from", revision_)
        .str("to", revision)
        .str("opa", r.server);
    revision_ = std::move(revision);
    if (on_change_) {
      on_change_(revision_);
    }
  }
  scheduleNext(again_ ? 0 : poll_ms_);
}

} // namespace sark
