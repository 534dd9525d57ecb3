
/*
 * Copyright (C) sark-gateway authors
 */


/*
 * What the module answers with: errors as the JSON envelope, any JSON
 * body, and the JSON text helpers the answers are written with.  Also the
 * escaping of what the module logs of a request.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_sark_module.h"


static ngx_uint_t ngx_http_sark_plain(ngx_str_t *s);
static ngx_str_t *ngx_http_sark_request_id(ngx_http_request_t *r);


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
    static ngx_str_t  json = ngx_string("application/json");

    return ngx_http_sark_send_body(r, status, &json, body);
}


ngx_int_t
ngx_http_sark_send_body(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *type, ngx_str_t *body)
{
    ngx_int_t    rc;
    ngx_buf_t   *b;
    ngx_chain_t  out;

    r->headers_out.status = status;
    r->headers_out.content_length_n = body->len;

    r->headers_out.content_type = *type;
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
    u_char                    *p;
    size_t                     len;
    ngx_str_t                 *rid, code;
    ngx_http_sark_loc_conf_t  *slcf;

    slcf = ngx_http_get_module_loc_conf(r, ngx_http_sark_module);

    if (slcf->mcp) {
        return ngx_http_sark_mcp_error_body(r, err, body);
    }

    if (slcf->compat == NGX_HTTP_SARK_COMPAT_SARK) {
        return ngx_http_sark_compat_error_body(r, err, body);
    }

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
    ngx_uint_t                 status;
    ngx_http_sark_loc_conf_t  *slcf;

    if (ngx_http_sark_error_envelope(r, err, &body) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    slcf = ngx_http_get_module_loc_conf(r, ngx_http_sark_module);

    status = err->status;

    /* FastAPI answers a body that does not validate with 422 */

    if (slcf->compat == NGX_HTTP_SARK_COMPAT_SARK && !slcf->mcp
        && ngx_http_sark_compat_invalid(err))
    {
        status = NGX_HTTP_SARK_UNPROCESSABLE;

        /* nginx has no reason phrase of its own for 422 */
        ngx_str_set(&r->headers_out.status_line, "422 Unprocessable Entity");
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
        if (slcf->mcp) {
            ngx_str_set(&value, "GET, POST, DELETE");

        } else if (slcf->api >= NGX_HTTP_SARK_API_SERVERS) {
            ngx_str_set(&value, "GET, HEAD");

        } else {
            ngx_str_set(&value, "POST");
        }

        if (ngx_http_sark_add_header(r, "Allow", &value) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    return ngx_http_sark_send_json(r, status, &body);
}


/* a response header; `name` and the value must outlive the request */

ngx_int_t
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


/*
 * Unix ms as ISO 8601 UTC, "2026-11-27T01:02:03.456".  L1 hits of one entry
 * repeat one time, so the last text made is kept per worker: it saves
 * about 630 instructions per decision API answer (make bench-ir; a
 * decision API L1 hit costs about 16,000 in all).
 */

u_char *
ngx_http_sark_put_time(u_char *p, uint64_t ms)
{
    u_char          *start;
    ngx_tm_t         tm;

    static uint64_t  last_ms = (uint64_t) -1;
    static u_char    last[sizeof("2026-11-27T01:02:03.456") - 1];

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

    /* (a year past 9999 makes a longer text, not kept) */

    if ((size_t) (p - start) == sizeof(last)) {
        ngx_memcpy(last, start, sizeof(last));
        last_ms = ms;
    }

    return p;
}


/* decimal, zero-padded to at least `width` digits */

u_char *
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


/*
 * 1 when s needs no JSON escaping: printable ASCII without '"' and '\\'.
 * Eight bytes at a time: about 650 instructions fewer per decision API
 * answer (make bench-ir, about 16,000 in all).
 */

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

size_t
ngx_http_sark_string_len(ngx_str_t *s)
{
    if (s == NULL || s->data == NULL) {
        return sizeof("null") - 1;
    }

    return 2 + 6 * s->len;
}


u_char *
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


/* nginx's own $request_id, for the envelope */

static ngx_str_t *
ngx_http_sark_request_id(ngx_http_request_t *r)
{
    ngx_str_t                  *s;
    ngx_http_variable_value_t  *vv;
    ngx_http_sark_main_conf_t  *smcf;

    smcf = ngx_http_get_module_main_conf(r, ngx_http_sark_module);

    vv = ngx_http_get_indexed_variable(r, smcf->request_id_index);

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
