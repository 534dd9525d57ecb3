/*
 * Unit tests of the decision cache key, shared/sark_key.h: the encoding
 * tells every distinct input apart (presence, field boundaries, roles and
 * teams), the length functions match what is written, and the text form
 * is the one SARK's invalidation patterns expect.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "sark_key.h"


#define MAX_ENC  1024


static sark_key_field_t
str(const char *s)
{
    sark_key_field_t  f;

    f.data = (const uint8_t *) s;
    f.len = s ? strlen(s) : 0;
    f.present = s != NULL;

    return f;
}


/* a complete input; tests change one thing at a time */
static sark_key_input_t
base(void)
{
    static sark_key_field_t  roles[2], teams[1];
    sark_key_input_t         in;

    memset(&in, 0, sizeof(in));

    in.f[SARK_KEY_REVISION] = str("rev1");
    in.f[SARK_KEY_USER_ID] = str("u1");
    in.f[SARK_KEY_EMAIL] = str("a@example.com");
    in.f[SARK_KEY_ACTION] = str("gateway:tool:invoke");
    in.f[SARK_KEY_SERVER] = str("postgres-mcp");
    in.f[SARK_KEY_TOOL] = str("execute_query");
    in.f[SARK_KEY_SENSITIVITY] = str("high");
    in.f[SARK_KEY_PARAMETERS] = str("{\"q\":1}");
    in.f[SARK_KEY_CONTEXT] = str("{}");
    in.f[SARK_KEY_SOURCE_AGENT] = str("{\"id\":\"a1\"}");
    in.f[SARK_KEY_TARGET_AGENT] = str("{\"id\":\"a2\"}");

    roles[0] = str("analyst");
    roles[1] = str("developer");
    teams[0] = str("t1");

    in.roles = roles;
    in.nroles = 2;
    in.teams = teams;
    in.nteams = 1;

    return in;
}


/* the encoding of `in`, checked against sark_key_encoded_len() */
static size_t
encode(const sark_key_input_t *in, uint8_t *out)
{
    size_t  len;

    len = sark_key_encoded_len(in);
    ck_assert_uint_le(len, MAX_ENC);

    memset(out, 0xee, MAX_ENC);
    ck_assert_ptr_eq(sark_key_encode(out, in), out + len);

    return len;
}


static int
same(const sark_key_input_t *a, const sark_key_input_t *b)
{
    uint8_t  ea[MAX_ENC], eb[MAX_ENC];
    size_t   la, lb;

    la = encode(a, ea);
    lb = encode(b, eb);

    return la == lb && memcmp(ea, eb, la) == 0;
}


START_TEST(test_deterministic)
{
    sark_key_input_t  a = base(), b = base();

    ck_assert(same(&a, &b));
}
END_TEST


/* every single-valued field: absent, empty and a value are all distinct */
START_TEST(test_presence)
{
    int               i;
    sark_key_input_t  absent, empty, value;

    for (i = 0; i < SARK_KEY_FIELDS; i++) {
        absent = base();
        empty = base();
        value = base();

        absent.f[i] = str(NULL);
        empty.f[i] = str("");

        ck_assert_msg(!same(&absent, &empty), "field %d: absent == empty", i);
        ck_assert_msg(!same(&absent, &value), "field %d: absent == value", i);
        ck_assert_msg(!same(&empty, &value), "field %d: empty == value", i);
    }
}
END_TEST


/* a byte moved from one field to the next is another input */
START_TEST(test_boundaries)
{
    sark_key_input_t  a = base(), b = base();

    a.f[SARK_KEY_SERVER] = str("ab");
    a.f[SARK_KEY_TOOL] = str("c");
    b.f[SARK_KEY_SERVER] = str("a");
    b.f[SARK_KEY_TOOL] = str("bc");

    ck_assert(!same(&a, &b));
}
END_TEST


START_TEST(test_roles_and_teams)
{
    sark_key_field_t  one[1], two[2];
    sark_key_input_t  a = base(), b = base();

    /* a role is not a team */
    one[0] = str("x");
    a.roles = one;
    a.nroles = 1;
    a.nteams = 0;
    b.nroles = 0;
    b.teams = one;
    b.nteams = 1;
    ck_assert(!same(&a, &b));

    /* ["ab"] is not ["a", "b"] */
    a = base();
    b = base();
    one[0] = str("ab");
    two[0] = str("a");
    two[1] = str("b");
    a.roles = one;
    a.nroles = 1;
    b.roles = two;
    b.nroles = 2;
    ck_assert(!same(&a, &b));

    /* order matters as it does to the policy's input */
    a = base();
    b = base();
    two[0] = str("developer");
    two[1] = str("analyst");
    b.roles = two;
    ck_assert(!same(&a, &b));
}
END_TEST


START_TEST(test_text)
{
    uint8_t           digest[SARK_KEY_DIGEST_LEN];
    char              text[512], *end;
    size_t            i;
    sark_key_input_t  in = base();

    for (i = 0; i < SARK_KEY_DIGEST_LEN; i++) {
        digest[i] = (uint8_t) i;
    }

    end = sark_key_text(text, &in, digest);
    ck_assert_uint_eq((size_t) (end - text), sark_key_text_len(&in));
    *end = '\0';
    ck_assert_str_eq(text, "authz:u1:gateway:tool:invoke:postgres-mcp:"
                     "execute_query:high:000102030405060708090a0b0c0d0e0f"
                     "101112131415161718191a1b1c1d1e1f");

    /* absent server, tool and sensitivity */
    in.f[SARK_KEY_SERVER] = str(NULL);
    in.f[SARK_KEY_TOOL] = str(NULL);
    in.f[SARK_KEY_SENSITIVITY] = str(NULL);
    end = sark_key_text(text, &in, digest);
    ck_assert_uint_eq((size_t) (end - text), sark_key_text_len(&in));
    *end = '\0';
    ck_assert_str_eq(text, "authz:u1:gateway:tool:invoke:::medium:"
                     "000102030405060708090a0b0c0d0e0f"
                     "101112131415161718191a1b1c1d1e1f");
}
END_TEST


static Suite *
key_suite(void)
{
    Suite  *s;
    TCase  *tc;

    s = suite_create("sark_key");
    tc = tcase_create("key");
    tcase_add_test(tc, test_deterministic);
    tcase_add_test(tc, test_presence);
    tcase_add_test(tc, test_boundaries);
    tcase_add_test(tc, test_roles_and_teams);
    tcase_add_test(tc, test_text);
    suite_add_tcase(s, tc);

    return s;
}


int
main(void)
{
    int       failed;
    SRunner  *sr;

    sr = srunner_create(key_suite());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);

    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
