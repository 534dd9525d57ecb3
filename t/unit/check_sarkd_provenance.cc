// Unit tests for the policy revision read from an OPA answer's provenance
// (daemon/authz/provenance.cc): it names exactly the bundles that made the
// answer, and is empty whenever they cannot be told apart.

#include <check.h>

#include <rapidjson/document.h>

#include <cstdlib>
#include <string>

#include "authz/provenance.h"

namespace {

std::string revisionOf(const std::string& json) {
  rapidjson::Document doc;
  doc.Parse(json.c_str());
  ck_assert(!doc.HasParseError());
  return sark::revisionFromProvenance(doc);
}

// the revision of `json` is `want`
void expectRevision(const std::string& json, const std::string& want) {
  std::string got = revisionOf(json);
  ck_assert_msg(got == want, "%s: got \"%s\", want \"%s\"", json.c_str(), got.c_str(),
                want.c_str());
}

} // namespace

START_TEST(test_single_bundle) {
  expectRevision(R"({"provenance":{"version":"1.22.3","bundles":{"b":{"revision":"3f2a9c"}}},)"
                 R"("result":{"allow":true}})",
                 "3f2a9c");
  expectRevision(R"({"provenance":{"bundles":{"b":{"revision":"v1.2+git@a/b_c:d-e"}}}})",
                 "v1.2+git@a/b_c:d-e");
}
END_TEST

START_TEST(test_no_revision) {
  ck_assert(revisionOf(R"({"result":{"allow":true}})").empty());
  ck_assert(revisionOf(R"({"provenance":{"version":"1.22.3"}})").empty());
  ck_assert(revisionOf(R"({"provenance":{"bundles":{}}})").empty());
  ck_assert(revisionOf(R"({"provenance":{"bundles":{"b":{"revision":""}}}})").empty());
  ck_assert(revisionOf(R"({"provenance":{"bundles":{"b":{}}}})").empty());
  ck_assert(revisionOf(R"({"provenance":{"bundles":{"b":{"revision":7}}}})").empty());
  ck_assert(revisionOf(R"({"provenance":{"bundles":{"a":{"revision":"1"},"b":{"revision":""}}}})")
                .empty());
  ck_assert(revisionOf(R"({"provenance":"x"})").empty());
  ck_assert(revisionOf(R"([1])").empty());
}
END_TEST

// anything else is a digest: 16 hex digits, the same for the same bundles
// in any order, different when any name or revision differs
START_TEST(test_digest) {
  std::string two = revisionOf(
      R"({"provenance":{"bundles":{"a":{"revision":"1"},"b":{"revision":"2"}}}})");
  ck_assert_uint_eq(two.size(), 16);
  ck_assert(two.find_first_not_of("0123456789abcdef") == std::string::npos);
  expectRevision(R"({"provenance":{"bundles":{"b":{"revision":"2"},"a":{"revision":"1"}}}})",
                 two);
  ck_assert(revisionOf(R"({"provenance":{"bundles":{"a":{"revision":"1"},"b":{"revision":"3"}}}})") !=
            two);
  ck_assert(revisionOf(R"({"provenance":{"bundles":{"a1":{"revision":"2"},"b":{"revision":"1"}}}})") !=
            two);
  // a revision with a newline, or too long, is not used as it is
  std::string odd = revisionOf(R"({"provenance":{"bundles":{"b":{"revision":"r\nX"}}}})");
  ck_assert_uint_eq(odd.size(), 16);
  std::string long_rev(65, 'r');
  std::string json = R"({"provenance":{"bundles":{"b":{"revision":")" + long_rev + R"("}}}})";
  ck_assert_uint_eq(revisionOf(json).size(), 16);
  long_rev.pop_back();
  expectRevision(R"({"provenance":{"bundles":{"b":{"revision":")" + long_rev + R"("}}}})",
                 long_rev);
}
END_TEST

static Suite* provenanceSuite() {
  Suite* s = suite_create("sarkd_provenance");
  TCase* tc = tcase_create("Core");
  tcase_add_test(tc, test_single_bundle);
  tcase_add_test(tc, test_no_revision);
  tcase_add_test(tc, test_digest);
  suite_add_tcase(s, tc);
  return s;
}

int main() {
  SRunner* sr = srunner_create(provenanceSuite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
