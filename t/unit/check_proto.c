/*
 * Unit tests of the wire protocol codec, shared/sark_proto.h: frame header
 * encode/decode, TLV put/next and the fixed-width accessors, truncation at
 * every cut point, and a deterministic fuzz pass (also run under ASan).
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "sark_proto.h"


#define FUZZ_ROUNDS    100000
#define FUZZ_MAX_LEN   96
#define FILL           0xee


typedef struct {
    uint16_t        tag;
    uint32_t        len;
    const char     *value;
} field_t;


/* Reference payload for the truncation tests, and its byte boundaries. */
static const field_t  ref_fields[] = {
    { 0x0001, 5, "hello" },
    { 0x0002, 0, NULL },
    { 0x0003, 4, "\x00\x00\x01\x2c" },
    { 0xffff, 20, "0123456789abcdefghij" },
    { 0x0000, 0, NULL },
};

#define REF_NFIELDS  (sizeof(ref_fields) / sizeof(ref_fields[0]))
#define REF_LEN      (5 * SARK_PROTO_TLV_HDR_LEN + 5 + 0 + 4 + 20 + 0)


static size_t
ref_payload(uint8_t *buf, size_t cap)
{
    size_t  i, off;

    off = 0;

    for (i = 0; i < REF_NFIELDS; i++) {
        ck_assert_int_eq(sark_tlv_put(buf, cap, &off, ref_fields[i].tag,
                                      ref_fields[i].value, ref_fields[i].len),
                         SARK_PROTO_OK);
    }

    ck_assert_uint_eq(off, REF_LEN);

    return off;
}


/* A copy of `len` bytes in a heap block of exactly that size (ASan). */
static uint8_t *
exact_copy(const uint8_t *src, size_t len)
{
    uint8_t  *p;

    p = malloc(len ? len : 1);
    ck_assert_ptr_nonnull(p);

    if (len) {
        memcpy(p, src, len);
    }

    return p;
}


static void
valid_hdr(uint8_t *p, uint8_t type, uint32_t length)
{
    sark_frame_hdr_t  h;

    memset(&h, 0, sizeof(h));
    h.type = type;
    h.flags = 0x0102;
    h.id = 42;
    h.length = length;

    sark_frame_hdr_encode(p, &h);
}


/* frame header */

START_TEST(test_hdr_round_trip)
{
    size_t             i;
    uint8_t            type, buf[SARK_PROTO_HDR_LEN + 4];
    sark_frame_hdr_t   in, out;

    static const struct {
        uint16_t  flags;
        uint32_t  id;
        uint32_t  length;
    } cases[] = {
        { 0, 0, 0 },
        { 1, 1, 1 },
        { 0x1234, 0x89abcdef, 4096 },
        { 0xffff, 0xffffffff, SARK_PROTO_MAX_PAYLOAD },
    };

    for (type = 1; type <= SARK_MSG_TYPE_MAX; type++) {
        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
            memset(buf, FILL, sizeof(buf));
            memset(&in, 0, sizeof(in));
            in.type = type;
            in.flags = cases[i].flags;
            in.id = cases[i].id;
            in.length = cases[i].length;

            sark_frame_hdr_encode(buf, &in);

            /* nothing written past the header */
            ck_assert_uint_eq(buf[SARK_PROTO_HDR_LEN], FILL);
            ck_assert_uint_eq(buf[SARK_PROTO_HDR_LEN + 3], FILL);

            memset(&out, 0, sizeof(out));
            ck_assert_int_eq(sark_frame_hdr_decode(buf, SARK_PROTO_HDR_LEN,
                                                   &out),
                             SARK_PROTO_OK);
            ck_assert_uint_eq(out.version, SARK_PROTO_VERSION);
            ck_assert_uint_eq(out.type, in.type);
            ck_assert_uint_eq(out.flags, in.flags);
            ck_assert_uint_eq(out.id, in.id);
            ck_assert_uint_eq(out.length, in.length);
        }
    }
}
END_TEST


START_TEST(test_hdr_layout)
{
    uint8_t            buf[SARK_PROTO_HDR_LEN];
    sark_frame_hdr_t   h;

    static const uint8_t  want[SARK_PROTO_HDR_LEN] = {
        0x53, 0x4b,                 /* magic "SK" */
        0x02,                       /* version */
        0x02,                       /* type AUTHZ_RESP */
        0xa1, 0xb2,                 /* flags */
        0x00, 0x00,                 /* reserved */
        0x01, 0x02, 0x03, 0x04,     /* id */
        0x00, 0x05, 0x06, 0x07,     /* length */
    };

    memset(&h, 0, sizeof(h));
    h.version = 9;                  /* ignored: the encoder writes ours */
    h.type = SARK_MSG_AUTHZ_RESP;
    h.flags = 0xa1b2;
    h.id = 0x01020304;
    h.length = 0x00050607;

    memset(buf, FILL, sizeof(buf));
    sark_frame_hdr_encode(buf, &h);

    ck_assert_mem_eq(buf, want, sizeof(want));
}
END_TEST


START_TEST(test_hdr_decode_vector)
{
    sark_frame_hdr_t  h;

    static const uint8_t  in[SARK_PROTO_HDR_LEN + 3] = {
        0x53, 0x4b, 0x02, 0x05,
        0x80, 0x01, 0x00, 0x00,
        0xde, 0xad, 0xbe, 0xef,
        0x00, 0x40, 0x00, 0x00,     /* 4 MiB: exactly the maximum */
        0xff, 0xff, 0xff,           /* payload bytes, not looked at */
    };

    ck_assert_int_eq(sark_frame_hdr_decode(in, sizeof(in), &h),
                     SARK_PROTO_OK);
    ck_assert_uint_eq(h.version, 2);
    ck_assert_uint_eq(h.type, SARK_MSG_ERROR);
    ck_assert_uint_eq(h.flags, 0x8001);
    ck_assert_uint_eq(h.id, 0xdeadbeef);
    ck_assert_uint_eq(h.length, SARK_PROTO_MAX_PAYLOAD);
}
END_TEST


START_TEST(test_hdr_bad_magic)
{
    uint8_t           buf[SARK_PROTO_HDR_LEN];
    sark_frame_hdr_t  h;

    valid_hdr(buf, SARK_MSG_PING, 0);
    buf[0] = 'K';
    buf[1] = 'S';
    ck_assert_int_eq(sark_frame_hdr_decode(buf, sizeof(buf), &h),
                     SARK_PROTO_ERR_MAGIC);

    valid_hdr(buf, SARK_MSG_PING, 0);
    buf[0] ^= 0x01;
    ck_assert_int_eq(sark_frame_hdr_decode(buf, sizeof(buf), &h),
                     SARK_PROTO_ERR_MAGIC);

    valid_hdr(buf, SARK_MSG_PING, 0);
    buf[1] ^= 0x80;
    ck_assert_int_eq(sark_frame_hdr_decode(buf, sizeof(buf), &h),
                     SARK_PROTO_ERR_MAGIC);

    /* magic is checked first */
    valid_hdr(buf, SARK_MSG_PING, 0);
    buf[0] = 0;
    buf[2] = 7;
    buf[3] = 0;
    ck_assert_int_eq(sark_frame_hdr_decode(buf, sizeof(buf), &h),
                     SARK_PROTO_ERR_MAGIC);
}
END_TEST


START_TEST(test_hdr_bad_version)
{
    unsigned          v;
    uint8_t           buf[SARK_PROTO_HDR_LEN];
    sark_frame_hdr_t  h;

    for (v = 0; v <= 0xff; v++) {
        if (v == SARK_PROTO_VERSION) {
            continue;
        }

        valid_hdr(buf, SARK_MSG_PING, 0);
        buf[2] = (uint8_t) v;
        ck_assert_int_eq(sark_frame_hdr_decode(buf, sizeof(buf), &h),
                         SARK_PROTO_ERR_VERSION);
    }

    /* version before type */
    valid_hdr(buf, SARK_MSG_PING, 0);
    buf[2] = SARK_PROTO_VERSION + 1;
    buf[3] = 0;
    ck_assert_int_eq(sark_frame_hdr_decode(buf, sizeof(buf), &h),
                     SARK_PROTO_ERR_VERSION);
}
END_TEST


START_TEST(test_hdr_bad_type)
{
    unsigned          t;
    uint8_t           buf[SARK_PROTO_HDR_LEN];
    sark_frame_hdr_t  h;

    valid_hdr(buf, 0, 0);
    ck_assert_int_eq(sark_frame_hdr_decode(buf, sizeof(buf), &h),
                     SARK_PROTO_ERR_TYPE);

    for (t = SARK_MSG_TYPE_MAX + 1; t <= 0xff; t++) {
        valid_hdr(buf, (uint8_t) t, 0);
        ck_assert_int_eq(sark_frame_hdr_decode(buf, sizeof(buf), &h),
                         SARK_PROTO_ERR_TYPE);
    }

    /* type before length */
    valid_hdr(buf, 0, 0xffffffff);
    ck_assert_int_eq(sark_frame_hdr_decode(buf, sizeof(buf), &h),
                     SARK_PROTO_ERR_TYPE);
}
END_TEST


START_TEST(test_hdr_too_large)
{
    uint8_t           buf[SARK_PROTO_HDR_LEN];
    sark_frame_hdr_t  h;

    valid_hdr(buf, SARK_MSG_AUTHZ_REQ, SARK_PROTO_MAX_PAYLOAD);
    ck_assert_int_eq(sark_frame_hdr_decode(buf, sizeof(buf), &h),
                     SARK_PROTO_OK);

    valid_hdr(buf, SARK_MSG_AUTHZ_REQ, SARK_PROTO_MAX_PAYLOAD + 1);
    ck_assert_int_eq(sark_frame_hdr_decode(buf, sizeof(buf), &h),
                     SARK_PROTO_ERR_TOO_LARGE);

    valid_hdr(buf, SARK_MSG_AUTHZ_REQ, 0x80000000u);
    ck_assert_int_eq(sark_frame_hdr_decode(buf, sizeof(buf), &h),
                     SARK_PROTO_ERR_TOO_LARGE);

    valid_hdr(buf, SARK_MSG_AUTHZ_REQ, 0xffffffff);
    ck_assert_int_eq(sark_frame_hdr_decode(buf, sizeof(buf), &h),
                     SARK_PROTO_ERR_TOO_LARGE);
}
END_TEST


/* _i = number of bytes available, 0..15 */
START_TEST(test_hdr_again)
{
    uint8_t           full[SARK_PROTO_HDR_LEN], *p;
    sark_frame_hdr_t  h, before;

    memset(&h, 0x5a, sizeof(h));
    before = h;

    /* a valid prefix */
    valid_hdr(full, SARK_MSG_AUTHZ_REQ, 10);
    p = exact_copy(full, (size_t) _i);
    ck_assert_int_eq(sark_frame_hdr_decode(p, (size_t) _i, &h),
                     SARK_PROTO_AGAIN);
    free(p);

    /* garbage: length is checked before anything else */
    memset(full, 0xff, sizeof(full));
    p = exact_copy(full, (size_t) _i);
    ck_assert_int_eq(sark_frame_hdr_decode(p, (size_t) _i, &h),
                     SARK_PROTO_AGAIN);
    free(p);

    ck_assert_mem_eq(&h, &before, sizeof(h));
}
END_TEST


START_TEST(test_strerror)
{
    size_t  i, j;

    static const int  codes[] = {
        SARK_PROTO_OK, SARK_PROTO_AGAIN, SARK_PROTO_END,
        SARK_PROTO_ERR_MAGIC, SARK_PROTO_ERR_VERSION, SARK_PROTO_ERR_TYPE,
        SARK_PROTO_ERR_TOO_LARGE, SARK_PROTO_ERR_TRUNCATED,
        SARK_PROTO_ERR_NOSPACE,
    };

    for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        ck_assert_str_ne(sark_proto_strerror(codes[i]), "unknown error");

        for (j = 0; j < i; j++) {
            ck_assert_str_ne(sark_proto_strerror(codes[i]),
                             sark_proto_strerror(codes[j]));
        }
    }

    ck_assert_str_eq(sark_proto_strerror(-100), "unknown error");
    ck_assert_str_eq(sark_proto_strerror(3), "unknown error");
}
END_TEST


/* TLV */

START_TEST(test_tlv_layout)
{
    size_t   off;
    uint8_t  buf[64];

    static const uint8_t  want[] = {
        0x01, 0x02, 0x00, 0x00, 0x00, 0x03, 'a', 'b', 'c',
        0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x7f,
        0x00, 0x04, 0x00, 0x00, 0x00, 0x04, 0xa0, 0xb0, 0xc0, 0xd0,
        0x00, 0x07, 0x00, 0x00, 0x00, 0x08,
        0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
        0xff, 0xfe, 0x00, 0x00, 0x00, 0x00,
    };

    memset(buf, FILL, sizeof(buf));
    off = 0;

    ck_assert_int_eq(sark_tlv_put(buf, sizeof(buf), &off, 0x0102, "abc", 3),
                     SARK_PROTO_OK);
    ck_assert_int_eq(sark_tlv_put_u8(buf, sizeof(buf), &off, 1, 0x7f),
                     SARK_PROTO_OK);
    ck_assert_int_eq(sark_tlv_put_u32(buf, sizeof(buf), &off, 4, 0xa0b0c0d0),
                     SARK_PROTO_OK);
    ck_assert_int_eq(sark_tlv_put_u64(buf, sizeof(buf), &off, 7,
                                      0x0102030405060708ull),
                     SARK_PROTO_OK);
    ck_assert_int_eq(sark_tlv_put(buf, sizeof(buf), &off, 0xfffe, NULL, 0),
                     SARK_PROTO_OK);

    ck_assert_uint_eq(off, sizeof(want));
    ck_assert_mem_eq(buf, want, sizeof(want));
    ck_assert_uint_eq(buf[sizeof(want)], FILL);
}
END_TEST


START_TEST(test_tlv_round_trip)
{
    int         rc;
    size_t      i, off, total;
    uint8_t     buf[1024];
    char        big[300];
    sark_tlv_t  t;

    field_t  fields[] = {
        { 0x0000, 0, NULL },
        { SARK_REQ_ACTION, 19, "gateway:tool:invoke" },
        { SARK_REQ_USER_ROLE, 0, "" },
        { SARK_REQ_USER_ROLE, 5, "admin" },
        { 0xffff, sizeof(big), big },
        { SARK_REQ_PARAMETERS, 2, "{}" },
        { 0x7fff, 0, NULL },
    };

    for (i = 0; i < sizeof(big); i++) {
        big[i] = (char) (i * 7);
    }

    off = 0;
    total = 0;

    for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        ck_assert_int_eq(sark_tlv_put(buf, sizeof(buf), &off, fields[i].tag,
                                      fields[i].value, fields[i].len),
                         SARK_PROTO_OK);
        total += sark_tlv_size(fields[i].len);
        ck_assert_uint_eq(off, total);
    }

    off = 0;

    for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        ck_assert_int_eq(sark_tlv_next(buf, total, &off, &t), SARK_PROTO_OK);
        ck_assert_uint_eq(t.tag, fields[i].tag);
        ck_assert_uint_eq(t.len, fields[i].len);
        ck_assert_ptr_nonnull(t.value);

        if (t.len) {
            ck_assert_mem_eq(t.value, fields[i].value, t.len);
        }
    }

    ck_assert_uint_eq(off, total);

    /* END is stable */
    for (i = 0; i < 3; i++) {
        rc = sark_tlv_next(buf, total, &off, &t);
        ck_assert_int_eq(rc, SARK_PROTO_END);
        ck_assert_uint_eq(off, total);
    }

    /* an empty payload is just END */
    off = 0;
    ck_assert_int_eq(sark_tlv_next(buf, 0, &off, &t), SARK_PROTO_END);
}
END_TEST


START_TEST(test_tlv_size)
{
    ck_assert_uint_eq(sark_tlv_size(0), SARK_PROTO_TLV_HDR_LEN);
    ck_assert_uint_eq(sark_tlv_size(1), SARK_PROTO_TLV_HDR_LEN + 1);
    ck_assert_uint_eq(sark_tlv_size(SARK_PROTO_MAX_PAYLOAD),
                      SARK_PROTO_TLV_HDR_LEN + SARK_PROTO_MAX_PAYLOAD);
}
END_TEST


START_TEST(test_tlv_fixed_round_trip)
{
    size_t      i, off;
    uint8_t     buf[256], u8;
    uint32_t    u32;
    uint64_t    u64;
    sark_tlv_t  t;

    static const uint64_t  values[] = {
        0, 1, 0x7f, 0xff, 0x1234, 0xdeadbeef, 0xffffffff,
        0x100000000ull, 0x0102030405060708ull, UINT64_MAX,
    };

    for (i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        off = 0;
        ck_assert_int_eq(sark_tlv_put_u8(buf, sizeof(buf), &off, 1,
                                         (uint8_t) values[i]),
                         SARK_PROTO_OK);
        ck_assert_int_eq(sark_tlv_put_u32(buf, sizeof(buf), &off, 2,
                                          (uint32_t) values[i]),
                         SARK_PROTO_OK);
        ck_assert_int_eq(sark_tlv_put_u64(buf, sizeof(buf), &off, 3,
                                          values[i]),
                         SARK_PROTO_OK);
        ck_assert_uint_eq(off, sark_tlv_size(1) + sark_tlv_size(4)
                               + sark_tlv_size(8));

        off = 0;

        ck_assert_int_eq(sark_tlv_next(buf, sizeof(buf), &off, &t),
                         SARK_PROTO_OK);
        ck_assert_int_eq(sark_tlv_u8(&t, &u8), 1);
        ck_assert_uint_eq(u8, (uint8_t) values[i]);

        ck_assert_int_eq(sark_tlv_next(buf, sizeof(buf), &off, &t),
                         SARK_PROTO_OK);
        ck_assert_int_eq(sark_tlv_u32(&t, &u32), 1);
        ck_assert_uint_eq(u32, (uint32_t) values[i]);

        ck_assert_int_eq(sark_tlv_next(buf, sizeof(buf), &off, &t),
                         SARK_PROTO_OK);
        ck_assert_int_eq(sark_tlv_u64(&t, &u64), 1);
        ck_assert_uint_eq(u64, values[i]);
    }
}
END_TEST


START_TEST(test_tlv_fixed_wrong_len)
{
    uint8_t     value[16], u8;
    uint32_t    u32, n;
    uint64_t    u64;
    sark_tlv_t  t;

    memset(value, 0x11, sizeof(value));
    t.tag = 1;
    t.value = value;

    for (n = 0; n <= sizeof(value); n++) {
        t.len = n;
        u8 = 0xaa;
        u32 = 0xaaaaaaaa;
        u64 = 0xaaaaaaaaaaaaaaaaull;

        ck_assert_int_eq(sark_tlv_u8(&t, &u8), n == 1);
        ck_assert_int_eq(sark_tlv_u32(&t, &u32), n == 4);
        ck_assert_int_eq(sark_tlv_u64(&t, &u64), n == 8);

        ck_assert_uint_eq(u8, n == 1 ? 0x11 : 0xaa);
        ck_assert_uint_eq(u32, n == 4 ? 0x11111111 : 0xaaaaaaaa);
        ck_assert_uint_eq(u64, n == 8 ? 0x1111111111111111ull
                                      : 0xaaaaaaaaaaaaaaaaull);
    }

    /* lengths far off must not be read */
    t.len = 0xffffffff;
    t.value = NULL;
    ck_assert_int_eq(sark_tlv_u8(&t, &u8), 0);
    ck_assert_int_eq(sark_tlv_u32(&t, &u32), 0);
    ck_assert_int_eq(sark_tlv_u64(&t, &u64), 0);
}
END_TEST


/*
 * _i = cut point, 0..REF_LEN: the reference payload seen through a window
 * of _i bytes yields the whole fields, then END on a field boundary or
 * TRUNCATED inside a field header or value.
 */
START_TEST(test_tlv_truncated_at)
{
    int         rc;
    size_t      cut, i, off, end, prev;
    uint8_t     full[REF_LEN + 8], *p;
    sark_tlv_t  t;

    cut = (size_t) _i;
    ck_assert_uint_eq(ref_payload(full, sizeof(full)), REF_LEN);
    p = exact_copy(full, cut);

    off = 0;
    end = 0;

    for (i = 0; i < REF_NFIELDS; i++) {
        end += sark_tlv_size(ref_fields[i].len);

        if (end > cut) {
            break;
        }

        ck_assert_int_eq(sark_tlv_next(p, cut, &off, &t), SARK_PROTO_OK);
        ck_assert_uint_eq(t.tag, ref_fields[i].tag);
        ck_assert_uint_eq(t.len, ref_fields[i].len);
        ck_assert_uint_eq(off, end);
        ck_assert(t.value >= p && t.value + t.len <= p + cut);

        if (t.len) {
            ck_assert_mem_eq(t.value, ref_fields[i].value, t.len);
        }
    }

    prev = off;
    rc = sark_tlv_next(p, cut, &off, &t);

    if (prev == cut) {
        ck_assert_int_eq(rc, SARK_PROTO_END);

    } else {
        ck_assert_int_eq(rc, SARK_PROTO_ERR_TRUNCATED);
        /* the next call says the same */
        ck_assert_int_eq(sark_tlv_next(p, cut, &off, &t),
                         SARK_PROTO_ERR_TRUNCATED);
    }

    ck_assert_uint_eq(off, prev);

    free(p);
}
END_TEST


START_TEST(test_tlv_truncated_header)
{
    size_t      n, off;
    uint8_t     buf[SARK_PROTO_TLV_HDR_LEN], *p;
    sark_tlv_t  t;

    memset(buf, 0, sizeof(buf));

    for (n = 1; n < SARK_PROTO_TLV_HDR_LEN; n++) {
        p = exact_copy(buf, n);
        off = 0;
        ck_assert_int_eq(sark_tlv_next(p, n, &off, &t),
                         SARK_PROTO_ERR_TRUNCATED);
        ck_assert_uint_eq(off, 0);
        free(p);
    }
}
END_TEST


START_TEST(test_tlv_huge_len)
{
    size_t      i, off;
    uint8_t     buf[SARK_PROTO_TLV_HDR_LEN + 4];
    sark_tlv_t  t;

    static const uint32_t  lens[] = {
        5, 0x7fffffff, 0xfffffffa, 0xfffffffb, 0xffffffff,
    };

    for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        memset(buf, 0, sizeof(buf));
        sark_put_u16(buf, 9);
        sark_put_u32(buf + 2, lens[i]);

        off = 0;
        ck_assert_int_eq(sark_tlv_next(buf, sizeof(buf), &off, &t),
                         SARK_PROTO_ERR_TRUNCATED);
        ck_assert_uint_eq(off, 0);
    }
}
END_TEST


START_TEST(test_tlv_offset_past_end)
{
    size_t      off;
    uint8_t     buf[8];
    sark_tlv_t  t;

    memset(buf, 0, sizeof(buf));

    off = 9;
    ck_assert_int_eq(sark_tlv_next(buf, sizeof(buf), &off, &t),
                     SARK_PROTO_ERR_TRUNCATED);
    ck_assert_uint_eq(off, 9);

    off = SIZE_MAX;
    ck_assert_int_eq(sark_tlv_next(buf, sizeof(buf), &off, &t),
                     SARK_PROTO_ERR_TRUNCATED);
}
END_TEST


/* NOSPACE leaves the buffer and the offset untouched. */

START_TEST(test_tlv_nospace)
{
    size_t   cap, off, need;
    uint8_t  buf[64], want[64];

    static const size_t  start = 3;

    need = start + sark_tlv_size(5);

    for (cap = 0; cap < need; cap++) {
        memset(buf, FILL, sizeof(buf));
        memcpy(want, buf, sizeof(buf));
        off = start;

        ck_assert_int_eq(sark_tlv_put(buf, cap, &off, 1, "hello", 5),
                         SARK_PROTO_ERR_NOSPACE);
        ck_assert_uint_eq(off, start);
        ck_assert_mem_eq(buf, want, sizeof(buf));
    }

    /* an exact fit works */
    off = start;
    ck_assert_int_eq(sark_tlv_put(buf, need, &off, 1, "hello", 5),
                     SARK_PROTO_OK);
    ck_assert_uint_eq(off, need);
    ck_assert_uint_eq(buf[need], FILL);

    /* zero-length value: needs the 6 header bytes */
    memset(buf, FILL, sizeof(buf));
    memcpy(want, buf, sizeof(buf));
    off = 0;
    ck_assert_int_eq(sark_tlv_put(buf, SARK_PROTO_TLV_HDR_LEN - 1, &off, 1,
                                  NULL, 0),
                     SARK_PROTO_ERR_NOSPACE);
    ck_assert_uint_eq(off, 0);
    ck_assert_mem_eq(buf, want, sizeof(buf));
}
END_TEST


START_TEST(test_tlv_nospace_bad_args)
{
    size_t   off;
    uint8_t  buf[16], want[16];

    memset(buf, FILL, sizeof(buf));
    memcpy(want, buf, sizeof(buf));

    /* offset already past the capacity */
    off = sizeof(buf) + 1;
    ck_assert_int_eq(sark_tlv_put(buf, sizeof(buf), &off, 1, NULL, 0),
                     SARK_PROTO_ERR_NOSPACE);
    ck_assert_uint_eq(off, sizeof(buf) + 1);

    /* value over the payload limit, whatever the capacity claims */
    off = 0;
    ck_assert_int_eq(sark_tlv_put(buf, SIZE_MAX, &off, 1, buf,
                                  (size_t) SARK_PROTO_MAX_PAYLOAD + 1),
                     SARK_PROTO_ERR_NOSPACE);
    ck_assert_uint_eq(off, 0);

    /* a length near SIZE_MAX, where 6 + len would wrap */
    off = 8;
    ck_assert_int_eq(sark_tlv_put(buf, sizeof(buf), &off, 1, buf,
                                  SIZE_MAX - 2),
                     SARK_PROTO_ERR_NOSPACE);
    ck_assert_uint_eq(off, 8);

    ck_assert_mem_eq(buf, want, sizeof(buf));
}
END_TEST


START_TEST(test_tlv_nospace_fixed)
{
    size_t   off;
    uint8_t  buf[32], want[32];

    memset(buf, FILL, sizeof(buf));
    memcpy(want, buf, sizeof(buf));

    off = 1;
    ck_assert_int_eq(sark_tlv_put_u8(buf, 1 + sark_tlv_size(1) - 1, &off, 1,
                                     0x55),
                     SARK_PROTO_ERR_NOSPACE);
    ck_assert_int_eq(sark_tlv_put_u32(buf, 1 + sark_tlv_size(4) - 1, &off, 1,
                                      0x55555555),
                     SARK_PROTO_ERR_NOSPACE);
    ck_assert_int_eq(sark_tlv_put_u64(buf, 1 + sark_tlv_size(8) - 1, &off, 1,
                                      0x5555555555555555ull),
                     SARK_PROTO_ERR_NOSPACE);
    ck_assert_uint_eq(off, 1);
    ck_assert_mem_eq(buf, want, sizeof(buf));
}
END_TEST


/*
 * Deterministic fuzz.  Check's assertions record their location on every
 * call, so the hot loop tests conditions itself and only calls Check when
 * one fails.
 */

#define FUZZ_CHECK(cond)                                                     \
    do {                                                                     \
        if (!(cond)) {                                                       \
            ck_abort_msg("fuzz: %s (round %zu, len %zu)", #cond,             \
                         fuzz_round, fuzz_len);                              \
        }                                                                    \
    } while (0)


static size_t  fuzz_round, fuzz_len;


static uint64_t
xorshift64(uint64_t *s)
{
    uint64_t  x;

    x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;

    return x;
}


/* Walks a payload; every field must lie inside it and the walk must end. */
static void
walk_tlv(const uint8_t *p, size_t len)
{
    int         rc;
    size_t      off, prev, steps;
    uint8_t     u8;
    uint32_t    u32;
    uint64_t    u64;
    sark_tlv_t  t;

    off = 0;
    steps = 0;

    for ( ;; ) {
        prev = off;
        rc = sark_tlv_next(p, len, &off, &t);

        if (rc != SARK_PROTO_OK) {
            break;
        }

        steps++;

        FUZZ_CHECK(off > prev && off <= len);
        FUZZ_CHECK(t.value >= p && t.value + t.len <= p + len);
        FUZZ_CHECK(steps <= len / SARK_PROTO_TLV_HDR_LEN);

        (void) sark_tlv_u8(&t, &u8);
        (void) sark_tlv_u32(&t, &u32);
        (void) sark_tlv_u64(&t, &u64);
    }

    FUZZ_CHECK(off == prev);
    FUZZ_CHECK(rc == SARK_PROTO_ERR_TRUNCATED
               || (rc == SARK_PROTO_END && off == len));
}


/* Random bytes, often shaped like a frame so the deeper paths run. */
static void
fuzz_fill(uint64_t *s, uint8_t *p, size_t len)
{
    size_t    i, off;
    uint32_t  flen;
    uint64_t  r;

    for (i = 0; i < len; i++) {
        p[i] = (uint8_t) xorshift64(s);
    }

    r = xorshift64(s);

    if ((r & 1) && len >= 4) {
        sark_put_u16(p, SARK_PROTO_MAGIC);
        p[2] = (r & 2) ? SARK_PROTO_VERSION : (uint8_t) (r >> 8);
        p[3] = (uint8_t) ((r >> 16) % (SARK_MSG_TYPE_MAX + 2));
    }

    if ((r & 4) && len >= SARK_PROTO_HDR_LEN) {
        sark_put_u32(p + 12, (r & 8) ? (uint32_t) (r >> 24) % 128
                                     : (uint32_t) (r >> 32));
    }

    if (r & 16) {
        /* plausible TLVs after the header, lengths near the truth */
        off = len >= SARK_PROTO_HDR_LEN ? SARK_PROTO_HDR_LEN : 0;

        while (len - off >= SARK_PROTO_TLV_HDR_LEN) {
            flen = (uint32_t) (xorshift64(s)
                               % (len - off - SARK_PROTO_TLV_HDR_LEN + 3));
            sark_put_u32(p + off + 2, flen);
            off += SARK_PROTO_TLV_HDR_LEN + flen;

            if (off > len) {
                break;
            }
        }
    }
}


START_TEST(test_fuzz)
{
    int               rc;
    size_t            n, len;
    uint8_t          *p, again[SARK_PROTO_HDR_LEN];
    uint64_t          seed;
    sark_frame_hdr_t  h;

    seed = 0x9e3779b97f4a7c15ull;

    for (n = 0; n < FUZZ_ROUNDS; n++) {
        len = (size_t) (xorshift64(&seed) % (FUZZ_MAX_LEN + 1));
        p = malloc(len ? len : 1);
        fuzz_round = n;
        fuzz_len = len;
        FUZZ_CHECK(p != NULL);

        fuzz_fill(&seed, p, len);

        rc = sark_frame_hdr_decode(p, len, &h);

        switch (rc) {

        case SARK_PROTO_OK:
            FUZZ_CHECK(len >= SARK_PROTO_HDR_LEN);
            FUZZ_CHECK(h.version == SARK_PROTO_VERSION);
            FUZZ_CHECK(h.type >= 1 && h.type <= SARK_MSG_TYPE_MAX);
            FUZZ_CHECK(h.length <= SARK_PROTO_MAX_PAYLOAD);

            /* re-encoding gives the same bytes, reserved aside */
            sark_frame_hdr_encode(again, &h);
            FUZZ_CHECK(memcmp(again, p, 6) == 0);
            FUZZ_CHECK(memcmp(again + 8, p + 8, SARK_PROTO_HDR_LEN - 8) == 0);

            if (h.length <= len - SARK_PROTO_HDR_LEN) {
                walk_tlv(p + SARK_PROTO_HDR_LEN, h.length);
            }

            break;

        case SARK_PROTO_AGAIN:
            FUZZ_CHECK(len < SARK_PROTO_HDR_LEN);
            break;

        case SARK_PROTO_ERR_MAGIC:
        case SARK_PROTO_ERR_VERSION:
        case SARK_PROTO_ERR_TYPE:
        case SARK_PROTO_ERR_TOO_LARGE:
            FUZZ_CHECK(len >= SARK_PROTO_HDR_LEN);
            break;

        default:
            ck_abort_msg("unexpected header result %d", rc);
        }

        walk_tlv(p, len);

        if (len >= SARK_PROTO_HDR_LEN) {
            walk_tlv(p + SARK_PROTO_HDR_LEN, len - SARK_PROTO_HDR_LEN);
        }

        free(p);
    }
}
END_TEST


static Suite *
hdr_suite(void)
{
    Suite  *s;
    TCase  *tc;

    s = suite_create("frame header");

    tc = tcase_create("codec");
    tcase_add_test(tc, test_hdr_round_trip);
    tcase_add_test(tc, test_hdr_layout);
    tcase_add_test(tc, test_hdr_decode_vector);
    suite_add_tcase(s, tc);

    tc = tcase_create("errors");
    tcase_add_test(tc, test_hdr_bad_magic);
    tcase_add_test(tc, test_hdr_bad_version);
    tcase_add_test(tc, test_hdr_bad_type);
    tcase_add_test(tc, test_hdr_too_large);
    tcase_add_loop_test(tc, test_hdr_again, 0, SARK_PROTO_HDR_LEN);
    tcase_add_test(tc, test_strerror);
    suite_add_tcase(s, tc);

    return s;
}


static Suite *
tlv_suite(void)
{
    Suite  *s;
    TCase  *tc;

    s = suite_create("tlv");

    tc = tcase_create("codec");
    tcase_add_test(tc, test_tlv_layout);
    tcase_add_test(tc, test_tlv_round_trip);
    tcase_add_test(tc, test_tlv_size);
    tcase_add_test(tc, test_tlv_fixed_round_trip);
    tcase_add_test(tc, test_tlv_fixed_wrong_len);
    suite_add_tcase(s, tc);

    tc = tcase_create("truncated");
    tcase_add_loop_test(tc, test_tlv_truncated_at, 0, REF_LEN + 1);
    tcase_add_test(tc, test_tlv_truncated_header);
    tcase_add_test(tc, test_tlv_huge_len);
    tcase_add_test(tc, test_tlv_offset_past_end);
    suite_add_tcase(s, tc);

    tc = tcase_create("nospace");
    tcase_add_test(tc, test_tlv_nospace);
    tcase_add_test(tc, test_tlv_nospace_bad_args);
    tcase_add_test(tc, test_tlv_nospace_fixed);
    suite_add_tcase(s, tc);

    return s;
}


static Suite *
fuzz_suite(void)
{
    Suite  *s;
    TCase  *tc;

    s = suite_create("fuzz");

    tc = tcase_create("random buffers");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_fuzz);
    suite_add_tcase(s, tc);

    return s;
}


int
main(void)
{
    int       failed;
    SRunner  *sr;

    sr = srunner_create(hdr_suite());
    srunner_add_suite(sr, tlv_suite());
    srunner_add_suite(sr, fuzz_suite());

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);

    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
