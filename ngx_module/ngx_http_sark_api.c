
/*
 * Copyright (C) sark-gateway authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_sark_module.h"


static void ngx_http_sark_api_body_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_sark_api_decide(ngx_http_request_t *r,
    ngx_http_sark_ctx_t *ctx, ngx_http_sark_error_t *err);
static ngx_int_t ngx_http_sark_read_body(ngx_http_request_t *r,
    ngx_str_t *body, ngx_http_sark_error_t *err);
static ngx_int_t ngx_http_sark_parse_query(ngx_http_request_t *r,
    const sark_json_t *root, ngx_http_sark_query_t *q,
    ngx_http_sark_error_t *err);
static ngx_int_t ngx_http_sark_get_string(ngx_http_request_t *r,
    const sark_json_t *root, const char *name, ngx_uint_t required,
    ngx_str_t *out, ngx_http_sark_error_t *err);
static ngx_int_t ngx_http_sark_get_object(ngx_http_request_t *r,
    const sark_json_t *root, const char *name, ngx_str_t *out,
    ngx_http_sark_error_t *err);
static ngx_int_t ngx_http_sark_one_of(ngx_str_t *s, ngx_str_t *set);
static u_char *ngx_http_sark_build_request(ngx_http_request_t *r,
    ngx_http_sark_ctx_t *ctx, size_t *len);
static void ngx_http_sark_api_answer(ngx_http_sark_call_t *call,
    ngx_uint_t status, u_char *payload, size_t len);
static ngx_int_t ngx_http_sark_decode_answer(ngx_pool_t *pool,
    u_char *payload, size_t len, ngx_http_sark_decision_t *d);
static ngx_int_t ngx_http_sark_dup(ngx_pool_t *pool, ngx_str_t *dst,
    const uint8_t *src, size_t len);
static void ngx_http_sark_api_cleanup(void *data);


static ngx_str_t  ngx_http_sark_actions[] = {
    ngx_string("gateway:tool:invoke"),
    ngx_string("gateway:server:access"),
    ngx_string("gateway:server:list"),
    ngx_string("gateway:tool:discover"),
    ngx_string("gateway:server:info"),
    ngx_string("gateway:resource:read"),
    ngx_null_string
};


/* actions that name no particular server */
static ngx_str_t  ngx_http_sark_serverless_actions[] = {
    ngx_string("gateway:server:list"),
    ngx_string("gateway:tool:discover"),
    ngx_null_string
};


static ngx_str_t  ngx_http_sark_sensitivities[] = {
    ngx_string("low"),
    ngx_string("medium"),
    ngx_string("high"),
    ngx_string("critical"),
    ngx_null_string
};


ngx_int_t
ngx_http_sark_api_handler(ngx_http_request_t *r)
{
    ngx_int_t                  rc;
    ngx_pool_cleanup_t        *cln;
    ngx_http_sark_ctx_t       *ctx;
    ngx_http_sark_error_t      err;
    ngx_http_sark_loc_conf_t  *slcf;

    slcf = ngx_http_get_module_loc_conf(r, ngx_http_sark_module);

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_sark_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->call.data = r;
    ctx->call.handler = ngx_http_sark_api_answer;
    ctx->call.timer.log = r->connection->log;

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln->handler = ngx_http_sark_api_cleanup;
    cln->data = ctx;

    ngx_http_set_ctx(r, ctx, ngx_http_sark_module);

    if (!(r->method & NGX_HTTP_POST)) {
        ngx_http_sark_error_set(&err, NGX_HTTP_NOT_ALLOWED, "GW-101",
                                "method not allowed: use POST");
        goto reject;
    }

    if (ngx_http_sark_authenticate(r, slcf, &ctx->identity, &err) != NGX_OK) {
        if (err.status == 0) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        goto reject;
    }

    if (r->headers_in.content_length_n > (off_t) slcf->max_body_size) {
        ngx_http_sark_error_fmt(r->pool, &err,
                                NGX_HTTP_REQUEST_ENTITY_TOO_LARGE, "GW-413",
                                "request body is larger than %uz bytes",
                                slcf->max_body_size);
        goto reject;
    }

    r->request_body_in_single_buf = 1;

    rc = ngx_http_read_client_request_body(r, ngx_http_sark_api_body_handler);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;

reject:

    rc = ngx_http_discard_request_body(r);

    if (rc != NGX_OK) {
        return rc;
    }

    return ngx_http_sark_send_error(r, &err);
}


static void
ngx_http_sark_api_body_handler(ngx_http_request_t *r)
{
    ngx_int_t               rc;
    ngx_http_sark_ctx_t    *ctx;
    ngx_http_sark_error_t   err;

    ctx = ngx_http_get_module_ctx(r, ngx_http_sark_module);

    err.status = 0;

    rc = ngx_http_sark_api_decide(r, ctx, &err);

    if (rc == NGX_DONE) {
        return;
    }

    if (rc == NGX_DECLINED) {
        rc = ngx_http_sark_send_error(r, &err);
    }

    ngx_http_finalize_request(r, rc);
}


static ngx_int_t
ngx_http_sark_api_decide(ngx_http_request_t *r, ngx_http_sark_ctx_t *ctx,
    ngx_http_sark_error_t *err)
{
    u_char                    *frame;
    char                       msg[160];
    size_t                     len;
    ngx_int_t                  rc;
    ngx_str_t                  body;
    sark_json_t               *root;
    ngx_http_sark_loc_conf_t  *slcf;

    slcf = ngx_http_get_module_loc_conf(r, ngx_http_sark_module);

    rc = ngx_http_sark_read_body(r, &body, err);
    if (rc != NGX_OK) {
        return rc;
    }

    if (body.len > slcf->max_body_size) {
        ngx_http_sark_error_fmt(r->pool, err,
                                NGX_HTTP_REQUEST_ENTITY_TOO_LARGE, "GW-413",
                                "request body is larger than %uz bytes",
                                slcf->max_body_size);
        return NGX_DECLINED;
    }

    if (body.len == 0) {
        ngx_http_sark_error_set(err, NGX_HTTP_BAD_REQUEST, "GW-100",
                                "request body is empty: "
                                "expected a JSON object");
        return NGX_DECLINED;
    }

    msg[0] = '\0';

    if (sark_json_parse(body.data, body.len, slcf->json_max_depth,
                        ngx_http_sark_json_alloc, r->pool, &root,
                        msg, sizeof(msg))
        != 0)
    {
        ngx_http_sark_error_fmt(r->pool, err, NGX_HTTP_BAD_REQUEST, "GW-100",
                                "%s", msg[0] ? msg : "invalid JSON");
        return NGX_DECLINED;
    }

    if (ngx_http_sark_parse_query(r, root, &ctx->query, err) != NGX_OK) {
        return err->status ? NGX_DECLINED : NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_sark_make_uuid(r->pool, &ctx->audit_id) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    frame = ngx_http_sark_build_request(r, ctx, &len);
    if (frame == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_sark_sarkd_call(&ctx->call, frame, len,
                                  slcf->decision_timeout);

    switch (rc) {

    case NGX_OK:
        return NGX_DONE;

    case NGX_DECLINED:
        ngx_http_sark_error_set(err, NGX_HTTP_SERVICE_UNAVAILABLE, "CN-001",
                                "authorization service unavailable");
        err->retry_after = 1;
        return NGX_DECLINED;

    case NGX_BUSY:
        ngx_http_sark_error_set(err, NGX_HTTP_SERVICE_UNAVAILABLE, "GW-503",
                                "authorization service overloaded");
        err->retry_after = 1;
        return NGX_DECLINED;

    default:
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
}


static ngx_int_t
ngx_http_sark_read_body(ngx_http_request_t *r, ngx_str_t *body,
    ngx_http_sark_error_t *err)
{
    u_char       *p;
    off_t         len;
    ssize_t       n;
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    ngx_str_null(body);

    if (r->request_body == NULL || r->request_body->bufs == NULL) {
        return NGX_OK;
    }

    len = 0;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        len += ngx_buf_size(cl->buf);
    }

    if (len == 0) {
        return NGX_OK;
    }

    cl = r->request_body->bufs;

    if (cl->next == NULL && !cl->buf->in_file) {
        body->data = cl->buf->pos;
        body->len = cl->buf->last - cl->buf->pos;
        return NGX_OK;
    }

    if (len > (off_t) NGX_MAX_SIZE_T_VALUE / 2) {
        ngx_http_sark_error_set(err, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                "GW-413", "request body is too large");
        return NGX_DECLINED;
    }

    body->data = ngx_pnalloc(r->pool, (size_t) len);
    if (body->data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = body->data;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;

        if (b->in_file) {
            n = ngx_read_file(b->file, p, (size_t) (b->file_last
                                                    - b->file_pos),
                              b->file_pos);
            if (n == NGX_ERROR) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            p += n;
            continue;
        }

        p = ngx_cpymem(p, b->pos, b->last - b->pos);
    }

    body->len = p - body->data;

    return NGX_OK;
}


static ngx_int_t
ngx_http_sark_parse_query(ngx_http_request_t *r, const sark_json_t *root,
    ngx_http_sark_query_t *q, ngx_http_sark_error_t *err)
{
    ngx_uint_t  invoke, serverless;

    if (root->type != SARK_JSON_OBJECT) {
        ngx_http_sark_error_set(err, NGX_HTTP_BAD_REQUEST, "GW-100",
                                "request body must be a JSON object");
        return NGX_DECLINED;
    }

    if (ngx_http_sark_get_string(r, root, "action", 1, &q->action, err)
        != NGX_OK)
    {
        return NGX_DECLINED;
    }

    if (!ngx_http_sark_one_of(&q->action, ngx_http_sark_actions)) {
        ngx_http_sark_error_fmt(r->pool, err, NGX_HTTP_BAD_REQUEST, "GW-100",
                                "unknown action \"%V\"", &q->action);
        return NGX_DECLINED;
    }

    invoke = (q->action.len == sizeof("gateway:tool:invoke") - 1
              && ngx_strncmp(q->action.data, "gateway:tool:invoke",
                             q->action.len) == 0);
    serverless = ngx_http_sark_one_of(&q->action,
                                      ngx_http_sark_serverless_actions);

    if (ngx_http_sark_get_string(r, root, "server_name", !serverless,
                                 &q->server_name, err)
        != NGX_OK
        || ngx_http_sark_get_string(r, root, "tool_name", invoke,
                                    &q->tool_name, err)
           != NGX_OK
        || ngx_http_sark_get_string(r, root, "sensitivity_level", 0,
                                    &q->sensitivity, err)
           != NGX_OK)
    {
        return NGX_DECLINED;
    }

    if (q->sensitivity.data
        && !ngx_http_sark_one_of(&q->sensitivity, ngx_http_sark_sensitivities))
    {
        ngx_http_sark_error_fmt(r->pool, err, NGX_HTTP_BAD_REQUEST, "GW-100",
                                "invalid sensitivity_level \"%V\": expected "
                                "low, medium, high or critical",
                                &q->sensitivity);
        return NGX_DECLINED;
    }

    if (ngx_http_sark_get_object(r, root, "parameters", &q->parameters, err)
        != NGX_OK
        || ngx_http_sark_get_object(r, root, "context", &q->context, err)
           != NGX_OK
        || ngx_http_sark_get_object(r, root, "gateway_metadata",
                                    &q->gateway_metadata, err)
           != NGX_OK)
    {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_sark_get_string(ngx_http_request_t *r, const sark_json_t *root,
    const char *name, ngx_uint_t required, ngx_str_t *out,
    ngx_http_sark_error_t *err)
{
    const sark_json_t  *v;

    ngx_str_null(out);

    v = sark_json_get(root, name);

    if (v == NULL || v->type == SARK_JSON_NULL) {
        if (required) {
            ngx_http_sark_error_fmt(r->pool, err, NGX_HTTP_BAD_REQUEST,
                                    "GW-100", "missing required field \"%s\"",
                                    name);
            return NGX_DECLINED;
        }

        return NGX_OK;
    }

    if (v->type != SARK_JSON_STRING) {
        ngx_http_sark_error_fmt(r->pool, err, NGX_HTTP_BAD_REQUEST, "GW-100",
                                "field \"%s\" must be a string", name);
        return NGX_DECLINED;
    }

    if (v->len == 0 && required) {
        ngx_http_sark_error_fmt(r->pool, err, NGX_HTTP_BAD_REQUEST, "GW-100",
                                "field \"%s\" must not be empty", name);
        return NGX_DECLINED;
    }

    if (v->len > NGX_HTTP_SARK_MAX_NAME) {
        ngx_http_sark_error_fmt(r->pool, err, NGX_HTTP_BAD_REQUEST, "GW-100",
                                "field \"%s\" is longer than %d bytes", name,
                                NGX_HTTP_SARK_MAX_NAME);
        return NGX_DECLINED;
    }

    out->data = (u_char *) v->str;
    out->len = v->len;

    return NGX_OK;
}


static ngx_int_t
ngx_http_sark_get_object(ngx_http_request_t *r, const sark_json_t *root,
    const char *name, ngx_str_t *out, ngx_http_sark_error_t *err)
{
    const sark_json_t  *v;

    ngx_str_null(out);

    v = sark_json_get(root, name);

    if (v == NULL || v->type == SARK_JSON_NULL) {
        return NGX_OK;
    }

    if (v->type != SARK_JSON_OBJECT) {
        ngx_http_sark_error_fmt(r->pool, err, NGX_HTTP_BAD_REQUEST, "GW-100",
                                "field \"%s\" must be an object", name);
        return NGX_DECLINED;
    }

    out->data = (u_char *) v->raw;
    out->len = v->raw_len;

    return NGX_OK;
}


static ngx_int_t
ngx_http_sark_one_of(ngx_str_t *s, ngx_str_t *set)
{
    for ( /* void */ ; set->len; set++) {
        if (s->len == set->len && ngx_strncmp(s->data, set->data, s->len) == 0)
        {
            return 1;
        }
    }

    return 0;
}


#define ngx_http_sark_tlv_len(s)  ((s).data ? sark_tlv_size((s).len) : 0)

#define ngx_http_sark_put(tag, s)                                             \
    if ((s).data                                                              \
        && sark_tlv_put(frame, len, &off, tag, (s).data, (s).len)             \
           != SARK_PROTO_OK)                                                  \
    {                                                                         \
        return NULL;                                                          \
    }


static u_char *
ngx_http_sark_build_request(ngx_http_request_t *r, ngx_http_sark_ctx_t *ctx,
    size_t *lenp)
{
    u_char                    *frame;
    size_t                     len, off;
    ngx_str_t                 *rid, addr;
    ngx_uint_t                 i;
    sark_frame_hdr_t           h;
    ngx_http_sark_query_t     *q;
    ngx_http_sark_identity_t  *id;
    ngx_http_variable_value_t *vv;
    ngx_http_sark_main_conf_t *smcf;
    ngx_str_t                  request_id;

    q = &ctx->query;
    id = &ctx->identity;

    smcf = ngx_http_get_module_main_conf(r, ngx_http_sark_module);
    vv = ngx_http_get_indexed_variable(r, smcf->request_id_index);

    ngx_str_null(&request_id);

    if (vv && !vv->not_found) {
        request_id.data = vv->data;
        request_id.len = vv->len;
    }

    rid = &request_id;
    addr = r->connection->addr_text;

    len = SARK_PROTO_HDR_LEN
          + ngx_http_sark_tlv_len(q->action)
          + ngx_http_sark_tlv_len(q->server_name)
          + ngx_http_sark_tlv_len(q->tool_name)
          + ngx_http_sark_tlv_len(q->parameters)
          + ngx_http_sark_tlv_len(q->sensitivity)
          + ngx_http_sark_tlv_len(q->context)
          + ngx_http_sark_tlv_len(q->gateway_metadata)
          + ngx_http_sark_tlv_len(id->sub)
          + ngx_http_sark_tlv_len(id->email)
          + ngx_http_sark_tlv_len(*rid)
          + ngx_http_sark_tlv_len(addr);

    for (i = 0; i < id->nroles; i++) {
        len += sark_tlv_size(id->roles[i].len);
    }

    for (i = 0; i < id->nteams; i++) {
        len += sark_tlv_size(id->teams[i].len);
    }

    if (len - SARK_PROTO_HDR_LEN > SARK_PROTO_MAX_PAYLOAD) {
        return NULL;
    }

    frame = ngx_pnalloc(r->pool, len);
    if (frame == NULL) {
        return NULL;
    }

    off = SARK_PROTO_HDR_LEN;

    ngx_http_sark_put(SARK_REQ_ACTION, q->action);
    ngx_http_sark_put(SARK_REQ_SERVER_NAME, q->server_name);
    ngx_http_sark_put(SARK_REQ_TOOL_NAME, q->tool_name);
    ngx_http_sark_put(SARK_REQ_PARAMETERS, q->parameters);
    ngx_http_sark_put(SARK_REQ_SENSITIVITY, q->sensitivity);
    ngx_http_sark_put(SARK_REQ_CONTEXT, q->context);
    ngx_http_sark_put(SARK_REQ_GATEWAY_METADATA, q->gateway_metadata);
    ngx_http_sark_put(SARK_REQ_USER_ID, id->sub);
    ngx_http_sark_put(SARK_REQ_USER_EMAIL, id->email);
    ngx_http_sark_put(SARK_REQ_REQUEST_ID, *rid);
    ngx_http_sark_put(SARK_REQ_CLIENT_IP, addr);

    for (i = 0; i < id->nroles; i++) {
        ngx_http_sark_put(SARK_REQ_USER_ROLE, id->roles[i]);
    }

    for (i = 0; i < id->nteams; i++) {
        ngx_http_sark_put(SARK_REQ_USER_TEAM, id->teams[i]);
    }

    ngx_memzero(&h, sizeof(sark_frame_hdr_t));
    h.type = SARK_MSG_AUTHZ_REQ;
    h.length = (uint32_t) (off - SARK_PROTO_HDR_LEN);
    sark_frame_hdr_encode(frame, &h);

    *lenp = off;

    return frame;
}


static void
ngx_http_sark_api_answer(ngx_http_sark_call_t *call, ngx_uint_t status,
    u_char *payload, size_t len)
{
    ngx_int_t                  rc;
    ngx_connection_t          *c;
    ngx_http_request_t        *r;
    ngx_http_sark_ctx_t       *ctx;
    ngx_http_sark_error_t      err;
    ngx_http_sark_decision_t  *d;
    ngx_http_sark_loc_conf_t  *slcf;

    r = call->data;
    c = r->connection;
    ctx = ngx_http_get_module_ctx(r, ngx_http_sark_module);
    d = &ctx->decision;

    switch (status) {

    case NGX_HTTP_SARK_CALL_TIMEOUT:
        slcf = ngx_http_get_module_loc_conf(r, ngx_http_sark_module);
        ngx_http_sark_error_fmt(r->pool, &err, NGX_HTTP_SERVICE_UNAVAILABLE,
                                "CN-002", "no decision within %M ms",
                                slcf->decision_timeout);
        err.retry_after = 1;
        rc = ngx_http_sark_send_error(r, &err);
        break;

    case NGX_HTTP_SARK_CALL_LOST:
        ngx_http_sark_error_set(&err, NGX_HTTP_SERVICE_UNAVAILABLE, "CN-001",
                                "authorization service unavailable");
        err.retry_after = 1;
        rc = ngx_http_sark_send_error(r, &err);
        break;

    default:
        if (ngx_http_sark_decode_answer(r->pool, payload, len, d) != NGX_OK) {
            ngx_log_error(NGX_LOG_ERR, c->log, 0,
                          "sark: invalid decision frame from sarkd");
            ngx_http_sark_error_set(&err, NGX_HTTP_SERVICE_UNAVAILABLE,
                                    "CN-003",
                                    "invalid answer from authorization "
                                    "service");
            err.retry_after = 1;
            rc = ngx_http_sark_send_error(r, &err);
            break;
        }

        if (d->decision == SARK_DECISION_OUTAGE) {
            ngx_http_sark_error_set(&err, NGX_HTTP_SERVICE_UNAVAILABLE,
                                    "OPA-001", "");
            if (d->error_code.len) {
                err.code = (const char *) d->error_code.data;
            }

            err.message = d->reason;
            err.retry_after = d->retry_after ? d->retry_after : 1;
            rc = ngx_http_sark_send_error(r, &err);
            break;
        }

        rc = ngx_http_sark_send_decision(r, ctx);
    }

    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}


static ngx_int_t
ngx_http_sark_decode_answer(ngx_pool_t *pool, u_char *payload, size_t len,
    ngx_http_sark_decision_t *d)
{
    int          rc;
    size_t       off;
    uint8_t      u8;
    uint32_t     u32;
    sark_tlv_t   t;
    ngx_uint_t   have_decision;

    ngx_memzero(d, sizeof(ngx_http_sark_decision_t));

    have_decision = 0;
    off = 0;

    while ((rc = sark_tlv_next(payload, len, &off, &t)) == SARK_PROTO_OK) {

        switch (t.tag) {

        case SARK_RESP_DECISION:
            if (!sark_tlv_u8(&t, &u8) || u8 > SARK_DECISION_OUTAGE) {
                return NGX_ERROR;
            }

            d->decision = u8;
            have_decision = 1;
            break;

        case SARK_RESP_REASON:
            if (ngx_http_sark_dup(pool, &d->reason, t.value, t.len)
                != NGX_OK)
            {
                return NGX_ERROR;
            }
            break;

        case SARK_RESP_FILTERED_PARAMS:
            if (ngx_http_sark_dup(pool, &d->filtered_parameters, t.value,
                                  t.len)
                != NGX_OK)
            {
                return NGX_ERROR;
            }
            break;

        case SARK_RESP_POLICY_REVISION:
            if (ngx_http_sark_dup(pool, &d->policy_revision, t.value, t.len)
                != NGX_OK)
            {
                return NGX_ERROR;
            }
            break;

        case SARK_RESP_ERROR_CODE:
            if (ngx_http_sark_dup(pool, &d->error_code, t.value, t.len)
                != NGX_OK)
            {
                return NGX_ERROR;
            }
            break;

        case SARK_RESP_CACHE_TTL:
            if (!sark_tlv_u32(&t, &u32)) {
                return NGX_ERROR;
            }

            d->cache_ttl = u32;
            break;

        case SARK_RESP_RETRY_AFTER:
            if (!sark_tlv_u32(&t, &u32)) {
                return NGX_ERROR;
            }

            d->retry_after = u32;
            break;

        case SARK_RESP_EVALUATED_AT:
            if (!sark_tlv_u64(&t, &d->evaluated_at)) {
                return NGX_ERROR;
            }
            break;

        case SARK_RESP_CACHE_LAYER:
            if (!sark_tlv_u8(&t, &u8)) {
                return NGX_ERROR;
            }

            d->cache_layer = u8;
            break;

        default:
            break;
        }
    }

    if (rc != SARK_PROTO_END || !have_decision) {
        return NGX_ERROR;
    }

    if (d->reason.data == NULL) {
        ngx_str_set(&d->reason, "");
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_sark_dup(ngx_pool_t *pool, ngx_str_t *dst, const uint8_t *src,
    size_t len)
{
    /* NUL-terminated: error codes are used as C strings */

    dst->data = ngx_pnalloc(pool, len + 1);
    if (dst->data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(dst->data, src, len);
    dst->data[len] = '\0';
    dst->len = len;

    return NGX_OK;
}


static void
ngx_http_sark_api_cleanup(void *data)
{
    ngx_http_sark_ctx_t  *ctx = data;

    ngx_http_sark_sarkd_cancel(&ctx->call);
}
