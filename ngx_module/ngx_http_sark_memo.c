
/*
 * Copyright (C) sark-gateway authors
 */


/*
 * What a worker remembers between requests, so that a question asked again
 * costs little.  Three memos, in process memory, none shared:
 *
 *   token slots        a verified token -> the identity it carries
 *   |                  (1024 slots, direct-mapped on the token's last
 *   |                  bytes; exp checked on every use; a slot remembers
 *   |                  the key set, issuer and audience it was verified
 *   |                  with).  Saves the signature check and the JSON work:
 *   |                  about 38,000 instructions per request.
 *   |
 *   +- question memo   one per token slot: the last question asked with
 *                      that token at one location under one policy
 *                      revision -> its decision key, its audit fields
 *                      encoded, and for the decision API the body it came
 *                      in with where each member is in it.  The same
 *                      question again (an enforced location whose values
 *                      have no variables, or the same body at the same
 *                      decision API location) skips parsing, encoding and
 *                      hashing: about 1,400 instructions per enforced L1
 *                      hit, 3,900 per decision API L1 hit.
 *
 *   key memo           an encoded question (shared/sark_key.h) -> its
 *                      digest and key text (4096 slots, direct-mapped, each
 *                      hit confirmed by a compare of the whole encoding).
 *                      Saves the SHA-256: about 10,000 instructions per
 *                      question the question memo does not answer.
 *
 * Measured with make bench-ir (each memo turned off in turn; nginx alone
 * spends about 12,500 per request).  A memo never answers a decision: it
 * only saves work on the way to the key, and the decision comes from the
 * L1 zone or sarkd under that key.  What makes each one safe: a token slot
 * is confirmed by the whole token and the configuration it was verified
 * with, and its exp is checked each time; a question memo belongs to the
 * slot's token (the slot's generation changes when another token lands on
 * it), its location and the revision, and the body must be the same byte
 * for byte; a key memo hit is the same encoding, byte for byte.  The tests
 * that would catch them answering for another token, location, body or
 * revision are t/053, t/061 and t/062.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_sark_module.h"


#define NGX_HTTP_SARK_TOKEN_SLOTS      1024
#define NGX_HTTP_SARK_QUESTION_BODY    2048   /* largest body remembered */
#define NGX_HTTP_SARK_KEY_SLOTS        4096
#define NGX_HTTP_SARK_KEY_MAX_ENC      512    /* longest encoding remembered */


typedef struct {
    uint32_t                     hash;
    size_t                       len;
    size_t                       size;
    u_char                      *block;     /* ngx_alloc(): strings, then
                                               the token */
    void                        *keys;
    u_char                      *issuer;
    u_char                      *audience;
    ngx_http_sark_identity_t     id;        /* points into block */
    ngx_uint_t                   gen;       /* bumped when the slot is
                                               given to another token */

    /* the question memo */
    void                        *question_loc;
    ngx_uint_t                   question_rev;
    ngx_http_sark_question_t     question;
    u_char                      *question_block;  /* ngx_alloc(): key
                                                     text, audit fields,
                                                     body */
    size_t                       question_size;
} ngx_http_sark_token_t;


typedef struct {
    uint32_t                     hash;
    uint32_t                     len;
    u_char                      *enc;       /* encoding, then key text */
    size_t                       text_len;
    u_char                       digest[NGX_HTTP_SARK_DIGEST_LEN];
} ngx_http_sark_key_slot_t;


static ngx_http_sark_token_t     *ngx_http_sark_tokens;
static ngx_http_sark_key_slot_t  *ngx_http_sark_keys;


/* (never NULL to memcpy, even for nothing) */
#define ngx_http_sark_copy(p, s)                                              \
    ((s)->len ? ngx_cpymem(p, (s)->data, (s)->len) : (p))


/*
 * A token's last bytes are its signature, a MAC over all the rest: hashing
 * them spreads tokens as well as hashing the whole token does, for a tenth
 * of the work.  Hits are confirmed by comparing the whole token.
 */

static ngx_inline uint32_t
ngx_http_sark_token_hash(ngx_str_t *token)
{
    size_t  n;

    n = ngx_min(token->len, 32);

    return (uint32_t) ngx_http_sark_hash(token->data + token->len - n, n);
}


/* a slot's block of at least `size` bytes, kept for its next use */

static u_char *
ngx_http_sark_slot_block(u_char **block, size_t *cap, size_t size)
{
    u_char  *p;

    if (*block && *cap >= size) {
        return *block;
    }

    p = ngx_alloc(size, ngx_cycle->log);
    if (p == NULL) {
        return NULL;
    }

    if (*block) {
        ngx_free(*block);
    }

    *block = p;
    *cap = size;

    return p;
}


/*
 * The identity of a token verified before under this location's JWT
 * settings: NGX_OK (id set, its strings copied into the request pool),
 * NGX_ABORT when that token has expired since, NGX_DECLINED when it is not
 * remembered.
 */

ngx_int_t
ngx_http_sark_token_recall(ngx_http_request_t *r,
    ngx_http_sark_loc_conf_t *slcf, ngx_str_t *token,
    ngx_http_sark_identity_t *id)
{
    u_char                 *p;
    uint32_t                hash;
    ngx_int_t               delta;
    ngx_uint_t              i;
    ngx_http_sark_token_t  *t;

    if (ngx_http_sark_tokens == NULL) {
        return NGX_DECLINED;
    }

    hash = ngx_http_sark_token_hash(token);
    t = &ngx_http_sark_tokens[hash % NGX_HTTP_SARK_TOKEN_SLOTS];

    if (t->block == NULL
        || t->hash != hash
        || t->len != token->len
        || t->keys != slcf->jwt_keys
        || t->issuer != slcf->jwt_issuer.data
        || t->audience != slcf->jwt_audience.data
        || ngx_memcmp(t->block + t->size - t->len, token->data, t->len) != 0)
    {
        return NGX_DECLINED;
    }

    if (ngx_time() >= t->id.exp + slcf->jwt_leeway) {
        return NGX_ABORT;
    }

    /* the slot may be reused while this request lives: copy it out (all
     * but the token, which is kept at the end of the block) */

    p = ngx_palloc(r->pool, t->size - t->len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(p, t->block, t->size - t->len);
    delta = p - t->block;

    *id = t->id;
    id->token_slot = t;
    id->token_gen = t->gen;
    id->roles = (ngx_str_t *) p;
    id->teams = (ngx_str_t *) p + t->id.nroles;

    if (id->sub.data) {
        id->sub.data += delta;
    }

    if (id->email.data) {
        id->email.data += delta;
    }

    for (i = 0; i < id->nroles; i++) {
        id->roles[i].data += delta;
    }

    for (i = 0; i < id->nteams; i++) {
        id->teams[i].data += delta;
    }

    return NGX_OK;
}


/* remembers the identity a token just verified carries */

void
ngx_http_sark_token_remember(ngx_http_sark_loc_conf_t *slcf,
    ngx_str_t *token, ngx_http_sark_identity_t *id)
{
    u_char                 *p;
    size_t                  size;
    uint32_t                hash;
    ngx_str_t              *arr;
    ngx_uint_t              i;
    ngx_http_sark_token_t  *t;

    if (ngx_http_sark_tokens == NULL) {
        ngx_http_sark_tokens = ngx_calloc(NGX_HTTP_SARK_TOKEN_SLOTS
                                          * sizeof(ngx_http_sark_token_t),
                                          ngx_cycle->log);
        if (ngx_http_sark_tokens == NULL) {
            return;
        }
    }

    size = (id->nroles + id->nteams) * sizeof(ngx_str_t)
           + id->sub.len + id->email.len + token->len;

    for (i = 0; i < id->nroles; i++) {
        size += id->roles[i].len;
    }

    for (i = 0; i < id->nteams; i++) {
        size += id->teams[i].len;
    }

    hash = ngx_http_sark_token_hash(token);
    t = &ngx_http_sark_tokens[hash % NGX_HTTP_SARK_TOKEN_SLOTS];

    if (t->block) {
        ngx_free(t->block);
        t->block = NULL;
    }

    t->question_loc = NULL;
    t->gen++;

    p = ngx_alloc(size, ngx_cycle->log);
    if (p == NULL) {
        return;
    }

    t->block = p;
    t->size = size;
    t->hash = hash;
    t->len = token->len;
    t->keys = slcf->jwt_keys;
    t->issuer = slcf->jwt_issuer.data;
    t->audience = slcf->jwt_audience.data;
    t->id = *id;

    id->token_slot = t;
    id->token_gen = t->gen;

    arr = (ngx_str_t *) p;
    p += (id->nroles + id->nteams) * sizeof(ngx_str_t);

    t->id.roles = arr;
    t->id.teams = arr + id->nroles;

    t->id.sub.data = id->sub.data ? p : NULL;
    p = ngx_http_sark_copy(p, &id->sub);

    /* an empty email stays present: the policy sees "" then, not none */

    t->id.email.data = NULL;

    if (id->email.data) {
        t->id.email.data = p;
        p = ngx_http_sark_copy(p, &id->email);
    }

    for (i = 0; i < id->nroles; i++) {
        arr[i].len = id->roles[i].len;
        arr[i].data = p;
        p = ngx_http_sark_copy(p, &id->roles[i]);
    }

    for (i = 0; i < id->nteams; i++) {
        arr[id->nroles + i].len = id->teams[i].len;
        arr[id->nroles + i].data = p;
        p = ngx_http_sark_copy(p, &id->teams[i]);
    }

    ngx_memcpy(p, token->data, token->len);
}


/*
 * The question this token asked last at `loc` under revision generation
 * `rev`, when `body` is the body it came in (empty when enforcing), or
 * NULL.  Valid until the slot changes, which cannot happen while a
 * decision is being made.
 */

ngx_http_sark_question_t *
ngx_http_sark_question_recall(ngx_http_sark_identity_t *id, void *loc,
    ngx_uint_t rev, ngx_str_t *body)
{
    ngx_http_sark_token_t  *t;

    t = id->token_slot;

    if (t == NULL || t->gen != id->token_gen || t->question_loc != loc
        || t->question_rev != rev || t->question.body.len != body->len
        || (body->len
            && ngx_memcmp(t->question.body.data, body->data, body->len)
               != 0))
    {
        return NULL;
    }

    return &t->question;
}


/* remembers `q` as the token's last question at `loc`; returns the copy */

ngx_http_sark_question_t *
ngx_http_sark_question_remember(ngx_http_sark_identity_t *id, void *loc,
    ngx_uint_t rev, ngx_http_sark_question_t *q)
{
    u_char                 *p;
    size_t                  size;
    ngx_http_sark_token_t  *t;

    t = id->token_slot;

    if (t == NULL || t->gen != id->token_gen
        || q->body.len > NGX_HTTP_SARK_QUESTION_BODY)
    {
        return NULL;
    }

    t->question_loc = NULL;

    size = q->key.text.len + q->audit_query.len + q->body.len;

    p = ngx_http_sark_slot_block(&t->question_block, &t->question_size,
                                 size);
    if (p == NULL) {
        return NULL;
    }

    t->question = *q;

    t->question.key.text.data = p;
    p = ngx_http_sark_copy(p, &q->key.text);

    t->question.audit_query.data = p;
    p = ngx_http_sark_copy(p, &q->audit_query);

    t->question.body.data = p;
    (void) ngx_http_sark_copy(p, &q->body);

    t->question_rev = rev;
    t->question_loc = loc;

    return &t->question;
}


/*
 * The key of an encoded question seen before: NGX_OK with key set (its
 * text valid until ngx_http_sark_key_remember() replaces the slot, which
 * cannot happen while a decision is being keyed), else NGX_DECLINED.
 */

ngx_int_t
ngx_http_sark_key_recall(u_char *enc, size_t len, ngx_http_sark_key_t *key)
{
    uint32_t                   hash;
    ngx_http_sark_key_slot_t  *k;

    if (ngx_http_sark_keys == NULL || len > NGX_HTTP_SARK_KEY_MAX_ENC) {
        return NGX_DECLINED;
    }

    hash = (uint32_t) ngx_http_sark_hash(enc, len);
    k = &ngx_http_sark_keys[hash % NGX_HTTP_SARK_KEY_SLOTS];

    if (k->enc == NULL || k->hash != hash || k->len != len
        || ngx_memcmp(k->enc, enc, len) != 0)
    {
        return NGX_DECLINED;
    }

    ngx_memcpy(key->digest, k->digest, NGX_HTTP_SARK_DIGEST_LEN);
    key->text.data = k->enc + len;
    key->text.len = k->text_len;

    return NGX_OK;
}


void
ngx_http_sark_key_remember(u_char *enc, size_t len, ngx_http_sark_key_t *key,
    ngx_log_t *log)
{
    uint32_t                   hash;
    ngx_http_sark_key_slot_t  *k;

    if (len > NGX_HTTP_SARK_KEY_MAX_ENC) {
        return;
    }

    if (ngx_http_sark_keys == NULL) {
        ngx_http_sark_keys = ngx_calloc(NGX_HTTP_SARK_KEY_SLOTS
                                        * sizeof(ngx_http_sark_key_slot_t),
                                        log);
        if (ngx_http_sark_keys == NULL) {
            return;
        }
    }

    hash = (uint32_t) ngx_http_sark_hash(enc, len);
    k = &ngx_http_sark_keys[hash % NGX_HTTP_SARK_KEY_SLOTS];

    if (k->enc) {
        ngx_free(k->enc);
    }

    k->enc = ngx_alloc(len + key->text.len, log);
    if (k->enc == NULL) {
        return;
    }

    ngx_memcpy(k->enc, enc, len);
    ngx_memcpy(k->enc + len, key->text.data, key->text.len);
    k->hash = hash;
    k->len = (uint32_t) len;
    k->text_len = key->text.len;
    ngx_memcpy(k->digest, key->digest, NGX_HTTP_SARK_DIGEST_LEN);
}
