// Unit tests for sarkd's decision-cache rules: the L2 value format
// (daemon/cache/cache_entry.cc), TTL and expiry computation, the recent
// invalidation patterns (daemon/cache/recent_invalidations.cc) and the
// circuit breaker (daemon/core/circuit_breaker.cc).

#include <check.h>

#include <cstdlib>
#include <string>

#include "cache/cache_entry.h"
#include "cache/recent_invalidations.h"
#include "core/circuit_breaker.h"

using sark::CachedDecision;
using sark::CircuitBreaker;
using sark::Decision;
using sark::RecentInvalidations;

namespace {

constexpr uint64_t kNow = 1800000000000ull; // Unix ms

CachedDecision sampleAllow() {
  CachedDecision c;
  c.allow = true;
  c.reason = "Allowed: analyst can query \"db\" \xc3\xa9";
  c.filtered_params = "{\"query\":\"SELECT 1\",\"n\":[1,2,{\"x\":null}]}";
  c.cache_ttl = 60;
  c.policy_revision = "7f68a6ccae9080c4";
  c.evaluated_at = kNow;
  c.expires_at = kNow + 60000;
  return c;
}

Decision decision(uint8_t kind, uint32_t ttl) {
  Decision d;
  d.decision = kind;
  d.cache_ttl = ttl;
  return d;
}

} // namespace

// ---------------------------------------------------------------- value

START_TEST(test_roundtrip_allow) {
  CachedDecision in = sampleAllow();
  std::string text;
  ck_assert(sark::encodeCachedDecision(in, text));
  CachedDecision out;
  std::string err;
  ck_assert_msg(sark::decodeCachedDecision(text, out, err), "%s", err.c_str());
  ck_assert(out.allow);
  ck_assert_str_eq(out.reason.c_str(), in.reason.c_str());
  ck_assert_str_eq(out.filtered_params.c_str(), in.filtered_params.c_str());
  ck_assert_uint_eq(out.cache_ttl, 60);
  ck_assert_str_eq(out.policy_revision.c_str(), in.policy_revision.c_str());
  ck_assert_uint_eq(out.evaluated_at, in.evaluated_at);
  ck_assert_uint_eq(out.expires_at, in.expires_at);
  Decision d = out.toDecision();
  ck_assert_uint_eq(d.decision, SARK_DECISION_ALLOW);
  ck_assert_str_eq(d.filtered_params.c_str(), in.filtered_params.c_str());
}
END_TEST

START_TEST(test_roundtrip_deny) {
  CachedDecision in;
  in.allow = false;
  in.reason = "DROP requires admin";
  in.filtered_params = "{\"ignored\":1}"; // never stored for a deny
  in.cache_ttl = 0;
  in.policy_revision = "r";
  in.evaluated_at = kNow;
  in.expires_at = kNow + 5000;
  std::string text;
  ck_assert(sark::encodeCachedDecision(in, text));
  ck_assert(text.find("filtered_parameters") == std::string::npos);
  CachedDecision out;
  std::string err;
  ck_assert(sark::decodeCachedDecision(text, out, err));
  ck_assert(!out.allow);
  ck_assert(out.filtered_params.empty());
  ck_assert_uint_eq(out.toDecision().decision, SARK_DECISION_DENY);
}
END_TEST

START_TEST(test_exact_encoding) {
  CachedDecision c;
  c.allow = true;
  c.reason = "ok";
  c.filtered_params = "{\"a\":1}";
  c.cache_ttl = 30;
  c.policy_revision = "rev";
  c.evaluated_at = 1;
  c.expires_at = 2;
  std::string text;
  ck_assert(sark::encodeCachedDecision(c, text));
  ck_assert_str_eq(text.c_str(),
                   "{\"allow\":true,\"reason\":\"ok\",\"filtered_parameters\":{\"a\":1},"
                   "\"cache_ttl\":30,\"policy_revision\":\"rev\",\"evaluated_at\":1,"
                   "\"expires_at\":2}");
}
END_TEST

// An agent-to-agent answer keeps its max_delegation_depth (0 included);
// others have none.
START_TEST(test_roundtrip_delegation_depth) {
  for (int32_t depth : {-1, 0, 3}) {
    CachedDecision in = sampleAllow();
    in.max_delegation_depth = depth;
    std::string text;
    ck_assert(sark::encodeCachedDecision(in, text));
    ck_assert((text.find("max_delegation_depth") != std::string::npos) == (depth >= 0));
    CachedDecision out;
    std::string err;
    ck_assert_msg(sark::decodeCachedDecision(text, out, err), "%s", err.c_str());
    ck_assert_int_eq(out.max_delegation_depth, depth);
    ck_assert_int_eq(out.toDecision().max_delegation_depth, depth);
  }
}
END_TEST

START_TEST(test_encode_refuses_bad_utf8) {
  CachedDecision c = sampleAllow();
  c.reason = "bad \xff";
  std::string text = "prefix";
  ck_assert(!sark::encodeCachedDecision(c, text));
  ck_assert_str_eq(text.c_str(), "prefix");
}
END_TEST

// Each is the valid value below with one thing wrong.
//   {"allow":true,"reason":"r","cache_ttl":1,"policy_revision":"p",
//    "evaluated_at":1,"expires_at":2}
const char* const kBadValues[] = {
    "",
    "null",
    "[]",
    "{",
    "{} trailing",
    R"({"allow":1,"reason":"r","cache_ttl":1,"policy_revision":"p","evaluated_at":1,)"
    R"("expires_at":2})",
    R"({"allow":true,"cache_ttl":1,"policy_revision":"p","evaluated_at":1,"expires_at":2})",
    R"({"allow":true,"reason":"r","cache_ttl":-1,"policy_revision":"p","evaluated_at":1,)"
    R"("expires_at":2})",
    R"({"allow":true,"reason":"r","cache_ttl":1.5,"policy_revision":"p","evaluated_at":1,)"
    R"("expires_at":2})",
    R"({"allow":true,"reason":"r","cache_ttl":1,"evaluated_at":1,"expires_at":2})",
    R"({"allow":true,"reason":"r","cache_ttl":1,"policy_revision":"p","expires_at":2})",
    R"({"allow":true,"reason":"r","cache_ttl":1,"policy_revision":"p","evaluated_at":1,)"
    R"("expires_at":"2"})",
    R"({"allow":true,"reason":"r","filtered_parameters":[1],"cache_ttl":1,)"
    R"("policy_revision":"p","evaluated_at":1,"expires_at":2})",
    R"({"allow":false,"reason":"r","filtered_parameters":{},"cache_ttl":1,)"
    R"("policy_revision":"p","evaluated_at":1,"expires_at":2})",
    "{\"allow\":true,\"reason\":\"\xff\",\"cache_ttl\":1,\"policy_revision\":\"p\","
    "\"evaluated_at\":1,\"expires_at\":2}",
    R"({"allow":true,"reason":"r","cache_ttl":1,"max_delegation_depth":-1,)"
    R"("policy_revision":"p","evaluated_at":1,"expires_at":2})",
    R"({"allow":true,"reason":"r","cache_ttl":1,"max_delegation_depth":"3",)"
    R"("policy_revision":"p","evaluated_at":1,"expires_at":2})",
    R"({"allow":true,"reason":"r","cache_ttl":1,"max_delegation_depth":1001,)"
    R"("policy_revision":"p","evaluated_at":1,"expires_at":2})",
};

START_TEST(test_decode_rejects) {
  CachedDecision out;
  std::string err;
  ck_assert_msg(!sark::decodeCachedDecision(kBadValues[_i], out, err), "accepted: %s",
                kBadValues[_i]);
  ck_assert(!err.empty());
}
END_TEST

START_TEST(test_decode_ignores_unknown_fields) {
  CachedDecision out;
  std::string err;
  ck_assert(sark::decodeCachedDecision(
      "{\"v\":2,\"allow\":false,\"reason\":\"r\",\"cache_ttl\":0,\"policy_revision\":\"p\","
      "\"evaluated_at\":10,\"expires_at\":20}",
      out, err));
  ck_assert_uint_eq(out.expires_at, 20);
}
END_TEST

// ---------------------------------------------------------------- TTL

START_TEST(test_expiry_allow) {
  // cache_ttl is already min(policy, sensitivity)
  ck_assert_uint_eq(sark::cacheExpiry(decision(SARK_DECISION_ALLOW, 60), kNow, 0, 5, 180),
                    kNow + 60000);
  ck_assert_uint_eq(sark::cacheExpiry(decision(SARK_DECISION_ALLOW, 0), kNow, 0, 5, 180), 0);
}
END_TEST

START_TEST(test_expiry_deny_honours_policy_ttl) {
  // the policy's cache_ttl 0 means never, for a denial too
  ck_assert_uint_eq(sark::cacheExpiry(decision(SARK_DECISION_DENY, 0), kNow, 0, 5, 180), 0);
  // a positive one is capped by CACHE_NEGATIVE_TTL and the sensitivity TTL
  Decision d = decision(SARK_DECISION_DENY, 60);
  ck_assert_uint_eq(sark::cacheExpiry(d, kNow, 0, 5, 180), kNow + 5000);
  ck_assert_uint_eq(sark::cacheExpiry(decision(SARK_DECISION_DENY, 3), kNow, 0, 5, 180),
                    kNow + 3000);
  ck_assert_uint_eq(sark::cacheExpiry(d, kNow, 0, 0, 180), 0);     // CACHE_NEGATIVE_TTL=0
  ck_assert_uint_eq(sark::cacheExpiry(d, kNow, 0, 120, 30), kNow + 30000); // sensitivity cap
  ck_assert_uint_eq(sark::cacheExpiry(d, kNow, 0, 5, 0), 0);
}
END_TEST

START_TEST(test_expiry_outage_never) {
  Decision d = Decision::outage("OPA-001", "down", 5);
  d.cache_ttl = 60;
  ck_assert_uint_eq(sark::cacheExpiry(d, kNow, 0, 5, 180), 0);
}
END_TEST

START_TEST(test_expiry_capped_by_token) {
  Decision d = decision(SARK_DECISION_ALLOW, 60);
  ck_assert_uint_eq(sark::cacheExpiry(d, kNow, kNow + 10000, 5, 180), kNow + 10000);
  ck_assert_uint_eq(sark::cacheExpiry(d, kNow, kNow + 600000, 5, 180), kNow + 60000);
  ck_assert_uint_eq(sark::cacheExpiry(d, kNow, kNow, 5, 180), 0);     // expires now
  ck_assert_uint_eq(sark::cacheExpiry(d, kNow, kNow - 1, 5, 180), 0); // already expired
  Decision deny = decision(SARK_DECISION_DENY, 60);
  ck_assert_uint_eq(sark::cacheExpiry(deny, kNow, kNow + 2000, 5, 180), kNow + 2000);
}
END_TEST

START_TEST(test_cap_expiry) {
  ck_assert_uint_eq(sark::capExpiry(kNow + 60000, 0, kNow), kNow + 60000);
  ck_assert_uint_eq(sark::capExpiry(kNow + 60000, kNow + 1000, kNow), kNow + 1000);
  ck_assert_uint_eq(sark::capExpiry(kNow + 60000, kNow + 90000, kNow), kNow + 60000);
  ck_assert_uint_eq(sark::capExpiry(kNow + 60000, kNow - 5, kNow), 0);
  ck_assert_uint_eq(sark::capExpiry(kNow - 1, 0, kNow), 0);
}
END_TEST

// ---------------------------------------------------------------- invalidations

START_TEST(test_recent_matches_issued_after_evaluation) {
  RecentInvalidations r(300000, 256);
  r.record("authz:user_123:*", kNow, kNow);
  ck_assert(r.invalidates("authz:user_123:a:b:c:low:d", kNow - 1, kNow));
  ck_assert(r.invalidates("authz:user_123:a:b:c:low:d", kNow, kNow)); // at: invalid
  ck_assert(!r.invalidates("authz:user_123:a:b:c:low:d", kNow + 1, kNow));
  ck_assert(!r.invalidates("authz:user_1234:a:b:c:low:d", kNow - 1, kNow));
  r.record("authz:*:execute_query:*", kNow + 10, kNow + 10);
  ck_assert(r.invalidates("authz:u9:gateway:tool:invoke:pg:execute_query:low:d", kNow + 5,
                          kNow + 10));
  ck_assert(!r.invalidates("authz:u9:gateway:tool:invoke:pg:list_tables:low:d", kNow + 5,
                           kNow + 10));
}
END_TEST

START_TEST(test_recent_expires_old_entries) {
  RecentInvalidations r(300000, 256);
  r.record("authz:*", kNow, kNow);
  ck_assert_uint_eq(r.size(), 1);
  ck_assert(r.invalidates("authz:x", kNow - 10, kNow + 299999));
  // A decision evaluated before kNow cannot be alive after kNow + max age.
  ck_assert(!r.invalidates("authz:x", kNow - 10, kNow + 300001));
  ck_assert_uint_eq(r.size(), 0);
}
END_TEST

START_TEST(test_recent_same_pattern_keeps_latest) {
  RecentInvalidations r(300000, 256);
  r.record("authz:a:*", kNow, kNow);
  r.record("authz:a:*", kNow + 100, kNow + 100);
  r.record("authz:a:*", kNow + 50, kNow + 100);
  ck_assert_uint_eq(r.size(), 1);
  ck_assert(r.invalidates("authz:a:k", kNow + 99, kNow + 100));
}
END_TEST

START_TEST(test_recent_overflow_raises_floor) {
  RecentInvalidations r(300000, 4);
  for (uint64_t i = 0; i < 4; i++) {
    r.record("authz:u" + std::to_string(i) + ":*", kNow + i * 10, kNow + i * 10);
  }
  ck_assert_uint_eq(r.floor(), 0);
  r.record("authz:u4:*", kNow + 40, kNow + 40); // drops the oldest (u0 @ kNow)
  ck_assert_uint_eq(r.size(), 4);
  ck_assert_uint_eq(r.floor(), kNow);
  // Everything evaluated at or before the floor is stale, whatever the key.
  ck_assert(r.invalidates("authz:zz:k", kNow, kNow + 40));
  ck_assert(!r.invalidates("authz:zz:k", kNow + 1, kNow + 40));
  ck_assert(r.invalidates("authz:u0:k", kNow - 5, kNow + 40));
  // The others still work by pattern.
  ck_assert(r.invalidates("authz:u3:k", kNow + 25, kNow + 40));
  ck_assert(!r.invalidates("authz:u3:k", kNow + 31, kNow + 40));
  // The snapshot for a new module starts with the floor.
  auto snap = r.snapshot(kNow + 40);
  ck_assert_uint_eq(snap.size(), 5);
  ck_assert_str_eq(snap[0].pattern.c_str(), "authz:*");
  ck_assert_uint_eq(snap[0].issued_at, kNow);
  ck_assert_str_eq(snap[1].pattern.c_str(), "authz:u1:*");
  ck_assert_str_eq(snap[4].pattern.c_str(), "authz:u4:*");
  // A pattern older than the floor is already covered.
  r.record("authz:old:*", kNow - 100, kNow + 40);
  ck_assert_uint_eq(r.size(), 4);
}
END_TEST

START_TEST(test_recent_skew_window) {
  // A decision evaluated up to 500 ms after the pattern was issued is
  // stale as well (another host's clock may be ahead).
  RecentInvalidations r(300500, 2, 500);
  r.record("authz:a:*", kNow, kNow);
  ck_assert(r.invalidates("authz:a:k", kNow + 500, kNow + 600));
  ck_assert(!r.invalidates("authz:a:k", kNow + 501, kNow + 600));
  ck_assert(!r.invalidates("authz:b:k", kNow + 100, kNow + 600));
  // ... and so for the floor.
  r.record("authz:b:*", kNow + 10, kNow + 10);
  r.record("authz:c:*", kNow + 20, kNow + 20); // drops a:* -> floor kNow
  ck_assert_uint_eq(r.floor(), kNow);
  ck_assert(r.invalidates("authz:zz:k", kNow + 500, kNow + 600));
  ck_assert(!r.invalidates("authz:zz:k", kNow + 501, kNow + 600));
  // Kept while such a decision can live: max age counts from issue time.
  ck_assert(r.invalidates("authz:b:k", kNow + 400, kNow + 300509));
  ck_assert(!r.invalidates("authz:b:k", kNow + 400, kNow + 300511));
}
END_TEST

START_TEST(test_recent_floor_expires) {
  RecentInvalidations r(1000, 1);
  r.record("authz:a:*", kNow, kNow);
  r.record("authz:b:*", kNow + 1, kNow + 1);
  ck_assert_uint_eq(r.floor(), kNow);
  ck_assert(r.invalidates("authz:q", kNow, kNow + 500));
  ck_assert(!r.invalidates("authz:q", kNow, kNow + 2000));
  ck_assert_uint_eq(r.floor(), 0);
}
END_TEST

// ---------------------------------------------------------------- breaker

START_TEST(test_breaker_opens_after_threshold) {
  CircuitBreaker b(3, 5000, 1);
  uint64_t t = 1000000;
  ck_assert(b.allow(t));
  ck_assert(!b.onFailure(t));
  ck_assert(!b.onFailure(t));
  ck_assert(b.onSuccess() == false); // a success resets the count
  ck_assert(!b.onFailure(t));
  ck_assert(!b.onFailure(t));
  ck_assert(b.onFailure(t)); // third in a row: opens
  ck_assert(b.state() == CircuitBreaker::State::Open);
  ck_assert(!b.allow(t + 4999000));
  ck_assert(!b.wouldAllow(t + 4999000));
  ck_assert(!b.onFailure(t + 1)); // late outcomes while open change nothing
}
END_TEST

START_TEST(test_breaker_half_open_trial) {
  CircuitBreaker b(1, 5000, 1);
  uint64_t t = 1000000;
  ck_assert(b.onFailure(t));
  uint64_t later = t + 5000000;
  ck_assert(b.wouldAllow(later));
  ck_assert(b.allow(later)); // the one trial
  ck_assert(b.state() == CircuitBreaker::State::HalfOpen);
  ck_assert(!b.allow(later)); // no second trial
  ck_assert(b.onFailure(later)); // trial failed: open again
  ck_assert(b.state() == CircuitBreaker::State::Open);
  ck_assert(!b.allow(later + 4999000));
  ck_assert(b.allow(later + 5000000));
  b.onCancel(); // trial never ran: slot back
  ck_assert(b.allow(later + 5000000));
  ck_assert(b.onSuccess()); // closes
  ck_assert(b.state() == CircuitBreaker::State::Closed);
  ck_assert(b.allow(later + 5000001));
}
END_TEST

static Suite* cacheSuite() {
  Suite* s = suite_create("sarkd_cache");
  TCase* value = tcase_create("Value");
  tcase_add_test(value, test_roundtrip_allow);
  tcase_add_test(value, test_roundtrip_deny);
  tcase_add_test(value, test_exact_encoding);
  tcase_add_test(value, test_roundtrip_delegation_depth);
  tcase_add_test(value, test_encode_refuses_bad_utf8);
  tcase_add_loop_test(value, test_decode_rejects, 0,
                      static_cast<int>(sizeof(kBadValues) / sizeof(kBadValues[0])));
  tcase_add_test(value, test_decode_ignores_unknown_fields);
  suite_add_tcase(s, value);

  TCase* ttl = tcase_create("Ttl");
  tcase_add_test(ttl, test_expiry_allow);
  tcase_add_test(ttl, test_expiry_deny_honours_policy_ttl);
  tcase_add_test(ttl, test_expiry_outage_never);
  tcase_add_test(ttl, test_expiry_capped_by_token);
  tcase_add_test(ttl, test_cap_expiry);
  suite_add_tcase(s, ttl);

  TCase* inv = tcase_create("Invalidations");
  tcase_add_test(inv, test_recent_matches_issued_after_evaluation);
  tcase_add_test(inv, test_recent_expires_old_entries);
  tcase_add_test(inv, test_recent_same_pattern_keeps_latest);
  tcase_add_test(inv, test_recent_overflow_raises_floor);
  tcase_add_test(inv, test_recent_skew_window);
  tcase_add_test(inv, test_recent_floor_expires);
  suite_add_tcase(s, inv);

  TCase* cb = tcase_create("Breaker");
  tcase_add_test(cb, test_breaker_opens_after_threshold);
  tcase_add_test(cb, test_breaker_half_open_trial);
  suite_add_tcase(s, cb);
  return s;
}

int main() {
  SRunner* sr = srunner_create(cacheSuite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
