
/*
 * Copyright (C) sark-gateway authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <openssl/rand.h>

#if (defined __SSE2__)
#include <emmintrin.h>
#endif

#include "ngx_http_sark_module.h"


static ngx_int_t ngx_http_sark_add_header(ngx_http_request_t *r,
    const char *name, ngx_str_t *value);
static u_char *ngx_http_sark_put_string(u_char *p, ngx_str_t *s);
static ngx_uint_t ngx_http_sark_plain(ngx_str_t *s);


#define ngx_http_sark_cpylit(p, lit)  ngx_cpymem(p, lit, sizeof(lit) - 1)

static u_char *ngx_http_sark_put_time(u_char *p, uint64_t ms);
static u_char *ngx_http_sark_put_uint(u_char *p, ngx_uint_t v,
    ngx_uint_t width);
static size_t ngx_http_sark_string_len(ngx_str_t *s);
static ngx_str_t *ngx_http_sark_request_id(ngx_http_request_t *r);


static ngx_str_t  ngx_http_sark_cache_names[] = {
    ngx_string("MISS"),
    ngx_string("L1"),
    ngx_string("L2")
};


void
ngx_http_sark_error_set(ngx_http_sark_error_t *err, ngx_uint_t status,
    const char *code, const char *message)
{
    ngx_memzero(err, sizeof(ngx_http_sark_error_t));

    err->status = status;
    err->code = code;
    err->message.data = (u_char *) message;
    err->message.len = ngx_strlen(message);
}


void
ngx_http_sark_error_fmt(ngx_pool_t *pool, ngx_http_sark_error_t *err,
    ngx_uint_t status, const char *code, const char *fmt, ...)
{
    u_char   *p, buf[512];
    va_list   args;

    va_start(args, fmt);
    p = ngx_vslprintf(buf, buf + sizeof(buf), fmt, args);
    va_end(args);

    ngx_http_sark_error_set(err, status, code, "");

    err->message.data = ngx_pnalloc(pool, p - buf);
    if (err->message.data == NULL) {
        err->message.len = 0;
        return;
    }

    err->message.len = ngx_cpymem(err->message.data, buf, p - buf)
                       - err->message.data;
}


ngx_int_t
ngx_http_sark_send_json(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *body)
{
    ngx_int_t    rc;
    ngx_buf_t   *b;
    ngx_chain_t  out;

    r->headers_out.status = status;
    r->headers_out.content_length_n = body->len;

    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->pos = body->data;
    b->last = body->data + body->len;
    b->memory = 1;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


/*
 * What a client sent, made safe for the error log: control characters,
 * DEL, bytes above 0x7e, '"' and '\\' become \xHH, so a value cannot
 * start a line of its own or end the quotes around it.
 */

ngx_str_t *
ngx_http_sark_log_safe(ngx_pool_t *pool, ngx_str_t *s)
{
    u_char      c, *p;
    size_t      i, n;
    ngx_str_t  *out;

    static ngx_str_t   unprintable = ngx_string("(unprintable)");
    static const char  hex[] = "0123456789abcdef";

    for (i = 0, n = 0; i < s->len; i++) {
        c = s->data[i];
        n += (c < 0x20 || c > 0x7e || c == '"' || c == '\\') ? 4 : 1;
    }

    if (n == s->len) {
        return s;
    }

    out = ngx_palloc(pool, sizeof(ngx_str_t));
    p = ngx_pnalloc(pool, n);

    if (out == NULL || p == NULL) {
        return &unprintable;
    }

    out->data = p;
    out->len = n;

    for (i = 0; i < s->len; i++) {
        c = s->data[i];

        if (c < 0x20 || c > 0x7e || c == '"' || c == '\\') {
            *p++ = '\\';
            *p++ = 'x';
            *p++ = hex[c >> 4];
            *p++ = hex[c & 0xf];

        } else {
            *p++ = c;
        }
    }

    return out;
}


/* {"error": {"code", "message", "request_id"}} for err */

ngx_int_t
ngx_http_sark_error_envelope(ngx_http_request_t *r, ngx_http_sark_error_t *err,
    ngx_str_t *body)
{
    u_char     *p;
    size_t      len;
    ngx_str_t  *rid, code;

    code.data = (u_char *) err->code;
    code.len = ngx_strlen(err->code);

    rid = ngx_http_sark_request_id(r);

    len = sizeof("{\"error\":{\"code\":,\"message\":,\"request_id\":}}\n") - 1
          + ngx_http_sark_string_len(&code)
          + ngx_http_sark_string_len(&err->message)
          + ngx_http_sark_string_len(rid);

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    body->data = p;

    p = ngx_http_sark_cpylit(p, "{\"error\":{\"code\":");
    p = ngx_http_sark_put_string(p, &code);
    p = ngx_http_sark_cpylit(p, ",\"message\":");
    p = ngx_http_sark_put_string(p, &err->message);
    p = ngx_http_sark_cpylit(p, ",\"request_id\":");
    p = ngx_http_sark_put_string(p, rid);
    p = ngx_http_sark_cpylit(p, "}}\n");

    body->len = p - body->data;

    return NGX_OK;
}


ngx_int_t
ngx_http_sark_send_error(ngx_http_request_t *r, ngx_http_sark_error_t *err)
{
    u_char                    *p;
    size_t                     len;
    ngx_str_t                  body, value;
    ngx_http_sark_loc_conf_t  *slcf;

    if (ngx_http_sark_error_envelope(r, err, &body) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (err->retry_after) {
        value.data = ngx_pnalloc(r->pool, NGX_INT_T_LEN);
        if (value.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        value.len = ngx_sprintf(value.data, "%ui", err->retry_after)
                    - value.data;

        if (ngx_http_sark_add_header(r, "Retry-After", &value) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    if (err->www_authenticate) {
        slcf = ngx_http_get_module_loc_conf(r, ngx_http_sark_module);

        len = sizeof("Bearer realm=\"sark\", error=\"invalid_token\"") - 1
              + sizeof(", resource_metadata=\"\"") - 1
              + slcf->resource_metadata.len;

        value.data = ngx_pnalloc(r->pool, len);
        if (value.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        p = ngx_http_sark_cpylit(value.data, "Bearer realm=\"sark\"");

        if (err->invalid_token) {
            p = ngx_http_sark_cpylit(p, ", error=\"invalid_token\"");
        }

        if (slcf->resource_metadata.len) {
            p = ngx_sprintf(p, ", resource_metadata=\"%V\"",
                            &slcf->resource_metadata);
        }

        value.len = p - value.data;

        if (ngx_http_sark_add_header(r, "WWW-Authenticate", &value)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    if (err->status == NGX_HTTP_NOT_ALLOWED) {
        ngx_str_set(&value, "POST");

        if (ngx_http_sark_add_header(r, "Allow", &value) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    return ngx_http_sark_send_json(r, err->status, &body);
}


ngx_int_t
ngx_http_sark_send_decision(ngx_http_request_t *r, ngx_http_sark_ctx_t *ctx)
{
    u_char                       *p, *aid_at;
    size_t                        len;
    ngx_str_t                     body, *cache, *aid;
    ngx_uint_t                    allow;
    ngx_http_sark_decision_t     *d;
    ngx_http_sark_answer_memo_t  *a, made;

    d = &ctx->decision;
    aid = ngx_http_sark_audit_id(r->pool, ctx);

    /*
     * An L1 answer is text around its audit id made from the decision's
     * fields: the same fields as the token's memo holds (its revision is
     * the memo's) give the same text.
     */

    a = (ctx->memo && d->cache_layer == SARK_CACHE_L1 && aid)
        ? &ctx->memo->answer : NULL;

    if (a && a->head.len
        && a->decision == d->decision
        && a->cache_ttl == d->cache_ttl
        && a->evaluated_at == d->evaluated_at
        && a->reason.len == d->reason.len
        && a->filtered_parameters.len == d->filtered_parameters.len
        && (a->reason.len == 0
            || ngx_memcmp(a->reason.data, d->reason.data, a->reason.len) == 0)
        && (a->filtered_parameters.len == 0
            || ngx_memcmp(a->filtered_parameters.data,
                          d->filtered_parameters.data,
                          a->filtered_parameters.len)
               == 0))
    {
        body.len = a->head.len + aid->len + a->tail.len;

        body.data = ngx_pnalloc(r->pool, body.len);
        if (body.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        p = ngx_cpymem(body.data, a->head.data, a->head.len);
        p = ngx_cpymem(p, aid->data, aid->len);
        ngx_memcpy(p, a->tail.data, a->tail.len);

        return ngx_http_sark_send_json(r, NGX_HTTP_OK, &body);
    }

    allow = (d->decision == SARK_DECISION_ALLOW);
    cache = &ngx_http_sark_cache_names[d->cache_layer <= SARK_CACHE_L2
                                       ? d->cache_layer : 0];

    len = sizeof("{\"allow\":false,\"reason\":,\"filtered_parameters\":,"
                 "\"audit_id\":,\"cache_ttl\":,\"metadata\":{"
                 "\"policy_revision\":,\"evaluated_at\":"
                 "\"YYYY-MM-DDTHH:MM:SS.mmmZ\",\"cache\":\"MISS\"}}\n") - 1
          + ngx_http_sark_string_len(&d->reason)
          + d->filtered_parameters.len
          + ngx_http_sark_string_len(aid)
          + NGX_INT_T_LEN
          + ngx_http_sark_string_len(&d->policy_revision);

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    body.data = p;

    p = allow ? ngx_http_sark_cpylit(p, "{\"allow\":true,\"reason\":")
              : ngx_http_sark_cpylit(p, "{\"allow\":false,\"reason\":");
    p = ngx_http_sark_put_string(p, &d->reason);

    if (allow && d->filtered_parameters.len) {
        p = ngx_http_sark_cpylit(p, ",\"filtered_parameters\":");
        p = ngx_cpymem(p, d->filtered_parameters.data,
                       d->filtered_parameters.len);
    }

    p = ngx_http_sark_cpylit(p, ",\"audit_id\":");
    aid_at = NULL;

    if (aid) {
        /* hex digits and dashes: nothing to escape */
        *p++ = '"';
        aid_at = p;
        p = ngx_cpymem(p, aid->data, aid->len);
        *p++ = '"';

    } else {
        p = ngx_http_sark_cpylit(p, "null");
    }

    p = ngx_http_sark_cpylit(p, ",\"cache_ttl\":");
    p = ngx_http_sark_put_uint(p, d->cache_ttl, 1);
    p = ngx_http_sark_cpylit(p, ",\"metadata\":{\"policy_revision\":");
    p = ngx_http_sark_put_string(p, &d->policy_revision);
    p = ngx_http_sark_cpylit(p, ",\"evaluated_at\":\"");
    p = ngx_http_sark_put_time(p, d->evaluated_at);
    p = ngx_http_sark_cpylit(p, "Z\",\"cache\":\"");
    p = ngx_cpymem(p, cache->data, cache->len);
    p = ngx_http_sark_cpylit(p, "\"}}\n");

    body.len = p - body.data;

    if (a && aid_at) {
        made.decision = d->decision;
        made.cache_ttl = d->cache_ttl;
        made.evaluated_at = d->evaluated_at;
        made.reason = d->reason;
        made.filtered_parameters = d->filtered_parameters;
        made.head.data = body.data;
        made.head.len = aid_at - body.data;
        made.tail.data = aid_at + aid->len;
        made.tail.len = p - made.tail.data;

        ngx_http_sark_token_answer_store(&ctx->identity, &made);
    }

    return ngx_http_sark_send_json(r, NGX_HTTP_OK, &body);
}


/*
 * Audit ids are RFC 9562 UUIDv7: 48-bit Unix ms, then 74 random bits from a
 * per-worker xoshiro256** generator seeded from the OpenSSL CSPRNG (in the
 * worker, at first use).  Ids need to be unique and time-ordered (audit
 * rows index well), not secret.  $request_id takes its 16 bytes from the
 * same generator.
 */

static uint64_t  ngx_http_sark_rng[4];


static uint64_t
ngx_http_sark_rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}


static ngx_int_t
ngx_http_sark_random_seed(void)
{
    if ((ngx_http_sark_rng[0] | ngx_http_sark_rng[1]
         | ngx_http_sark_rng[2] | ngx_http_sark_rng[3]) != 0)
    {
        return NGX_OK;
    }

    if (RAND_bytes((u_char *) ngx_http_sark_rng, sizeof(ngx_http_sark_rng))
        != 1)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static uint64_t
ngx_http_sark_random(void)
{
    uint64_t  *s = ngx_http_sark_rng;
    uint64_t   result, t;

    result = ngx_http_sark_rotl(s[1] * 5, 7) * 9;
    t = s[1] << 17;

    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = ngx_http_sark_rotl(s[3], 45);

    return result;
}


ngx_int_t
ngx_http_sark_new_audit_id(ngx_http_sark_ctx_t *ctx)
{
    u_char      *b;
    uint64_t     ms, r1, r2;
    ngx_time_t  *tp;

    if (ngx_http_sark_random_seed() != NGX_OK) {
        return NGX_ERROR;
    }

    b = ctx->audit_raw;

    tp = ngx_timeofday();
    ms = (uint64_t) tp->sec * 1000 + tp->msec;
    r1 = ngx_http_sark_random();
    r2 = ngx_http_sark_random();

    /* 48-bit big-endian milliseconds, then random bits */

    sark_put_u16(b, (uint16_t) (ms >> 32));
    sark_put_u32(b + 2, (uint32_t) ms);
    ngx_memcpy(b + 6, &r1, 8);
    ngx_memcpy(b + 14, &r2, 2);

    b[6] = (u_char) (0x70 | (b[6] & 0x0f));
    b[8] = (u_char) (0x80 | (b[8] & 0x3f));

    ctx->has_audit_id = 1;
    ngx_str_null(&ctx->audit_id);

    return NGX_OK;
}


/*
 * $request_id, 16 random bytes in hex as nginx makes it, when the module
 * is the first to ask: every decision asks for it (its audit event, the
 * request to sarkd, error envelopes), and nginx's RAND_bytes() call per
 * request costs more instructions than the rest of an L1 hit.  The value
 * is stored as the variable's, so logs and answers show the same string.
 */

/*
 * 16 bytes as 32 lowercase hex digits.  With SSE2 (every x86-64) all at
 * once: high and low nibbles interleaved, then '0' added to each and 39
 * more to those above 9.  Elsewhere a byte at a time.
 */

static void
ngx_http_sark_hex16(u_char *dst, const u_char *src)
{
#if (defined __SSE2__)
    __m128i  v, mask, hi, lo, a, b, nine, zero, gap;

    mask = _mm_set1_epi8(0x0f);
    nine = _mm_set1_epi8(9);
    zero = _mm_set1_epi8('0');
    gap = _mm_set1_epi8('a' - '0' - 10);

    v = _mm_loadu_si128((const __m128i *) src);
    lo = _mm_and_si128(v, mask);
    hi = _mm_and_si128(_mm_srli_epi16(v, 4), mask);

    a = _mm_unpacklo_epi8(hi, lo);
    b = _mm_unpackhi_epi8(hi, lo);

    a = _mm_add_epi8(_mm_add_epi8(a, zero),
                     _mm_and_si128(_mm_cmpgt_epi8(a, nine), gap));
    b = _mm_add_epi8(_mm_add_epi8(b, zero),
                     _mm_and_si128(_mm_cmpgt_epi8(b, nine), gap));

    _mm_storeu_si128((__m128i *) dst, a);
    _mm_storeu_si128((__m128i *) (dst + 16), b);

#else
    ngx_uint_t  i;

    static const u_char  digits[] = "0123456789abcdef";

    for (i = 0; i < 16; i++) {
        dst[2 * i] = digits[src[i] >> 4];
        dst[2 * i + 1] = digits[src[i] & 0xf];
    }
#endif
}


ngx_http_variable_value_t *
ngx_http_sark_request_id_value(ngx_http_request_t *r)
{
    u_char                     *p;
    uint64_t                    raw[2];
    ngx_http_variable_value_t  *vv;
    ngx_http_sark_main_conf_t  *smcf;

    smcf = ngx_http_get_module_main_conf(r, ngx_http_sark_module);

    vv = &r->variables[smcf->request_id_index];

    if (vv->valid || vv->not_found) {
        return vv;
    }

    if (ngx_http_sark_random_seed() != NGX_OK) {
        return ngx_http_get_indexed_variable(r, smcf->request_id_index);
    }

    p = ngx_pnalloc(r->pool, 32);
    if (p == NULL) {
        return NULL;
    }

    raw[0] = ngx_http_sark_random();
    raw[1] = ngx_http_sark_random();

    ngx_http_sark_hex16(p, (u_char *) raw);

    vv->len = 32;
    vv->valid = 1;
    vv->no_cacheable = 0;
    vv->not_found = 0;
    vv->data = p;

    return vv;
}


/* the id as text, formatted on first use; NULL when there is none */

ngx_str_t *
ngx_http_sark_audit_id(ngx_pool_t *pool, ngx_http_sark_ctx_t *ctx)
{
    u_char  *p, hex[32];

    if (!ctx->has_audit_id) {
        return NULL;
    }

    if (ctx->audit_id.data) {
        return &ctx->audit_id;
    }

    p = ngx_pnalloc(pool, 36);
    if (p == NULL) {
        return NULL;
    }

    ctx->audit_id.data = p;
    ctx->audit_id.len = 36;

    /* 8-4-4-4-12 */

    ngx_http_sark_hex16(hex, ctx->audit_raw);

    p = ngx_cpymem(p, hex, 8);
    *p++ = '-';
    p = ngx_cpymem(p, hex + 8, 4);
    *p++ = '-';
    p = ngx_cpymem(p, hex + 12, 4);
    *p++ = '-';
    p = ngx_cpymem(p, hex + 16, 4);
    *p++ = '-';
    ngx_memcpy(p, hex + 20, 12);

    return &ctx->audit_id;
}


static ngx_int_t
ngx_http_sark_add_header(ngx_http_request_t *r, const char *name,
    ngx_str_t *value)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    h->key.data = (u_char *) name;
    h->key.len = ngx_strlen(name);
    h->value = *value;

    return NGX_OK;
}


/* decimal, zero-padded to at least `width` digits */

/*
 * Unix ms as ISO 8601 ("2026-11-27T01:02:03.456"), by hand: this is on the
 * path of every answer, and L1 hits of one entry repeat one time, so the
 * last one is kept per worker
 */

static u_char *
ngx_http_sark_put_time(u_char *p, uint64_t ms)
{
    u_char           *start;
    ngx_tm_t          tm;

    static uint64_t   last_ms = (uint64_t) -1;
    static u_char     last[sizeof("2026-11-27T01:02:03.456") - 1];

    if (ms == last_ms) {
        return ngx_cpymem(p, last, sizeof(last));
    }

    ngx_gmtime((time_t) (ms / 1000), &tm);

    start = p;

    p = ngx_http_sark_put_uint(p, tm.ngx_tm_year, 4);
    *p++ = '-';
    p = ngx_http_sark_put_uint(p, tm.ngx_tm_mon, 2);
    *p++ = '-';
    p = ngx_http_sark_put_uint(p, tm.ngx_tm_mday, 2);
    *p++ = 'T';
    p = ngx_http_sark_put_uint(p, tm.ngx_tm_hour, 2);
    *p++ = ':';
    p = ngx_http_sark_put_uint(p, tm.ngx_tm_min, 2);
    *p++ = ':';
    p = ngx_http_sark_put_uint(p, tm.ngx_tm_sec, 2);
    *p++ = '.';
    p = ngx_http_sark_put_uint(p, (ngx_uint_t) (ms % 1000), 3);

    if ((size_t) (p - start) == sizeof(last)) {
        ngx_memcpy(last, start, sizeof(last));
        last_ms = ms;
    }

    return p;
}


static u_char *
ngx_http_sark_put_uint(u_char *p, ngx_uint_t v, ngx_uint_t width)
{
    u_char      buf[NGX_INT_T_LEN];
    ngx_uint_t  n;

    n = 0;

    do {
        buf[n++] = (u_char) ('0' + v % 10);
        v /= 10;
    } while (v);

    while (n < width && n < NGX_INT_T_LEN) {
        buf[n++] = '0';
    }

    while (n) {
        *p++ = buf[--n];
    }

    return p;
}


/* 1 when s needs no JSON escaping: printable ASCII without '"' and '\\' */

static ngx_uint_t
ngx_http_sark_plain(ngx_str_t *s)
{
    u_char  *p, *last;

    p = s->data;
    last = p + s->len;

    if (s->len >= 8) {
        for ( /* void */ ; last - p > 8; p += 8) {
            if (sark_json_special8(p)) {
                return 0;
            }
        }

        /* the last eight bytes, overlapping what was checked */
        return sark_json_special8(last - 8) == 0;
    }

    for ( /* void */ ; p < last; p++) {
        if (*p < 0x20 || *p >= 0x80 || *p == '"' || *p == '\\') {
            return 0;
        }
    }

    return 1;
}


/*
 * Room for s as a JSON string, without scanning it: quotes plus the worst
 * case of escaping, six bytes ("\\uXXXX") for every input byte.
 */

static size_t
ngx_http_sark_string_len(ngx_str_t *s)
{
    if (s == NULL || s->data == NULL) {
        return sizeof("null") - 1;
    }

    return 2 + 6 * s->len;
}


static u_char *
ngx_http_sark_put_string(u_char *p, ngx_str_t *s)
{
    size_t  n;

    if (s == NULL || s->data == NULL) {
        return ngx_http_sark_cpylit(p, "null");
    }

    *p++ = '"';

    if (ngx_http_sark_plain(s)) {
        p = ngx_cpymem(p, s->data, s->len);

    } else {
        n = sark_json_escaped_len((const char *) s->data, s->len);
        (void) sark_json_escape((const char *) s->data, s->len, p, n, &n);
        p += n;
    }

    *p++ = '"';

    return p;
}


static ngx_str_t *
ngx_http_sark_request_id(ngx_http_request_t *r)
{
    ngx_str_t                  *s;
    ngx_http_variable_value_t  *vv;

    vv = ngx_http_sark_request_id_value(r);

    if (vv == NULL || vv->not_found) {
        return NULL;
    }

    s = ngx_palloc(r->pool, sizeof(ngx_str_t));
    if (s == NULL) {
        return NULL;
    }

    s->data = vv->data;
    s->len = vv->len;

    return s;
}
