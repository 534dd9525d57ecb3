/*
 * sark-gateway wire protocol between ngx_http_sark_module and sarkd.
 *
 * Stream of frames over a Unix socket.  Every integer is big-endian and is
 * read/written byte by byte (no unaligned casts).  A frame is a fixed
 * 16-byte header followed by `length` bytes of payload:
 *
 *   0      2        3     4       6          8     12       16
 *   +------+--------+-----+-------+----------+-----+--------+---------+
 *   |magic |version |type | flags | reserved | id  | length | payload |
 *   | "SK" |   2    |     |       |    0     |     |        |  (TLV)  |
 *   +------+--------+-----+-------+----------+-----+--------+---------+
 *
 * The payload is a sequence of TLV fields: tag (u16), len (u32), value.
 * Unknown tags are skipped by decoders, so fields can be added without a
 * version bump; a change of meaning of an existing tag bumps the version.
 * Requests and answers are matched by `id`; answers may come in any order.
 *
 * The header is C and C++ safe and has no dependency beyond <stdint.h>.
 */

#ifndef SARK_PROTO_H_INCLUDED_
#define SARK_PROTO_H_INCLUDED_

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif


#define SARK_PROTO_MAGIC          0x534bu      /* "SK" */
#define SARK_PROTO_VERSION        2
#define SARK_PROTO_HDR_LEN        16
#define SARK_PROTO_TLV_HDR_LEN    6
#define SARK_PROTO_MAX_PAYLOAD    (4u * 1024 * 1024)

/* limits both sides apply to a decision request (docs/design.md) */
#define SARK_PROTO_MAX_NAME       256   /* action, server, tool */
#define SARK_PROTO_MAX_ROLES      64    /* roles, and teams */
#define SARK_PROTO_MAX_REVISION   64    /* a policy revision */


/* frame types */
#define SARK_MSG_AUTHZ_REQ        1   /* module -> sarkd */
#define SARK_MSG_AUTHZ_RESP       2   /* sarkd -> module */
#define SARK_MSG_PING             3   /* a liveness probe: sarkd answers
                                         PONG (same id); a worker sends one
                                         when sarkd has been silent 0.5 s */
#define SARK_MSG_PONG             4
#define SARK_MSG_ERROR            5   /* protocol error; sender closes */
#define SARK_MSG_REVISION         6   /* sarkd -> module, unsolicited: the
                                         current policy revision; sent on
                                         accept and on every change */
#define SARK_MSG_INVALIDATE_REQ   7   /* module -> sarkd: invalidate a
                                         pattern on every host */
#define SARK_MSG_INVALIDATE_RESP  8   /* sarkd -> module: done */
#define SARK_MSG_INVALIDATE       9   /* sarkd -> module, unsolicited: apply
                                         a pattern to the local L1 */
#define SARK_MSG_INVALIDATE_ACK   10  /* module -> sarkd: applied (same id) */
#define SARK_MSG_AUDIT_BATCH      11  /* module -> sarkd: audit events; the
                                         id numbers the batch */
#define SARK_MSG_AUDIT_ACK        12  /* sarkd -> module, same id: the batch
                                         is durable (committed to PostgreSQL
                                         or fsync'd to the spool), or was
                                         rejected; either way the module
                                         forgets it.  A batch without an
                                         ack is sent again after a
                                         reconnect; sarkd stores an event
                                         id once however often it comes. */
#define SARK_MSG_STATUS_REQ       13  /* module -> sarkd: sarkd's health and
                                         counters; empty payload */
#define SARK_MSG_STATUS_RESP      14  /* sarkd -> module, same id: one
                                         SARK_STATUS_JSON */
#define SARK_MSG_KEYS             15  /* sarkd -> module, unsolicited: the
                                         whole set of valid gateway keys;
                                         sent on accept once sarkd has
                                         loaded them, and on every change */
#define SARK_MSG_KEY_USED         16  /* module -> sarkd, no answer: gateway
                                         keys used (SARK_KEYS_ID repeated),
                                         for their last_used_at */
#define SARK_MSG_REGISTRY         17  /* sarkd -> module, unsolicited: the
                                         MCP server and tool registry
                                         (SARK_REG_JSON); sent on accept
                                         once loaded, and on every change */
#define SARK_MSG_AUDIT_QUERY_REQ  18  /* module -> sarkd: a page of audit
                                         events (SARK_AQ_*) */
#define SARK_MSG_AUDIT_QUERY_RESP 19  /* sarkd -> module, same id */
#define SARK_MSG_TYPE_MAX         19

/* AUDIT_BATCH header flags */
#define SARK_AUDIT_F_URGENT       0x0001  /* write it now, not at the next
                                             flush (a caller waits) */


/* AUTHZ_REQ fields */
#define SARK_REQ_ACTION           1   /* string */
#define SARK_REQ_SERVER_NAME      2   /* string */
#define SARK_REQ_TOOL_NAME        3   /* string */
#define SARK_REQ_PARAMETERS       4   /* JSON object text, validated */
#define SARK_REQ_SENSITIVITY      5   /* string: low|medium|high|critical */
#define SARK_REQ_USER_ID          6   /* string */
#define SARK_REQ_USER_EMAIL       7   /* string */
#define SARK_REQ_USER_ROLE        8   /* string, repeated */
#define SARK_REQ_USER_TEAM        9   /* string, repeated */
#define SARK_REQ_CONTEXT          10  /* JSON object text, validated */
#define SARK_REQ_GATEWAY_METADATA 11  /* JSON object text, validated */
#define SARK_REQ_REQUEST_ID       12  /* string */
#define SARK_REQ_CLIENT_IP        13  /* string */
                                      /* 14: retired (a key the module
                                         computed); sarkd computes the key
                                         itself (sark_key.h) */
#define SARK_REQ_NOT_AFTER        15  /* u64, Unix ms: the token's exp; no
                                         cache entry may outlive it */
#define SARK_REQ_SOURCE_AGENT     16  /* JSON object text, validated: the
                                         agent asking (from its token);
                                         action a2a:* only */
#define SARK_REQ_TARGET_AGENT     17  /* JSON object text, validated: the
                                         agent it asks for (id required) */

/* AUTHZ_RESP fields */
#define SARK_RESP_DECISION        1   /* u8, SARK_DECISION_* */
#define SARK_RESP_REASON          2   /* string */
#define SARK_RESP_FILTERED_PARAMS 3   /* JSON object text */
#define SARK_RESP_CACHE_TTL       4   /* u32, seconds */
#define SARK_RESP_POLICY_REVISION 5   /* string */
#define SARK_RESP_ERROR_CODE      6   /* string, e.g. "OPA-001" (outage) */
#define SARK_RESP_EVALUATED_AT    7   /* u64, Unix time in milliseconds */
#define SARK_RESP_RETRY_AFTER     8   /* u32, seconds (outage) */
#define SARK_RESP_CACHE_LAYER     9   /* u8, SARK_CACHE_* */
#define SARK_RESP_EXPIRES_AT      10  /* u64, Unix ms: when a cached answer
                                         (L2 hit) stops being valid */
#define SARK_RESP_MAX_DELEGATION  11  /* u32: the policy's
                                         max_delegation_depth (a2a:*) */

/* REVISION, INVALIDATE* fields */
#define SARK_INV_PATTERN          1   /* string, Redis glob, "authz:..." */
#define SARK_INV_ISSUED_AT        2   /* u64, Unix ms: entries evaluated at
                                         or before it, or up to
                                         SARK_INVALIDATION_SKEW_MS after
                                         it, and matching are invalid */
#define SARK_INV_L2_DELETED       3   /* u32: keys removed from L2 */
#define SARK_INV_HOSTS            4   /* u32: hosts that applied it,
                                         this one included */
#define SARK_INV_HOSTS_EXPECTED   5   /* u32: hosts subscribed */
#define SARK_INV_STATUS           6   /* u8: 0 done, 1 partial (some host
                                         did not confirm in time, or L2
                                         unavailable) */
#define SARK_REV_REVISION         1   /* string */

/*
 * KEYS: SARK_KEYS_ENTRY repeated (none: no key is valid).  An entry's value
 * is the SHA-256 of the key (32 bytes), when it expires (u64, Unix ms, 0 =
 * never), its scopes (u32, SARK_KEY_SCOPE_*), then its id (1 to
 * SARK_KEY_MAX_ID bytes of [A-Za-z0-9_-]).  KEY_USED: SARK_KEYS_ID
 * repeated, each an id.
 */
#define SARK_KEYS_ENTRY           1
#define SARK_KEYS_ID              2

#define SARK_KEY_HASH_LEN         32
#define SARK_KEY_ENTRY_FIXED      (SARK_KEY_HASH_LEN + 8 + 4)
#define SARK_KEY_MAX_ID           64

#define SARK_KEY_SCOPE_AUTHORIZE  0x1   /* POST /api/v1/gateway/authorize,
                                           acting as the body's user */
#define SARK_KEY_SCOPE_AUDIT      0x2   /* POST /api/v1/gateway/audit */

/* REGISTRY: one JSON document, {"version", "servers": [...]} */
#define SARK_REG_JSON             1

/*
 * AUDIT_QUERY_REQ: filters (each optional), the page size, the cursor of
 * the page before.  AUDIT_QUERY_RESP: a status, then the page
 * ({"events": [...], "next_cursor"}, or {"plan"} with SARK_AQ_EXPLAIN)
 * or a message.
 */
#define SARK_AQ_USER_ID           1   /* string, <= SARK_AQ_MAX_USER_ID */
#define SARK_AQ_SERVER_NAME       2   /* string */
#define SARK_AQ_TOOL_NAME         3   /* string */
#define SARK_AQ_DECISION          4   /* string: allow | deny */
#define SARK_AQ_SINCE             5   /* u64, Unix microseconds, inclusive */
#define SARK_AQ_UNTIL             6   /* u64, Unix microseconds, exclusive */
#define SARK_AQ_LIMIT             7   /* u32, 1..SARK_AQ_MAX_LIMIT */
#define SARK_AQ_CURSOR            8   /* string, as a page gave it */
#define SARK_AQ_EXPLAIN           9   /* u8: 1 = the query plan instead */
#define SARK_AQ_STATUS            10  /* u8, SARK_AQ_OK | _INVALID | _DOWN */
#define SARK_AQ_JSON              11  /* string: the answer's JSON */
#define SARK_AQ_MESSAGE           12  /* string: why not */

#define SARK_AQ_OK                0
#define SARK_AQ_INVALID           1   /* a bad cursor or filter: a 400 */
#define SARK_AQ_DOWN              2   /* the database: a 503 */

#define SARK_AQ_MAX_LIMIT         1000
#define SARK_AQ_MAX_USER_ID       8192  /* a token's sub: a token's length */

/*
 * STATUS_RESP TLV: a JSON object, UTF-8 (docs/design.md, Operations):
 * {"sarkd": {...}, "dependencies": {"opa"|"redis"|"postgresql":
 * {"healthy", "latency_ms", "error", "circuit"}}, "audit": {...},
 * "counters": {...}}
 */
#define SARK_STATUS_JSON          1

/*
 * Hosts' clocks differ: a cached decision evaluated up to this long after
 * a matching invalidation was issued counts as stale too, in the workers'
 * L1 and in sarkd's view of L2.
 */
#define SARK_INVALIDATION_SKEW_MS 500

/*
 * AUDIT_BATCH payload: SARK_AUD_EVENT repeated; the value of each is itself
 * a TLV list of SARK_AUDF_* fields.  Strings are UTF-8 (sarkd replaces
 * invalid bytes); absent strings are SQL NULL.
 */
#define SARK_AUD_EVENT            1

#define SARK_AUDF_ID              1   /* 16 bytes: the row's UUID (required) */
#define SARK_AUDF_TIMESTAMP       2   /* u64, Unix microseconds (required) */
#define SARK_AUDF_EVENT_TYPE      3   /* string, default "authorization" */
#define SARK_AUDF_USER_ID         4   /* string */
#define SARK_AUDF_AGENT_ID        5   /* string */
#define SARK_AUDF_SERVER_NAME     6   /* string */
#define SARK_AUDF_TOOL_NAME       7   /* string */
#define SARK_AUDF_ACTION          8   /* string */
#define SARK_AUDF_SENSITIVITY     9   /* string */
#define SARK_AUDF_DECISION        10  /* string: "allow" | "deny" (required) */
#define SARK_AUDF_REASON          11  /* string */
#define SARK_AUDF_CACHE_LAYER     12  /* u8, SARK_CACHE_* */
#define SARK_AUDF_LATENCY_US      13  /* u32, decision latency */
#define SARK_AUDF_POLICY_REVISION 14  /* string */
#define SARK_AUDF_REQUEST_ID      15  /* string: gateway_request_id */
#define SARK_AUDF_CLIENT_IP       16  /* string */
#define SARK_AUDF_METADATA        17  /* JSON object text */
/*
 * No value: the event's event_type, user_id, agent_id, server_name,
 * tool_name, action, sensitivity, decision, reason and policy_revision are
 * those of the event before it in the same batch (as that one has them,
 * absent ones included); the fields it carries itself win.  Never in a
 * batch's first event.  (Version 2.)
 */
#define SARK_AUDF_SAME_AS_PREVIOUS 18

/* AUDIT_ACK fields */
#define SARK_ACK_STATUS           1   /* u8: SARK_ACK_DURABLE | _REJECTED */
#define SARK_ACK_EVENTS           2   /* u32: events the batch held */
#define SARK_ACK_MESSAGE          3   /* string: why it was rejected */

#define SARK_ACK_DURABLE          0
#define SARK_ACK_REJECTED         1   /* malformed; do not send it again */

/* ERROR fields */
#define SARK_ERR_MESSAGE          1   /* string */

#define SARK_DECISION_DENY        0
#define SARK_DECISION_ALLOW       1
#define SARK_DECISION_OUTAGE      2   /* no decision: dependency failed */

#define SARK_CACHE_MISS           0
#define SARK_CACHE_L1             1
#define SARK_CACHE_L2             2


/* decoder results */
#define SARK_PROTO_OK             0
#define SARK_PROTO_AGAIN          1   /* need more bytes */
#define SARK_PROTO_END            2   /* no more TLV fields */
#define SARK_PROTO_ERR_MAGIC      -1
#define SARK_PROTO_ERR_VERSION    -2
#define SARK_PROTO_ERR_TYPE       -3
#define SARK_PROTO_ERR_TOO_LARGE  -4
#define SARK_PROTO_ERR_TRUNCATED  -5
#define SARK_PROTO_ERR_NOSPACE    -6


typedef struct {
    uint8_t   version;
    uint8_t   type;
    uint16_t  flags;
    uint32_t  id;
    uint32_t  length;
} sark_frame_hdr_t;


typedef struct {
    uint16_t        tag;
    uint32_t        len;
    const uint8_t  *value;
} sark_tlv_t;


static inline uint16_t
sark_get_u16(const uint8_t *p)
{
    return (uint16_t) (((uint16_t) p[0] << 8) | p[1]);
}


static inline uint32_t
sark_get_u32(const uint8_t *p)
{
    return ((uint32_t) p[0] << 24) | ((uint32_t) p[1] << 16)
           | ((uint32_t) p[2] << 8) | p[3];
}


static inline uint64_t
sark_get_u64(const uint8_t *p)
{
    return ((uint64_t) sark_get_u32(p) << 32) | sark_get_u32(p + 4);
}


static inline void
sark_put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t) (v >> 8);
    p[1] = (uint8_t) v;
}


static inline void
sark_put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t) (v >> 24);
    p[1] = (uint8_t) (v >> 16);
    p[2] = (uint8_t) (v >> 8);
    p[3] = (uint8_t) v;
}


static inline void
sark_put_u64(uint8_t *p, uint64_t v)
{
    sark_put_u32(p, (uint32_t) (v >> 32));
    sark_put_u32(p + 4, (uint32_t) v);
}


/* Writes the 16-byte header for `h` (version is always ours). */
static inline void
sark_frame_hdr_encode(uint8_t *p, const sark_frame_hdr_t *h)
{
    sark_put_u16(p, SARK_PROTO_MAGIC);
    p[2] = SARK_PROTO_VERSION;
    p[3] = h->type;
    sark_put_u16(p + 4, h->flags);
    sark_put_u16(p + 6, 0);
    sark_put_u32(p + 8, h->id);
    sark_put_u32(p + 12, h->length);
}


/*
 * Decodes a header from the first `len` bytes of `p`.
 * Returns SARK_PROTO_OK, SARK_PROTO_AGAIN when fewer than 16 bytes are
 * there, or a negative error: the stream is then unusable and must be closed.
 */
static inline int
sark_frame_hdr_decode(const uint8_t *p, size_t len, sark_frame_hdr_t *h)
{
    if (len < SARK_PROTO_HDR_LEN) {
        return SARK_PROTO_AGAIN;
    }

    if (sark_get_u16(p) != SARK_PROTO_MAGIC) {
        return SARK_PROTO_ERR_MAGIC;
    }

    if (p[2] != SARK_PROTO_VERSION) {
        return SARK_PROTO_ERR_VERSION;
    }

    if (p[3] == 0 || p[3] > SARK_MSG_TYPE_MAX) {
        return SARK_PROTO_ERR_TYPE;
    }

    h->version = p[2];
    h->type = p[3];
    h->flags = sark_get_u16(p + 4);
    h->id = sark_get_u32(p + 8);
    h->length = sark_get_u32(p + 12);

    if (h->length > SARK_PROTO_MAX_PAYLOAD) {
        return SARK_PROTO_ERR_TOO_LARGE;
    }

    return SARK_PROTO_OK;
}


/*
 * Appends one TLV at buf[*off]; fails with SARK_PROTO_ERR_NOSPACE (and
 * writes nothing) when it does not fit in `cap`.
 */
static inline int
sark_tlv_put(uint8_t *buf, size_t cap, size_t *off, uint16_t tag,
    const void *value, size_t len)
{
    if (len > SARK_PROTO_MAX_PAYLOAD
        || *off > cap
        || cap - *off < SARK_PROTO_TLV_HDR_LEN + len)
    {
        return SARK_PROTO_ERR_NOSPACE;
    }

    sark_put_u16(buf + *off, tag);
    sark_put_u32(buf + *off + 2, (uint32_t) len);

    if (len) {
        memcpy(buf + *off + SARK_PROTO_TLV_HDR_LEN, value, len);
    }

    *off += SARK_PROTO_TLV_HDR_LEN + len;

    return SARK_PROTO_OK;
}


static inline int
sark_tlv_put_u8(uint8_t *buf, size_t cap, size_t *off, uint16_t tag,
    uint8_t v)
{
    return sark_tlv_put(buf, cap, off, tag, &v, 1);
}


static inline int
sark_tlv_put_u32(uint8_t *buf, size_t cap, size_t *off, uint16_t tag,
    uint32_t v)
{
    uint8_t  b[4];

    sark_put_u32(b, v);
    return sark_tlv_put(buf, cap, off, tag, b, 4);
}


static inline int
sark_tlv_put_u64(uint8_t *buf, size_t cap, size_t *off, uint16_t tag,
    uint64_t v)
{
    uint8_t  b[8];

    sark_put_u64(b, v);
    return sark_tlv_put(buf, cap, off, tag, b, 8);
}


/* Space one TLV of `len` bytes takes. */
static inline size_t
sark_tlv_size(size_t len)
{
    return SARK_PROTO_TLV_HDR_LEN + len;
}


/*
 * Reads the TLV at payload[*off].  Returns SARK_PROTO_OK (and advances
 * *off), SARK_PROTO_END at the end of the payload, or
 * SARK_PROTO_ERR_TRUNCATED when a field runs past the payload.
 */
static inline int
sark_tlv_next(const uint8_t *payload, size_t len, size_t *off, sark_tlv_t *t)
{
    size_t  rest;

    if (*off == len) {
        return SARK_PROTO_END;
    }

    if (*off > len) {
        return SARK_PROTO_ERR_TRUNCATED;
    }

    rest = len - *off;

    if (rest < SARK_PROTO_TLV_HDR_LEN) {
        return SARK_PROTO_ERR_TRUNCATED;
    }

    t->tag = sark_get_u16(payload + *off);
    t->len = sark_get_u32(payload + *off + 2);

    if (t->len > rest - SARK_PROTO_TLV_HDR_LEN) {
        return SARK_PROTO_ERR_TRUNCATED;
    }

    t->value = payload + *off + SARK_PROTO_TLV_HDR_LEN;
    *off += SARK_PROTO_TLV_HDR_LEN + t->len;

    return SARK_PROTO_OK;
}


/* Fixed-width TLV values; return 0 when the length is wrong. */
static inline int
sark_tlv_u8(const sark_tlv_t *t, uint8_t *v)
{
    if (t->len != 1) {
        return 0;
    }

    *v = t->value[0];
    return 1;
}


static inline int
sark_tlv_u32(const sark_tlv_t *t, uint32_t *v)
{
    if (t->len != 4) {
        return 0;
    }

    *v = sark_get_u32(t->value);
    return 1;
}


static inline int
sark_tlv_u64(const sark_tlv_t *t, uint64_t *v)
{
    if (t->len != 8) {
        return 0;
    }

    *v = sark_get_u64(t->value);
    return 1;
}


static inline const char *
sark_proto_strerror(int rc)
{
    switch (rc) {
    case SARK_PROTO_OK:            return "ok";
    case SARK_PROTO_AGAIN:         return "incomplete";
    case SARK_PROTO_END:           return "end";
    case SARK_PROTO_ERR_MAGIC:     return "bad magic";
    case SARK_PROTO_ERR_VERSION:   return "unsupported version";
    case SARK_PROTO_ERR_TYPE:      return "unknown frame type";
    case SARK_PROTO_ERR_TOO_LARGE: return "frame too large";
    case SARK_PROTO_ERR_TRUNCATED: return "truncated field";
    case SARK_PROTO_ERR_NOSPACE:   return "no space";
    default:                       return "unknown error";
    }
}


#ifdef __cplusplus
}
#endif

#endif /* SARK_PROTO_H_INCLUDED_ */
