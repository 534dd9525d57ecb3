
/*
 * Copyright (C) sark-gateway authors
 */


/*
 * Health endpoints (docs/design.md, Operations), each where a sark_api
 * directive puts it, GET or HEAD:
 *
 *   health_live      the worker answers: 200 {"status":"alive"}, without
 *                    asking anyone.
 *   health_ready     200 {"status":"ready"} once sarkd answers and OPA is
 *                    healthy; else 503 {"status":"not_ready","reason":...}.
 *                    Redis and PostgreSQL do not make it unready: their
 *                    fallbacks (L1 and OPA; the spool) hold.
 *   health_detailed  {"status":"healthy|degraded|unhealthy",
 *                    "dependencies":{"sarkd"|"opa"|"redis"|"postgresql":
 *                    {"healthy","latency_ms","error","circuit"}},
 *                    "cache":{...},"audit":{...},"sarkd":{...}}; 503 when
 *                    unhealthy (sarkd or OPA), 200 otherwise.
 *
 * sarkd's part comes from a STATUS_REQ on the worker's connection, never
 * from a blocking call; no answer within sark_decision_timeout is sarkd
 * being unhealthy.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_sark_module.h"


static void ngx_http_sark_status_answer(ngx_http_sark_call_t *call,
    ngx_uint_t status, u_char *payload, size_t len);
static ngx_int_t ngx_http_sark_health_reply(ngx_http_request_t *r,
    ngx_http_sark_ctx_t *ctx, const sark_json_t *root, const char *why);
static ngx_int_t ngx_http_sark_ready_reply(ngx_http_request_t *r,
    const sark_json_t *root, const char *why);
static ngx_int_t ngx_http_sark_detailed_reply(ngx_http_request_t *r,
    ngx_http_sark_ctx_t *ctx, const sark_json_t *root, const char *why);


ngx_int_t
ngx_http_sark_health_handler(ngx_http_request_t *r)
{
    ngx_int_t                  rc;
    ngx_str_t                  body;
    ngx_http_sark_loc_conf_t  *slcf;

    slcf = ngx_http_get_module_loc_conf(r, ngx_http_sark_module);

    if (slcf->api != NGX_HTTP_SARK_API_LIVE) {
        return ngx_http_sark_status_request(r, ngx_http_sark_health_reply);
    }

    rc = ngx_http_sark_get_only(r);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    ngx_str_set(&body, "{\"status\":\"alive\"}\n");

    return ngx_http_sark_send_json(r, NGX_HTTP_OK, &body);
}


/*
 * GET or HEAD, without a body: NGX_DECLINED, go on; anything else is the
 * handler's result, the 405 already sent (its NGX_OK included)
 */

ngx_int_t
ngx_http_sark_get_only(ngx_http_request_t *r)
{
    ngx_int_t              rc;
    ngx_http_sark_error_t  err;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        ngx_http_sark_error_set(&err, NGX_HTTP_NOT_ALLOWED, "GW-101",
                                "method not allowed: use GET");
        return ngx_http_sark_send_error(r, &err);
    }

    rc = ngx_http_discard_request_body(r);

    return rc == NGX_OK ? NGX_DECLINED : rc;
}


/*
 * A GET that sarkd's status answers (health_ready, health_detailed,
 * metrics): STATUS_REQ on the worker's connection; `reply` makes the
 * answer from the JSON it carries, or from `why` there is none.
 */

ngx_int_t
ngx_http_sark_status_request(ngx_http_request_t *r,
    ngx_http_sark_status_pt reply)
{
    u_char                    *frame;
    ngx_int_t                  rc;
    sark_frame_hdr_t           h;
    ngx_http_sark_ctx_t       *ctx;
    ngx_http_sark_loc_conf_t  *slcf;

    slcf = ngx_http_get_module_loc_conf(r, ngx_http_sark_module);

    rc = ngx_http_sark_get_start(r, &ctx, 0);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    ctx->call.handler = ngx_http_sark_status_answer;
    ctx->data = (void *) reply;

    frame = ngx_pnalloc(r->pool, SARK_PROTO_HDR_LEN);
    if (frame == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memzero(&h, sizeof(sark_frame_hdr_t));
    h.type = SARK_MSG_STATUS_REQ;
    sark_frame_hdr_encode(frame, &h);

    rc = ngx_http_sark_ctx_call(ctx, frame, SARK_PROTO_HDR_LEN,
                                slcf->decision_timeout);

    switch (rc) {

    case NGX_OK:
        r->main->count++;
        return NGX_DONE;

    case NGX_DECLINED:
        return reply(r, ctx, NULL, "sarkd is not connected");

    case NGX_BUSY:
        return reply(r, ctx, NULL, "the queue to sarkd is full");

    default:
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
}


static void
ngx_http_sark_status_answer(ngx_http_sark_call_t *call, ngx_uint_t status,
    u_char *payload, size_t len)
{
    size_t                    off;
    ngx_int_t                 rc;
    ngx_str_t                 json;
    sark_tlv_t                t;
    const char               *why;
    sark_json_t              *root;
    ngx_connection_t         *c;
    ngx_http_request_t       *r;
    ngx_http_sark_ctx_t      *ctx;
    ngx_http_sark_status_pt   reply;

    ctx = call->data;
    r = ctx->request;
    c = r->connection;
    reply = (ngx_http_sark_status_pt) ctx->data;

    ngx_str_null(&json);
    why = NULL;

    switch (status) {

    case NGX_HTTP_SARK_CALL_OK:
        off = 0;

        while (sark_tlv_next(payload, len, &off, &t) == SARK_PROTO_OK) {
            if (t.tag == SARK_STATUS_JSON) {
                json.data = (u_char *) t.value;
                json.len = t.len;
            }
        }

        if (json.data == NULL) {
            why = "sarkd's status frame has no status";
        }

        break;

    case NGX_HTTP_SARK_CALL_TIMEOUT:
        why = "sarkd did not answer in time";
        break;

    default:
        why = "the connection to sarkd was lost";
    }

    root = NULL;

    if (json.data
        && (sark_json_parse(json.data, json.len, 64, ngx_http_sark_json_alloc,
                            r->pool, &root, NULL, 0)
            != 0
            || root->type != SARK_JSON_OBJECT))
    {
        root = NULL;
        why = "sarkd's status is not a JSON object";
    }

    rc = reply(r, ctx, root, why);

    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}


static ngx_int_t
ngx_http_sark_health_reply(ngx_http_request_t *r, ngx_http_sark_ctx_t *ctx,
    const sark_json_t *root, const char *why)
{
    ngx_http_sark_loc_conf_t  *slcf;

    slcf = ngx_http_get_module_loc_conf(r, ngx_http_sark_module);

    if (slcf->api == NGX_HTTP_SARK_API_READY) {
        return ngx_http_sark_ready_reply(r, root, why);
    }

    return ngx_http_sark_detailed_reply(r, ctx, root, why);
}


static ngx_int_t
ngx_http_sark_ready_reply(ngx_http_request_t *r, const sark_json_t *root,
    const char *why)
{
    u_char              *p;
    size_t               size;
    ngx_str_t            body, reason, value;
    const sark_json_t   *opa, *v;

    static ngx_str_t     ready = ngx_string("{\"status\":\"ready\"}\n");

    ngx_str_null(&reason);

    if (root == NULL) {
        reason.data = (u_char *) why;
        reason.len = ngx_strlen(why);

    } else if ((v = sark_json_get(sark_json_get(root, "sarkd"), "draining"))
               && v->type == SARK_JSON_TRUE)
    {
        ngx_str_set(&reason, "sarkd is shutting down");

    } else {
        opa = sark_json_get(sark_json_get(root, "dependencies"), "opa");
        v = sark_json_get(opa, "healthy");

        if (v == NULL || v->type != SARK_JSON_TRUE) {
            v = sark_json_get(opa, "error");
            ngx_str_set(&reason, "OPA is not answering");

            if (v && v->type == SARK_JSON_STRING) {
                size = sizeof("OPA is not answering: ") - 1 + v->len;
                reason.data = ngx_pnalloc(r->pool, size);
                if (reason.data == NULL) {
                    return NGX_HTTP_INTERNAL_SERVER_ERROR;
                }

                reason.len = ngx_sprintf(reason.data,
                                         "OPA is not answering: %*s",
                                         v->len, v->str)
                             - reason.data;
            }
        }
    }

    if (reason.data == NULL) {
        return ngx_http_sark_send_json(r, NGX_HTTP_OK, &ready);
    }

    size = sizeof("{\"status\":\"not_ready\",\"reason\":}\n") - 1
           + ngx_http_sark_string_len(&reason);

    p = ngx_pnalloc(r->pool, size);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    body.data = p;
    p = ngx_http_sark_cpylit(p, "{\"status\":\"not_ready\",\"reason\":");
    p = ngx_http_sark_put_string(p, &reason);
    p = ngx_http_sark_cpylit(p, "}\n");
    body.len = p - body.data;

    ngx_str_set(&value, "1");

    if (ngx_http_sark_add_header(r, "Retry-After", &value) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_sark_send_json(r, NGX_HTTP_SERVICE_UNAVAILABLE, &body);
}


/* "healthy": true in dependency `d` */

static ngx_uint_t
ngx_http_sark_healthy(const sark_json_t *d)
{
    const sark_json_t  *v;

    v = sark_json_get(d, "healthy");

    return v && v->type == SARK_JSON_TRUE;
}


static ngx_int_t
ngx_http_sark_detailed_reply(ngx_http_request_t *r, ngx_http_sark_ctx_t *ctx,
    const sark_json_t *root, const char *why)
{
    u_char                       *p;
    size_t                        size;
    ngx_str_t                     body, error;
    ngx_uint_t                    unhealthy, degraded;
    const char                   *status;
    const sark_json_t            *deps, *d, *sarkd, *audit;
    ngx_http_sark_main_conf_t    *smcf;
    ngx_http_sark_cache_stats_t   st;

    smcf = ngx_http_get_module_main_conf(r, ngx_http_sark_module);

    deps = sark_json_get(root, "dependencies");
    sarkd = sark_json_get(root, "sarkd");
    audit = sark_json_get(root, "audit");

    unhealthy = (root == NULL
                 || !ngx_http_sark_healthy(sark_json_get(deps, "opa")));
    degraded = 0;

    size = 0;

    for (d = (deps && deps->type == SARK_JSON_OBJECT) ? deps->child : NULL;
         d;
         d = d->next)
    {
        size += d->key_len * 6 + d->raw_len + sizeof("\"\":,") - 1;

        if (!ngx_http_sark_healthy(d)) {
            degraded = 1;
        }
    }

    status = unhealthy ? "unhealthy" : degraded ? "degraded" : "healthy";

    ngx_memzero(&st, sizeof(ngx_http_sark_cache_stats_t));

    if (smcf->cache) {
        ngx_http_sark_cache_stats(smcf->cache, &st);
    }

    error.data = (u_char *) why;
    error.len = why ? ngx_strlen(why) : 0;

    size += sizeof("{\"status\":\"unhealthy\",\"dependencies\":{\"sarkd\":"
                   "{\"healthy\":false,\"latency_ms\":,\"error\":,"
                   "\"circuit\":\"closed\"},},\"cache\":{\"enabled\":false,"
                   "\"entries\":,\"hits\":,\"misses\":,\"evictions\":},"
                   "\"audit\":,\"sarkd\":}\n")
            + NGX_INT_T_LEN + ngx_http_sark_string_len(&error)
            + 4 * NGX_INT_T_LEN
            + (audit ? audit->raw_len : 4) + (sarkd ? sarkd->raw_len : 4);

    p = ngx_pnalloc(r->pool, size);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    body.data = p;

    p = ngx_sprintf(p, "{\"status\":\"%s\",\"dependencies\":{\"sarkd\":"
                       "{\"healthy\":%s,\"latency_ms\":%M,\"error\":",
                    status, root ? "true" : "false",
                    ngx_current_msec - ctx->started);

    if (root) {
        p = ngx_http_sark_cpylit(p, "null");

    } else {
        p = ngx_http_sark_put_string(p, &error);
    }

    p = ngx_sprintf(p, ",\"circuit\":\"%s\"}", root ? "closed" : "open");

    /* sarkd's dependencies as it reported them */

    for (d = (deps && deps->type == SARK_JSON_OBJECT) ? deps->child : NULL;
         d;
         d = d->next)
    {
        *p++ = ',';
        *p++ = '"';
        (void) sark_json_escape(d->key, d->key_len, p, d->key_len * 6, &size);
        p += size;
        *p++ = '"';
        *p++ = ':';
        p = ngx_cpymem(p, d->raw, d->raw_len);
    }

    p = ngx_sprintf(p, "},\"cache\":{\"enabled\":%s,\"entries\":%ui,"
                       "\"hits\":%ui,\"misses\":%ui,\"evictions\":%ui},"
                       "\"audit\":",
                    smcf->cache ? "true" : "false", st.entries, st.hits,
                    st.misses, st.evictions);

    if (audit) {
        p = ngx_cpymem(p, audit->raw, audit->raw_len);

    } else {
        p = ngx_http_sark_cpylit(p, "null");
    }

    p = ngx_http_sark_cpylit(p, ",\"sarkd\":");

    if (sarkd) {
        p = ngx_cpymem(p, sarkd->raw, sarkd->raw_len);

    } else {
        p = ngx_http_sark_cpylit(p, "null");
    }

    p = ngx_http_sark_cpylit(p, "}\n");

    body.len = p - body.data;

    return ngx_http_sark_send_json(r, unhealthy ? NGX_HTTP_SERVICE_UNAVAILABLE
                                                : NGX_HTTP_OK, &body);
}
