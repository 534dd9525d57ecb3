
/*
 * Copyright (C) sark-gateway authors
 */


/*
 * POST /api/v1/gateway/audit (caller: a gateway holding sark_gateway_key,
 * in X-Gateway-Api-Key or as "Authorization: Bearer <key>"):
 *
 *   {"event_type": "...", "user_id", "agent_id", "server_name",
 *    "tool_name": "..." or null, "decision": "allow" | "deny",
 *    "reason": "...", "timestamp": <Unix seconds>,
 *    "gateway_request_id": "...", "metadata": {...}}
 *
 * The event gets a fresh UUIDv7 and goes to sarkd at once, alone in an
 * urgent AUDIT_BATCH; the answer, 201 {"audit_id", "status": "logged"},
 * waits until sarkd says the event is durable.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_sark_module.h"


#define NGX_HTTP_SARK_EVENT_TYPE_MAX   50      /* SARK's varchar(50) */
#define NGX_HTTP_SARK_REASON_MAX       4096

/*
 * An event's time: from 2000-01-01T00:00:00Z to an hour ahead of this
 * host's clock (skew), so no event sorts above every real one in the
 * newest-first audit queries, nor lands in 1970
 */
#define NGX_HTTP_SARK_TIMESTAMP_MIN    946684800LL
#define NGX_HTTP_SARK_TIMESTAMP_AHEAD  3600


static ngx_int_t ngx_http_sark_gateway_event(ngx_http_request_t *r,
    const sark_json_t *root, ngx_http_sark_audit_event_t *ev,
    ngx_http_sark_error_t *err);
static void ngx_http_sark_gateway_answer(ngx_http_sark_call_t *call,
    ngx_uint_t status, u_char *payload, size_t len);
static ngx_int_t ngx_http_sark_gateway_reply(ngx_http_request_t *r,
    ngx_http_sark_ctx_t *ctx);


ngx_int_t
ngx_http_sark_gateway_audit_handler(ngx_http_request_t *r)
{
    ngx_http_sark_ctx_t  *ctx;

    ctx = ngx_http_sark_create_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->call.handler = ngx_http_sark_gateway_answer;

    return ngx_http_sark_start(r, ctx, ngx_http_sark_gateway_check);
}


ngx_int_t
ngx_http_sark_gateway_audit_start(ngx_http_request_t *r,
    ngx_http_sark_ctx_t *ctx)
{
    u_char                       *frame, *p;
    size_t                        size;
    ngx_int_t                     rc;
    sark_json_t                  *root;
    sark_frame_hdr_t              h;
    ngx_http_sark_error_t        *err;
    ngx_http_sark_loc_conf_t     *slcf;
    ngx_http_sark_audit_event_t   ev;

    slcf = ngx_http_get_module_loc_conf(r, ngx_http_sark_module);
    err = &ctx->error;

    rc = ngx_http_sark_read_json(r, &root, err);
    if (rc != NGX_OK) {
        return rc;
    }

    if (ngx_http_sark_gateway_event(r, root, &ev, err) != NGX_OK) {
        return err->status ? NGX_DECLINED : NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the row says which key posted it */

    if (ngx_http_sark_audit_meta_string(r->pool, &ev.metadata, "gateway_key",
                                        &ctx->gateway_key)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_sark_new_audit_id(ctx) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ev.id = ctx->audit_raw;

    size = ngx_http_sark_audit_event_size(&ev, 0);

    if (size > SARK_PROTO_MAX_PAYLOAD) {
        ngx_http_sark_error_set(err, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                "GW-413", "audit event is too large");
        return NGX_DECLINED;
    }

    frame = ngx_pnalloc(r->pool, SARK_PROTO_HDR_LEN + size);
    if (frame == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_http_sark_audit_event_write(frame + SARK_PROTO_HDR_LEN, &ev, 0);

    ngx_memzero(&h, sizeof(sark_frame_hdr_t));
    h.type = SARK_MSG_AUDIT_BATCH;
    h.flags = SARK_AUDIT_F_URGENT;
    h.length = (uint32_t) (p - frame - SARK_PROTO_HDR_LEN);
    sark_frame_hdr_encode(frame, &h);

    rc = ngx_http_sark_ctx_call(ctx, frame, p - frame,
                                slcf->decision_timeout);

    switch (rc) {

    case NGX_OK:
        return NGX_DONE;

    case NGX_DECLINED:
        ngx_http_sark_error_set(err, NGX_HTTP_SERVICE_UNAVAILABLE, "CN-001",
                                "audit event not logged: authorization "
                                "service unavailable");
        err->retry_after = 1;
        return NGX_DECLINED;

    case NGX_BUSY:
        ngx_http_sark_error_set(err, NGX_HTTP_SERVICE_UNAVAILABLE, "GW-503",
                                "audit event not logged: authorization "
                                "service overloaded");
        err->retry_after = 1;
        return NGX_DECLINED;

    default:
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
}


/* the string fields, in the order they are checked */

typedef struct {
    const char                   *name;
    ngx_uint_t                    flags;
    size_t                        max;
    size_t                        offset;
} ngx_http_sark_gateway_field_t;

#define ngx_http_sark_gw_field(name, flags, max, member)                     \
    { name, flags, max, offsetof(ngx_http_sark_audit_event_t, member) }

/* required fields may be empty, optional ones null */

static const ngx_http_sark_gateway_field_t  ngx_http_sark_gateway_fields[] = {
    ngx_http_sark_gw_field("event_type", NGX_HTTP_SARK_FIELD_REQUIRED,
                           NGX_HTTP_SARK_EVENT_TYPE_MAX, event_type),
    ngx_http_sark_gw_field("user_id", NGX_HTTP_SARK_FIELD_NULLABLE,
                           NGX_HTTP_SARK_MAX_NAME, user_id),
    ngx_http_sark_gw_field("agent_id", NGX_HTTP_SARK_FIELD_NULLABLE,
                           NGX_HTTP_SARK_MAX_NAME, agent_id),
    ngx_http_sark_gw_field("server_name", NGX_HTTP_SARK_FIELD_NULLABLE,
                           NGX_HTTP_SARK_MAX_NAME, server_name),
    ngx_http_sark_gw_field("tool_name", NGX_HTTP_SARK_FIELD_NULLABLE,
                           NGX_HTTP_SARK_MAX_NAME, tool_name),
    ngx_http_sark_gw_field("decision", NGX_HTTP_SARK_FIELD_REQUIRED,
                           NGX_HTTP_SARK_MAX_NAME, decision),
    ngx_http_sark_gw_field("reason", NGX_HTTP_SARK_FIELD_REQUIRED,
                           NGX_HTTP_SARK_REASON_MAX, reason),
    ngx_http_sark_gw_field("gateway_request_id", NGX_HTTP_SARK_FIELD_REQUIRED,
                           NGX_HTTP_SARK_MAX_NAME, request_id),
    { NULL, 0, 0, 0 }
};


static ngx_int_t
ngx_http_sark_gateway_event(ngx_http_request_t *r, const sark_json_t *root,
    ngx_http_sark_audit_event_t *ev, ngx_http_sark_error_t *err)
{
    const sark_json_t                     *v;
    const ngx_http_sark_gateway_field_t  *f;

    ngx_memzero(ev, sizeof(ngx_http_sark_audit_event_t));

    if (root->type != SARK_JSON_OBJECT) {
        ngx_http_sark_error_set(err, NGX_HTTP_BAD_REQUEST, "GW-100",
                                "request body must be a JSON object");
        return NGX_DECLINED;
    }

    for (f = ngx_http_sark_gateway_fields; f->name; f++) {
        if (ngx_http_sark_get_string(r, root, f->name, f->flags, f->max,
                                     (ngx_str_t *) ((u_char *) ev + f->offset),
                                     err)
            != NGX_OK)
        {
            return NGX_DECLINED;
        }
    }

    if (ev->event_type.len == 0) {
        ngx_http_sark_error_set(err, NGX_HTTP_BAD_REQUEST, "GW-100",
                                "field \"event_type\" must not be empty");
        err->field = "event_type";
        return NGX_DECLINED;
    }

    if (!((ev->decision.len == 5
           && ngx_strncmp(ev->decision.data, "allow", 5) == 0)
          || (ev->decision.len == 4
              && ngx_strncmp(ev->decision.data, "deny", 4) == 0)))
    {
        ngx_http_sark_error_set(err, NGX_HTTP_BAD_REQUEST, "GW-100",
                                "field \"decision\" must be \"allow\" or "
                                "\"deny\"");
        err->field = "decision";
        return NGX_DECLINED;
    }

    v = sark_json_get(root, "timestamp");

    if (v == NULL || v->type == SARK_JSON_NULL) {
        ngx_http_sark_error_set(err, NGX_HTTP_BAD_REQUEST, "GW-100",
                                "missing required field \"timestamp\"");
        err->field = "timestamp";
        err->missing = 1;
        return NGX_DECLINED;
    }

    if (v->type != SARK_JSON_NUMBER || !v->is_int) {
        ngx_http_sark_error_set(err, NGX_HTTP_BAD_REQUEST, "GW-100",
                                "field \"timestamp\" must be an integer "
                                "(Unix seconds)");
        err->field = "timestamp";
        return NGX_DECLINED;
    }

    if (v->ival < NGX_HTTP_SARK_TIMESTAMP_MIN
        || v->ival > (long long) ngx_time() + NGX_HTTP_SARK_TIMESTAMP_AHEAD)
    {
        ngx_http_sark_error_set(err, NGX_HTTP_BAD_REQUEST, "GW-100",
                                "field \"timestamp\" is out of range (from "
                                "2000-01-01 to an hour from now)");
        err->field = "timestamp";
        return NGX_DECLINED;
    }

    ev->timestamp = (uint64_t) v->ival * 1000000;

    v = sark_json_get(root, "metadata");

    if (v == NULL || v->type == SARK_JSON_NULL) {
        ngx_str_set(&ev->metadata, "{}");

    } else if (v->type != SARK_JSON_OBJECT) {
        ngx_http_sark_error_set(err, NGX_HTTP_BAD_REQUEST, "GW-100",
                                "field \"metadata\" must be an object");
        err->field = "metadata";
        return NGX_DECLINED;

    } else if (sark_json_get(v, "gateway_key") != NULL) {
        ngx_http_sark_error_set(err, NGX_HTTP_BAD_REQUEST, "GW-100",
                                "field \"metadata\" may not hold "
                                "\"gateway_key\": sark records the key that "
                                "posts the event");
        err->field = "metadata";
        return NGX_DECLINED;

    } else {
        ev->metadata.data = (u_char *) v->raw;
        ev->metadata.len = v->raw_len;
    }

    return NGX_OK;
}


static void
ngx_http_sark_gateway_answer(ngx_http_sark_call_t *call, ngx_uint_t status,
    u_char *payload, size_t len)
{
    uint32_t                   events;
    ngx_int_t                  rc;
    ngx_str_t                  message;
    ngx_uint_t                 st;
    ngx_connection_t          *c;
    ngx_http_request_t        *r;
    ngx_http_sark_ctx_t       *ctx;
    ngx_http_sark_error_t     *err;
    ngx_http_sark_loc_conf_t  *slcf;

    ctx = call->data;
    r = ctx->request;
    c = r->connection;
    err = &ctx->error;

    switch (status) {

    case NGX_HTTP_SARK_CALL_TIMEOUT:
        slcf = ngx_http_get_module_loc_conf(r, ngx_http_sark_module);
        ngx_http_sark_error_fmt(r->pool, err, NGX_HTTP_SERVICE_UNAVAILABLE,
                                "CN-002", "audit event not confirmed within "
                                "%M ms", slcf->decision_timeout);
        err->retry_after = 1;
        break;

    case NGX_HTTP_SARK_CALL_LOST:
        ngx_http_sark_error_set(err, NGX_HTTP_SERVICE_UNAVAILABLE, "CN-001",
                                "audit event not confirmed: connection to "
                                "the authorization service lost");
        err->retry_after = 1;
        break;

    default:
        if (ngx_http_sark_audit_ack(payload, len, &st, &events, &message)
            != NGX_OK)
        {
            ngx_log_error(NGX_LOG_ERR, c->log, 0,
                          "sark: invalid audit acknowledgement from sarkd");
            ngx_http_sark_error_set(err, NGX_HTTP_SERVICE_UNAVAILABLE,
                                    "CN-003", "invalid answer from "
                                    "authorization service");
            err->retry_after = 1;
            break;
        }

        if (st == SARK_ACK_REJECTED) {
            ngx_http_sark_error_fmt(r->pool, err, NGX_HTTP_BAD_REQUEST,
                                    "GW-100", "audit event rejected: %*s",
                                    ngx_min(message.len, 400), message.data);
            break;
        }
    }

    if (err->status) {
        rc = ngx_http_sark_send_error(r, err);

    } else {
        rc = ngx_http_sark_gateway_reply(r, ctx);
    }

    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}


static ngx_int_t
ngx_http_sark_gateway_reply(ngx_http_request_t *r, ngx_http_sark_ctx_t *ctx)
{
    ngx_str_t   body, *aid;

    aid = ngx_http_sark_audit_id(r->pool, ctx);
    if (aid == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    body.data = ngx_pnalloc(r->pool, sizeof("{\"audit_id\":\"\","
                                            "\"status\":\"logged\"}\n")
                                     + aid->len);
    if (body.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    body.len = ngx_sprintf(body.data,
                           "{\"audit_id\":\"%V\",\"status\":\"logged\"}\n",
                           aid)
               - body.data;

    return ngx_http_sark_send_json(r, NGX_HTTP_CREATED, &body);
}
