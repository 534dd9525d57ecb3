/*
 * Glob matching with Redis' semantics (KEYS / SCAN MATCH / PSUBSCRIBE):
 * `*` any run of bytes (including ':'), `?` one byte, `[abc]`, `[^a]`,
 * `[a-z]` classes (a range may end in ']'), `\x` the byte x; an empty
 * string is matched only by "" and "*".  Used by the nginx module (L1) and
 * sarkd (L2) so that an invalidation pattern means the same on both.
 *
 * Iterative with single-star backtracking: O(len(p) * len(s)) worst case,
 * no recursion.  C and C++ safe.
 */

#ifndef SARK_GLOB_H_INCLUDED_
#define SARK_GLOB_H_INCLUDED_

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif


/*
 * Matches one class starting at p[*pi] == '['; advances *pi past the
 * closing ']' (or to the end for an unterminated class, which then matches
 * like Redis: the bytes seen so far form the class).
 */
static inline int
sark_glob_class(const unsigned char *p, size_t plen, size_t *pi,
    unsigned char c)
{
    int     neg, match;
    size_t  i;

    i = *pi + 1;
    neg = (i < plen && p[i] == '^');

    if (neg) {
        i++;
    }

    match = 0;

    while (i < plen && p[i] != ']') {
        if (p[i] == '\\' && i + 1 < plen) {
            i++;

            if (p[i] == c) {
                match = 1;
            }

            i++;

        } else if (i + 2 < plen && p[i + 1] == '-') {
            unsigned char  lo = p[i], hi = p[i + 2];

            if (lo > hi) {
                unsigned char  t = lo;
                lo = hi;
                hi = t;
            }

            if (c >= lo && c <= hi) {
                match = 1;
            }

            i += 3;

        } else {
            if (p[i] == c) {
                match = 1;
            }

            i++;
        }
    }

    *pi = (i < plen) ? i + 1 : i;

    return neg ? !match : match;
}


static inline int
sark_glob_match(const char *pattern, size_t plen, const char *string,
    size_t slen)
{
    const unsigned char  *p = (const unsigned char *) pattern;
    const unsigned char  *s = (const unsigned char *) string;
    size_t                pi, si, star_p, star_s, next;
    int                   have_star;

    if (slen == 0) {
        /* Redis' matcher never enters its loop for an empty string */
        return plen == 0 || (plen == 1 && p[0] == '*');
    }

    pi = 0;
    si = 0;
    have_star = 0;
    star_p = 0;
    star_s = 0;

    while (si < slen) {

        if (pi < plen) {

            switch (p[pi]) {

            case '*':
                while (pi < plen && p[pi] == '*') {
                    pi++;
                }

                if (pi == plen) {
                    return 1;
                }

                have_star = 1;
                star_p = pi;
                star_s = si;
                continue;

            case '?':
                pi++;
                si++;
                continue;

            case '[':
                next = pi;

                if (sark_glob_class(p, plen, &next, s[si])) {
                    pi = next;
                    si++;
                    continue;
                }

                break;

            case '\\':
                if (pi + 1 < plen && p[pi + 1] == s[si]) {
                    pi += 2;
                    si++;
                    continue;
                }

                if (pi + 1 == plen && s[si] == '\\') {
                    pi++;
                    si++;
                    continue;
                }

                break;

            default:
                if (p[pi] == s[si]) {
                    pi++;
                    si++;
                    continue;
                }

                break;
            }
        }

        if (!have_star) {
            return 0;
        }

        /* let the last star swallow one more byte and retry */
        pi = star_p;
        si = ++star_s;
    }

    while (pi < plen && p[pi] == '*') {
        pi++;
    }

    return pi == plen;
}


#ifdef __cplusplus
}
#endif

#endif /* SARK_GLOB_H_INCLUDED_ */
