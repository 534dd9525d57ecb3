/*
 * Strict RFC 8259 JSON parser and string escaper (see sark_json.h).
 */

#include <float.h>
#include <locale.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sark_json.h"


/* a tree node plus the bookkeeping the iterative parser needs */
typedef struct sark_json_node_s  sark_json_node_t;

struct sark_json_node_s {
    sark_json_t        v;          /* must stay first */
    sark_json_node_t  *parent;
    sark_json_t       *last;
    size_t             key_off;
};

typedef struct {
    const unsigned char  *start;
    const unsigned char  *p;
    const unsigned char  *end;
    sark_json_alloc_pt    alloc;
    void                 *actx;
    char                 *err;
    size_t                err_len;

    /*
     * Decoded strings and their NULs go to one block as long as the input:
     * a string is never longer decoded than between its quotes, so they
     * all fit.  Nodes come a few at a time.
     */
    unsigned char        *strings;
    unsigned char        *strings_end;
    sark_json_node_t     *nodes;
    size_t                nodes_left;
} sark_json_parser_t;

#define SARK_JSON_NODES_CHUNK  8

typedef enum {
    SARK_JSON_ST_VALUE,
    SARK_JSON_ST_MEMBER,
    SARK_JSON_ST_CLOSE,
    SARK_JSON_ST_AFTER
} sark_json_state_e;


static int sark_json_fail(sark_json_parser_t *ps, const unsigned char *at,
    const char *msg);
static int sark_json_oom(sark_json_parser_t *ps);
static void sark_json_skip_ws(sark_json_parser_t *ps);
static size_t sark_json_utf8_seq(const unsigned char *p,
    const unsigned char *end);
static int sark_json_hex4(const unsigned char *p, unsigned *out);
static int sark_json_string(sark_json_parser_t *ps, const char **out,
    size_t *out_len);
static int sark_json_number(sark_json_parser_t *ps, sark_json_t *v);
static int sark_json_literal(sark_json_parser_t *ps, const char *word,
    size_t n);
static int sark_json_key_cmp(const sark_json_t *a, const sark_json_t *b);
static int sark_json_check_dups(sark_json_parser_t *ps,
    sark_json_node_t *obj);


#define sark_json_isdigit(c)  ((c) >= '0' && (c) <= '9')

/* largest magnitude for which every integer is exact in a double: 2^53 */
#define SARK_JSON_EXACT_INT   9007199254740992.0


static int
sark_json_fail(sark_json_parser_t *ps, const unsigned char *at,
    const char *msg)
{
    if (ps->err != NULL && ps->err_len > 0) {
        snprintf(ps->err, ps->err_len, "invalid JSON at offset %zu: %s",
                 (size_t) (at - ps->start), msg);
    }

    return -1;
}


static int
sark_json_oom(sark_json_parser_t *ps)
{
    if (ps->err != NULL && ps->err_len > 0) {
        snprintf(ps->err, ps->err_len, "out of memory");
    }

    return -1;
}


static void
sark_json_skip_ws(sark_json_parser_t *ps)
{
    const unsigned char  *p;

    for (p = ps->p; p < ps->end; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            break;
        }
    }

    ps->p = p;
}


/* length of the valid multi-byte UTF-8 sequence at p, or 0 (RFC 3629) */

static size_t
sark_json_utf8_seq(const unsigned char *p, const unsigned char *end)
{
    unsigned char  c, lo, hi;
    size_t         n, i;

    c = p[0];
    lo = 0x80;
    hi = 0xbf;

    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;

    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        if (c == 0xe0) {
            lo = 0xa0;               /* overlong */

        } else if (c == 0xed) {
            hi = 0x9f;               /* UTF-16 surrogates */
        }

    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        if (c == 0xf0) {
            lo = 0x90;               /* overlong */

        } else if (c == 0xf4) {
            hi = 0x8f;               /* above U+10FFFF */
        }

    } else {
        return 0;
    }

    if ((size_t) (end - p) < n) {
        return 0;
    }

    if (p[1] < lo || p[1] > hi) {
        return 0;
    }

    for (i = 2; i < n; i++) {
        if (p[i] < 0x80 || p[i] > 0xbf) {
            return 0;
        }
    }

    return n;
}


int
sark_json_utf8_valid(const unsigned char *p, size_t len)
{
    const unsigned char  *end;
    size_t                n;

    end = p + len;

    while (p < end) {
        if (*p < 0x80) {
            p++;
            continue;
        }

        n = sark_json_utf8_seq(p, end);
        if (n == 0) {
            return 0;
        }

        p += n;
    }

    return 1;
}


static int
sark_json_hex4(const unsigned char *p, unsigned *out)
{
    unsigned  i, v, c;

    v = 0;

    for (i = 0; i < 4; i++) {
        c = p[i];

        if (c >= '0' && c <= '9') {
            c -= '0';

        } else if (c >= 'a' && c <= 'f') {
            c = c - 'a' + 10;

        } else if (c >= 'A' && c <= 'F') {
            c = c - 'A' + 10;

        } else {
            return -1;
        }

        v = (v << 4) | c;
    }

    *out = v;

    return 0;
}


/*
 * The index of the first byte flagged in a mask of sark_json_special8()
 * (exact for the first one: false alarms only follow a real match); 0
 * where the byte order is not known, which makes the caller look at each
 * byte itself.
 */

static inline size_t
sark_json_first_byte(uint64_t m)
{
#if defined(__GNUC__) && defined(__BYTE_ORDER__) \
    && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    return (size_t) (__builtin_ctzll(m) >> 3);
#else
    (void) m;
    return 0;
#endif
}


/* ps->p is at the opening quote; leaves ps->p after the closing quote */

static int
sark_json_string(sark_json_parser_t *ps, const char **out, size_t *out_len)
{
    const unsigned char  *q, *s, *e;
    unsigned char        *buf, *o;
    unsigned              cp, lo;
    size_t                n;
    uint64_t              m;
    int                   plain;

    s = ps->p + 1;

    /*
     * find the closing quote first, to size the decoded buffer; a string
     * of printable ASCII without escapes (the common case) is copied as is
     */

    plain = 1;
    q = s;

    for ( ;; ) {

        /*
         * eight bytes at a time while plain, stopping at the first byte
         * that needs a closer look: about 360 instructions fewer for a
         * decision API body parsed whole (make bench-ir, about 19,500 in
         * all), more for longer strings
         */

        if (plain) {
            while (ps->end - q >= 8) {
                m = sark_json_special8(q);

                if (m) {
                    q += sark_json_first_byte(m);
                    break;
                }

                q += 8;
            }
        }

        if (q >= ps->end || *q == '"') {
            break;
        }

        if (*q < 0x20 || *q >= 0x80) {
            plain = 0;
        }

        if (*q == '\\') {
            plain = 0;
            q++;
            if (q == ps->end) {
                break;
            }
        }

        q++;
    }

    if (q >= ps->end) {
        return sark_json_fail(ps, ps->p, "unterminated string");
    }

    e = q;

    if (ps->strings == NULL) {
        ps->strings = ps->alloc(ps->actx, (size_t) (ps->end - ps->start));
        if (ps->strings == NULL) {
            return sark_json_oom(ps);
        }

        ps->strings_end = ps->strings + (ps->end - ps->start);
    }

    buf = ps->strings;

    if ((size_t) (ps->strings_end - buf) < (size_t) (e - s) + 1) {
        return sark_json_oom(ps);   /* cannot happen, see above */
    }

    if (plain) {
        memcpy(buf, s, (size_t) (e - s));
        buf[e - s] = '\0';
        ps->strings = buf + (e - s) + 1;

        *out = (const char *) buf;
        *out_len = (size_t) (e - s);

        ps->p = e + 1;

        return 0;
    }

    o = buf;

    for (q = s; q < e; /* void */) {

        if (*q < 0x20) {
            return sark_json_fail(ps, q, "control character in string");
        }

        if (*q >= 0x80) {
            n = sark_json_utf8_seq(q, e);
            if (n == 0) {
                return sark_json_fail(ps, q, "invalid UTF-8 in string");
            }

            memcpy(o, q, n);
            o += n;
            q += n;
            continue;
        }

        if (*q != '\\') {
            *o++ = *q++;
            continue;
        }

        /* escape; the scan above guarantees q + 1 < e */

        switch (q[1]) {
        case '"':  *o++ = '"';  q += 2; continue;
        case '\\': *o++ = '\\'; q += 2; continue;
        case '/':  *o++ = '/';  q += 2; continue;
        case 'b':  *o++ = '\b'; q += 2; continue;
        case 'f':  *o++ = '\f'; q += 2; continue;
        case 'n':  *o++ = '\n'; q += 2; continue;
        case 'r':  *o++ = '\r'; q += 2; continue;
        case 't':  *o++ = '\t'; q += 2; continue;
        case 'u':  break;
        default:
            return sark_json_fail(ps, q, "invalid escape in string");
        }

        if (e - q < 6 || sark_json_hex4(q + 2, &cp) != 0) {
            return sark_json_fail(ps, q, "invalid \\u escape in string");
        }

        if (cp == 0) {
            return sark_json_fail(ps, q, "\\u0000 is not allowed");
        }

        if (cp >= 0xdc00 && cp <= 0xdfff) {
            return sark_json_fail(ps, q, "unpaired surrogate in string");
        }

        if (cp >= 0xd800 && cp <= 0xdbff) {
            if (e - q < 12 || q[6] != '\\' || q[7] != 'u'
                || sark_json_hex4(q + 8, &lo) != 0
                || lo < 0xdc00 || lo > 0xdfff)
            {
                return sark_json_fail(ps, q, "unpaired surrogate in string");
            }

            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            q += 12;

        } else {
            q += 6;
        }

        if (cp < 0x80) {
            *o++ = (unsigned char) cp;

        } else if (cp < 0x800) {
            *o++ = (unsigned char) (0xc0 | (cp >> 6));
            *o++ = (unsigned char) (0x80 | (cp & 0x3f));

        } else if (cp < 0x10000) {
            *o++ = (unsigned char) (0xe0 | (cp >> 12));
            *o++ = (unsigned char) (0x80 | ((cp >> 6) & 0x3f));
            *o++ = (unsigned char) (0x80 | (cp & 0x3f));

        } else {
            *o++ = (unsigned char) (0xf0 | (cp >> 18));
            *o++ = (unsigned char) (0x80 | ((cp >> 12) & 0x3f));
            *o++ = (unsigned char) (0x80 | ((cp >> 6) & 0x3f));
            *o++ = (unsigned char) (0x80 | (cp & 0x3f));
        }
    }

    *o = '\0';
    ps->strings = o + 1;

    *out = (const char *) buf;
    *out_len = (size_t) (o - buf);

    ps->p = e + 1;

    return 0;
}


static int
sark_json_number(sark_json_parser_t *ps, sark_json_t *v)
{
    const unsigned char  *p, *s, *end;
    unsigned long long    u, lim;
    struct lconv         *lc;
    double                d;
    size_t                n, i;
    char                  small[64], *buf, *tail, dp;
    int                   neg, integral, fits;

    s = ps->p;
    p = s;
    end = ps->end;
    neg = 0;
    integral = 1;

    if (*p == '-') {
        neg = 1;
        p++;
    }

    if (p == end || !sark_json_isdigit(*p)) {
        return sark_json_fail(ps, p, "invalid number");
    }

    if (*p == '0') {
        p++;
        if (p < end && sark_json_isdigit(*p)) {
            return sark_json_fail(ps, s, "leading zero in number");
        }

    } else {
        while (p < end && sark_json_isdigit(*p)) {
            p++;
        }
    }

    if (p < end && *p == '.') {
        integral = 0;
        p++;

        if (p == end || !sark_json_isdigit(*p)) {
            return sark_json_fail(ps, p, "expected digit after '.'");
        }

        while (p < end && sark_json_isdigit(*p)) {
            p++;
        }
    }

    if (p < end && (*p == 'e' || *p == 'E')) {
        integral = 0;
        p++;

        if (p < end && (*p == '+' || *p == '-')) {
            p++;
        }

        if (p == end || !sark_json_isdigit(*p)) {
            return sark_json_fail(ps, p, "expected digit in exponent");
        }

        while (p < end && sark_json_isdigit(*p)) {
            p++;
        }
    }

    ps->p = p;
    n = (size_t) (p - s);

    if (integral) {
        /* exact integer conversion, no libc */

        lim = neg ? (unsigned long long) 1 << 63
                  : ((unsigned long long) 1 << 63) - 1;
        u = 0;
        fits = 1;

        for (i = (size_t) neg; i < n; i++) {
            if (u > (lim - (unsigned) (s[i] - '0')) / 10) {
                fits = 0;
                break;
            }

            u = u * 10 + (unsigned) (s[i] - '0');
        }

        if (fits) {
            if (neg) {
                v->ival = (u == (unsigned long long) 1 << 63)
                          ? (-0x7fffffffffffffffLL - 1)
                          : -(long long) u;

            } else {
                v->ival = (long long) u;
            }

            v->is_int = 1;
            v->num = (double) v->ival;

            return 0;
        }
    }

    /* strtod needs a NUL-terminated copy and the locale's decimal point */

    if (n < sizeof(small)) {
        buf = small;

    } else {
        buf = ps->alloc(ps->actx, n + 1);
        if (buf == NULL) {
            return sark_json_oom(ps);
        }
    }

    memcpy(buf, s, n);
    buf[n] = '\0';

    lc = localeconv();
    dp = (lc != NULL && lc->decimal_point != NULL
          && lc->decimal_point[0] != '\0' && lc->decimal_point[1] == '\0')
         ? lc->decimal_point[0] : '.';

    if (dp != '.') {
        for (i = 0; i < n; i++) {
            if (buf[i] == '.') {
                buf[i] = dp;
            }
        }
    }

    d = strtod(buf, &tail);

    if (tail != buf + n) {
        return sark_json_fail(ps, s, "invalid number");
    }

    if (d > DBL_MAX || d < -DBL_MAX) {
        return sark_json_fail(ps, s, "number out of range");
    }

    v->num = d;

    if (d >= -SARK_JSON_EXACT_INT && d <= SARK_JSON_EXACT_INT
        && (double) (long long) d == d)
    {
        v->is_int = 1;
        v->ival = (long long) d;
    }

    return 0;
}


static int
sark_json_literal(sark_json_parser_t *ps, const char *word, size_t n)
{
    if ((size_t) (ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0) {
        return sark_json_fail(ps, ps->p, "invalid literal");
    }

    ps->p += n;

    return 0;
}


static int
sark_json_key_cmp(const sark_json_t *a, const sark_json_t *b)
{
    if (a->key_len != b->key_len) {
        return a->key_len < b->key_len ? -1 : 1;
    }

    return memcmp(a->key, b->key, a->key_len);
}


/*
 * Objects with few members are checked pairwise; larger ones are merge
 * sorted (stable, bottom-up) so that equal keys become adjacent, in
 * document order.  The duplicate reported is the earliest repeated key.
 */

static int
sark_json_check_dups(sark_json_parser_t *ps, sark_json_node_t *obj)
{
    sark_json_node_t  *dup, *cand;
    sark_json_t       *a, *b, **arr, **tmp, **src, **dst, **sw;
    size_t             n, i, j, k, w, lo, mid, hi;
    unsigned char      c;
    char               msg[48];

    n = obj->v.n;
    dup = NULL;

    if (n < 2) {
        return 0;
    }

    if (n <= 8) {
        for (b = obj->v.child->next; b != NULL && dup == NULL; b = b->next) {
            for (a = obj->v.child; a != b; a = a->next) {
                if (sark_json_key_cmp(a, b) == 0) {
                    dup = (sark_json_node_t *) b;
                    break;
                }
            }
        }

    } else {
        arr = ps->alloc(ps->actx, 2 * n * sizeof(sark_json_t *));
        if (arr == NULL) {
            return sark_json_oom(ps);
        }

        tmp = arr + n;

        for (i = 0, a = obj->v.child; a != NULL; a = a->next) {
            arr[i++] = a;
        }

        src = arr;
        dst = tmp;

        for (w = 1; w < n; w *= 2) {
            for (lo = 0; lo < n; lo += 2 * w) {
                mid = (lo + w < n) ? lo + w : n;
                hi = (lo + 2 * w < n) ? lo + 2 * w : n;

                i = lo;
                j = mid;
                k = lo;

                while (i < mid && j < hi) {
                    if (sark_json_key_cmp(src[j], src[i]) < 0) {
                        dst[k++] = src[j++];

                    } else {
                        dst[k++] = src[i++];
                    }
                }

                while (i < mid) {
                    dst[k++] = src[i++];
                }

                while (j < hi) {
                    dst[k++] = src[j++];
                }
            }

            sw = src;
            src = dst;
            dst = sw;
        }

        for (i = 1; i < n; i++) {
            if (sark_json_key_cmp(src[i - 1], src[i]) == 0) {
                cand = (sark_json_node_t *) src[i];
                if (dup == NULL || cand->key_off < dup->key_off) {
                    dup = cand;
                }
            }
        }
    }

    if (dup == NULL) {
        return 0;
    }

    /* name the key, shortened and limited to printable ASCII */

    k = 0;
    for (i = 0; i < dup->v.key_len && i < 32; i++) {
        c = (unsigned char) dup->v.key[i];
        msg[k++] = (c < 0x20 || c > 0x7e || c == '"' || c == '\\')
                   ? '?' : (char) c;
    }

    if (dup->v.key_len > 32) {
        memcpy(msg + k, "...", 3);
        k += 3;
    }

    msg[k] = '\0';

    if (ps->err != NULL && ps->err_len > 0) {
        snprintf(ps->err, ps->err_len,
                 "invalid JSON at offset %zu: duplicate key \"%s\"",
                 dup->key_off, msg);
    }

    return -1;
}


int
sark_json_parse(const unsigned char *buf, size_t len, unsigned max_depth,
    sark_json_alloc_pt alloc, void *actx, sark_json_t **root,
    char *err, size_t err_len)
{
    sark_json_parser_t   ps;
    sark_json_node_t    *cur, *node, *top;
    sark_json_state_e    st;
    const char          *key;
    size_t               key_len, key_off;
    unsigned             depth;
    unsigned char        c;
    int                  rc;

    if (err != NULL && err_len > 0) {
        err[0] = '\0';
    }

    *root = NULL;

    if (buf == NULL) {
        buf = (const unsigned char *) "";
        len = 0;
    }

    ps.start = buf;
    ps.p = buf;
    ps.end = buf + len;
    ps.alloc = alloc;
    ps.actx = actx;
    ps.err = err;
    ps.err_len = err_len;
    ps.strings = NULL;
    ps.strings_end = NULL;
    ps.nodes = NULL;
    ps.nodes_left = 0;

    if (len >= 3 && buf[0] == 0xef && buf[1] == 0xbb && buf[2] == 0xbf) {
        return sark_json_fail(&ps, buf, "byte order mark not allowed");
    }

    cur = NULL;
    top = NULL;
    depth = 0;
    key = NULL;
    key_len = 0;
    key_off = 0;
    st = SARK_JSON_ST_VALUE;

    for ( ;; ) {

        switch (st) {

        case SARK_JSON_ST_VALUE:

            sark_json_skip_ws(&ps);

            if (ps.p == ps.end) {
                return sark_json_fail(&ps, ps.p, "unexpected end of input");
            }

            if (ps.nodes_left == 0) {
                ps.nodes = alloc(actx, SARK_JSON_NODES_CHUNK
                                       * sizeof(sark_json_node_t));
                if (ps.nodes == NULL) {
                    return sark_json_oom(&ps);
                }

                ps.nodes_left = SARK_JSON_NODES_CHUNK;
            }

            node = ps.nodes++;
            ps.nodes_left--;

            memset(node, 0, sizeof(sark_json_node_t));
            node->v.raw = ps.p;

            if (cur == NULL) {
                top = node;

            } else {
                if (cur->last == NULL) {
                    cur->v.child = &node->v;

                } else {
                    cur->last->next = &node->v;
                }

                cur->last = &node->v;
                cur->v.n++;

                if (cur->v.type == SARK_JSON_OBJECT) {
                    node->v.key = key;
                    node->v.key_len = key_len;
                    node->key_off = key_off;
                }
            }

            c = *ps.p;

            if (c == '{' || c == '[') {
                if (depth >= max_depth) {
                    if (err != NULL && err_len > 0) {
                        snprintf(err, err_len,
                                 "invalid JSON at offset %zu: "
                                 "nesting deeper than %u",
                                 (size_t) (ps.p - buf), max_depth);
                    }

                    return -1;
                }

                depth++;
                node->v.type = (c == '{') ? SARK_JSON_OBJECT
                                          : SARK_JSON_ARRAY;
                node->parent = cur;
                cur = node;
                ps.p++;

                sark_json_skip_ws(&ps);

                if (ps.p < ps.end && *ps.p == (c == '{' ? '}' : ']')) {
                    ps.p++;
                    st = SARK_JSON_ST_CLOSE;

                } else {
                    st = (c == '{') ? SARK_JSON_ST_MEMBER : SARK_JSON_ST_VALUE;
                }

                continue;
            }

            switch (c) {
            case '"':
                node->v.type = SARK_JSON_STRING;
                rc = sark_json_string(&ps, &node->v.str, &node->v.len);
                break;

            case 't':
                node->v.type = SARK_JSON_TRUE;
                rc = sark_json_literal(&ps, "true", 4);
                break;

            case 'f':
                node->v.type = SARK_JSON_FALSE;
                rc = sark_json_literal(&ps, "false", 5);
                break;

            case 'n':
                node->v.type = SARK_JSON_NULL;
                rc = sark_json_literal(&ps, "null", 4);
                break;

            default:
                if (c == '-' || sark_json_isdigit(c)) {
                    node->v.type = SARK_JSON_NUMBER;
                    rc = sark_json_number(&ps, &node->v);

                } else if (c == ']' || c == '}' || c == ',') {
                    rc = sark_json_fail(&ps, ps.p, "expected a value");

                } else {
                    rc = sark_json_fail(&ps, ps.p, "unexpected character");
                }
            }

            if (rc != 0) {
                return -1;
            }

            node->v.raw_len = (size_t) (ps.p - node->v.raw);
            st = SARK_JSON_ST_AFTER;
            continue;

        case SARK_JSON_ST_MEMBER:

            /* cur is an object, ps.p is at a non-space byte or the end */

            if (ps.p == ps.end) {
                return sark_json_fail(&ps, ps.p, "unexpected end of input");
            }

            if (*ps.p != '"') {
                return sark_json_fail(&ps, ps.p, "expected string key");
            }

            key_off = (size_t) (ps.p - buf);

            if (sark_json_string(&ps, &key, &key_len) != 0) {
                return -1;
            }

            sark_json_skip_ws(&ps);

            if (ps.p == ps.end || *ps.p != ':') {
                return sark_json_fail(&ps, ps.p, "expected ':'");
            }

            ps.p++;
            st = SARK_JSON_ST_VALUE;
            continue;

        case SARK_JSON_ST_CLOSE:

            /* cur has just been closed, ps.p is after its bracket */

            node = cur;
            node->v.raw_len = (size_t) (ps.p - node->v.raw);

            if (node->v.type == SARK_JSON_OBJECT
                && sark_json_check_dups(&ps, node) != 0)
            {
                return -1;
            }

            depth--;
            cur = node->parent;
            st = SARK_JSON_ST_AFTER;
            continue;

        case SARK_JSON_ST_AFTER:

            sark_json_skip_ws(&ps);

            if (cur == NULL) {
                if (ps.p != ps.end) {
                    return sark_json_fail(&ps, ps.p,
                                          "trailing characters after value");
                }

                *root = &top->v;
                return 0;
            }

            if (ps.p == ps.end) {
                return sark_json_fail(&ps, ps.p, "unexpected end of input");
            }

            c = *ps.p;

            if (cur->v.type == SARK_JSON_ARRAY) {
                if (c == ',') {
                    ps.p++;
                    st = SARK_JSON_ST_VALUE;

                } else if (c == ']') {
                    ps.p++;
                    st = SARK_JSON_ST_CLOSE;

                } else {
                    return sark_json_fail(&ps, ps.p, "expected ',' or ']'");
                }

            } else {
                if (c == ',') {
                    ps.p++;
                    sark_json_skip_ws(&ps);
                    st = SARK_JSON_ST_MEMBER;

                } else if (c == '}') {
                    ps.p++;
                    st = SARK_JSON_ST_CLOSE;

                } else {
                    return sark_json_fail(&ps, ps.p, "expected ',' or '}'");
                }
            }

            continue;
        }
    }
}


const sark_json_t *
sark_json_get_n(const sark_json_t *obj, const char *key, size_t key_len)
{
    const sark_json_t  *m;

    if (obj == NULL || obj->type != SARK_JSON_OBJECT || key == NULL) {
        return NULL;
    }

    for (m = obj->child; m != NULL; m = m->next) {
        if (m->key_len == key_len && memcmp(m->key, key, key_len) == 0) {
            return m;
        }
    }

    return NULL;
}


const sark_json_t *
sark_json_get(const sark_json_t *obj, const char *key)
{
    if (key == NULL) {
        return NULL;
    }

    return sark_json_get_n(obj, key, strlen(key));
}


/*
 * The only recursion in this file: it follows the nesting of trees the
 * parser made, so its depth is bounded by their max_depth.
 */

static int
sark_json_equal_r(const sark_json_t *a, const sark_json_t *b, size_t *budget)
{
    const sark_json_t  *x, *y, *start;

    if (*budget == 0) {
        return 0;
    }

    (*budget)--;

    if (a->type != b->type) {
        return 0;
    }

    switch (a->type) {

    case SARK_JSON_NULL:
    case SARK_JSON_FALSE:
    case SARK_JSON_TRUE:
        return 1;

    case SARK_JSON_NUMBER:
        if (a->is_int && b->is_int) {
            return a->ival == b->ival;
        }

        return a->num == b->num;

    case SARK_JSON_STRING:
        return a->len == b->len && memcmp(a->str, b->str, a->len) == 0;

    case SARK_JSON_ARRAY:
        if (a->n != b->n) {
            return 0;
        }

        for (x = a->child, y = b->child; x != NULL; x = x->next, y = y->next)
        {
            if (!sark_json_equal_r(x, y, budget)) {
                return 0;
            }
        }

        return 1;

    default: /* SARK_JSON_OBJECT: names are unique, counts equal */
        if (a->n != b->n) {
            return 0;
        }

        /*
         * each name of a is looked for in b from the member after the
         * last one found, wrapping around: members in the same order cost
         * one step each
         */

        start = b->child;

        for (x = a->child; x != NULL; x = x->next) {

            y = start;

            do {
                if (*budget == 0) {
                    return 0;
                }

                (*budget)--;

                if (y->key_len == x->key_len
                    && memcmp(y->key, x->key, x->key_len) == 0)
                {
                    break;
                }

                y = (y->next != NULL) ? y->next : b->child;

            } while (y != start);

            if (y->key_len != x->key_len
                || memcmp(y->key, x->key, x->key_len) != 0
                || !sark_json_equal_r(x, y, budget))
            {
                return 0;
            }

            start = (y->next != NULL) ? y->next : b->child;
        }

        return 1;
    }
}


int
sark_json_equal(const sark_json_t *a, const sark_json_t *b, size_t budget)
{
    if (a == NULL || b == NULL) {
        return 0;
    }

    return sark_json_equal_r(a, b, &budget);
}


size_t
sark_json_escaped_len(const char *s, size_t len)
{
    const unsigned char  *p, *end;
    size_t                n, k;

    p = (const unsigned char *) s;
    end = p + len;
    n = 0;

    while (p < end) {
        if (*p >= 0x80) {
            k = sark_json_utf8_seq(p, end);
            if (k == 0) {
                n += 6;
                p++;

            } else {
                n += k;
                p += k;
            }

            continue;
        }

        switch (*p) {
        case '"': case '\\': case '\b': case '\f':
        case '\n': case '\r': case '\t':
            n += 2;
            break;

        default:
            n += (*p < 0x20) ? 6 : 1;
        }

        p++;
    }

    return n;
}


int
sark_json_escape(const char *s, size_t len, unsigned char *out,
    size_t out_cap, size_t *out_len)
{
    static const char     hex[] = "0123456789abcdef";
    const unsigned char  *p, *end;
    unsigned char        *o;
    size_t                need, k;

    need = sark_json_escaped_len(s, len);
    *out_len = need;

    if (need > out_cap) {
        return -1;
    }

    p = (const unsigned char *) s;
    end = p + len;
    o = out;

    while (p < end) {
        if (*p >= 0x80) {
            k = sark_json_utf8_seq(p, end);
            if (k == 0) {
                memcpy(o, "\\ufffd", 6);
                o += 6;
                p++;

            } else {
                memcpy(o, p, k);
                o += k;
                p += k;
            }

            continue;
        }

        switch (*p) {
        case '"':  *o++ = '\\'; *o++ = '"';  break;
        case '\\': *o++ = '\\'; *o++ = '\\'; break;
        case '\b': *o++ = '\\'; *o++ = 'b';  break;
        case '\f': *o++ = '\\'; *o++ = 'f';  break;
        case '\n': *o++ = '\\'; *o++ = 'n';  break;
        case '\r': *o++ = '\\'; *o++ = 'r';  break;
        case '\t': *o++ = '\\'; *o++ = 't';  break;

        default:
            if (*p < 0x20) {
                *o++ = '\\';
                *o++ = 'u';
                *o++ = '0';
                *o++ = '0';
                *o++ = (unsigned char) hex[*p >> 4];
                *o++ = (unsigned char) hex[*p & 0xf];

            } else {
                *o++ = *p;
            }
        }

        p++;
    }

    return 0;
}
