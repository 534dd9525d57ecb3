
/*
 * Copyright (C) sark-gateway authors
 */


/*
 * What every sark_api endpoint shares: the content handler that dispatches
 * to the endpoint, the common start (method, caller, body), and the step
 * after the body is read.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_sark_module.h"


/* the content handler of every sark_api location */

ngx_int_t
ngx_http_sark_api_handler(ngx_http_request_t *r)
{
    ngx_http_sark_loc_conf_t  *slcf;

    slcf = ngx_http_get_module_loc_conf(r, ngx_http_sark_module);

    switch (slcf->api) {

    case NGX_HTTP_SARK_API_INVALIDATE:
        return ngx_http_sark_invalidate_handler(r);

    case NGX_HTTP_SARK_API_WARM:
        return ngx_http_sark_warm_handler(r);

    case NGX_HTTP_SARK_API_AUDIT:
        return ngx_http_sark_gateway_audit_handler(r);

    case NGX_HTTP_SARK_API_SERVERS:
    case NGX_HTTP_SARK_API_TOOLS:
        return ngx_http_sark_discovery_handler(r);

    case NGX_HTTP_SARK_API_AUDIT_EVENTS:
        return ngx_http_sark_audit_query_handler(r);

    case NGX_HTTP_SARK_API_LIVE:
    case NGX_HTTP_SARK_API_READY:
    case NGX_HTTP_SARK_API_DETAILED:
        return ngx_http_sark_health_handler(r);

    case NGX_HTTP_SARK_API_METRICS:
        return ngx_http_sark_metrics_handler(r);

    default:
        return ngx_http_sark_authorize_handler(r);
    }
}


/*
 * The common start of every sark_api endpoint: POST only, a caller that
 * `caller` accepts, a body within sark_max_body_size, read into ctx->body
 * (ngx_http_sark_body.c), then ngx_http_sark_body_handler().  Refusals
 * discard the body and answer with the envelope at once.
 */

ngx_int_t
ngx_http_sark_start(ngx_http_request_t *r, ngx_http_sark_ctx_t *ctx,
    ngx_http_sark_caller_pt caller)
{
    ngx_int_t                  rc;
    ngx_http_sark_loc_conf_t  *slcf;

    slcf = ngx_http_get_module_loc_conf(r, ngx_http_sark_module);

    if (!(r->method & NGX_HTTP_POST)) {
        ngx_http_sark_error_set(&ctx->error, NGX_HTTP_NOT_ALLOWED, "GW-101",
                                "method not allowed: use POST");
        goto reject;
    }

    rc = caller(r, slcf, ctx);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc != NGX_OK) {
        goto reject;
    }

    if (r->headers_in.content_length_n > (off_t) slcf->max_body_size) {
        ngx_http_sark_error_fmt(r->pool, &ctx->error,
                                NGX_HTTP_REQUEST_ENTITY_TOO_LARGE, "GW-413",
                                "request body is larger than %uz bytes",
                                slcf->max_body_size);
        goto reject;
    }

    rc = ngx_http_sark_read_body(r, ctx, slcf->max_body_size,
                                 ngx_http_sark_body_handler);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;

reject:

    rc = ngx_http_discard_request_body(r);

    if (rc != NGX_OK) {
        return rc;
    }

    return ngx_http_sark_send_error(r, &ctx->error);
}


/* every sark_api endpoint goes on here once its body is read */

void
ngx_http_sark_body_handler(ngx_http_request_t *r)
{
    ngx_int_t                  rc;
    ngx_http_sark_ctx_t       *ctx;
    ngx_http_sark_loc_conf_t  *slcf;

    slcf = ngx_http_get_module_loc_conf(r, ngx_http_sark_module);
    ctx = ngx_http_get_module_ctx(r, ngx_http_sark_module);

    switch (slcf->api) {

    case NGX_HTTP_SARK_API_INVALIDATE:
        rc = ngx_http_sark_invalidate_start(r, ctx);
        break;

    case NGX_HTTP_SARK_API_WARM:
        rc = ngx_http_sark_warm_start(r, ctx);
        break;

    case NGX_HTTP_SARK_API_AUDIT:
        rc = ngx_http_sark_gateway_audit_start(r, ctx);
        break;

    case NGX_HTTP_SARK_API_A2A:
        rc = ngx_http_sark_a2a_start(r, ctx);
        break;

    default:
        rc = ngx_http_sark_authorize_start(r, ctx);
    }

    if (rc == NGX_DONE) {
        return;
    }

    if (rc == NGX_DECLINED) {
        rc = ngx_http_sark_send_error(r, &ctx->error);
    }

    ngx_http_finalize_request(r, rc);
}


/*
 * The start of a GET endpoint: GET or HEAD, a ctx, and with `token` the
 * caller's token verified (discovery, audit queries; the health and
 * metrics endpoints have none).  NGX_DECLINED: go on with *ctxp; anything
 * else is the handler's result, a refusal sent.
 */

ngx_int_t
ngx_http_sark_get_start(ngx_http_request_t *r, ngx_http_sark_ctx_t **ctxp,
    ngx_uint_t token)
{
    ngx_int_t                  rc;
    ngx_http_sark_ctx_t       *ctx;
    ngx_http_sark_loc_conf_t  *slcf;

    static ngx_str_t  no_store = ngx_string("no-store");

    slcf = ngx_http_get_module_loc_conf(r, ngx_http_sark_module);

    rc = ngx_http_sark_get_only(r);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    ctx = ngx_http_sark_create_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (token) {

        /* an answer for one caller: no shared cache may keep it */

        if (ngx_http_sark_add_header(r, "Cache-Control", &no_store)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        rc = ngx_http_sark_authenticate(r, slcf, &ctx->identity,
                                        &ctx->error);
        if (rc != NGX_OK) {
            return ctx->error.status ? ngx_http_sark_send_error(r, &ctx->error)
                                     : NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    *ctxp = ctx;

    return NGX_DECLINED;
}


/*
 * A query string argument, its name matched byte for byte (nginx's
 * ngx_http_arg() ignores case), %-decoded: {NULL, 0} when absent;
 * NGX_ERROR when empty, with a broken %-escape, holding a NUL or not UTF-8
 * (or out of memory)
 */

ngx_int_t
ngx_http_sark_query_arg(ngx_http_request_t *r, const char *name,
    ngx_str_t *out)
{
    u_char     *p, *end, *next, *dst, *src;
    size_t      len;
    ngx_str_t   raw;

    ngx_str_null(out);
    ngx_str_null(&raw);

    len = ngx_strlen(name);
    end = r->args.data + r->args.len;

    for (p = r->args.data; p < end; p = next + 1) {
        next = ngx_strlchr(p, end, '&');
        if (next == NULL) {
            next = end;
        }

        if ((size_t) (next - p) >= len && ngx_strncmp(p, name, len) == 0
            && ((size_t) (next - p) == len || p[len] == '='))
        {
            /* "name" alone is there with an empty value */
            raw.data = ngx_min(p + len + 1, next);
            raw.len = next - raw.data;
            break;
        }
    }

    if (raw.data == NULL) {
        return NGX_OK;
    }

    if (raw.len == 0) {
        return NGX_ERROR;
    }

    /* every % starts an escape of two hex digits (nginx would drop it) */

    for (p = raw.data; p < raw.data + raw.len; p++) {
        if (*p == '%'
            && (raw.data + raw.len - p < 3
                || !isxdigit(p[1]) || !isxdigit(p[2])))
        {
            return NGX_ERROR;
        }
    }

    out->data = ngx_pnalloc(r->pool, raw.len);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    dst = out->data;
    src = raw.data;
    ngx_unescape_uri(&dst, &src, raw.len, 0);
    out->len = dst - out->data;

    if (out->len == 0 || ngx_strlchr(out->data, out->data + out->len, '\0')
        || !sark_json_utf8_valid(out->data, out->len))
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * The query string's argument names: each at most once (which of two
 * values counts would depend on the reader), and each one of `known`
 * (NULL-terminated; a misspelt filter must not quietly widen an answer),
 * names compared byte for byte (a %-encoded name is refused: the reader
 * of the arguments would not know it).  With sark_api_compat sark unknown
 * names are let be, as SARK's framework does.  NGX_DECLINED: err says
 * why.
 */

ngx_int_t
ngx_http_sark_query_check(ngx_http_request_t *r, const char **known,
    ngx_http_sark_error_t *err)
{
    u_char                    *p, *end, *name, *next, *q;
    size_t                     len;
    ngx_str_t                  arg;
    ngx_uint_t                 i, seen;
    ngx_http_sark_loc_conf_t  *slcf;

    slcf = ngx_http_get_module_loc_conf(r, ngx_http_sark_module);

    seen = 0;
    p = r->args.data;
    end = p + r->args.len;

    for ( /* void */ ; p < end; p = next + 1) {
        next = ngx_strlchr(p, end, '&');
        if (next == NULL) {
            next = end;
        }

        name = p;
        q = ngx_strlchr(p, next, '=');
        len = (q ? q : next) - name;

        if (len == 0 && q == NULL) {
            continue;                   /* "&&" or a trailing "&" */
        }

        arg.data = name;
        arg.len = len;

        if (ngx_strlchr(name, name + len, '%')) {

            /* the arguments' reader would not know it by its name */

            ngx_http_sark_error_fmt(r->pool, err, NGX_HTTP_BAD_REQUEST,
                                    "GW-100", "parameter name \"%V\" is "
                                    "%%-encoded",
                                    ngx_http_sark_log_safe(r->pool, &arg));
            err->in_query = 1;
            return NGX_DECLINED;
        }

        for (i = 0; known[i]; i++) {
            if (ngx_strlen(known[i]) == len
                && ngx_strncmp(known[i], name, len) == 0)
            {
                break;
            }
        }

        if (known[i] == NULL) {
            if (slcf->compat == NGX_HTTP_SARK_COMPAT_SARK) {
                continue;
            }

            ngx_http_sark_error_fmt(r->pool, err, NGX_HTTP_BAD_REQUEST,
                                    "GW-100", "unknown parameter \"%V\"",
                                    ngx_http_sark_log_safe(r->pool, &arg));
            err->in_query = 1;
            return NGX_DECLINED;
        }

        if (seen & ((ngx_uint_t) 1 << i)) {
            ngx_http_sark_error_fmt(r->pool, err, NGX_HTTP_BAD_REQUEST,
                                    "GW-100", "parameter \"%s\" is given "
                                    "more than once", known[i]);
            err->field = known[i];
            err->in_query = 1;
            return NGX_DECLINED;
        }

        seen |= (ngx_uint_t) 1 << i;
    }

    return NGX_OK;
}


/* the admin endpoints: `answer`, when set, receives sarkd's reply */

ngx_int_t
ngx_http_sark_admin_start(ngx_http_request_t *r,
    ngx_http_sark_call_handler_pt answer)
{
    ngx_http_sark_ctx_t  *ctx;

    ctx = ngx_http_sark_create_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (answer) {
        ctx->call.handler = answer;
    }

    return ngx_http_sark_start(r, ctx, ngx_http_sark_admin_check);
}
