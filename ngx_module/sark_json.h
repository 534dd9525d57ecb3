/*
 * Strict RFC 8259 JSON parser into a tree, and a JSON string escaper.
 *
 * Pure C99, no nginx headers, no global mutable state, no malloc: every
 * byte comes from a caller-supplied allocator (in the module, the request
 * pool) and nothing is ever freed individually.  The allocator must return
 * memory aligned for any type (ngx_palloc, not ngx_pnalloc).
 *
 * Rejected: leading BOM, trailing garbage, invalid UTF-8 (overlongs,
 * UTF-8 encoded surrogates, code points above U+10FFFF), unescaped control
 * characters, bad escapes, unpaired \u surrogates, \u0000, leading zeros,
 * "+1", ".5", "1.", NaN/Infinity, numbers beyond the double range, nesting
 * deeper than max_depth, and duplicate member names in one object.
 *
 * The parser is iterative (no recursion at all) and linear in the input,
 * except duplicate-key detection, which is O(n log n) in the number of
 * members of an object (merge sort, no hash flooding).
 */

#ifndef SARK_JSON_H_INCLUDED_
#define SARK_JSON_H_INCLUDED_

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif


typedef enum {
    SARK_JSON_NULL,
    SARK_JSON_FALSE,
    SARK_JSON_TRUE,
    SARK_JSON_NUMBER,
    SARK_JSON_STRING,
    SARK_JSON_ARRAY,
    SARK_JSON_OBJECT
} sark_json_type_e;

typedef struct sark_json_s  sark_json_t;

struct sark_json_s {
    sark_json_type_e      type;

    /* exact source span of the value (strings include their quotes) */
    const unsigned char  *raw;
    size_t                raw_len;

    /* decoded member name when inside an object, else NULL/0 */
    const char           *key;
    size_t                key_len;

    /* decoded string value, NUL-terminated; never contains NUL */
    const char           *str;
    size_t                len;

    /*
     * numbers: num is the value; is_int is set when the value is integral
     * and fits: an integer literal within long long range, or a literal
     * with fraction/exponent whose value is integral and |v| <= 2^53
     * (e.g. 1e2, 3.0); ival then holds it
     */
    double                num;
    int                   is_int;
    long long             ival;

    /* arrays and objects: first child, count; every node: next sibling */
    sark_json_t          *child;
    sark_json_t          *next;
    size_t                n;
};

typedef void *(*sark_json_alloc_pt)(void *ctx, size_t size);


/* a buffer of this size always holds a full error message */
#define SARK_JSON_ERR_LEN  128


/*
 * Parses buf[0..len) into *root.  max_depth limits container nesting:
 * depth 1 is a top-level array/object; 0 allows scalars only.
 * Returns 0, or -1 with a message naming the byte offset in err, e.g.
 * "invalid JSON at offset 17: expected ',' or '}'" (or "out of memory").
 */
int sark_json_parse(const unsigned char *buf, size_t len, unsigned max_depth,
    sark_json_alloc_pt alloc, void *actx, sark_json_t **root,
    char *err, size_t err_len);

/* member lookup; NULL if absent or obj is not an object */
const sark_json_t *sark_json_get(const sark_json_t *obj, const char *key);
const sark_json_t *sark_json_get_n(const sark_json_t *obj, const char *key,
    size_t key_len);

/*
 * 1 if a and b are the same JSON value: objects with the same members in
 * any order, arrays element by element, numbers by value, strings by their
 * decoded text; else 0.  The comparison does at most `budget` steps (pairs
 * of values or of member names looked at) and answers 0 beyond them, so
 * two large objects cost a bounded time: a caller uses it only to skip
 * work that is always correct to do.
 */
int sark_json_equal(const sark_json_t *a, const sark_json_t *b,
    size_t budget);

/* 1 if p[0..len) is valid UTF-8 (same rules as the parser), else 0 */
int sark_json_utf8_valid(const unsigned char *p, size_t len);

/*
 * JSON string body (without quotes) for s[0..len): '"' and '\\' are
 * escaped, control characters become \b \f \n \r \t or \u00XX, and each
 * byte that is not part of valid UTF-8 becomes \ufffd, so the output is
 * always valid JSON.  sark_json_escaped_len() gives the exact length.
 * sark_json_escape() returns 0, or -1 (writing nothing) when out_cap is
 * too small; *out_len is set to the full length in both cases.
 */
size_t sark_json_escaped_len(const char *s, size_t len);
int sark_json_escape(const char *s, size_t len, unsigned char *out,
    size_t out_cap, size_t *out_len);


/*
 * Non-zero when one of the 8 bytes at p may need escaping in a JSON
 * string or a closer look when reading one: '"', '\\', a control
 * character or a non-ASCII byte.  The high bit of each such byte is set;
 * a false alarm is possible after a real one, never a miss.
 */
static inline uint64_t
sark_json_special8(const unsigned char *p)
{
    uint64_t  w, q, b;

    const uint64_t  ones = 0x0101010101010101ULL;
    const uint64_t  high = 0x8080808080808080ULL;

    memcpy(&w, p, 8);

    q = w ^ (ones * '"');
    b = w ^ (ones * '\\');

    return (((q - ones) & ~q) | ((b - ones) & ~b) | ((w - ones * 0x20) & ~w)
            | w) & high;
}


#ifdef __cplusplus
}
#endif

#endif /* SARK_JSON_H_INCLUDED_ */
