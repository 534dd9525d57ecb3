/*
 * Shared by the Check suites of the module's pure-C helpers: a fast CHECK
 * for hot loops, and an allocator in the shape the helpers expect (one
 * malloc per call, all freed together, optionally failing after N calls).
 */

#ifndef SARK_TEST_ARENA_H_INCLUDED_
#define SARK_TEST_ARENA_H_INCLUDED_

#include <check.h>
#include <stdlib.h>
#include <string.h>


/*
 * ck_assert() records its location through a file in CK_FORK=no mode,
 * which is slow under valgrind; hot loops use this instead.
 */
#define CHECK(e)                                                              \
    do {                                                                      \
        if (!(e)) {                                                           \
            ck_abort_msg("%s:%d: check failed: %s", __FILE__, __LINE__, #e); \
        }                                                                     \
    } while (0)


/* allocator: one malloc per call, all freed together */

typedef union arena_hdr_u  arena_hdr_t;

union arena_hdr_u {
    arena_hdr_t  *next;
    long double   ld;
    long long     ll;
    void         *p;
};

typedef struct {
    arena_hdr_t  *head;
    size_t        count;
    size_t        fail_after;       /* with limited: NULL from then on */
    int           limited;
} arena_t;


static inline void *
arena_alloc(void *ctx, size_t size)
{
    arena_t      *a = ctx;
    arena_hdr_t  *h;

    if (a->limited && a->count >= a->fail_after) {
        return NULL;
    }

    h = malloc(sizeof(arena_hdr_t) + size);
    CHECK(h != NULL);

    h->next = a->head;
    a->head = h;
    a->count++;

    return h + 1;
}


static inline void
arena_reset(arena_t *a)
{
    arena_hdr_t  *h, *next;

    for (h = a->head; h != NULL; h = next) {
        next = h->next;
        free(h);
    }

    memset(a, 0, sizeof(arena_t));
}


#endif /* SARK_TEST_ARENA_H_INCLUDED_ */
