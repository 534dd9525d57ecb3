// Unit tests for the gateway key helpers (daemon/keys/gateway_keys.cc):
// new keys have the documented shape and differ, hashes are SHA-256,
// ids, scopes and hex are checked strictly.

#include "keys/gateway_keys.h"

#include <check.h>

#include <cstdlib>
#include <string>

#include "sark_proto.h"

START_TEST(test_new_key_shape) {
  std::string k1, id1, k2, id2;
  ck_assert(sark::newGatewayKey(k1, id1));
  ck_assert(sark::newGatewayKey(k2, id2));
  ck_assert_uint_eq(k1.size(), 8 + 32);
  ck_assert(k1.starts_with("sark_gw_"));
  ck_assert(k1.find_first_not_of("0123456789abcdef", 8) == std::string::npos);
  ck_assert_uint_eq(id1.size(), 3 + 12);
  ck_assert(id1.starts_with("gk_"));
  ck_assert(sark::validKeyId(id1));
  ck_assert(k1 != k2);
  ck_assert(id1 != id2);
}
END_TEST

START_TEST(test_hash) {
  // FIPS 180-2's "abc"
  std::string hash = sark::keyHashHex("abc");
  ck_assert_str_eq(hash.c_str(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  std::string raw;
  ck_assert(sark::hexToBytes(sark::keyHashHex("abc"), raw));
  ck_assert_uint_eq(raw.size(), SARK_KEY_HASH_LEN);
  ck_assert_uint_eq(static_cast<unsigned char>(raw[0]), 0xba);
  ck_assert(!sark::hexToBytes("abc", raw));
  ck_assert(!sark::hexToBytes(std::string(64, 'A'), raw)); // upper case is not ours
  ck_assert(!sark::hexToBytes(std::string(63, 'a') + "g", raw));
}
END_TEST

START_TEST(test_ids) {
  ck_assert(sark::validKeyId("gk_0123abcd-X"));
  ck_assert(!sark::validKeyId(""));
  ck_assert(!sark::validKeyId(std::string(SARK_KEY_MAX_ID + 1, 'a')));
  ck_assert(sark::validKeyId(std::string(SARK_KEY_MAX_ID, 'a')));
  ck_assert(!sark::validKeyId("gk'); DROP TABLE x; --"));
  ck_assert(!sark::validKeyId("gk 1"));
}
END_TEST

START_TEST(test_scopes) {
  uint32_t bits = 0;
  ck_assert(sark::parseScopes("authorize,audit", bits));
  ck_assert_uint_eq(bits, SARK_KEY_SCOPE_AUTHORIZE | SARK_KEY_SCOPE_AUDIT);
  ck_assert(sark::parseScopes("audit", bits));
  ck_assert_uint_eq(bits, SARK_KEY_SCOPE_AUDIT);
  ck_assert(!sark::parseScopes("", bits));
  ck_assert(!sark::parseScopes("admin", bits));
  ck_assert(!sark::parseScopes("audit,", bits));
  ck_assert(!sark::parseScopes("audit,,authorize", bits));
}
END_TEST

static Suite* keysSuite() {
  Suite* s = suite_create("sarkd_keys");
  TCase* tc = tcase_create("Keys");
  tcase_add_test(tc, test_new_key_shape);
  tcase_add_test(tc, test_hash);
  tcase_add_test(tc, test_ids);
  tcase_add_test(tc, test_scopes);
  suite_add_tcase(s, tc);
  return s;
}

int main() {
  SRunner* sr = srunner_create(keysSuite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
