
/*
 * Copyright (C) sark-gateway authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_sark_module.h"


static ngx_int_t ngx_http_sark_copy_strings(ngx_pool_t *pool,
    sark_jwt_str_t *src, size_t n, ngx_str_t **dst, ngx_uint_t *ndst);
static ngx_int_t ngx_http_sark_token_lookup(ngx_http_request_t *r,
    ngx_http_sark_loc_conf_t *slcf, ngx_str_t *token,
    ngx_http_sark_identity_t *id);
static void ngx_http_sark_token_store(ngx_http_sark_loc_conf_t *slcf,
    ngx_str_t *token, ngx_http_sark_identity_t *id);


/*
 * Per-worker cache of verified tokens (direct-mapped): a token seen again
 * skips signature and JSON work; its exp is checked on every use.  An
 * entry remembers the key set, issuer and audience it was verified with.
 */

#define NGX_HTTP_SARK_TOKEN_SLOTS  1024

typedef struct {
    uint32_t                     hash;
    size_t                       len;
    size_t                       size;
    u_char                      *block;
    void                        *keys;
    u_char                      *issuer;
    u_char                      *audience;
    ngx_http_sark_identity_t     id;         /* points into block */
    ngx_uint_t                   gen;        /* bumped when the slot is
                                                given to another token */

    /* see ngx_http_sark_token_memo() */
    void                        *memo_loc;
    ngx_uint_t                   memo_rev;
    ngx_http_sark_token_memo_t   memo;
    u_char                      *memo_block;  /* ngx_alloc(): key text,
                                                 audit fields, body */
    size_t                       memo_size;
} ngx_http_sark_token_t;


static ngx_http_sark_token_t  *ngx_http_sark_tokens;


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


void *
ngx_http_sark_json_alloc(void *pool, size_t size)
{
    return ngx_palloc(pool, size);
}


ngx_int_t
ngx_http_sark_authenticate(ngx_http_request_t *r,
    ngx_http_sark_loc_conf_t *slcf, ngx_http_sark_identity_t *id,
    ngx_http_sark_error_t *err)
{
    u_char             *p, *last;
    char                msg[128];
    ngx_str_t           token;
    sark_jwt_rc_e       rc;
    sark_jwt_opts_t     opts;
    ngx_table_elt_t    *h;
    sark_jwt_claims_t   claims;

    h = r->headers_in.authorization;

    if (h == NULL || h->value.len == 0) {
        ngx_http_sark_error_set(err, NGX_HTTP_UNAUTHORIZED, "AU-001",
                                "missing bearer token");
        err->www_authenticate = 1;
        return NGX_DECLINED;
    }

    p = h->value.data;
    last = p + h->value.len;

    if (h->value.len < 6
        || (ngx_memcmp(p, "Bearer", 6) != 0
            && ngx_strncasecmp(p, (u_char *) "Bearer", 6) != 0)
        || (h->value.len > 6 && p[6] != ' '))
    {
        ngx_http_sark_error_set(err, NGX_HTTP_UNAUTHORIZED, "AU-002",
                                "invalid authorization header: "
                                "expected \"Bearer <token>\"");
        err->www_authenticate = 1;
        err->invalid_token = 1;
        return NGX_DECLINED;
    }

    for (p += 6; p < last && *p == ' '; p++) { /* void */ }

    while (last > p && last[-1] == ' ') {
        last--;
    }

    token.data = p;
    token.len = last - p;

    if (token.len == 0) {
        ngx_http_sark_error_set(err, NGX_HTTP_UNAUTHORIZED, "AU-001",
                                "missing bearer token");
        err->www_authenticate = 1;
        return NGX_DECLINED;
    }

    switch (ngx_http_sark_token_lookup(r, slcf, &token, id)) {

    case NGX_OK:
        return NGX_OK;

    case NGX_ERROR:
        return NGX_ERROR;

    case NGX_ABORT:
        ngx_http_sark_error_set(err, NGX_HTTP_UNAUTHORIZED, "AU-003",
                                "token expired");
        err->www_authenticate = 1;
        err->invalid_token = 1;
        return NGX_DECLINED;

    default:
        break;
    }

    ngx_memzero(&opts, sizeof(sark_jwt_opts_t));

    opts.keys = (const sark_jwt_key_t *const *) slcf->jwt_keys->elts;
    opts.nkeys = slcf->jwt_keys->nelts;
    opts.issuer = slcf->jwt_issuer.len ? (char *) slcf->jwt_issuer.data
                                       : NULL;
    opts.audience = slcf->jwt_audience.len
                    ? (char *) slcf->jwt_audience.data : NULL;
    opts.leeway = (long) slcf->jwt_leeway;
    opts.max_token_len = SARK_JWT_DEFAULT_MAX_LEN;

    msg[0] = '\0';

    rc = sark_jwt_verify((char *) token.data, token.len, &opts,
                         (long long) ngx_time(), ngx_http_sark_json_alloc,
                         r->pool, &claims, msg, sizeof(msg));

    if (rc == SARK_JWT_ERROR) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "sark: token verification failed: %s", msg);
        ngx_memzero(err, sizeof(ngx_http_sark_error_t));
        return NGX_ERROR;
    }

    if (rc != SARK_JWT_OK) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "sark: token rejected: %s (%s)",
                      sark_jwt_strerror(rc), msg);

        if (rc == SARK_JWT_EXPIRED) {
            ngx_http_sark_error_set(err, NGX_HTTP_UNAUTHORIZED, "AU-003",
                                    "token expired");

        } else if (msg[0] == '\0') {
            ngx_http_sark_error_fmt(r->pool, err, NGX_HTTP_UNAUTHORIZED,
                                    "AU-002", "%s", sark_jwt_strerror(rc));

        } else {
            /* messages that say "token" themselves are shown as they are */
            ngx_http_sark_error_fmt(r->pool, err, NGX_HTTP_UNAUTHORIZED,
                                    "AU-002",
                                    ngx_strstr(msg, "token") ? "%s"
                                    : "invalid token: %s", msg);
        }

        err->www_authenticate = 1;
        err->invalid_token = 1;
        return NGX_DECLINED;
    }

    if (claims.nroles > NGX_HTTP_SARK_MAX_ROLES
        || claims.nteams > NGX_HTTP_SARK_MAX_ROLES)
    {
        ngx_http_sark_error_set(err, NGX_HTTP_UNAUTHORIZED, "AU-002",
                                "invalid token: too many roles or teams");
        err->www_authenticate = 1;
        err->invalid_token = 1;
        return NGX_DECLINED;
    }

    id->sub.data = (u_char *) claims.sub.s;
    id->sub.len = claims.sub.len;
    id->email.data = (u_char *) claims.email.s;
    id->email.len = claims.email.len;
    id->exp = (time_t) claims.exp;

    if (ngx_http_sark_copy_strings(r->pool, claims.roles, claims.nroles,
                                   &id->roles, &id->nroles)
        != NGX_OK
        || ngx_http_sark_copy_strings(r->pool, claims.teams, claims.nteams,
                                      &id->teams, &id->nteams)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_http_sark_token_store(slcf, &token, id);

    return NGX_OK;
}


/* NGX_OK: known and valid; NGX_ABORT: known and expired; NGX_DECLINED */

static ngx_int_t
ngx_http_sark_token_lookup(ngx_http_request_t *r,
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


static void
ngx_http_sark_token_store(ngx_http_sark_loc_conf_t *slcf, ngx_str_t *token,
    ngx_http_sark_identity_t *id)
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

    t->memo_loc = NULL;
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
    p = ngx_cpymem(p, id->sub.data, id->sub.len);

    /* an empty email stays present: the policy sees "" then, not none */

    t->id.email.data = NULL;

    if (id->email.data) {
        t->id.email.data = p;
        p = ngx_cpymem(p, id->email.data, id->email.len);
    }

    for (i = 0; i < id->nroles; i++) {
        arr[i].len = id->roles[i].len;
        arr[i].data = p;
        p = ngx_cpymem(p, id->roles[i].data, id->roles[i].len);
    }

    for (i = 0; i < id->nteams; i++) {
        arr[id->nroles + i].len = id->teams[i].len;
        arr[id->nroles + i].data = p;
        p = ngx_cpymem(p, id->teams[i].data, id->teams[i].len);
    }

    ngx_memcpy(p, token->data, token->len);
}


static ngx_int_t
ngx_http_sark_copy_strings(ngx_pool_t *pool, sark_jwt_str_t *src, size_t n,
    ngx_str_t **dst, ngx_uint_t *ndst)
{
    size_t      i;
    ngx_str_t  *s;

    *ndst = n;
    *dst = NULL;

    if (n == 0) {
        return NGX_OK;
    }

    s = ngx_palloc(pool, n * sizeof(ngx_str_t));
    if (s == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < n; i++) {
        s[i].data = (u_char *) src[i].s;
        s[i].len = src[i].len;
    }

    *dst = s;

    return NGX_OK;
}


/*
 * The decision key depends on the caller's identity, the query and the
 * policy revision.  A token's slot remembers the last question asked with
 * it at one location under one revision (generation): its key, its audit
 * fields encoded, and for the decision API the body it came in, byte for
 * byte, with where each member is in it.  The same question again (an
 * enforced location without variables, or the same body at the same
 * decision API location) skips parsing, encoding and hashing.  The slot
 * must still hold the token the identity came from: it is given to
 * another token whenever a new one lands on it.  What it returns is valid
 * until the slot changes, which cannot happen while a decision is being
 * made.
 */

#define NGX_HTTP_SARK_MEMO_BODY_MAX  2048

/* (never NULL to memcpy, even for nothing) */
#define ngx_http_sark_copy(p, s)                                              \
    ((s)->len ? ngx_cpymem(p, (s)->data, (s)->len) : (p))


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


ngx_http_sark_token_memo_t *
ngx_http_sark_token_memo(ngx_http_sark_identity_t *id, void *loc,
    ngx_uint_t rev, ngx_str_t *body)
{
    ngx_http_sark_token_t  *t;

    t = id->token_slot;

    if (t == NULL || t->gen != id->token_gen || t->memo_loc != loc
        || t->memo_rev != rev || t->memo.body.len != body->len
        || (body->len
            && ngx_memcmp(t->memo.body.data, body->data, body->len) != 0))
    {
        return NULL;
    }

    return &t->memo;
}


ngx_http_sark_token_memo_t *
ngx_http_sark_token_memo_store(ngx_http_sark_identity_t *id, void *loc,
    ngx_uint_t rev, ngx_http_sark_token_memo_t *m)
{
    u_char                 *p;
    size_t                  size;
    ngx_http_sark_token_t  *t;

    t = id->token_slot;

    if (t == NULL || t->gen != id->token_gen
        || m->body.len > NGX_HTTP_SARK_MEMO_BODY_MAX)
    {
        return NULL;
    }

    t->memo_loc = NULL;

    size = m->key.text.len + m->audit_query.len + m->body.len;

    p = ngx_http_sark_slot_block(&t->memo_block, &t->memo_size, size);
    if (p == NULL) {
        return NULL;
    }

    t->memo = *m;

    t->memo.key.text.data = p;
    p = ngx_cpymem(p, m->key.text.data, m->key.text.len);

    t->memo.audit_query.data = p;
    p = ngx_cpymem(p, m->audit_query.data, m->audit_query.len);

    t->memo.body.data = p;
    (void) ngx_http_sark_copy(p, &m->body);

    t->memo_rev = rev;
    t->memo_loc = loc;

    return &t->memo;
}
