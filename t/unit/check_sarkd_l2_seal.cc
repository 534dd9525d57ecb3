// Unit tests for sealed L2 values (daemon/cache/l2_seal.cc): a value verifies
// only under the key it was sealed with and the Redis key it was stored
// for, and only unchanged; and for sealed channel messages
// (daemon/cache/channel_seal.cc): only on their channel.

// Before <check.h>: its fail() macro clashes with <ios>, which the
// OpenSSL handles pull in through <memory>.
#include "cache/channel_seal.h"
#include "cache/l2_seal.h"

#include <check.h>

#include <cctype>
#include <cstdlib>
#include <string>
#include <string_view>

using sark::ChannelSeal;
using sark::L2Seal;

namespace {

const std::string kKey = "0123456789abcdef0123456789abcdef";
const std::string kOtherKey = "0123456789abcdef0123456789abcdeF";
const std::string kRedisKey = "authz:user_1:gateway:tool:invoke:postgres-mcp:execute_query:medium:"
                              "9f86d081884c7d65";
const std::string kBody = "{\"allow\":false,\"reason\":\"Denied\",\"cache_ttl\":0,"
                          "\"policy_revision\":\"3f2a\",\"evaluated_at\":1,\"expires_at\":2}";

std::string sealed(L2Seal& s, const std::string& redis_key, const std::string& body) {
  std::string out;
  ck_assert(s.seal(redis_key, body, out));
  return out;
}

L2Seal::Open openOf(L2Seal& s, const std::string& redis_key, const std::string& value,
                    std::string* body_out = nullptr) {
  std::string_view body = "untouched";
  L2Seal::Open r = s.open(redis_key, value, body);
  if (body_out != nullptr) {
    *body_out = std::string(body);
  }
  if (r != L2Seal::Open::Ok) {
    ck_assert_msg(body == "untouched", "body set on failure");
  }
  return r;
}

} // namespace

START_TEST(test_round_trip) {
  L2Seal s(kKey);
  std::string v = sealed(s, kRedisKey, kBody);
  ck_assert_msg(v.rfind("sark1:", 0) == 0, "%s", v.c_str());
  ck_assert_uint_eq(v.size(), 6 + 64 + 1 + kBody.size());
  ck_assert_int_eq(v[6 + 64], ':');
  for (size_t i = 6; i < 6 + 64; i++) {
    ck_assert_msg((v[i] >= '0' && v[i] <= '9') || (v[i] >= 'a' && v[i] <= 'f'), "tag not hex");
  }
  ck_assert(v.substr(6 + 64 + 1) == kBody);
  std::string body;
  ck_assert(openOf(s, kRedisKey, v, &body) == L2Seal::Open::Ok);
  ck_assert(body == kBody);
  // Deterministic, and another instance with the same key agrees.
  L2Seal again(kKey);
  ck_assert(sealed(again, kRedisKey, kBody) == v);
  ck_assert(openOf(again, kRedisKey, v) == L2Seal::Open::Ok);
  // The seal appends.
  std::string out = "x";
  ck_assert(s.seal(kRedisKey, kBody, out));
  ck_assert(out == "x" + v);
  // An empty body is sealed like any other.
  ck_assert(openOf(s, kRedisKey, sealed(s, kRedisKey, "")) == L2Seal::Open::Ok);
}
END_TEST

START_TEST(test_tampered_body) {
  L2Seal s(kKey);
  std::string v = sealed(s, kRedisKey, kBody);
  std::string allow = v;
  size_t at = allow.find("\"allow\":false");
  ck_assert(at != std::string::npos);
  allow.replace(at, 13, "\"allow\":true");
  ck_assert(openOf(s, kRedisKey, allow) == L2Seal::Open::BadTag);
  // Any single bit of the body, the separator or the tag.
  for (size_t i = 6; i < v.size(); i++) {
    std::string t = v;
    t[i] = static_cast<char>(t[i] ^ 0x01);
    L2Seal::Open r = openOf(s, kRedisKey, t);
    ck_assert_msg(r != L2Seal::Open::Ok, "byte %zu flipped still verifies", i);
  }
  // Appended or cut bytes.
  ck_assert(openOf(s, kRedisKey, v + " ") == L2Seal::Open::BadTag);
  ck_assert(openOf(s, kRedisKey, v.substr(0, v.size() - 1)) == L2Seal::Open::BadTag);
  // The tag in upper case is not the tag.
  std::string upper = v;
  for (size_t i = 6; i < 6 + 64; i++) {
    upper[i] = static_cast<char>(toupper(static_cast<unsigned char>(upper[i])));
  }
  if (upper != v) {
    ck_assert(openOf(s, kRedisKey, upper) == L2Seal::Open::BadTag);
  }
}
END_TEST

START_TEST(test_moved_to_another_key) {
  L2Seal s(kKey);
  std::string v = sealed(s, kRedisKey, kBody);
  ck_assert(openOf(s, kRedisKey + "0", v) == L2Seal::Open::BadTag);
  ck_assert(openOf(s, "authz:user_2:" + kRedisKey.substr(13), v) == L2Seal::Open::BadTag);
  ck_assert(openOf(s, "", v) == L2Seal::Open::BadTag);
  // Where the Redis key ends and the body starts is part of what is signed.
  std::string a = sealed(s, "authz:a", "bc");
  ck_assert(openOf(s, "authz:ab", "sark1:" + a.substr(6, 64) + ":c") == L2Seal::Open::BadTag);
}
END_TEST

START_TEST(test_missing_tag) {
  L2Seal s(kKey);
  ck_assert(openOf(s, kRedisKey, kBody) == L2Seal::Open::Untagged); // a plain decision
  ck_assert(openOf(s, kRedisKey, "") == L2Seal::Open::Untagged);
  ck_assert(openOf(s, kRedisKey, "sark1:") == L2Seal::Open::Untagged);
  ck_assert(openOf(s, kRedisKey, "sark1:" + std::string(64, '0')) == L2Seal::Open::Untagged);
  ck_assert(openOf(s, kRedisKey, "sark1:" + std::string(63, '0') + ":" + kBody) ==
            L2Seal::Open::Untagged);
  ck_assert(openOf(s, kRedisKey, "sark2:" + std::string(64, '0') + ":" + kBody) ==
            L2Seal::Open::Untagged);
  // The right shape with a made-up tag.
  ck_assert(openOf(s, kRedisKey, "sark1:" + std::string(64, '0') + ":" + kBody) ==
            L2Seal::Open::BadTag);
  ck_assert(openOf(s, kRedisKey, "sark1:" + std::string(64, 'z') + ":" + kBody) ==
            L2Seal::Open::BadTag);
}
END_TEST

START_TEST(test_wrong_key) {
  L2Seal mine(kKey);
  L2Seal theirs(kOtherKey);
  std::string v = sealed(theirs, kRedisKey, kBody);
  ck_assert(openOf(mine, kRedisKey, v) == L2Seal::Open::BadTag);
  ck_assert(openOf(theirs, kRedisKey, v) == L2Seal::Open::Ok);
  ck_assert(sealed(mine, kRedisKey, kBody) != v);
}
END_TEST

START_TEST(test_no_key) {
  L2Seal none("");
  std::string out = "kept";
  ck_assert(!none.seal(kRedisKey, kBody, out));
  ck_assert(out == "kept");
  L2Seal s(kKey);
  std::string_view body;
  ck_assert(none.open(kRedisKey, sealed(s, kRedisKey, kBody), body) == L2Seal::Open::Error);
  ck_assert_str_ne(L2Seal::describe(L2Seal::Open::BadTag), "");
}
END_TEST

START_TEST(test_channel_message) {
  ChannelSeal c(kKey);
  std::string text;
  ck_assert(c.seal("sark:keys", "revoke:00", text));
  std::string_view message;
  ck_assert(c.open("sark:keys", text, message));
  ck_assert(message == "revoke:00");
  // another channel, another key, a changed byte, no seal, and an L2 value
  // stored under a key named like the channel: none verifies
  ck_assert(!c.open("sark:invalidate", text, message));
  ChannelSeal other(kOtherKey);
  ck_assert(!other.open("sark:keys", text, message));
  std::string changed = text;
  changed.back() = '1';
  ck_assert(!c.open("sark:keys", changed, message));
  ck_assert(!c.open("sark:keys", "revoke:00", message));
  L2Seal s(kKey);
  ck_assert(!c.open("sark:keys", sealed(s, "sark:keys", "revoke:00"), message));
  ChannelSeal none("");
  ck_assert(!none.seal("sark:keys", "x", text));
}
END_TEST

static Suite* sealSuite() {
  Suite* s = suite_create("sarkd_l2_seal");
  TCase* tc = tcase_create("Seal");
  tcase_add_test(tc, test_round_trip);
  tcase_add_test(tc, test_tampered_body);
  tcase_add_test(tc, test_moved_to_another_key);
  tcase_add_test(tc, test_missing_tag);
  tcase_add_test(tc, test_wrong_key);
  tcase_add_test(tc, test_no_key);
  tcase_add_test(tc, test_channel_message);
  suite_add_tcase(s, tc);
  return s;
}

int main() {
  SRunner* sr = srunner_create(sealSuite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
