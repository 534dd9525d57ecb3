
/*
 * Copyright (C) sark-gateway authors
 */


/*
 * Gateway callers (docs/design.md, Gateway keys): a gateway presents a key
 * in X-Gateway-Api-Key or as "Authorization: Bearer sark_gw_...".  A key is
 * the static sark_gateway_key, or one of the keys sarkd keeps in
 * PostgreSQL: sarkd pushes the SHA-256 of every valid key to each worker
 * (KEYS frames: at connect and on every change, a revocation included),
 * so a check is a hash and a binary search, never a wait on the database.
 * The set is dropped when the connection to sarkd is lost (it can no
 * longer learn of revocations): keys from sarkd then answer 503 until
 * the next push.  Uses are reported back (KEY_USED) at most once a minute
 * per key and worker, for the key's last_used_at.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "ngx_http_sark_module.h"


#define NGX_HTTP_SARK_KEY_PREFIX      "sark_gw_"
#define NGX_HTTP_SARK_KEY_LEN                                                 \
    (sizeof(NGX_HTTP_SARK_KEY_PREFIX) - 1 + 32)
#define NGX_HTTP_SARK_KEY_REPORT      60000   /* ms between KEY_USED */

/* sarkd silent this long (ms; it is probed every 0.5 s): keys distrusted */
#define NGX_HTTP_SARK_KEY_SILENCE     1200


typedef struct {
    u_char                       hash[SARK_KEY_HASH_LEN];
    uint64_t                     expires_at;    /* Unix ms, 0: never */
    uint32_t                     scopes;        /* SARK_KEY_SCOPE_* */
    ngx_msec_t                   reported;      /* last KEY_USED; 0: never */
    ngx_str_t                    id;
} ngx_http_sark_gw_key_t;


static ngx_int_t ngx_http_sark_key_entry(sark_tlv_t *t,
    ngx_http_sark_gw_key_t *k, u_char **ids);
static int ngx_libc_cdecl ngx_http_sark_key_cmp(const void *a, const void *b);
static ngx_http_sark_gw_key_t *ngx_http_sark_key_find(u_char *hash);
static void ngx_http_sark_key_report(ngx_http_sark_gw_key_t *k);
static ngx_int_t ngx_http_sark_key_presented(ngx_http_request_t *r,
    ngx_http_sark_loc_conf_t *slcf, ngx_uint_t any_bearer, ngx_str_t *key,
    ngx_uint_t *bearer);


/* this worker's set: one block, the entries then their ids */
static ngx_http_sark_gw_key_t  *ngx_http_sark_keys;
static ngx_uint_t               ngx_http_sark_nkeys;
static ngx_uint_t               ngx_http_sark_keys_loaded;


/* KEYS from sarkd: the new set replaces the old one whole */

void
ngx_http_sark_keys_update(u_char *payload, size_t len)
{
    int                      rc;
    u_char                  *ids;
    size_t                   off, size;
    ngx_uint_t               n, i;
    sark_tlv_t               t;
    ngx_http_sark_gw_key_t  *keys;

    n = 0;
    size = 0;
    off = 0;

    while ((rc = sark_tlv_next(payload, len, &off, &t)) == SARK_PROTO_OK) {
        if (t.tag == SARK_KEYS_ENTRY) {
            n++;
            size += t.len;
        }
    }

    if (rc != SARK_PROTO_END) {
        goto malformed;
    }

    keys = ngx_alloc(n * sizeof(ngx_http_sark_gw_key_t) + size + 1,
                     ngx_cycle->log);
    if (keys == NULL) {
        return;
    }

    ids = (u_char *) (keys + n);
    off = 0;
    i = 0;

    while (sark_tlv_next(payload, len, &off, &t) == SARK_PROTO_OK) {
        if (t.tag != SARK_KEYS_ENTRY) {
            continue;
        }

        if (ngx_http_sark_key_entry(&t, &keys[i++], &ids) != NGX_OK) {
            ngx_free(keys);
            goto malformed;
        }
    }

    ngx_qsort(keys, n, sizeof(ngx_http_sark_gw_key_t), ngx_http_sark_key_cmp);

    if (ngx_http_sark_keys) {
        ngx_free(ngx_http_sark_keys);
    }

    ngx_http_sark_keys = keys;
    ngx_http_sark_nkeys = n;

    if (!ngx_http_sark_keys_loaded) {
        ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, 0,
                      "sark: %ui gateway keys from sarkd", n);
    }

    ngx_http_sark_keys_loaded = 1;

    return;

malformed:

    ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                  "sark: malformed gateway key set from sarkd ignored");
}


static ngx_int_t
ngx_http_sark_key_entry(sark_tlv_t *t, ngx_http_sark_gw_key_t *k,
    u_char **ids)
{
    u_char        c;
    size_t        i, id_len;
    const u_char  *p;

    if (t->len <= SARK_KEY_ENTRY_FIXED
        || t->len > SARK_KEY_ENTRY_FIXED + SARK_KEY_MAX_ID)
    {
        return NGX_ERROR;
    }

    p = t->value;
    id_len = t->len - SARK_KEY_ENTRY_FIXED;

    for (i = 0; i < id_len; i++) {
        c = p[SARK_KEY_ENTRY_FIXED + i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '_' || c == '-'))
        {
            return NGX_ERROR;
        }
    }

    ngx_memcpy(k->hash, p, SARK_KEY_HASH_LEN);
    k->expires_at = sark_get_u64(p + SARK_KEY_HASH_LEN);
    k->scopes = sark_get_u32(p + SARK_KEY_HASH_LEN + 8);
    k->reported = 0;

    k->id.data = *ids;
    k->id.len = id_len;
    *ids = ngx_cpymem(*ids, p + SARK_KEY_ENTRY_FIXED, id_len);

    return NGX_OK;
}


static int ngx_libc_cdecl
ngx_http_sark_key_cmp(const void *a, const void *b)
{
    return ngx_memcmp(((ngx_http_sark_gw_key_t *) a)->hash,
                      ((ngx_http_sark_gw_key_t *) b)->hash, SARK_KEY_HASH_LEN);
}


/* the connection to sarkd is lost: revocations can no longer arrive */

void
ngx_http_sark_keys_lost(void)
{
    if (ngx_http_sark_keys) {
        ngx_free(ngx_http_sark_keys);
        ngx_http_sark_keys = NULL;
    }

    ngx_http_sark_nkeys = 0;
    ngx_http_sark_keys_loaded = 0;
}


static ngx_http_sark_gw_key_t *
ngx_http_sark_key_find(u_char *hash)
{
    ngx_int_t    rc;
    ngx_uint_t   lo, hi, mid;

    lo = 0;
    hi = ngx_http_sark_nkeys;

    while (lo < hi) {
        mid = lo + (hi - lo) / 2;

        rc = ngx_memcmp(hash, ngx_http_sark_keys[mid].hash, SARK_KEY_HASH_LEN);

        if (rc == 0) {
            return &ngx_http_sark_keys[mid];
        }

        if (rc < 0) {
            hi = mid;

        } else {
            lo = mid + 1;
        }
    }

    return NULL;
}


/* KEY_USED for k, at most once a minute (last_used_at is that coarse) */

static void
ngx_http_sark_key_report(ngx_http_sark_gw_key_t *k)
{
    u_char            frame[SARK_PROTO_HDR_LEN + SARK_PROTO_TLV_HDR_LEN
                            + SARK_KEY_MAX_ID];
    size_t            off;
    sark_frame_hdr_t  h;

    if (k->reported
        && ngx_current_msec - k->reported < NGX_HTTP_SARK_KEY_REPORT)
    {
        return;
    }

    off = SARK_PROTO_HDR_LEN;

    if (sark_tlv_put(frame, sizeof(frame), &off, SARK_KEYS_ID, k->id.data,
                     k->id.len)
        != SARK_PROTO_OK)
    {
        return;
    }

    ngx_memzero(&h, sizeof(sark_frame_hdr_t));
    h.type = SARK_MSG_KEY_USED;
    h.length = (uint32_t) (off - SARK_PROTO_HDR_LEN);
    sark_frame_hdr_encode(frame, &h);

    if (ngx_http_sark_sarkd_notify(frame, off) == NGX_OK) {
        k->reported = ngx_current_msec ? ngx_current_msec : 1;
    }
}


/*
 * The key a request presents: X-Gateway-Api-Key, else a bearer token
 * that is one (any bearer with `any_bearer`; else one that looks like a
 * key from sarkd, or is the static key).  1: *key is it; 0: none; 2: two
 * X-Gateway-Api-Key headers.
 */

static ngx_int_t
ngx_http_sark_key_presented(ngx_http_request_t *r,
    ngx_http_sark_loc_conf_t *slcf, ngx_uint_t any_bearer, ngx_str_t *key,
    ngx_uint_t *bearer)
{
    u_char                       *p, *last;
    ngx_table_elt_t              *h;
    ngx_http_sark_header_iter_t   it;

    static ngx_str_t  name = ngx_string("X-Gateway-Api-Key");

    *bearer = 0;

    ngx_memzero(&it, sizeof(ngx_http_sark_header_iter_t));

    h = ngx_http_sark_next_header(&r->headers_in.headers, &name, &it);
    if (h) {
        *key = h->value;

        /* two keys: which one acts would be a guess */
        return ngx_http_sark_next_header(&r->headers_in.headers, &name, &it)
               ? 2 : 1;
    }

    if (r->headers_in.authorization == NULL) {
        return 0;
    }

    p = r->headers_in.authorization->value.data;
    last = p + r->headers_in.authorization->value.len;

    if (last - p <= 7 || ngx_strncasecmp(p, (u_char *) "Bearer ", 7) != 0) {
        return 0;
    }

    for (p += 7; p < last && *p == ' '; p++) { /* void */ }

    while (last > p && last[-1] == ' ') {
        last--;
    }

    key->data = p;
    key->len = last - p;

    if (!any_bearer
        && !(key->len >= sizeof(NGX_HTTP_SARK_KEY_PREFIX) - 1
             && ngx_strncmp(p, NGX_HTTP_SARK_KEY_PREFIX,
                            sizeof(NGX_HTTP_SARK_KEY_PREFIX) - 1) == 0)
        && !(slcf->gateway_key.len && key->len == slcf->gateway_key.len
             && CRYPTO_memcmp(p, slcf->gateway_key.data, key->len) == 0))
    {
        return 0;
    }

    *bearer = 1;

    return 1;
}


/*
 * NGX_OK: a gateway presents a valid key with `scope` (ctx->gateway_key
 * names it); NGX_DECLINED: ctx->error says why not; NGX_ABORT: no key is
 * presented (any_bearer 0 only: the caller may be a user).
 */

ngx_int_t
ngx_http_sark_gateway_caller(ngx_http_request_t *r,
    ngx_http_sark_loc_conf_t *slcf, ngx_http_sark_ctx_t *ctx,
    ngx_uint_t any_bearer, uint32_t scope)
{
    u_char                   hash[SARK_KEY_HASH_LEN];
    ngx_str_t                key;
    ngx_uint_t               bearer, i;
    ngx_http_sark_error_t   *err;
    ngx_http_sark_gw_key_t  *k;

    err = &ctx->error;
    ngx_str_null(&key);

    switch (ngx_http_sark_key_presented(r, slcf, any_bearer, &key, &bearer)) {

    case 0:
        if (!any_bearer) {
            return NGX_ABORT;
        }

        break;

    case 2:
        ngx_http_sark_error_set(err, NGX_HTTP_BAD_REQUEST, "GW-100",
                                "more than one X-Gateway-Api-Key header");
        err->field = "x-gateway-api-key";
        err->in_header = 1;
        return NGX_DECLINED;

    default:
        break;
    }

    if (key.len == 0) {
        if (slcf->compat == NGX_HTTP_SARK_COMPAT_SARK) {

            /* SARK's route declares the header: its absence is a 422 */

            ngx_http_sark_error_set(err, NGX_HTTP_BAD_REQUEST, "GW-100",
                                    "Field required");
            err->field = "x-gateway-api-key";
            err->in_header = 1;
            err->missing = 1;
            return NGX_DECLINED;
        }

        ngx_http_sark_error_set(err, NGX_HTTP_UNAUTHORIZED, "AU-001",
                                "missing gateway API key");
        err->www_authenticate = 1;
        return NGX_DECLINED;
    }

    if (slcf->gateway_key.len && key.len == slcf->gateway_key.len
        && CRYPTO_memcmp(key.data, slcf->gateway_key.data, key.len) == 0)
    {
        ngx_str_set(&ctx->gateway_key, "static");
        return NGX_OK;
    }

    if (key.len != NGX_HTTP_SARK_KEY_LEN
        || ngx_strncmp(key.data, NGX_HTTP_SARK_KEY_PREFIX,
                       sizeof(NGX_HTTP_SARK_KEY_PREFIX) - 1) != 0)
    {
        goto invalid;
    }

    for (i = sizeof(NGX_HTTP_SARK_KEY_PREFIX) - 1; i < key.len; i++) {
        if (!((key.data[i] >= '0' && key.data[i] <= '9')
              || (key.data[i] >= 'a' && key.data[i] <= 'f')))
        {
            goto invalid;
        }
    }

    if (!ngx_http_sark_keys_loaded) {
        ngx_http_sark_error_set(err, NGX_HTTP_SERVICE_UNAVAILABLE, "CN-001",
                                "gateway keys are not known yet: sarkd has "
                                "not sent them");
        err->retry_after = 1;
        return NGX_DECLINED;
    }

    /*
     * sarkd connected but not answering (stopped, stalled): a revocation
     * could not reach this worker, so its keys are not trusted meanwhile
     */

    if (ngx_http_sark_sarkd_silence() > NGX_HTTP_SARK_KEY_SILENCE) {
        ngx_http_sark_error_set(err, NGX_HTTP_SERVICE_UNAVAILABLE, "CN-001",
                                "gateway keys are not trusted now: sarkd "
                                "has not answered for over a second");
        err->retry_after = 1;
        return NGX_DECLINED;
    }

    SHA256(key.data, key.len, hash);

    k = ngx_http_sark_key_find(hash);

    if (k == NULL) {
        goto invalid;
    }

    if (k->expires_at
        && (uint64_t) ngx_cached_time->sec * 1000 + ngx_cached_time->msec
           >= k->expires_at)
    {
        ngx_http_sark_error_set(err, NGX_HTTP_UNAUTHORIZED, "AU-003",
                                "gateway API key expired");
        err->www_authenticate = 1;
        err->invalid_token = bearer;
        return NGX_DECLINED;
    }

    if (!(k->scopes & scope)) {
        ngx_http_sark_error_fmt(r->pool, err, NGX_HTTP_FORBIDDEN, "AZ-002",
                                "gateway API key \"%V\" lacks the scope "
                                "\"%s\"", &k->id,
                                scope == SARK_KEY_SCOPE_AUDIT ? "audit"
                                                              : "authorize");
        return NGX_DECLINED;
    }

    ctx->gateway_key = k->id;
    ctx->identity.exp = (time_t) (k->expires_at / 1000);

    ngx_http_sark_key_report(k);

    return NGX_OK;

invalid:

    /* unknown, revoked and malformed keys are one answer */

    ngx_http_sark_error_set(err, NGX_HTTP_UNAUTHORIZED, "AU-002",
                            "invalid gateway API key");
    err->www_authenticate = 1;
    err->invalid_token = bearer;

    return NGX_DECLINED;
}


/* the gateway audit endpoint's callers: any presented key, scope audit */

ngx_int_t
ngx_http_sark_gateway_check(ngx_http_request_t *r,
    ngx_http_sark_loc_conf_t *slcf, ngx_http_sark_ctx_t *ctx)
{
    ngx_int_t  rc;

    rc = ngx_http_sark_gateway_caller(r, slcf, ctx, 1, SARK_KEY_SCOPE_AUDIT);

    if (rc == NGX_OK) {
        ngx_str_set(&ctx->identity.sub, "gateway");
    }

    return rc;
}
