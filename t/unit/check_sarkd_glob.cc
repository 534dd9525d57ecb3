// Unit tests for sarkd's glob matcher (daemon/cache/glob.cc): Redis KEYS/SCAN
// MATCH semantics, which the invalidation patterns rely on.

#include <check.h>

#include <cstdlib>
#include <string>
#include <string_view>

#include "cache/glob.h"

namespace {

struct Vector {
  const char* pattern;
  const char* subject;
  bool match;
};

// Expected results were checked against redis-server 7.0 (KEYS).
const Vector kVectors[] = {
    // SARK's documented patterns
    {"authz:*", "authz:u1:gateway:tool:invoke:pg:execute_query:medium:ab12", true},
    {"authz:*", "authz:", true},
    {"authz:*", "authx:u1", false},
    {"authz:user_123:*", "authz:user_123:gateway:tool:invoke:pg:q:low:d", true},
    {"authz:user_123:*", "authz:user_1234:gateway:tool:invoke:pg:q:low:d", false},
    {"authz:user_123:*", "authz:user_12:x", false},
    {"authz:*:execute_query:*", "authz:u1:gateway:tool:invoke:postgres-mcp:execute_query:medium:d",
     true},
    {"authz:*:execute_query:*", "authz:u1:gateway:tool:invoke:postgres-mcp:list_tables:medium:d",
     false},
    {"authz:*:execute_query:*", "authz:execute_query:", false},
    {"authz:*:execute_query:*", "authz::execute_query:", true},
    // literals, ? and *
    {"", "", true},
    {"", "a", false},
    {"a", "", false},
    {"abc", "abc", true},
    {"abc", "abd", false},
    {"a?c", "abc", true},
    {"a?c", "ac", false},
    {"*", "", true},
    {"**", "", false}, // Redis: only "" and a lone "*" match an empty key
    {"a*", "", false},
    {"**", "x", true},
    {"a*", "a", true},
    {"*a", "ba", true},
    {"*a", "ab", false},
    {"a*b*c", "axxbyyc", true},
    {"a*b*c", "axxbyy", false},
    {"*a*a*a*", "aaa", true},
    {"*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaa", false},
    {"?*", "", false},
    {"*?", "x", true},
    // sets
    {"[abc]", "b", true},
    {"[abc]", "d", false},
    {"[^abc]", "d", true},
    {"[^abc]", "a", false},
    {"[a-c]x", "bx", true},
    {"[a-c]x", "dx", false},
    {"[c-a]", "b", true},       // reversed range
    {"[]", "a", false},         // empty set never matches
    {"[]a]", "a", false},       // ']' closes at once: empty set, then "a]"
    {"[]a]", "]", false},
    {"[\\]]", "]", true},       // escaped ']' inside a set
    {"[a-]", "-", false},       // "a-]" is a range a..] (93..97); unclosed
    {"[a-]", "^", true},
    {"[abc", "b", true},        // unclosed set ends with the pattern
    {"[abc", "bc", false},
    {"[", "[", false},
    {"[^", "x", true},
    {"x[0-9]y", "x5y", true},
    {"x[0-9]y", "xay", false},
    {"*[0-9]", "abc7", true},
    // escapes
    {"\\*", "*", true},
    {"\\*", "a", false},
    {"a\\?c", "a?c", true},
    {"a\\?c", "abc", false},
    {"\\[x]", "[x]", true},
    {"a\\", "a\\", true}, // trailing backslash is literal
    {"a\\", "a", false},
    {"\\\\", "\\", true},
    // bytes
    {"caf\xc3\xa9:*", "caf\xc3\xa9:1", true},
    {"?", "\xc3\xa9", false}, // ? is one byte, not one character
    {"??", "\xc3\xa9", true},
};

} // namespace

START_TEST(test_vectors) {
  const Vector& v = kVectors[_i];
  bool got = sark::globMatch(v.pattern, v.subject);
  ck_assert_msg(got == v.match, "pattern \"%s\" subject \"%s\": got %d, want %d", v.pattern,
                v.subject, got, v.match);
}
END_TEST

START_TEST(test_embedded_nul) {
  std::string_view subject("authz:a\0b:x", 11);
  ck_assert(sark::globMatch(std::string_view("authz:a?b:*", 11), subject));
  ck_assert(sark::globMatch(std::string_view("authz:*", 7), subject));
  ck_assert(!sark::globMatch(std::string_view("authz:ab*", 9), subject));
}
END_TEST

START_TEST(test_long_input_is_fast) {
  // Exponential backtracking would never finish this.
  std::string subject(20000, 'a');
  std::string pattern;
  for (int i = 0; i < 30; i++) {
    pattern += "*a";
  }
  pattern += "b";
  ck_assert(!sark::globMatch(pattern, subject));
  pattern.back() = 'a';
  ck_assert(sark::globMatch(pattern, subject));
}
END_TEST

static Suite* globSuite() {
  Suite* s = suite_create("sarkd_glob");
  TCase* tc = tcase_create("Core");
  int n = static_cast<int>(sizeof(kVectors) / sizeof(kVectors[0]));
  tcase_add_loop_test(tc, test_vectors, 0, n);
  tcase_add_test(tc, test_embedded_nul);
  tcase_add_test(tc, test_long_input_is_fast);
  suite_add_tcase(s, tc);
  return s;
}

int main() {
  SRunner* sr = srunner_create(globSuite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
