/*
 * Unit tests for ngx_module/sark_json.c.
 *
 * Every document is copied into a heap buffer of exactly its length, so a
 * read past the end shows up under ASan or valgrind.
 */

#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sark_json.h"


#include "test_arena.h"


static arena_t  arena;


static void
setup(void)
{
    memset(&arena, 0, sizeof(arena_t));
}


static void
teardown(void)
{
    arena_reset(&arena);
}


/* exact-size heap copy of doc[0..len) */

static unsigned char *
dup_exact(const char *doc, size_t len)
{
    unsigned char  *b;

    b = malloc(len ? len : 1);
    CHECK(b != NULL);
    memcpy(b, doc, len);

    return b;
}


static sark_json_t *
parse_ok_n(const char *doc, size_t len, unsigned depth)
{
    sark_json_t    *root;
    unsigned char  *b;
    char            err[SARK_JSON_ERR_LEN];
    int             rc;

    /* the tree points into b: keep it in the arena, at its exact size */
    b = arena_alloc(&arena, len);
    memcpy(b, doc, len);

    rc = sark_json_parse(b, len, depth, arena_alloc, &arena, &root, err,
                         sizeof(err));
    ck_assert_msg(rc == 0, "parse of \"%.*s\" failed: %s",
                  (int) (len < 200 ? len : 200), doc, err);
    ck_assert_ptr_nonnull(root);

    return root;
}


static sark_json_t *
parse_ok(const char *doc)
{
    return parse_ok_n(doc, strlen(doc), 64);
}


/* returns the error message (static buffer) */

static const char *
parse_bad_n(const char *doc, size_t len, unsigned depth)
{
    static char     err[SARK_JSON_ERR_LEN];
    sark_json_t    *root;
    unsigned char  *b;
    int             rc;

    b = dup_exact(doc, len);
    root = (sark_json_t *) 1;

    rc = sark_json_parse(b, len, depth, arena_alloc, &arena, &root, err,
                         sizeof(err));
    free(b);

    ck_assert_msg(rc == -1, "parse of \"%.*s\" should have failed",
                  (int) (len < 200 ? len : 200), doc);
    ck_assert_ptr_null(root);
    ck_assert_msg(err[0] != '\0', "no error message");

    return err;
}


static const char *
parse_bad(const char *doc, unsigned depth)
{
    return parse_bad_n(doc, strlen(doc), depth);
}


static int
raw_is(const sark_json_t *v, const char *text)
{
    return v->raw_len == strlen(text)
           && memcmp(v->raw, text, v->raw_len) == 0;
}


/* ---- valid documents ---- */

START_TEST(test_scalars)
{
    sark_json_t  *v;

    v = parse_ok("null");
    ck_assert_int_eq(v->type, SARK_JSON_NULL);
    ck_assert(raw_is(v, "null"));
    ck_assert_ptr_null(v->key);

    v = parse_ok(" \t\r\ntrue\n");
    ck_assert_int_eq(v->type, SARK_JSON_TRUE);
    ck_assert(raw_is(v, "true"));

    v = parse_ok("false");
    ck_assert_int_eq(v->type, SARK_JSON_FALSE);

    v = parse_ok("\"hi\"");
    ck_assert_int_eq(v->type, SARK_JSON_STRING);
    ck_assert(raw_is(v, "\"hi\""));
    ck_assert_str_eq(v->str, "hi");
    ck_assert_uint_eq(v->len, 2);

    v = parse_ok("\"\"");
    ck_assert_int_eq(v->type, SARK_JSON_STRING);
    ck_assert_uint_eq(v->len, 0);
    ck_assert_str_eq(v->str, "");

    v = parse_ok("[]");
    ck_assert_int_eq(v->type, SARK_JSON_ARRAY);
    ck_assert_uint_eq(v->n, 0);
    ck_assert_ptr_null(v->child);

    v = parse_ok(" { } ");
    ck_assert_int_eq(v->type, SARK_JSON_OBJECT);
    ck_assert(raw_is(v, "{ }"));
    ck_assert_uint_eq(v->n, 0);

    v = parse_ok("[ ]");
    ck_assert(raw_is(v, "[ ]"));
}
END_TEST


typedef struct {
    const char  *doc;
    double       num;
    int          is_int;
    long long    ival;
} num_case_t;

static const num_case_t  num_cases[] = {
    { "0", 0, 1, 0 },
    { "-0", 0, 1, 0 },
    { "7", 7, 1, 7 },
    { "-123", -123, 1, -123 },
    { "1.5", 1.5, 0, 0 },
    { "-0.25", -0.25, 0, 0 },
    { "1e2", 100, 1, 100 },
    { "1E+2", 100, 1, 100 },
    { "2.50e1", 25, 1, 25 },
    { "3.0", 3, 1, 3 },
    { "-1.25e-3", -0.00125, 0, 0 },
    { "1700000000", 1700000000.0, 1, 1700000000LL },
    { "1700000000.75", 1700000000.75, 0, 0 },
    { "9223372036854775807", 9223372036854775807.0, 1,
      9223372036854775807LL },
    { "-9223372036854775808", -9223372036854775808.0, 1,
      -9223372036854775807LL - 1 },
    { "9223372036854775808", 9223372036854775808.0, 0, 0 },
    { "-9223372036854775809", -9223372036854775809.0, 0, 0 },
    { "123456789012345678901234567890", 1.2345678901234568e29, 0, 0 },
    { "9007199254740992.0", 9007199254740992.0, 1, 9007199254740992LL },
    { "1e300", 1e300, 0, 0 },
    { "1e-400", 0.0, 1, 0 },
    { "0.000000000000000000000000000000000000000000000000000000000000000001",
      1e-66, 0, 0 },
};


START_TEST(test_numbers)
{
    const num_case_t  *c = &num_cases[_i];
    sark_json_t       *v;

    v = parse_ok(c->doc);
    ck_assert_int_eq(v->type, SARK_JSON_NUMBER);
    ck_assert(raw_is(v, c->doc));
    ck_assert_msg(v->num == c->num, "%s: num %.17g", c->doc, v->num);
    ck_assert_msg(v->is_int == c->is_int, "%s: is_int %d", c->doc,
                  v->is_int);

    if (c->is_int) {
        ck_assert_msg(v->ival == c->ival, "%s: ival %lld", c->doc, v->ival);
    }
}
END_TEST


START_TEST(test_raw_spans)
{
    static const char   doc[] =
        " {\"a\" : [1, 2.5 ,\"x\\n\", true, null, {}],\n"
        "  \"b\":{\"c\":-3e1, \"d\" : \"\\u00e9\"}, \"\":false } ";
    const sark_json_t  *root, *a, *b, *e;

    root = parse_ok(doc);

    ck_assert_int_eq(root->type, SARK_JSON_OBJECT);
    ck_assert_uint_eq(root->n, 3);
    ck_assert_uint_eq(root->raw_len, strlen(doc) - 2);
    ck_assert_int_eq(root->raw[0], '{');
    ck_assert_int_eq(root->raw[root->raw_len - 1], '}');

    a = root->child;
    ck_assert_str_eq(a->key, "a");
    ck_assert_uint_eq(a->key_len, 1);
    ck_assert(raw_is(a, "[1, 2.5 ,\"x\\n\", true, null, {}]"));
    ck_assert_uint_eq(a->n, 6);

    e = a->child;
    ck_assert(raw_is(e, "1"));
    ck_assert_ptr_null(e->key);
    e = e->next;
    ck_assert(raw_is(e, "2.5"));
    e = e->next;
    ck_assert(raw_is(e, "\"x\\n\""));
    ck_assert_str_eq(e->str, "x\n");
    e = e->next;
    ck_assert(raw_is(e, "true"));
    e = e->next;
    ck_assert(raw_is(e, "null"));
    e = e->next;
    ck_assert(raw_is(e, "{}"));
    ck_assert_ptr_null(e->next);

    b = a->next;
    ck_assert_str_eq(b->key, "b");
    ck_assert(raw_is(b, "{\"c\":-3e1, \"d\" : \"\\u00e9\"}"));
    ck_assert(raw_is(b->child, "-3e1"));
    ck_assert(b->child->num == -30.0);
    ck_assert(raw_is(b->child->next, "\"\\u00e9\""));
    ck_assert_str_eq(b->child->next->str, "\xc3\xa9");

    e = b->next;
    ck_assert_uint_eq(e->key_len, 0);
    ck_assert_str_eq(e->key, "");
    ck_assert_int_eq(e->type, SARK_JSON_FALSE);
    ck_assert(raw_is(e, "false"));
    ck_assert_ptr_null(e->next);
}
END_TEST


START_TEST(test_get)
{
    const sark_json_t  *root, *v;

    root = parse_ok("{\"alpha\":1,\"beta\":{\"alpha\":2},\"\":3,\"al\":4}");

    v = sark_json_get(root, "alpha");
    ck_assert_ptr_nonnull(v);
    ck_assert_int_eq(v->ival, 1);

    v = sark_json_get(sark_json_get(root, "beta"), "alpha");
    ck_assert_ptr_nonnull(v);
    ck_assert_int_eq(v->ival, 2);

    v = sark_json_get(root, "");
    ck_assert_ptr_nonnull(v);
    ck_assert_int_eq(v->ival, 3);

    ck_assert_int_eq(sark_json_get(root, "al")->ival, 4);
    ck_assert_ptr_null(sark_json_get(root, "alph"));
    ck_assert_ptr_null(sark_json_get(root, "alphaa"));
    ck_assert_ptr_null(sark_json_get(root, "gamma"));
    ck_assert_ptr_null(sark_json_get(root, NULL));
    ck_assert_ptr_null(sark_json_get(NULL, "alpha"));
    ck_assert_ptr_null(sark_json_get(sark_json_get(root, "alpha"), "x"));
    ck_assert_ptr_null(sark_json_get(parse_ok("[\"alpha\"]"), "alpha"));

    v = sark_json_get_n(root, "alphabet", 5);
    ck_assert_ptr_nonnull(v);
    ck_assert_int_eq(v->ival, 1);
}
END_TEST


typedef struct {
    const char  *doc;
    const char  *dec;
    size_t       dec_len;
} str_case_t;

static const str_case_t  str_cases[] = {
    { "\"plain\"", "plain", 5 },
    { "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "\"\\/\b\f\n\r\t", 8 },
    { "\"\\u0041\\u0062\"", "Ab", 2 },
    { "\"\\u00e9\\u00E9\"", "\xc3\xa9\xc3\xa9", 4 },
    { "\"\\u20ac\"", "\xe2\x82\xac", 3 },
    { "\"\\u0001\\u001f\\u007f\"", "\x01\x1f\x7f", 3 },
    { "\"\\ud83d\\ude00\"", "\xf0\x9f\x98\x80", 4 },
    { "\"\\uD834\\uDD1E\"", "\xf0\x9d\x84\x9e", 4 },
    { "\"\\udbff\\udfff\"", "\xf4\x8f\xbf\xbf", 4 },
    { "\"\\ud800\\udc00\"", "\xf0\x90\x80\x80", 4 },
    { "\"\\uffff\\ue000\\ud7ff\"", "\xef\xbf\xbf\xee\x80\x80\xed\x9f\xbf", 9 },
    { "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"",
      "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9 },
    { "\"\xf4\x8f\xbf\xbf\xed\x9f\xbf\xee\x80\x80\xc2\x80\"",
      "\xf4\x8f\xbf\xbf\xed\x9f\xbf\xee\x80\x80\xc2\x80", 12 },
    { "\"a\\u0022b\\u005c\"", "a\"b\\", 4 },
    { "\"\x7f\"", "\x7f", 1 },
};


/*
 * Strings are scanned eight bytes at a time: an escape, a quote, a
 * non-ASCII byte or a control character must be found at every offset
 * and every length around the word boundaries.
 */

START_TEST(test_string_every_offset)
{
    char          doc[64], want[64];
    size_t        n, k;
    sark_json_t  *v;

    for (n = 1; n <= 40; n++) {
        for (k = 0; k < n; k++) {

            /* an escaped quote at k */
            memset(doc, 'a', sizeof(doc));
            doc[0] = '"';
            memcpy(doc + 1 + k, "\\\"", 2);
            doc[n + 2] = '"';
            doc[n + 3] = '\0';
            memset(want, 'a', sizeof(want));
            want[k] = '"';
            want[n] = '\0';
            v = parse_ok(doc);
            ck_assert_str_eq(v->str, want);
            ck_assert_uint_eq(v->len, n);

            /* a two-byte UTF-8 character at k */
            memset(doc, 'a', sizeof(doc));
            doc[0] = '"';
            memcpy(doc + 1 + k, "\xc3\xa9", 2);
            doc[n + 2] = '"';
            doc[n + 3] = '\0';
            v = parse_ok(doc);
            ck_assert_uint_eq(v->len, n + 1);
            ck_assert_int_eq(memcmp(v->str + k, "\xc3\xa9", 2), 0);

            /* a control character at k is refused */
            memset(doc, 'a', sizeof(doc));
            doc[0] = '"';
            doc[1 + k] = '\t';
            doc[n + 1] = '"';
            doc[n + 2] = '\0';
            parse_bad(doc, 8);

            /* the closing quote right after k plain bytes */
            memset(doc, 'a', sizeof(doc));
            doc[0] = '"';
            doc[1 + k] = '"';
            doc[2 + k] = '\0';
            v = parse_ok(doc);
            ck_assert_uint_eq(v->len, k);
        }
    }
}
END_TEST


START_TEST(test_strings)
{
    const str_case_t  *c = &str_cases[_i];
    sark_json_t       *v;
    char               doc[128];

    v = parse_ok(c->doc);
    ck_assert_int_eq(v->type, SARK_JSON_STRING);
    ck_assert_uint_eq(v->len, c->dec_len);
    ck_assert(memcmp(v->str, c->dec, c->dec_len) == 0);
    ck_assert_int_eq(v->str[v->len], '\0');
    ck_assert(raw_is(v, c->doc));

    /* the same string as a key */
    snprintf(doc, sizeof(doc), "{%s:0}", c->doc);
    v = parse_ok(doc);
    ck_assert_uint_eq(v->child->key_len, c->dec_len);
    ck_assert(memcmp(v->child->key, c->dec, c->dec_len) == 0);
    ck_assert_int_eq(v->child->key[v->child->key_len], '\0');
}
END_TEST


/* ---- rejections ---- */

typedef struct {
    const char  *doc;
    size_t       len;           /* 0: strlen */
    const char  *msg;           /* expected substring */
} bad_case_t;

#define B(d, m)      { d, 0, m }
#define BN(d, m)     { d, sizeof(d) - 1, m }

static const bad_case_t  bad_cases[] = {
    B("", "offset 0: unexpected end of input"),
    B("   \n", "unexpected end of input"),
    B("\xef\xbb\xbf{}", "offset 0: byte order mark"),
    B("\xef\xbb\xbf", "byte order mark"),
    B("{} x", "offset 3: trailing characters"),
    B("[]]", "trailing"),
    B("{\"a\":1}}", "trailing"),
    B("1 2", "trailing"),
    B("nulll", "trailing"),
    B("[1,]", "offset 3: expected a value"),
    B("[,1]", "expected a value"),
    B("[1,,2]", "expected a value"),
    B("{\"a\":}", "expected a value"),
    B("{\"a\":1,}", "offset 7: expected string key"),
    B("{,}", "expected string key"),
    B("{a:1}", "expected string key"),
    B("{1:1}", "expected string key"),
    B("{'a':1}", "expected string key"),
    B("{\"a\" 1}", "expected ':'"),
    B("{\"a\"", "expected ':'"),
    B("{\"a\":1 \"b\":2}", "invalid JSON at offset 7: expected ',' or '}'"),
    B("[1 2]", "offset 3: expected ',' or ']'"),
    B("[", "unexpected end of input"),
    B("{", "unexpected end of input"),
    B("[1,2", "unexpected end of input"),
    B("{\"a\":1", "unexpected end of input"),
    B("{\"a\":1,", "unexpected end of input"),
    B("01", "leading zero"),
    B("-01", "leading zero"),
    B("00", "leading zero"),
    B("[007]", "leading zero"),
    B("+1", "unexpected character"),
    B(".5", "unexpected character"),
    B("-.5", "invalid number"),
    B("1.", "expected digit after '.'"),
    B("1.e5", "expected digit after '.'"),
    B("1e", "expected digit in exponent"),
    B("1e+", "expected digit in exponent"),
    B("1E-x", "expected digit in exponent"),
    B("-", "invalid number"),
    B("--1", "invalid number"),
    B("- 1", "invalid number"),
    B("0x10", "trailing"),
    B("1.5.5", "trailing"),
    B("NaN", "unexpected character"),
    B("nan", "invalid literal"),
    B("Infinity", "unexpected character"),
    B("-Infinity", "invalid number"),
    B("[inf]", "unexpected character"),
    B("1e400", "number out of range"),
    B("-1e400", "number out of range"),
    B("[1e99999999999999999999]", "number out of range"),
    B("tru", "invalid literal"),
    B("nul", "invalid literal"),
    B("True", "unexpected character"),
    B("fals", "invalid literal"),
    B("truE", "invalid literal"),
    B("\"abc", "offset 0: unterminated string"),
    B("\"\\", "unterminated string"),
    B("\"\\\"", "unterminated string"),
    B("[\"a]", "unterminated string"),
    B("\"a\x01" "b\"", "offset 2: control character"),
    B("\"\t\"", "control character"),
    B("\"\n\"", "control character"),
    B("\"\x1f\"", "control character"),
    BN("\"a\0b\"", "control character"),
    BN("[1,\0 2]", "unexpected character"),
    BN("\0", "unexpected character"),
    B("\"\\x\"", "invalid escape"),
    B("\"\\'\"", "invalid escape"),
    B("\"\\a\"", "invalid escape"),
    B("\"\\U0041\"", "invalid escape"),
    B("\"\\0\"", "invalid escape"),
    B("\"\\u12\"", "invalid \\u escape"),
    B("\"\\u12G4\"", "invalid \\u escape"),
    B("\"\\u 123\"", "invalid \\u escape"),
    B("\"\\u-123\"", "invalid \\u escape"),
    B("\"\\u0000\"", "\\u0000 is not allowed"),
    B("{\"a\\u0000\":1}", "\\u0000 is not allowed"),
    B("\"\\ud800\"", "unpaired surrogate"),
    B("\"\\udc00\"", "unpaired surrogate"),
    B("\"\\udfff\\ud800\"", "unpaired surrogate"),
    B("\"\\ud800\\u0041\"", "unpaired surrogate"),
    B("\"\\ud800x\"", "unpaired surrogate"),
    B("\"\\ud800\\n\"", "unpaired surrogate"),
    B("\"\\udbff\\udbff\"", "unpaired surrogate"),
    B("\"\\ud800\\udc0\"", "unpaired surrogate"),
    B("\"\\ud800\\\"", "unterminated string"),
    B("\"\xc0\xaf\"", "offset 1: invalid UTF-8"),
    B("\"\xc1\xbf\"", "invalid UTF-8"),
    B("\"\xe0\x80\xaf\"", "invalid UTF-8"),
    B("\"\xe0\x9f\xbf\"", "invalid UTF-8"),
    B("\"\xf0\x80\x80\xaf\"", "invalid UTF-8"),
    B("\"\xf0\x8f\xbf\xbf\"", "invalid UTF-8"),
    B("\"\xed\xa0\x80\"", "invalid UTF-8"),
    B("\"\xed\xbf\xbf\"", "invalid UTF-8"),
    B("\"\xed\xa0\xbd\xed\xb8\x80\"", "invalid UTF-8"),
    B("\"\xf4\x90\x80\x80\"", "invalid UTF-8"),
    B("\"\xf5\x80\x80\x80\"", "invalid UTF-8"),
    B("\"\xf8\x88\x80\x80\x80\"", "invalid UTF-8"),
    B("\"\xfe\"", "invalid UTF-8"),
    B("\"\xff\"", "invalid UTF-8"),
    B("\"\x80\"", "invalid UTF-8"),
    B("\"\xbf\"", "invalid UTF-8"),
    B("\"\xc3\"", "invalid UTF-8"),
    B("\"\xe2\x82\"", "invalid UTF-8"),
    B("\"\xf0\x9f\x98\"", "invalid UTF-8"),
    B("\"\xc3\x28\"", "invalid UTF-8"),
    B("\"\xe2\x28\xa1\"", "invalid UTF-8"),
    B("\"\xe2\x82\x28\"", "invalid UTF-8"),
    B("\"\xe2\x82\xc3\xa9\"", "invalid UTF-8"),
    B("\"\xf0\x9f\x98\x41\"", "invalid UTF-8"),
    B("\"\xf0\x9f\x41\x80\"", "invalid UTF-8"),
    B("\"\xf0\x9f\x98\xc0\"", "invalid UTF-8"),
    B("{\"\xc3\":1}", "invalid UTF-8"),
    B("\xc3\xa9", "unexpected character"),
    B("[1]\xff", "trailing"),
    B("/* c */ 1", "unexpected character"),
    B("[1] // c", "trailing"),
    B("'a'", "unexpected character"),
    B("\x0b" "1", "unexpected character"),
    B("\x0c" "1", "unexpected character"),
    B("\xc2\xa0" "1", "unexpected character"),
    B("{\"a\":1,\"a\":2}", "offset 7: duplicate key \"a\""),
    B("{\"a\":1,\"b\":2,\"\\u0061\":3}", "offset 13: duplicate key \"a\""),
    B("[{\"x\":{\"y\":1,\"y\":1}}]", "duplicate key \"y\""),
    B("{\"\":1,\"\":2}", "duplicate key \"\""),
};


START_TEST(test_reject)
{
    const bad_case_t  *c = &bad_cases[_i];
    const char        *msg;
    size_t             len;

    len = c->len ? c->len : strlen(c->doc);

    msg = parse_bad_n(c->doc, len, 64);

    ck_assert_msg(strstr(msg, c->msg) != NULL,
                  "case %d: got \"%s\", want \"%s\"", _i, msg, c->msg);
    ck_assert_msg(strncmp(msg, "invalid JSON at offset ", 23) == 0,
                  "case %d: \"%s\"", _i, msg);
}
END_TEST


START_TEST(test_err_buffer)
{
    sark_json_t  *root;
    char          small[8];

    /* truncated messages, NULL and empty buffers are fine */

    ck_assert_int_eq(sark_json_parse((const unsigned char *) "[1,]", 4, 4,
                                     arena_alloc, &arena, &root, small,
                                     sizeof(small)), -1);
    ck_assert_str_eq(small, "invalid");

    ck_assert_int_eq(sark_json_parse((const unsigned char *) "[1,]", 4, 4,
                                     arena_alloc, &arena, &root, NULL, 0),
                     -1);
    ck_assert_int_eq(sark_json_parse((const unsigned char *) "[[1]]", 5, 1,
                                     arena_alloc, &arena, &root, small, 0),
                     -1);
    ck_assert_int_eq(sark_json_parse((const unsigned char *) "{\"a\":1,"
                                     "\"a\":1}", 13, 1, arena_alloc,
                                     &arena, &root, NULL, 0), -1);

    /* NULL buffer is an empty document */
    ck_assert_int_eq(sark_json_parse(NULL, 0, 4, arena_alloc, &arena, &root,
                                     small, sizeof(small)), -1);
}
END_TEST


/* ---- depth ---- */

static char *
nested(size_t depth, const char *open, const char *close, const char *mid)
{
    size_t  lo, lc, lm, i;
    char   *s, *p;

    lo = strlen(open);
    lc = strlen(close);
    lm = strlen(mid);

    s = malloc(depth * (lo + lc) + lm + 1);
    ck_assert_ptr_nonnull(s);

    p = s;
    for (i = 0; i < depth; i++) {
        memcpy(p, open, lo);
        p += lo;
    }

    memcpy(p, mid, lm);
    p += lm;

    for (i = 0; i < depth; i++) {
        memcpy(p, close, lc);
        p += lc;
    }

    *p = '\0';

    return s;
}


START_TEST(test_depth)
{
    const sark_json_t  *v;
    const char         *msg;
    char               *s;
    unsigned            d;

    for (d = 1; d <= 20; d++) {
        s = nested(d, "[", "]", "1");
        parse_ok_n(s, strlen(s), d);
        msg = parse_bad_n(s, strlen(s), d - 1);
        ck_assert_msg(strstr(msg, "nesting deeper than") != NULL, "%s", msg);
        free(s);

        s = nested(d, "{\"k\":", "}", "1");
        parse_ok_n(s, strlen(s), d);
        parse_bad_n(s, strlen(s), d - 1);
        free(s);

        s = nested(d, "[{\"k\":", "}]", "[]");
        parse_ok_n(s, strlen(s), 2 * d + 1);
        msg = parse_bad_n(s, strlen(s), 2 * d);
        ck_assert_msg(strstr(msg, "offset ") != NULL, "%s", msg);
        free(s);
    }

    msg = parse_bad("[[[1]]]", 2);
    ck_assert_str_eq(msg, "invalid JSON at offset 2: nesting deeper than 2");

    /* scalars need no depth at all; containers need 1 */
    v = parse_ok_n("\"x\"", 3, 0);
    ck_assert_int_eq(v->type, SARK_JSON_STRING);
    parse_bad("[]", 0);
    parse_bad("{}", 0);
    parse_ok_n("[1,[],{}]", 9, 2);
    parse_bad("[1,[],{\"a\":[]}]", 2);
}
END_TEST


START_TEST(test_deep_no_recursion)
{
    const sark_json_t  *v;
    const char         *msg;
    char               *s;
    size_t              d, n;

    /* far deeper than any C stack would allow with recursion */

    n = 200000;
    s = nested(n, "[", "]", "");

    msg = parse_bad_n(s, 2 * n, 16);
    ck_assert_str_eq(msg, "invalid JSON at offset 16: nesting deeper than 16");

    v = parse_ok_n(s, 2 * n, (unsigned) n);
    for (d = 1; d < n && v->n == 1 && v->raw_len == 2 * (n - d + 1); d++) {
        v = v->child;
    }
    ck_assert_uint_eq(d, n);
    ck_assert_uint_eq(v->n, 0);
    ck_assert_uint_eq(v->raw_len, 2);

    /* unterminated: must fail, not overrun */
    parse_bad_n(s, n, (unsigned) n);

    free(s);
}
END_TEST


/* ---- duplicate keys ---- */

START_TEST(test_dup_keys)
{
    const char  *msg;
    char        *s, *p;
    size_t       i, n;

    /* same name in different objects is fine */
    parse_ok("{\"a\":{\"a\":1},\"b\":[{\"a\":1},{\"a\":2}]}");
    parse_ok("{\"a\":1,\"A\":2,\"a \":3,\"\":4}");

    msg = parse_bad("{\"x\":1,\"y\":2,\"x\":3}", 4);
    ck_assert_str_eq(msg, "invalid JSON at offset 13: duplicate key \"x\"");

    /* decoded names are compared */
    msg = parse_bad("{\"\\u00e9\":1,\"\xc3\xa9\":2}", 4);
    ck_assert_msg(strstr(msg, "duplicate key \"??\"") != NULL, "%s", msg);

    /* odd bytes are masked, long names cut */
    msg = parse_bad("{\"a\\\"b\\\\\\n\":1,\"a\\\"b\\\\\\n\":1}", 4);
    ck_assert_msg(strstr(msg, "duplicate key \"a?b??\"") != NULL, "%s", msg);

    msg = parse_bad("{\"0123456789012345678901234567890123456789\":1,"
                    "\"0123456789012345678901234567890123456789\":2}", 4);
    ck_assert_msg(strstr(msg, "\"01234567890123456789012345678901...\"")
                  != NULL, "%s", msg);

    /* large objects (sorted check): unique, one duplicate, many */

    for (n = 9; n <= 20000; n = n * 3 + 1) {
        s = malloc(n * 16 + 16);
        ck_assert_ptr_nonnull(s);

        p = s;
        *p++ = '{';
        for (i = 0; i < n; i++) {
            p += sprintf(p, "%s\"k%zu\":%zu", i ? "," : "", (i * 7919) % n, i);
        }
        *p++ = '}';

        parse_ok_n(s, (size_t) (p - s), 4);

        /* make the last key repeat an early one */
        p[-1] = ',';
        p += sprintf(p, "\"k%zu\":0}", (size_t) ((3 * 7919) % n));
        msg = parse_bad_n(s, (size_t) (p - s), 4);
        ck_assert_msg(strstr(msg, "duplicate key \"k") != NULL, "%s", msg);

        free(s);
    }

    /* the first repeated key in document order is named */
    s = malloc(1024);
    ck_assert_ptr_nonnull(s);
    strcpy(s, "{\"z\":0,\"b\":0,\"c\":0,\"d\":0,\"e\":0,\"f\":0,\"g\":0,"
              "\"h\":0,\"i\":0,\"z\":1,\"b\":1}");
    msg = parse_bad_n(s, strlen(s), 4);
    ck_assert_str_eq(msg, "invalid JSON at offset 55: duplicate key \"z\"");
    free(s);
}
END_TEST


/* ---- size ---- */

/*
 * Decoded strings share one block as long as the input; documents that are
 * (almost) nothing but strings fill it nearly to the end.
 */

START_TEST(test_strings_fill_their_block)
{
    char                buf[8192], *p;
    size_t              i;
    const sark_json_t  *v, *e;

    /* 1000 empty strings: 3 input bytes each, 1 decoded byte each */
    p = buf;
    *p++ = '[';
    for (i = 0; i < 1000; i++) {
        p += sprintf(p, "%s\"\"", i ? "," : "");
    }
    *p++ = ']';

    v = parse_ok_n(buf, (size_t) (p - buf), 4);
    ck_assert_uint_eq(v->n, 1000);
    for (e = v->child; e; e = e->next) {
        CHECK(e->type == SARK_JSON_STRING && e->len == 0 && e->str[0] == '\0');
    }

    /* keys and values, escaped and not, side by side without spaces */
    p = buf;
    *p++ = '{';
    for (i = 0; i < 300; i++) {
        p += sprintf(p, "%s\"k%zu\":\"\\u00e9\\n%zu\"", i ? "," : "", i, i);
    }
    *p++ = '}';

    v = parse_ok_n(buf, (size_t) (p - buf), 4);
    ck_assert_uint_eq(v->n, 300);
    for (i = 0, e = v->child; e; e = e->next, i++) {
        char  key[16], val[32];

        sprintf(key, "k%zu", i);
        sprintf(val, "\xc3\xa9\n%zu", i);
        CHECK(strcmp(e->key, key) == 0 && strcmp(e->str, val) == 0);
        CHECK(e->len == strlen(val));
    }

    /* a lone string: 2 quotes around n bytes, n + 1 decoded */
    v = parse_ok("\"x\"");
    ck_assert_str_eq(v->str, "x");
}
END_TEST


START_TEST(test_big_array)
{
    const sark_json_t  *v, *e;
    char               *s, *p;
    size_t              i, n, len;

    /* about 1 MB: [0,1,2,...] */

    s = malloc(1100000);
    ck_assert_ptr_nonnull(s);

    p = s;
    *p++ = '[';
    for (n = 0; p - s < 1048576 - 16; n++) {
        p += sprintf(p, "%s%zu", n ? "," : "", n);
    }
    *p++ = ']';
    len = (size_t) (p - s);

    v = parse_ok_n(s, len, 4);
    ck_assert_uint_ge(len, 1000000);
    ck_assert_int_eq(v->type, SARK_JSON_ARRAY);
    ck_assert_uint_eq(v->n, n);
    ck_assert_uint_eq(v->raw_len, len);

    for (i = 0, e = v->child; e != NULL; e = e->next, i++) {
        CHECK(e->is_int && e->ival == (long long) i);
    }
    ck_assert_uint_eq(i, n);

    /* a 1 MB string */
    memset(s, 'a', len);
    s[0] = '"';
    s[len - 1] = '"';
    v = parse_ok_n(s, len, 1);
    ck_assert_uint_eq(v->len, len - 2);

    free(s);
}
END_TEST


/* ---- escaper ---- */

static void
escape_roundtrip(const char *in, size_t len)
{
    const sark_json_t  *v;
    unsigned char      *out;
    size_t              need, got;

    need = sark_json_escaped_len(in, len);

    out = malloc(need + 2);
    ck_assert_ptr_nonnull(out);

    got = 12345;
    ck_assert_int_eq(sark_json_escape(in, len, out + 1, need, &got), 0);
    ck_assert_uint_eq(got, need);

    out[0] = '"';
    out[need + 1] = '"';

    v = parse_ok_n((char *) out, need + 2, 1);
    ck_assert_uint_eq(v->len, len);
    ck_assert(memcmp(v->str, in, len) == 0);

    if (need > 0) {
        got = 0;
        ck_assert_int_eq(sark_json_escape(in, len, out, need - 1, &got), -1);
        ck_assert_uint_eq(got, need);
    }

    free(out);
}


static uint64_t
xorshift(uint64_t *s)
{
    uint64_t  x = *s;

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;

    return x;
}


static size_t
put_utf8(unsigned char *o, unsigned cp)
{
    if (cp < 0x80) {
        o[0] = (unsigned char) cp;
        return 1;
    }

    if (cp < 0x800) {
        o[0] = (unsigned char) (0xc0 | (cp >> 6));
        o[1] = (unsigned char) (0x80 | (cp & 0x3f));
        return 2;
    }

    if (cp < 0x10000) {
        o[0] = (unsigned char) (0xe0 | (cp >> 12));
        o[1] = (unsigned char) (0x80 | ((cp >> 6) & 0x3f));
        o[2] = (unsigned char) (0x80 | (cp & 0x3f));
        return 3;
    }

    o[0] = (unsigned char) (0xf0 | (cp >> 18));
    o[1] = (unsigned char) (0x80 | ((cp >> 12) & 0x3f));
    o[2] = (unsigned char) (0x80 | ((cp >> 6) & 0x3f));
    o[3] = (unsigned char) (0x80 | (cp & 0x3f));
    return 4;
}


START_TEST(test_escape)
{
    unsigned char  buf[512], out[64];
    uint64_t       seed;
    unsigned       cp;
    size_t         i, n, len, got;
    int            iter;

    ck_assert_uint_eq(sark_json_escaped_len("", 0), 0);
    ck_assert_int_eq(sark_json_escape("", 0, out, 0, &got), 0);
    ck_assert_uint_eq(got, 0);

    ck_assert_int_eq(sark_json_escape("a\"b\\c/\n\t\r\b\f\x01\x1f\x7f", 14,
                                      out, sizeof(out), &got), 0);
    ck_assert_uint_eq(got, 31);
    ck_assert(memcmp(out, "a\\\"b\\\\c/\\n\\t\\r\\b\\f\\u0001\\u001f\x7f",
                     got) == 0);

    /* invalid UTF-8 becomes U+FFFD, byte by byte */
    ck_assert_int_eq(sark_json_escape("x\xff\xc3", 3, out, sizeof(out),
                                      &got), 0);
    ck_assert_uint_eq(got, 13);
    ck_assert(memcmp(out, "x\\ufffd\\ufffd", got) == 0);

    ck_assert_int_eq(sark_json_escape("\xed\xa0\x80\xc3\xa9", 5, out,
                                      sizeof(out), &got), 0);
    ck_assert_uint_eq(got, 20);
    ck_assert(memcmp(out, "\\ufffd\\ufffd\\ufffd\xc3\xa9", got) == 0);

    /* every ASCII byte but NUL */
    for (i = 1; i < 128; i++) {
        buf[i - 1] = (unsigned char) i;
    }
    escape_roundtrip((char *) buf, 127);

    escape_roundtrip("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf",
                     13);

    /* random valid strings */
    seed = 0x5eed5eed12345678ULL;

    for (iter = 0; iter < 2000; iter++) {
        n = xorshift(&seed) % 100;
        len = 0;

        for (i = 0; i < n; i++) {
            switch (xorshift(&seed) % 4) {
            case 0:
                cp = 1 + (unsigned) (xorshift(&seed) % 0x7f);
                break;
            case 1:
                cp = 1 + (unsigned) (xorshift(&seed) % 0x1f);
                break;
            case 2:
                cp = 0x80 + (unsigned) (xorshift(&seed) % 0xff80);
                break;
            default:
                cp = 0x10000 + (unsigned) (xorshift(&seed) % 0x100000);
            }

            if (cp >= 0xd800 && cp <= 0xdfff) {
                cp = 0xfffd;
            }

            len += put_utf8(buf + len, cp);
        }

        ck_assert(sark_json_utf8_valid(buf, len));
        escape_roundtrip((char *) buf, len);
    }
}
END_TEST


START_TEST(test_utf8_valid)
{
    ck_assert(sark_json_utf8_valid((const unsigned char *) "", 0));
    ck_assert(sark_json_utf8_valid((const unsigned char *) "abc\xc3\xa9", 5));
    ck_assert(sark_json_utf8_valid((const unsigned char *) "\xf4\x8f\xbf\xbf",
                                   4));
    ck_assert(!sark_json_utf8_valid((const unsigned char *) "\xc3", 1));
    ck_assert(!sark_json_utf8_valid((const unsigned char *) "\xc0\x80", 2));
    ck_assert(!sark_json_utf8_valid((const unsigned char *) "\xed\xa0\x80",
                                    3));
    ck_assert(!sark_json_utf8_valid((const unsigned char *) "\xf4\x90\x80\x80",
                                    4));
    ck_assert(!sark_json_utf8_valid((const unsigned char *) "a\x80", 2));
}
END_TEST


/* ---- out of memory ---- */


/* sark_json_equal: the same value however it is written, within a budget */

typedef struct {
    const char  *a;
    const char  *b;
    int          equal;
} equal_case_t;

static const equal_case_t  equal_cases[] = {
    { "{}", "{ }", 1 },
    { "{\"a\":1,\"b\":[true,null]}", "{\"b\":[true,null],\"a\":1}", 1 },
    { "{\"a\":1}", "{\"a\":1.0}", 1 },
    { "{\"a\":1e2}", "{\"a\":100}", 1 },
    { "{\"a\":\"\\u0041\"}", "{\"a\":\"A\"}", 1 },
    { "[1,2]", "[2,1]", 0 },
    { "{\"a\":1}", "{\"a\":2}", 0 },
    { "{\"a\":1}", "{\"a\":1,\"b\":1}", 0 },
    { "{\"a\":1,\"c\":1}", "{\"a\":1,\"b\":1}", 0 },
    { "{\"a\":\"x\"}", "{\"a\":\"x \"}", 0 },
    { "{\"a\":null}", "{\"a\":false}", 0 },
    { "{\"a\":{}}", "{\"a\":[]}", 0 },
    { "{\"a\":{\"b\":[{\"c\":1}]}}", "{\"a\":{\"b\":[{\"c\":1}]}}", 1 },
    { "{\"a\":{\"b\":[{\"c\":1}]}}", "{\"a\":{\"b\":[{\"c\":0}]}}", 0 },
};

START_TEST(test_equal)
{
    const equal_case_t  *c = &equal_cases[_i];

    ck_assert_int_eq(sark_json_equal(parse_ok(c->a), parse_ok(c->b), 1000),
                     c->equal);
    ck_assert_int_eq(sark_json_equal(parse_ok(c->b), parse_ok(c->a), 1000),
                     c->equal);
}
END_TEST


START_TEST(test_equal_budget)
{
    char         doc[4096], rev[4096];
    size_t       n, m;
    int          i;
    sark_json_t  *a, *b;

    /* 100 members, in reverse order in b: about 5,000 name comparisons */

    n = 0;
    m = 0;
    doc[n++] = '{';
    rev[m++] = '{';

    for (i = 0; i < 100; i++) {
        n += sprintf(doc + n, "%s\"k%d\":%d", i ? "," : "", i, i);
        m += sprintf(rev + m, "%s\"k%d\":%d", i ? "," : "", 99 - i, 99 - i);
    }

    doc[n++] = '}';
    rev[m++] = '}';

    a = parse_ok_n(doc, n, 8);
    b = parse_ok_n(rev, m, 8);

    ck_assert_int_eq(sark_json_equal(a, b, 100000), 1);
    ck_assert_int_eq(sark_json_equal(a, b, 1000), 0);
    ck_assert_int_eq(sark_json_equal(a, a, 1000), 1);
    ck_assert_int_eq(sark_json_equal(a, NULL, 1000), 0);
}
END_TEST


static const char  *oom_docs[] = {
    "{\"a\":[1,2,{\"b\":\"c\\u00e9\"}],\"d\":null}",
    "{\"k0\":0,\"k1\":1,\"k2\":2,\"k3\":3,\"k4\":4,\"k5\":5,\"k6\":6,"
    "\"k7\":7,\"k8\":8,\"k9\":9}",
    "[1.000000000000000000000000000000000000000000000000000000000000000001]",
    "\"str\"",
};


START_TEST(test_oom)
{
    const char     *doc = oom_docs[_i];
    sark_json_t    *root;
    unsigned char  *b;
    size_t          need, k;
    char            err[SARK_JSON_ERR_LEN];

    b = dup_exact(doc, strlen(doc));

    ck_assert_int_eq(sark_json_parse(b, strlen(doc), 8, arena_alloc, &arena,
                                     &root, err, sizeof(err)), 0);
    need = arena.count;
    arena_reset(&arena);

    for (k = 0; k < need; k++) {
        arena.limited = 1;
        arena.fail_after = k;

        ck_assert_int_eq(sark_json_parse(b, strlen(doc), 8, arena_alloc,
                                         &arena, &root, err, sizeof(err)),
                         -1);
        ck_assert_str_eq(err, "out of memory");
        ck_assert_ptr_null(root);

        arena_reset(&arena);
    }

    free(b);
}
END_TEST


/* ---- fuzz: mutate valid documents, must never crash ---- */

static const char  *fuzz_seeds[] = {
    "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":"
    "{\"name\":\"execute_query\",\"arguments\":{\"q\":\"select 1\","
    "\"limit\":10,\"x\":[true,false,null,-1.5e-3]}}}",
    "[{\"a\":\"\\u00e9\\ud83d\\ude00\\n\"},[[[]]],{},\"\xc3\xa9\xe2\x82\xac\","
    "0,-0,1e10,123456789012345678901]",
    "{\"action\":\"gateway:tool:invoke\",\"user\":{\"id\":\"u1\",\"roles\":"
    "[\"admin\",\"dev\"],\"teams\":[]},\"context\":{\"k\":{\"k\":{\"k\":1}}}}",
    "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u0041\"",
    "[1,2,3,4,5,6,7,8,9,10,{\"a\":1,\"b\":2,\"c\":3,\"d\":4,\"e\":5,"
    "\"f\":6,\"g\":7,\"h\":8,\"i\":9,\"j\":10}]",
};

static const char  fuzz_bytes[] = "{}[],:\"\\u0123456789.eE+-tfn \x80\xc3\xff";


static void
fuzz_check_tree(const sark_json_t *v, const unsigned char *b, size_t len,
    unsigned depth)
{
    const sark_json_t  *c;
    size_t              n;

    CHECK(v->raw >= b && v->raw + v->raw_len <= b + len);
    CHECK(v->raw_len > 0);

    if (v->key != NULL) {
        CHECK(strlen(v->key) == v->key_len);
        CHECK(sark_json_utf8_valid((const unsigned char *) v->key,
                                       v->key_len));
    }

    switch (v->type) {
    case SARK_JSON_STRING:
        CHECK(strlen(v->str) == v->len);
        CHECK(sark_json_utf8_valid((const unsigned char *) v->str,
                                       v->len));
        break;

    case SARK_JSON_ARRAY:
    case SARK_JSON_OBJECT:
        depth++;
        CHECK(depth <= 16);
        n = 0;
        for (c = v->child; c != NULL; c = c->next) {
            CHECK(c->raw >= v->raw
                      && c->raw + c->raw_len <= v->raw + v->raw_len);
            CHECK((v->type == SARK_JSON_OBJECT) == (c->key != NULL));
            fuzz_check_tree(c, b, len, depth);
            n++;
        }
        CHECK(n == v->n);
        break;

    default:
        break;
    }
}


START_TEST(test_fuzz)
{
    sark_json_t    *root;
    unsigned char   work[1024], *b;
    const char     *env;
    uint64_t        seed;
    size_t          len, pos, k, m;
    long            iters, it, nok;
    char            err[SARK_JSON_ERR_LEN];
    int             rc, j, nmut;

    env = getenv("SARK_FUZZ_ITERS");
    iters = (env != NULL) ? atol(env) : 100000;
    seed = 0x9e3779b97f4a7c15ULL;
    nok = 0;

    for (it = 0; it < iters; it++) {
        const char  *src = fuzz_seeds[xorshift(&seed)
                                      % (sizeof(fuzz_seeds) / sizeof(char *))];

        len = strlen(src);
        memcpy(work, src, len);

        nmut = 1 + (int) (xorshift(&seed) % 4);

        for (j = 0; j < nmut; j++) {
            pos = len ? xorshift(&seed) % len : 0;

            switch (xorshift(&seed) % 6) {
            case 0:                                 /* random byte */
                if (len) {
                    work[pos] = (unsigned char) xorshift(&seed);
                }
                break;

            case 1:                                 /* structural byte */
                if (len) {
                    work[pos] = (unsigned char)
                        fuzz_bytes[xorshift(&seed) % (sizeof(fuzz_bytes) - 1)];
                }
                break;

            case 2:                                 /* insert */
                if (len < sizeof(work) - 1) {
                    memmove(work + pos + 1, work + pos, len - pos);
                    work[pos] = (unsigned char)
                        fuzz_bytes[xorshift(&seed) % (sizeof(fuzz_bytes) - 1)];
                    len++;
                }
                break;

            case 3:                                 /* delete */
                if (len) {
                    memmove(work + pos, work + pos + 1, len - pos - 1);
                    len--;
                }
                break;

            case 4:                                 /* duplicate a slice */
                m = xorshift(&seed) % 16;
                if (pos + m <= len && len + m < sizeof(work)) {
                    memmove(work + pos + m, work + pos, len - pos);
                    len += m;
                }
                break;

            default:                                /* truncate */
                len = pos;
            }
        }

        b = dup_exact((char *) work, len);

        rc = sark_json_parse(b, len, 16, arena_alloc, &arena, &root, err,
                             sizeof(err));

        if (rc == 0) {
            nok++;
            fuzz_check_tree(root, b, len, 0);

        } else {
            CHECK(root == NULL);
            CHECK(strncmp(err, "invalid JSON at offset ", 23) == 0);
            k = (size_t) strtoul(err + 23, NULL, 10);
            CHECK(k <= len);
        }

        free(b);
        arena_reset(&arena);
    }

    /* the mutations must still leave some documents valid */
    ck_assert(iters < 1000 || nok > 0);
}
END_TEST


static Suite *
json_suite(void)
{
    Suite  *s;
    TCase  *tc;

    s = suite_create("sark_json");

    tc = tcase_create("parse");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_scalars);
    tcase_add_loop_test(tc, test_numbers, 0,
                        sizeof(num_cases) / sizeof(num_cases[0]));
    tcase_add_test(tc, test_raw_spans);
    tcase_add_test(tc, test_get);
    tcase_add_loop_test(tc, test_strings, 0,
                        sizeof(str_cases) / sizeof(str_cases[0]));
    tcase_add_test(tc, test_string_every_offset);
    suite_add_tcase(s, tc);

    tc = tcase_create("reject");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_reject, 0,
                        sizeof(bad_cases) / sizeof(bad_cases[0]));
    tcase_add_test(tc, test_err_buffer);
    tcase_add_test(tc, test_depth);
    tcase_add_test(tc, test_deep_no_recursion);
    tcase_add_test(tc, test_dup_keys);
    tcase_add_loop_test(tc, test_oom, 0,
                        sizeof(oom_docs) / sizeof(oom_docs[0]));
    suite_add_tcase(s, tc);

    tc = tcase_create("size");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_big_array);
    tcase_add_test(tc, test_strings_fill_their_block);
    suite_add_tcase(s, tc);

    tc = tcase_create("escape");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_escape);
    tcase_add_test(tc, test_utf8_valid);
    tcase_add_loop_test(tc, test_equal, 0,
                        sizeof(equal_cases) / sizeof(equal_cases[0]));
    tcase_add_test(tc, test_equal_budget);
    suite_add_tcase(s, tc);

    tc = tcase_create("fuzz");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_fuzz);
    suite_add_tcase(s, tc);

    return s;
}


int
main(void)
{
    SRunner  *sr;
    int       failed;

    sr = srunner_create(json_suite());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);

    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
