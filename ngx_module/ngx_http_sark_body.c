
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
 * temporary files back.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_sark_module.h"


#define NGX_HTTP_SARK_BODY_CHUNK  4096


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

    if (announced > 0) {
        ctx->body.data = ngx_pnalloc(r->pool, (size_t) announced);
        if (ctx->body.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ctx->body_cap = (size_t) announced;
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
