
/*
 * Copyright (C) sark-gateway authors
 */


/*
 * Request bodies the module reads (the sark_api endpoints): read with
 * nginx's request-body API, so $request_body, body filters and mirrors see
 * them as usual, and copied, as they pass the request body filter chain,
 * into one buffer of the request pool.  The copy never holds more than
 * sark_max_body_size: a longer body, announced or chunked, stops being
 * read there and is refused with 413.  The module never reads nginx's
 * temporary files back.  Also: the body as JSON, and its fields.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_sark_module.h"


#define NGX_HTTP_SARK_BODY_CHUNK     4096
#define NGX_HTTP_SARK_BODY_PREALLOC  (64 * 1024)


static ngx_int_t ngx_http_sark_request_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);
static ngx_int_t ngx_http_sark_body_append(ngx_http_request_t *r,
    ngx_http_sark_ctx_t *ctx, u_char *data, size_t len);


static ngx_http_request_body_filter_pt   ngx_http_next_request_body_filter;


ngx_int_t
ngx_http_sark_body_init(ngx_conf_t *cf)
{
    ngx_http_next_request_body_filter = ngx_http_top_request_body_filter;
    ngx_http_top_request_body_filter = ngx_http_sark_request_body_filter;

    return NGX_OK;
}


/*
 * Starts reading the body of r into ctx->body, at most `max` bytes;
 * `post_handler` runs once it is whole.  Returns as
 * ngx_http_read_client_request_body() does: NGX_OK (post_handler ran or
 * will run) or an HTTP status to finalize the request with.
 */

ngx_int_t
ngx_http_sark_read_body(ngx_http_request_t *r, ngx_http_sark_ctx_t *ctx,
    size_t max, ngx_http_client_body_handler_pt post_handler)
{
    off_t  announced;

    announced = r->headers_in.content_length_n;

    if (announced > (off_t) max) {
        return NGX_HTTP_REQUEST_ENTITY_TOO_LARGE;
    }

    ctx->body_max = max;
    ctx->reading_body = 1;

    /*
     * room for the announced length, up to NGX_HTTP_SARK_BODY_PREALLOC:
     * a length alone (HTTP/2 streams announce many at once) does not take
     * more memory than that before the bytes come
     */

    if (announced > 0) {
        ctx->body_cap = (size_t) ngx_min(announced,
                                         NGX_HTTP_SARK_BODY_PREALLOC);

        ctx->body.data = ngx_pnalloc(r->pool, ctx->body_cap);
        if (ctx->body.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    return ngx_http_read_client_request_body(r, post_handler);
}


static ngx_int_t
ngx_http_sark_request_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    ngx_buf_t            *b;
    ngx_chain_t          *cl;
    ngx_http_sark_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_sark_module);

    if (ctx == NULL || !ctx->reading_body) {
        return ngx_http_next_request_body_filter(r, in);
    }

    for (cl = in; cl; cl = cl->next) {
        b = cl->buf;

        /* what reaches this filter is in memory, before any temp file */

        if (b->last > b->pos
            && ngx_http_sark_body_append(r, ctx, b->pos, b->last - b->pos)
               != NGX_OK)
        {
            return ctx->body_too_large ? NGX_HTTP_REQUEST_ENTITY_TOO_LARGE
                                       : NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (b->last_buf) {
            ctx->reading_body = 0;
        }
    }

    return ngx_http_next_request_body_filter(r, in);
}


static ngx_int_t
ngx_http_sark_body_append(ngx_http_request_t *r, ngx_http_sark_ctx_t *ctx,
    u_char *data, size_t len)
{
    u_char  *p;
    size_t   cap;

    if (len > ctx->body_max - ctx->body.len) {
        ctx->body_too_large = 1;
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "sark: request body is larger than %uz bytes",
                      ctx->body_max);
        return NGX_ERROR;
    }

    if (len > ctx->body_cap - ctx->body.len) {

        /* a chunked body grows its copy by doubling, up to the limit */

        cap = ngx_max(ctx->body_cap, NGX_HTTP_SARK_BODY_CHUNK);

        while (cap - ctx->body.len < len) {
            cap *= 2;
        }

        cap = ngx_min(cap, ctx->body_max);

        p = ngx_pnalloc(r->pool, cap);
        if (p == NULL) {
            return NGX_ERROR;
        }

        if (ctx->body.len) {
            ngx_memcpy(p, ctx->body.data, ctx->body.len);
        }

        ctx->body.data = p;
        ctx->body_cap = cap;
    }

    ngx_memcpy(ctx->body.data + ctx->body.len, data, len);
    ctx->body.len += len;

    return NGX_OK;
}


/* the body read, or an empty string when it is only blank */

void
ngx_http_sark_text_body(ngx_http_request_t *r, ngx_str_t *body)
{
    u_char               *p, *last;
    ngx_http_sark_ctx_t  *ctx;

    ngx_str_null(body);

    ctx = ngx_http_get_module_ctx(r, ngx_http_sark_module);

    last = ctx->body.data + ctx->body.len;

    for (p = ctx->body.data;
         p < last && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n');
         p++)
    {
        /* void */
    }

    if (p < last) {
        *body = ctx->body;
    }
}


/* the request body, read whole by ngx_http_sark_read_body(), not empty */

ngx_int_t
ngx_http_sark_json_body(ngx_http_request_t *r, ngx_str_t *body,
    ngx_http_sark_error_t *err)
{
    ngx_http_sark_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_sark_module);

    *body = ctx->body;

    if (body->len == 0) {
        ngx_http_sark_error_set(err, NGX_HTTP_BAD_REQUEST, "GW-100",
                                "request body is empty: "
                                "expected a JSON object");
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/*
 * The request body as a JSON document: read whole, within
 * sark_max_body_size, not empty, parsed within sark_json_max_depth.
 * NGX_DECLINED with err set for a bad body.
 */

ngx_int_t
ngx_http_sark_read_json(ngx_http_request_t *r, sark_json_t **root,
    ngx_http_sark_error_t *err)
{
    ngx_int_t  rc;
    ngx_str_t  body;

    rc = ngx_http_sark_json_body(r, &body, err);
    if (rc != NGX_OK) {
        return rc;
    }

    return ngx_http_sark_parse_json(r, &body, root, err);
}


ngx_int_t
ngx_http_sark_parse_json(ngx_http_request_t *r, ngx_str_t *body,
    sark_json_t **root, ngx_http_sark_error_t *err)
{
    char                       msg[SARK_JSON_ERR_LEN];
    ngx_http_sark_loc_conf_t  *slcf;

    slcf = ngx_http_get_module_loc_conf(r, ngx_http_sark_module);

    msg[0] = '\0';

    if (sark_json_parse(body->data, body->len, slcf->json_max_depth,
                        ngx_http_sark_json_alloc, r->pool, root,
                        msg, sizeof(msg))
        != 0)
    {
        ngx_http_sark_error_fmt(r->pool, err, NGX_HTTP_BAD_REQUEST, "GW-100",
                                "%s", msg[0] ? msg : "invalid JSON");
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/*
 * A string field of a request body: absent and null give a NULL string,
 * refused when NGX_HTTP_SARK_FIELD_REQUIRED; an empty one is refused with
 * NGX_HTTP_SARK_FIELD_NONEMPTY (when required); longer than max is refused.
 * NGX_HTTP_SARK_FIELD_NULLABLE only words the type error ("string or null").
 */

ngx_int_t
ngx_http_sark_get_string(ngx_http_request_t *r, const sark_json_t *root,
    const char *name, ngx_uint_t flags, size_t max, ngx_str_t *out,
    ngx_http_sark_error_t *err)
{
    return ngx_http_sark_check_string(r, sark_json_get(root, name), name,
                                      flags, max, out, err);
}


/* the same for a member already found (v), or not there (NULL) */

ngx_int_t
ngx_http_sark_check_string(ngx_http_request_t *r, const sark_json_t *v,
    const char *name, ngx_uint_t flags, size_t max, ngx_str_t *out,
    ngx_http_sark_error_t *err)
{
    ngx_str_null(out);

    if (v == NULL || v->type == SARK_JSON_NULL) {
        if (flags & NGX_HTTP_SARK_FIELD_REQUIRED) {
            ngx_http_sark_error_fmt(r->pool, err, NGX_HTTP_BAD_REQUEST,
                                    "GW-100", "missing required field \"%s\"",
                                    name);
            err->field = name;
            err->missing = 1;
            return NGX_DECLINED;
        }

        return NGX_OK;
    }

    if (v->type != SARK_JSON_STRING) {
        ngx_http_sark_error_fmt(r->pool, err, NGX_HTTP_BAD_REQUEST, "GW-100",
                                (flags & NGX_HTTP_SARK_FIELD_NULLABLE)
                                ? "field \"%s\" must be a string or null"
                                : "field \"%s\" must be a string",
                                name);
        err->field = name;
        return NGX_DECLINED;
    }

    if (v->len == 0
        && (flags & NGX_HTTP_SARK_FIELD_REQUIRED)
        && (flags & NGX_HTTP_SARK_FIELD_NONEMPTY))
    {
        ngx_http_sark_error_fmt(r->pool, err, NGX_HTTP_BAD_REQUEST, "GW-100",
                                "field \"%s\" must not be empty", name);
        err->field = name;
        return NGX_DECLINED;
    }

    if (v->len > max) {
        ngx_http_sark_error_fmt(r->pool, err, NGX_HTTP_BAD_REQUEST, "GW-100",
                                "field \"%s\" is longer than %uz bytes",
                                name, max);
        err->field = name;
        return NGX_DECLINED;
    }

    /* the parser has checked the UTF-8; an empty string stays one */

    out->data = (u_char *) v->str;
    out->len = v->len;

    return NGX_OK;
}


/* sark_json's allocator: the request pool */

void *
ngx_http_sark_json_alloc(void *pool, size_t size)
{
    return ngx_palloc(pool, size);
}
