
/*
 * Copyright (C) sark-gateway authors
 */


/*
 * Every error on a sark location answers with the JSON envelope, whatever
 * produced it: the pages nginx makes itself (a body over
 * client_max_body_size, a malformed request, an upstream that cannot be
 * reached, a timeout) are replaced by {"error": {...}} with a code named
 * after the status.  What an upstream answers itself passes unchanged, and
 * an error_page the location sets still applies (nginx redirects before
 * anything reaches these filters).
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_sark_module.h"


typedef struct {
    ngx_uint_t    status;
    const char   *code;
    const char   *message;
} ngx_http_sark_status_error_t;


static ngx_int_t ngx_http_sark_error_header_filter(ngx_http_request_t *r);
static ngx_int_t ngx_http_sark_error_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;
static ngx_http_output_body_filter_pt    ngx_http_next_body_filter;


static ngx_http_sark_status_error_t  ngx_http_sark_status_errors[] = {
    { NGX_HTTP_BAD_REQUEST, "GW-100", "bad request" },
    { NGX_HTTP_UNAUTHORIZED, "AU-001", "authentication required" },
    { NGX_HTTP_FORBIDDEN, "GW-403", "forbidden" },
    { NGX_HTTP_NOT_FOUND, "GW-404", "not found" },
    { NGX_HTTP_NOT_ALLOWED, "GW-101", "method not allowed" },
    { NGX_HTTP_REQUEST_TIME_OUT, "GW-408", "request timed out" },
    { NGX_HTTP_LENGTH_REQUIRED, "GW-411", "length required" },
    { NGX_HTTP_REQUEST_ENTITY_TOO_LARGE, "GW-413", "request body too large" },
    { NGX_HTTP_REQUEST_URI_TOO_LARGE, "GW-414", "request URI too long" },
    { NGX_HTTP_UNSUPPORTED_MEDIA_TYPE, "GW-415", "unsupported media type" },
    { NGX_HTTP_INTERNAL_SERVER_ERROR, "GW-500", "internal error" },
    { NGX_HTTP_NOT_IMPLEMENTED, "GW-501", "not implemented" },
    { NGX_HTTP_BAD_GATEWAY, "GW-502", "upstream failed" },
    { NGX_HTTP_SERVICE_UNAVAILABLE, "GW-503", "service unavailable" },
    { NGX_HTTP_GATEWAY_TIME_OUT, "GW-504", "upstream timed out" },
    { 0, "GW-000", "request failed" }
};


ngx_int_t
ngx_http_sark_error_page_init(ngx_conf_t *cf)
{
    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_sark_error_header_filter;

    ngx_http_next_body_filter = ngx_http_top_body_filter;
    ngx_http_top_body_filter = ngx_http_sark_error_body_filter;

    return NGX_OK;
}


static ngx_int_t
ngx_http_sark_error_header_filter(ngx_http_request_t *r)
{
    ngx_http_sark_ctx_t           *ctx;
    ngx_http_sark_error_t         *err;
    ngx_http_sark_loc_conf_t      *slcf;
    ngx_http_sark_status_error_t  *se;

    /* nginx's own error pages are the responses with err_status set */

    if (r->err_status < NGX_HTTP_BAD_REQUEST) {
        return ngx_http_next_header_filter(r);
    }

    slcf = ngx_http_get_module_loc_conf(r, ngx_http_sark_module);

    if (!slcf->authz && slcf->api == NGX_HTTP_SARK_API_OFF) {
        return ngx_http_next_header_filter(r);
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_sark_module);

    if (ctx == NULL) {
        ctx = ngx_http_sark_create_ctx(r);
        if (ctx == NULL) {
            return NGX_ERROR;
        }
    }

    for (se = ngx_http_sark_status_errors; se->status; se++) {
        if (se->status == r->err_status) {
            break;
        }
    }

    err = &ctx->error;

    ngx_http_sark_error_set(err, r->err_status, se->code, se->message);

    if (r->err_status == NGX_HTTP_REQUEST_ENTITY_TOO_LARGE
        && ctx->body_too_large)
    {
        ngx_http_sark_error_fmt(r->pool, err, r->err_status, se->code,
                                "request body is larger than %uz bytes",
                                ctx->body_max);
    }

    err->page = 1;

    if (ngx_http_sark_error_envelope(r, err, &ctx->page) != NGX_OK) {
        return NGX_ERROR;
    }

    ctx->error_page = 1;

    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;
    r->headers_out.charset.len = 0;

    r->headers_out.content_length_n = ctx->page.len;

    if (r->headers_out.content_length) {
        r->headers_out.content_length->hash = 0;
        r->headers_out.content_length = NULL;
    }

    return ngx_http_next_header_filter(r);
}


/* the page's own bytes are dropped; the envelope goes in their place */

static ngx_int_t
ngx_http_sark_error_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    ngx_buf_t            *b;
    ngx_uint_t            last;
    ngx_chain_t          *cl, out;
    ngx_http_sark_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_sark_module);

    if (ctx == NULL || !ctx->error_page) {
        return ngx_http_next_body_filter(r, in);
    }

    last = 0;

    for (cl = in; cl; cl = cl->next) {
        b = cl->buf;

        if (b->last_buf || b->last_in_chain) {
            last = 1;
        }

        b->pos = b->last;

        if (b->in_file) {
            b->file_pos = b->file_last;
        }
    }

    if (!last) {
        return NGX_OK;
    }

    ctx->error_page = 0;

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->pos = ctx->page.data;
    b->last = ctx->page.data + ctx->page.len;
    b->memory = 1;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_next_body_filter(r, &out);
}
