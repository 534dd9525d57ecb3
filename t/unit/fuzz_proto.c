/*
 * Fuzz entry for the wire protocol codec, shared/sark_proto.h.
 *
 * With libFuzzer:
 *   clang -std=c11 -g -DSARK_LIBFUZZER -fsanitize=fuzzer,address,undefined \
 *       -Ishared t/unit/fuzz_proto.c -o build/fuzz_proto
 * Without it (gcc), main() replays the files named on the command line, or
 * standard input when there are none:
 *   gcc -std=c11 -g -fsanitize=address,undefined -Ishared \
 *       t/unit/fuzz_proto.c -o build/fuzz_proto_replay
 *
 * The input is read as a stream of frames: each header is decoded, the
 * payload walked as TLV fields, and the fields are re-encoded and compared.
 * Any broken invariant aborts.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sark_proto.h"


#define FUZZ_ASSERT(cond)                                                    \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "fuzz_proto: %s:%d: %s\n",                       \
                    __FILE__, __LINE__, #cond);                              \
            abort();                                                         \
        }                                                                    \
    } while (0)


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


/* Walks a payload; re-encodes every field into `out` and compares. */
static void
fuzz_payload(const uint8_t *p, size_t len)
{
    int         rc;
    size_t      off, prev, outlen, steps;
    uint8_t     u8, *out;
    uint32_t    u32;
    uint64_t    u64;
    sark_tlv_t  t;

    out = malloc(len ? len : 1);
    FUZZ_ASSERT(out != NULL);

    off = 0;
    outlen = 0;
    steps = 0;

    for ( ;; ) {
        prev = off;
        rc = sark_tlv_next(p, len, &off, &t);

        if (rc != SARK_PROTO_OK) {
            break;
        }

        steps++;

        FUZZ_ASSERT(off > prev && off <= len);
        FUZZ_ASSERT(off - prev == sark_tlv_size(t.len));
        FUZZ_ASSERT(t.value >= p && t.value + t.len <= p + len);
        FUZZ_ASSERT(steps <= len / SARK_PROTO_TLV_HDR_LEN);

        if (sark_tlv_u8(&t, &u8)) {
            FUZZ_ASSERT(t.len == 1 && u8 == t.value[0]);
        }

        if (sark_tlv_u32(&t, &u32)) {
            FUZZ_ASSERT(t.len == 4 && u32 == sark_get_u32(t.value));
        }

        if (sark_tlv_u64(&t, &u64)) {
            FUZZ_ASSERT(t.len == 8 && u64 == sark_get_u64(t.value));
        }

        /* what was read fits where it came from, byte for byte */
        FUZZ_ASSERT(sark_tlv_put(out, off, &outlen, t.tag, t.value, t.len)
                    == SARK_PROTO_OK);
        FUZZ_ASSERT(outlen == off);
        FUZZ_ASSERT(memcmp(out + prev, p + prev, off - prev) == 0);

        /* and one byte less is refused without writing */
        outlen = prev;
        FUZZ_ASSERT(sark_tlv_put(out, off - 1, &outlen, t.tag, t.value,
                                 t.len)
                    == SARK_PROTO_ERR_NOSPACE);
        FUZZ_ASSERT(outlen == prev);
        outlen = off;
    }

    FUZZ_ASSERT(off == prev);
    FUZZ_ASSERT(rc == SARK_PROTO_ERR_TRUNCATED
                || (rc == SARK_PROTO_END && off == len));

    free(out);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int               rc;
    size_t            pos;
    uint8_t           again[SARK_PROTO_HDR_LEN];
    sark_frame_hdr_t  h;

    static const uint8_t  empty[1];

    if (data == NULL) {
        data = empty;
        size = 0;
    }

    /* the whole input as one payload */
    fuzz_payload(data, size);

    /* the input as a stream of frames */
    pos = 0;

    for ( ;; ) {
        rc = sark_frame_hdr_decode(data + pos, size - pos, &h);

        if (rc == SARK_PROTO_AGAIN) {
            FUZZ_ASSERT(size - pos < SARK_PROTO_HDR_LEN);
            break;
        }

        if (rc != SARK_PROTO_OK) {
            FUZZ_ASSERT(rc == SARK_PROTO_ERR_MAGIC
                        || rc == SARK_PROTO_ERR_VERSION
                        || rc == SARK_PROTO_ERR_TYPE
                        || rc == SARK_PROTO_ERR_TOO_LARGE);
            break;
        }

        FUZZ_ASSERT(h.version == SARK_PROTO_VERSION);
        FUZZ_ASSERT(h.type >= 1 && h.type <= SARK_MSG_TYPE_MAX);
        FUZZ_ASSERT(h.length <= SARK_PROTO_MAX_PAYLOAD);

        sark_frame_hdr_encode(again, &h);
        FUZZ_ASSERT(memcmp(again, data + pos, 6) == 0);
        FUZZ_ASSERT(memcmp(again + 8, data + pos + 8, 8) == 0);

        pos += SARK_PROTO_HDR_LEN;

        if (h.length > size - pos) {
            /* what has arrived of a partial payload */
            fuzz_payload(data + pos, size - pos);
            break;
        }

        fuzz_payload(data + pos, h.length);
        pos += h.length;
    }

    return 0;
}


#ifndef SARK_LIBFUZZER

static int
replay(FILE *f, const char *name)
{
    size_t    len, cap, n;
    uint8_t  *buf, *p;

    len = 0;
    cap = 4096;
    buf = malloc(cap);

    if (buf == NULL) {
        fprintf(stderr, "fuzz_proto: %s: out of memory\n", name);
        return -1;
    }

    for ( ;; ) {
        if (len == cap) {
            cap *= 2;
            p = realloc(buf, cap);

            if (p == NULL) {
                fprintf(stderr, "fuzz_proto: %s: out of memory\n", name);
                free(buf);
                return -1;
            }

            buf = p;
        }

        n = fread(buf + len, 1, cap - len, f);

        if (n == 0) {
            break;
        }

        len += n;
    }

    if (ferror(f)) {
        fprintf(stderr, "fuzz_proto: %s: read error\n", name);
        free(buf);
        return -1;
    }

    /* an exact-size copy, so that ASan sees any overread */
    p = malloc(len ? len : 1);

    if (p == NULL) {
        fprintf(stderr, "fuzz_proto: %s: out of memory\n", name);
        free(buf);
        return -1;
    }

    if (len) {
        memcpy(p, buf, len);
    }

    free(buf);

    LLVMFuzzerTestOneInput(p, len);
    free(p);

    return 0;
}


int
main(int argc, char **argv)
{
    int    i, failed;
    FILE  *f;

    if (argc < 2) {
        return replay(stdin, "<stdin>") == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
    }

    failed = 0;

    for (i = 1; i < argc; i++) {
        f = fopen(argv[i], "rb");

        if (f == NULL) {
            perror(argv[i]);
            failed++;
            continue;
        }

        if (replay(f, argv[i]) != 0) {
            failed++;
        }

        fclose(f);
    }

    printf("fuzz_proto: %d file(s) replayed, %d failed\n", argc - 1, failed);

    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#endif
