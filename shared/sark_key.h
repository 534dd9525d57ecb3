/*
 * The decision cache key, computed alike by the nginx module (for its L1
 * zone) and by sarkd (for Redis, L2): sarkd computes it itself from the
 * request it decoded and never takes a key from a client.  See
 * docs/design.md, "Decision cache".
 *
 * The key covers everything the policy sees except gateway_metadata: the
 * policy revision, the subject (id, email, roles, teams) and the question
 * (action, server, tool, sensitivity, parameters, context, and for
 * agent-to-agent decisions the source and target agents), each exactly
 * as the request carries it.  Every field is encoded with its presence and
 * its length, so an absent value and an empty one, or two fields that
 * shift a byte between them, never encode alike.  The digest is SHA-256 of
 * the encoding, computed by the caller.  The text form, also the Redis
 * key, keeps the parts SARK's invalidation patterns name:
 *
 *   authz:{user}:{action}:{server}:{tool}:{sensitivity}:{64 hex digits}
 *
 * with an absent server or tool empty and an absent sensitivity "medium".
 *
 * C and C++ safe; no dependency beyond <stddef.h>, <stdint.h>, <string.h>.
 */

#ifndef SARK_KEY_H_INCLUDED_
#define SARK_KEY_H_INCLUDED_

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif


#define SARK_KEY_VERSION         "sark-key-3"
#define SARK_KEY_DIGEST_LEN      32
#define SARK_KEY_PREFIX          "authz:"


typedef struct {
    const uint8_t  *data;
    size_t          len;
    int             present;
} sark_key_field_t;


/* the single-valued fields, in the order they are encoded */
enum {
    SARK_KEY_REVISION = 0,
    SARK_KEY_USER_ID,
    SARK_KEY_EMAIL,
    SARK_KEY_ACTION,
    SARK_KEY_SERVER,
    SARK_KEY_TOOL,
    SARK_KEY_SENSITIVITY,
    SARK_KEY_PARAMETERS,
    SARK_KEY_CONTEXT,
    SARK_KEY_SOURCE_AGENT,      /* agent-to-agent decisions: the asking */
    SARK_KEY_TARGET_AGENT,      /* and the asked agent, as JSON objects */
    SARK_KEY_FIELDS
};


typedef struct {
    sark_key_field_t         f[SARK_KEY_FIELDS];
    const sark_key_field_t  *roles;         /* every one present */
    size_t                   nroles;
    const sark_key_field_t  *teams;
    size_t                   nteams;
} sark_key_input_t;


static inline size_t
sark_key_field_len(const sark_key_field_t *f)
{
    return 1 + 4 + (f->present ? f->len : 0);
}


static inline uint8_t *
sark_key_put_field(uint8_t *p, const sark_key_field_t *f)
{
    size_t  len;

    len = f->present ? f->len : 0;

    *p++ = f->present ? 1 : 0;
    p[0] = (uint8_t) (len >> 24);
    p[1] = (uint8_t) (len >> 16);
    p[2] = (uint8_t) (len >> 8);
    p[3] = (uint8_t) len;
    p += 4;

    if (len) {
        memcpy(p, f->data, len);
        p += len;
    }

    return p;
}


static inline uint8_t *
sark_key_put_count(uint8_t *p, size_t n)
{
    p[0] = (uint8_t) (n >> 24);
    p[1] = (uint8_t) (n >> 16);
    p[2] = (uint8_t) (n >> 8);
    p[3] = (uint8_t) n;

    return p + 4;
}


/* Bytes sark_key_encode() writes for `in`. */
static inline size_t
sark_key_encoded_len(const sark_key_input_t *in)
{
    size_t  i, len;

    len = sizeof(SARK_KEY_VERSION) - 1 + 4 + 4;

    for (i = 0; i < SARK_KEY_FIELDS; i++) {
        len += sark_key_field_len(&in->f[i]);
    }

    for (i = 0; i < in->nroles; i++) {
        len += sark_key_field_len(&in->roles[i]);
    }

    for (i = 0; i < in->nteams; i++) {
        len += sark_key_field_len(&in->teams[i]);
    }

    return len;
}


/*
 * Writes the encoding of `in` (sark_key_encoded_len() bytes) to `out`;
 * returns the byte after it.  Roles and teams follow the email, each list
 * with its count first.
 */
static inline uint8_t *
sark_key_encode(uint8_t *out, const sark_key_input_t *in)
{
    size_t    i;
    uint8_t  *p;

    memcpy(out, SARK_KEY_VERSION, sizeof(SARK_KEY_VERSION) - 1);
    p = out + sizeof(SARK_KEY_VERSION) - 1;

    p = sark_key_put_field(p, &in->f[SARK_KEY_REVISION]);
    p = sark_key_put_field(p, &in->f[SARK_KEY_USER_ID]);
    p = sark_key_put_field(p, &in->f[SARK_KEY_EMAIL]);

    p = sark_key_put_count(p, in->nroles);

    for (i = 0; i < in->nroles; i++) {
        p = sark_key_put_field(p, &in->roles[i]);
    }

    p = sark_key_put_count(p, in->nteams);

    for (i = 0; i < in->nteams; i++) {
        p = sark_key_put_field(p, &in->teams[i]);
    }

    for (i = SARK_KEY_ACTION; i < SARK_KEY_FIELDS; i++) {
        p = sark_key_put_field(p, &in->f[i]);
    }

    return p;
}


static inline const sark_key_field_t *
sark_key_sensitivity(const sark_key_input_t *in)
{
    static const sark_key_field_t  medium = {
        (const uint8_t *) "medium", sizeof("medium") - 1, 1
    };

    return in->f[SARK_KEY_SENSITIVITY].present ? &in->f[SARK_KEY_SENSITIVITY]
                                               : &medium;
}


/* Bytes sark_key_text() writes for `in`. */
static inline size_t
sark_key_text_len(const sark_key_input_t *in)
{
    return sizeof(SARK_KEY_PREFIX) - 1 + 5 + 2 * SARK_KEY_DIGEST_LEN
           + in->f[SARK_KEY_USER_ID].len + in->f[SARK_KEY_ACTION].len
           + (in->f[SARK_KEY_SERVER].present ? in->f[SARK_KEY_SERVER].len : 0)
           + (in->f[SARK_KEY_TOOL].present ? in->f[SARK_KEY_TOOL].len : 0)
           + sark_key_sensitivity(in)->len;
}


/* Writes the text form (sark_key_text_len() bytes); returns the end. */
static inline char *
sark_key_text(char *out, const sark_key_input_t *in,
    const uint8_t digest[SARK_KEY_DIGEST_LEN])
{
    static const char  hex[] = "0123456789abcdef";

    size_t                   i;
    char                    *p;
    const sark_key_field_t  *parts[5];

    parts[0] = &in->f[SARK_KEY_USER_ID];
    parts[1] = &in->f[SARK_KEY_ACTION];
    parts[2] = &in->f[SARK_KEY_SERVER];
    parts[3] = &in->f[SARK_KEY_TOOL];
    parts[4] = sark_key_sensitivity(in);

    memcpy(out, SARK_KEY_PREFIX, sizeof(SARK_KEY_PREFIX) - 1);
    p = out + sizeof(SARK_KEY_PREFIX) - 1;

    for (i = 0; i < 5; i++) {
        if (parts[i]->present && parts[i]->len) {
            memcpy(p, parts[i]->data, parts[i]->len);
            p += parts[i]->len;
        }

        *p++ = ':';
    }

    for (i = 0; i < SARK_KEY_DIGEST_LEN; i++) {
        *p++ = hex[digest[i] >> 4];
        *p++ = hex[digest[i] & 0xf];
    }

    return p;
}


#ifdef __cplusplus
}
#endif

#endif /* SARK_KEY_H_INCLUDED_ */
