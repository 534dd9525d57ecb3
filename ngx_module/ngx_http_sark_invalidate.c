
/*
 * Copyright (C) sark-gateway authors
 */


/*
 * POST /api/v1/cache/invalidate {"pattern": "authz:..."} (admin only).
 * The pattern is applied to this host's L1 at once, then sarkd removes
 * matching L2 keys and tells every other host through Redis; the answer
 * says how many hosts confirmed.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_sark_module.h"


static void ngx_http_sark_invalidate_answer(ngx_http_sark_call_t *call,
    ngx_uint_t status, u_char *payload, size_t len);
static ngx_int_t ngx_http_sark_invalidate_reply(ngx_http_request_t *r,
    ngx_str_t *pattern, uint32_t deleted, uint32_t hosts, uint32_t expected,
    ngx_uint_t complete);


ngx_int_t
ngx_http_sark_invalidate_handler(ngx_http_request_t *r)
{
    return ngx_http_sark_admin_start(r, ngx_http_sark_invalidate_answer);
}


ngx_int_t
ngx_http_sark_invalidate_start(ngx_http_request_t *r, ngx_http_sark_ctx_t *ctx)
{
    u_char                    *frame;
    char                       msg[160];
    size_t                     len, off;
    uint64_t                   issued_at;
    ngx_int_t                  rc;
    ngx_str_t                  body, *pattern;
    sark_json_t               *root;
    sark_frame_hdr_t           h;
    const sark_json_t         *v;
    ngx_http_sark_loc_conf_t  *slcf;

    slcf = ngx_http_get_module_loc_conf(r, ngx_http_sark_module);
    pattern = &ctx->key.text;

    /* an explicit pattern only: an empty body never flushes everything */

    ngx_http_sark_text_body(r, &body);

    msg[0] = '\0';
    root = NULL;

    if (body.len
        && sark_json_parse(body.data, body.len, slcf->json_max_depth,
                           ngx_http_sark_json_alloc, r->pool, &root,
                           msg, sizeof(msg))
           != 0)
    {
        ngx_http_sark_error_fmt(r->pool, &ctx->error, NGX_HTTP_BAD_REQUEST,
                                "GW-100", "%s", msg[0] ? msg : "invalid JSON");
        return NGX_DECLINED;
    }

    v = (root && root->type == SARK_JSON_OBJECT)
        ? sark_json_get(root, "pattern") : NULL;

    if (v == NULL || v->type != SARK_JSON_STRING) {
        ngx_http_sark_error_set(&ctx->error, NGX_HTTP_BAD_REQUEST, "GW-100",
                                "expected {\"pattern\": \"authz:...\"}");
        return NGX_DECLINED;
    }

    pattern->data = (u_char *) v->str;
    pattern->len = v->len;

    if (pattern->len < 6 || pattern->len > NGX_HTTP_SARK_PATTERN_MAX
        || ngx_strncmp(pattern->data, "authz:", 6) != 0)
    {
        ngx_http_sark_error_fmt(r->pool, &ctx->error, NGX_HTTP_BAD_REQUEST,
                                "GW-100", "pattern must start with \"authz:\" "
                                "and be at most %d bytes",
                                NGX_HTTP_SARK_PATTERN_MAX);
        return NGX_DECLINED;
    }

    issued_at = ngx_http_sark_now_ms();

    ngx_http_sark_apply_invalidation(pattern, issued_at);

    ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                  "sark: cache invalidation \"%V\" by \"%V\"",
                  ngx_http_sark_log_safe(r->pool, pattern),
                  ngx_http_sark_log_safe(r->pool, &ctx->identity.sub));

    len = SARK_PROTO_HDR_LEN + sark_tlv_size(pattern->len) + sark_tlv_size(8);

    frame = ngx_pnalloc(r->pool, len);
    if (frame == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    off = SARK_PROTO_HDR_LEN;

    (void) sark_tlv_put(frame, len, &off, SARK_INV_PATTERN, pattern->data,
                        pattern->len);
    (void) sark_tlv_put_u64(frame, len, &off, SARK_INV_ISSUED_AT, issued_at);

    ngx_memzero(&h, sizeof(sark_frame_hdr_t));
    h.type = SARK_MSG_INVALIDATE_REQ;
    h.length = (uint32_t) (off - SARK_PROTO_HDR_LEN);
    sark_frame_hdr_encode(frame, &h);

    rc = ngx_http_sark_ctx_call(ctx, frame, off, slcf->decision_timeout);

    if (rc == NGX_OK) {
        return NGX_DONE;
    }

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_sark_error_set(&ctx->error, NGX_HTTP_SERVICE_UNAVAILABLE,
                            "CN-001", "invalidated on this host only: "
                            "authorization service unavailable");
    ctx->error.retry_after = 1;

    return NGX_DECLINED;
}


static void
ngx_http_sark_invalidate_answer(ngx_http_sark_call_t *call, ngx_uint_t status,
    u_char *payload, size_t len)
{
    int                    rc;
    size_t                 off;
    uint8_t                st;
    uint32_t               deleted, hosts, expected;
    ngx_int_t              res;
    sark_tlv_t             t;
    ngx_connection_t      *c;
    ngx_http_request_t    *r;
    ngx_http_sark_ctx_t   *ctx;

    ctx = call->data;
    r = ctx->request;
    c = r->connection;

    deleted = 0;
    hosts = 1;
    expected = 1;
    st = 1;
    rc = SARK_PROTO_END;

    if (status == NGX_HTTP_SARK_CALL_OK) {
        off = 0;

        while ((rc = sark_tlv_next(payload, len, &off, &t))
               == SARK_PROTO_OK)
        {
            switch (t.tag) {
            case SARK_INV_L2_DELETED:
                (void) sark_tlv_u32(&t, &deleted);
                break;
            case SARK_INV_HOSTS:
                (void) sark_tlv_u32(&t, &hosts);
                break;
            case SARK_INV_HOSTS_EXPECTED:
                (void) sark_tlv_u32(&t, &expected);
                break;
            case SARK_INV_STATUS:
                (void) sark_tlv_u8(&t, &st);
                break;
            }
        }
    }

    if (status != NGX_HTTP_SARK_CALL_OK || rc != SARK_PROTO_END) {
        ngx_http_sark_error_set(&ctx->error, NGX_HTTP_SERVICE_UNAVAILABLE,
                                "CN-002", "invalidated on this host only: "
                                "no confirmation from the authorization "
                                "service");
        ctx->error.retry_after = 1;
        res = ngx_http_sark_send_error(r, &ctx->error);

    } else {
        res = ngx_http_sark_invalidate_reply(r, &ctx->key.text, deleted,
                                             hosts, expected, st == 0);
    }

    ngx_http_finalize_request(r, res);
    ngx_http_run_posted_requests(c);
}


static ngx_int_t
ngx_http_sark_invalidate_reply(ngx_http_request_t *r, ngx_str_t *pattern,
    uint32_t deleted, uint32_t hosts, uint32_t expected, ngx_uint_t complete)
{
    u_char     *p;
    size_t      len;
    ngx_str_t   body;

    len = sizeof("{\"status\":\"invalidated\",\"pattern\":\"\",\"l2_deleted\":,"
                 "\"hosts\":,\"hosts_expected\":,\"complete\":false}\n")
          + sark_json_escaped_len((char *) pattern->data, pattern->len)
          + 3 * NGX_INT32_LEN;

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    body.data = p;

    p = ngx_cpymem(p, "{\"status\":\"invalidated\",\"pattern\":\"",
                   sizeof("{\"status\":\"invalidated\",\"pattern\":\"") - 1);

    (void) sark_json_escape((char *) pattern->data, pattern->len, p,
                            len - (p - body.data), &len);
    p += len;

    p = ngx_sprintf(p, "\",\"l2_deleted\":%uD,\"hosts\":%uD,"
                       "\"hosts_expected\":%uD,\"complete\":%s}\n",
                    deleted, hosts, expected, complete ? "true" : "false");

    body.len = p - body.data;

    return ngx_http_sark_send_json(r, NGX_HTTP_OK, &body);
}
