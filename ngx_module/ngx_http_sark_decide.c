
/*
 * Copyright (C) sark-gateway authors
 */


/*
 * The decision path shared by the decision API and enforced locations:
 * the key (ngx_http_sark_key.c), an answer from the L1 zone, else a call
 * to sarkd (which has L2 and OPA) whose answer is remembered in L1 and
 * audited.  Also the decision's context, and the policy revision the
 * workers key their L1 with.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_sark_module.h"


static u_char *ngx_http_sark_build_request(ngx_http_request_t *r,
    ngx_http_sark_ctx_t *ctx, size_t *len);
static void ngx_http_sark_answer(ngx_http_sark_call_t *call,
    ngx_uint_t status, u_char *payload, size_t len);
static ngx_int_t ngx_http_sark_decode_answer(ngx_pool_t *pool,
    u_char *payload, size_t len, ngx_http_sark_decision_t *d,
    uint64_t *expires_at);
static ngx_int_t ngx_http_sark_dup(ngx_pool_t *pool, ngx_str_t *dst,
    const uint8_t *src, size_t len);
static void ngx_http_sark_decided(ngx_http_request_t *r,
    ngx_http_sark_ctx_t *ctx);
static void ngx_http_sark_ctx_cleanup(void *data);


/* per worker: the policy revision sarkd last announced */
static u_char  ngx_http_sark_revision_buf[NGX_HTTP_SARK_REVISION_MAX];
ngx_str_t      ngx_http_sark_revision;
ngx_uint_t     ngx_http_sark_revision_gen;      /* bumped on each change */


ngx_http_sark_ctx_t *
ngx_http_sark_create_ctx(ngx_http_request_t *r)
{
    ngx_http_sark_ctx_t  *ctx;

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_sark_ctx_t));
    if (ctx == NULL) {
        return NULL;
    }

    ngx_http_sark_init_ctx(r, ctx);
    ngx_http_set_ctx(r, ctx, ngx_http_sark_module);

    return ctx;
}


/* a zeroed ctx becomes usable for one decision of request r */

void
ngx_http_sark_init_ctx(ngx_http_request_t *r, ngx_http_sark_ctx_t *ctx)
{
    ctx->request = r;
    ctx->call.data = ctx;
    ctx->call.handler = ngx_http_sark_answer;
    ctx->call.timer.log = r->connection->log;
    ctx->started = ngx_current_msec;
    ctx->started_us = ngx_http_sark_now_us();
}


/*
 * A call to sarkd for ctx (ngx_http_sark_sarkd_call()).  The first one
 * gives the request's pool a cleanup that cancels the call: an answer must
 * not reach a request that is gone.  A decision from L1 makes no call and
 * so registers nothing.
 */

ngx_int_t
ngx_http_sark_ctx_call(ngx_http_sark_ctx_t *ctx, u_char *frame, size_t len,
    ngx_msec_t timeout)
{
    ngx_pool_cleanup_t  *cln;

    if (!ctx->cancelable) {
        cln = ngx_pool_cleanup_add(ctx->request->pool, 0);
        if (cln == NULL) {
            return NGX_ERROR;
        }

        cln->handler = ngx_http_sark_ctx_cleanup;
        cln->data = ctx;
        ctx->cancelable = 1;
    }

    return ngx_http_sark_sarkd_call(&ctx->call, frame, len, timeout);
}


void
ngx_http_sark_set_revision(ngx_str_t *revision)
{
    ngx_http_sark_main_conf_t  *smcf;

    if (revision->len > NGX_HTTP_SARK_REVISION_MAX) {
        return;
    }

    if (ngx_http_sark_revision.len == revision->len
        && ngx_memcmp(ngx_http_sark_revision_buf, revision->data,
                      revision->len) == 0)
    {
        return;
    }

    ngx_memcpy(ngx_http_sark_revision_buf, revision->data, revision->len);
    ngx_http_sark_revision.data = ngx_http_sark_revision_buf;
    ngx_http_sark_revision.len = revision->len;
    ngx_http_sark_revision_gen++;

    ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, 0,
                  "sark: policy revision is now \"%V\"", revision);

    smcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_sark_module);
    if (smcf && smcf->cache) {
        ngx_http_sark_cache_set_revision(smcf->cache, revision);
    }
}


/* a new worker starts from the revision its predecessors knew */

void
ngx_http_sark_load_revision(ngx_cycle_t *cycle)
{
    ngx_http_sark_main_conf_t  *smcf;

    smcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_sark_module);

    if (smcf == NULL || smcf->cache == NULL) {
        return;
    }

    ngx_http_sark_cache_get_revision(smcf->cache, ngx_http_sark_revision_buf,
                                     &ngx_http_sark_revision.len);
    ngx_http_sark_revision.data = ngx_http_sark_revision_buf;
    ngx_http_sark_revision_gen++;

    if (ngx_http_sark_revision.len) {
        ngx_log_error(NGX_LOG_INFO, cycle->log, 0,
                      "sark: policy revision is now \"%V\" (from the cache "
                      "zone)", &ngx_http_sark_revision);
    }
}


void
ngx_http_sark_apply_invalidation(ngx_str_t *pattern, uint64_t issued_at)
{
    ngx_http_sark_main_conf_t  *smcf;

    smcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_sark_module);
    if (smcf && smcf->cache) {
        ngx_http_sark_cache_invalidate(smcf->cache, pattern, issued_at);
    }
}


/*
 * NGX_OK: decided from L1 (ctx->decision is set); NGX_AGAIN: sarkd was
 * asked and ctx->done runs with the answer; NGX_DECLINED: ctx->error says
 * why there is no decision; NGX_ERROR: internal failure.
 */

ngx_int_t
ngx_http_sark_decide(ngx_http_request_t *r, ngx_http_sark_ctx_t *ctx)
{
    u_char                     *frame;
    size_t                      len;
    uint64_t                    t0;
    ngx_int_t                   rc;
    ngx_http_sark_cached_t      hit;
    ngx_http_sark_decision_t   *d;
    ngx_http_sark_loc_conf_t   *slcf;
    ngx_http_sark_main_conf_t  *smcf;

    slcf = ngx_http_get_module_loc_conf(r, ngx_http_sark_module);
    smcf = ngx_http_get_module_main_conf(r, ngx_http_sark_module);

    /* the registered sensitivity is the question's floor */
    ngx_http_sark_registry_sensitivity(&ctx->query);

    if (ngx_http_sark_revision.len) {
        if (ngx_http_sark_key(r, slcf, ctx) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    /* the key holds the revision of this moment (see the store below) */
    ctx->key_gen = ngx_http_sark_revision_gen;

    if (ctx->keyed && smcf->cache) {
        t0 = slcf->profile ? ngx_http_sark_now_us() : 0;

        rc = ngx_http_sark_cache_lookup(smcf->cache, r->pool, &ctx->key,
                                        ctx->want_params, &hit);
        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }

        if (t0) {
            ctx->cache_us = ngx_http_sark_now_us() - t0;
        }

        if (rc == NGX_OK) {
            d = &ctx->decision;
            d->decision = hit.decision;
            d->reason = hit.reason;
            d->filtered_parameters = hit.filtered_parameters;
            d->cache_ttl = hit.cache_ttl;
            d->max_delegation = hit.max_delegation;
            d->evaluated_at = hit.evaluated_at;
            d->policy_revision = ngx_http_sark_revision;
            d->cache_layer = SARK_CACHE_L1;
            ctx->decided = 1;
            ctx->elapsed = ngx_current_msec - ctx->started;

            ngx_http_sark_decided(r, ctx);

            return NGX_OK;
        }
    }

    /* the slot it points into may change before sarkd answers */
    ctx->question = NULL;

    frame = ngx_http_sark_build_request(r, ctx, &len);
    if (frame == NULL) {
        return NGX_ERROR;
    }

    if (slcf->profile) {
        ctx->sarkd_us = ngx_http_sark_now_us();     /* its start, until the
                                                       answer */
    }

    rc = ngx_http_sark_ctx_call(ctx, frame, len, slcf->decision_timeout);

    switch (rc) {

    case NGX_OK:
        ctx->waiting = 1;
        return NGX_AGAIN;

    case NGX_DECLINED:
    case NGX_BUSY:
        ngx_http_sark_call_refused(&ctx->error, rc);
        ngx_http_sark_metrics_error(ctx->error.code);
        return NGX_DECLINED;

    default:
        return NGX_ERROR;
    }
}


/*
 * A call ngx_http_sark_ctx_call() could not make: sarkd not connected
 * (NGX_DECLINED), or the queue to it full (NGX_BUSY)
 */

void
ngx_http_sark_call_refused(ngx_http_sark_error_t *err, ngx_int_t rc)
{
    if (rc == NGX_BUSY) {
        ngx_http_sark_error_set(err, NGX_HTTP_SERVICE_UNAVAILABLE, "GW-503",
                                "authorization service overloaded");

    } else {
        ngx_http_sark_error_set(err, NGX_HTTP_SERVICE_UNAVAILABLE, "CN-001",
                                "authorization service unavailable");
    }

    err->retry_after = 1;
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
    u_char                     *frame;
    size_t                      len, off;
    ngx_str_t                   request_id, addr, *aid;
    ngx_uint_t                  i;
    sark_frame_hdr_t            h;
    ngx_http_sark_query_t      *q;
    ngx_http_sark_identity_t   *id;

    q = &ctx->query;
    id = &ctx->identity;

    /* sarkd's logs name a decision by its audit id */

    aid = ngx_http_sark_audit_id(r->pool, ctx);

    ngx_str_null(&request_id);

    if (aid) {
        request_id = *aid;
    }

    addr = r->connection->addr_text;

    len = SARK_PROTO_HDR_LEN
          + ngx_http_sark_tlv_len(q->action)
          + ngx_http_sark_tlv_len(q->server_name)
          + ngx_http_sark_tlv_len(q->tool_name)
          + ngx_http_sark_tlv_len(q->parameters)
          + ngx_http_sark_tlv_len(q->sensitivity)
          + ngx_http_sark_tlv_len(q->context)
          + ngx_http_sark_tlv_len(q->gateway_metadata)
          + ngx_http_sark_tlv_len(q->source_agent)
          + ngx_http_sark_tlv_len(q->target_agent)
          + ngx_http_sark_tlv_len(id->sub)
          + ngx_http_sark_tlv_len(id->email)
          + ngx_http_sark_tlv_len(request_id)
          + ngx_http_sark_tlv_len(addr)
          + sark_tlv_size(8);

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
    ngx_http_sark_put(SARK_REQ_SOURCE_AGENT, q->source_agent);
    ngx_http_sark_put(SARK_REQ_TARGET_AGENT, q->target_agent);
    ngx_http_sark_put(SARK_REQ_USER_ID, id->sub);
    ngx_http_sark_put(SARK_REQ_USER_EMAIL, id->email);
    ngx_http_sark_put(SARK_REQ_REQUEST_ID, request_id);
    ngx_http_sark_put(SARK_REQ_CLIENT_IP, addr);

    if (sark_tlv_put_u64(frame, len, &off, SARK_REQ_NOT_AFTER,
                         (uint64_t) id->exp * 1000)
        != SARK_PROTO_OK)
    {
        return NULL;
    }

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
ngx_http_sark_answer(ngx_http_sark_call_t *call, ngx_uint_t status,
    u_char *payload, size_t len)
{
    uint64_t                    expires_at;
    ngx_http_request_t         *r;
    ngx_http_sark_ctx_t        *ctx;
    ngx_http_sark_error_t      *err;
    ngx_http_sark_cached_t      entry;
    ngx_http_sark_decision_t   *d;
    ngx_http_sark_loc_conf_t   *slcf;
    ngx_http_sark_main_conf_t  *smcf;

    ctx = call->data;
    r = ctx->request;
    d = &ctx->decision;
    err = &ctx->error;

    ctx->waiting = 0;
    ctx->elapsed = ngx_current_msec - ctx->started;

    if (ctx->sarkd_us) {
        ctx->sarkd_us = ngx_http_sark_now_us() - ctx->sarkd_us;
    }

    switch (status) {

    case NGX_HTTP_SARK_CALL_TIMEOUT:
        slcf = ngx_http_get_module_loc_conf(r, ngx_http_sark_module);
        ngx_http_sark_error_fmt(r->pool, err, NGX_HTTP_SERVICE_UNAVAILABLE,
                                "CN-002", "no decision within %M ms",
                                slcf->decision_timeout);
        err->retry_after = 1;
        break;

    case NGX_HTTP_SARK_CALL_LOST:
        ngx_http_sark_error_set(err, NGX_HTTP_SERVICE_UNAVAILABLE, "CN-001",
                                "authorization service unavailable");
        err->retry_after = 1;
        break;

    default:
        if (ngx_http_sark_decode_answer(r->pool, payload, len, d,
                                        &expires_at)
            != NGX_OK)
        {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "sark: invalid decision frame from sarkd");
            ngx_http_sark_error_set(err, NGX_HTTP_SERVICE_UNAVAILABLE,
                                    "CN-003", "invalid answer from "
                                    "authorization service");
            err->retry_after = 1;
            break;
        }

        if (d->decision == SARK_DECISION_OUTAGE) {
            ngx_http_sark_error_set(err, NGX_HTTP_SERVICE_UNAVAILABLE,
                                    "OPA-001", "");
            if (d->error_code.len) {
                err->code = (const char *) d->error_code.data;
            }

            err->message = d->reason;
            err->retry_after = d->retry_after ? d->retry_after : 1;
            break;
        }

        ctx->decided = 1;

        smcf = ngx_http_get_module_main_conf(r, ngx_http_sark_module);

        /*
         * only what was decided under the key's own revision is kept: the
         * worker's revision has not changed since the key was made (it
         * may have while sarkd was asked, and then a rollback would find
         * another revision's answer under the key), and the answer was
         * evaluated under it
         */

        if (smcf->cache && ctx->keyed && expires_at
            && ctx->key_gen == ngx_http_sark_revision_gen
            && d->policy_revision.len == ngx_http_sark_revision.len
            && ngx_memcmp(d->policy_revision.data,
                          ngx_http_sark_revision.data,
                          d->policy_revision.len) == 0)
        {
            entry.decision = d->decision;
            entry.cache_ttl = d->cache_ttl;
            entry.max_delegation = d->max_delegation;
            entry.evaluated_at = d->evaluated_at;
            entry.expires_at = expires_at;
            entry.reason = d->reason;
            entry.filtered_parameters = d->filtered_parameters;

            ngx_http_sark_cache_store(smcf->cache, &ctx->key, &entry,
                                      r->connection->log);
        }

        /*
         * decisions only: a timeout, a lost connection or an outage above
         * leaves no event, as do authentication failures, which never
         * get here
         */

        ngx_http_sark_decided(r, ctx);
    }

    if (err->status) {
        ngx_http_sark_metrics_error(err->code);
    }

    ctx->done(r, ctx);
}


static ngx_int_t
ngx_http_sark_decode_answer(ngx_pool_t *pool, u_char *payload, size_t len,
    ngx_http_sark_decision_t *d, uint64_t *expires_at)
{
    int          rc;
    size_t       off;
    uint8_t      u8;
    uint32_t     u32;
    ngx_str_t   *s;
    sark_tlv_t   t;
    ngx_uint_t   have_decision;

    ngx_memzero(d, sizeof(ngx_http_sark_decision_t));
    d->max_delegation = -1;

    *expires_at = 0;
    have_decision = 0;
    off = 0;

    while ((rc = sark_tlv_next(payload, len, &off, &t)) == SARK_PROTO_OK) {

        s = NULL;

        switch (t.tag) {

        case SARK_RESP_DECISION:
            if (!sark_tlv_u8(&t, &u8) || u8 > SARK_DECISION_OUTAGE) {
                return NGX_ERROR;
            }

            d->decision = u8;
            have_decision = 1;
            break;

        case SARK_RESP_REASON:
            s = &d->reason;
            break;

        case SARK_RESP_FILTERED_PARAMS:
            s = &d->filtered_parameters;
            break;

        case SARK_RESP_POLICY_REVISION:
            s = &d->policy_revision;
            break;

        case SARK_RESP_ERROR_CODE:
            s = &d->error_code;
            break;

        case SARK_RESP_CACHE_TTL:
            if (!sark_tlv_u32(&t, &u32)) {
                return NGX_ERROR;
            }

            d->cache_ttl = u32;
            break;

        case SARK_RESP_MAX_DELEGATION:
            if (!sark_tlv_u32(&t, &u32) || u32 > 1000) {
                return NGX_ERROR;
            }

            d->max_delegation = u32;
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

        case SARK_RESP_EXPIRES_AT:
            if (!sark_tlv_u64(&t, expires_at)) {
                return NGX_ERROR;
            }
            break;

        case SARK_RESP_CACHE_LAYER:
            if (!sark_tlv_u8(&t, &u8) || u8 > SARK_CACHE_L2) {
                return NGX_ERROR;
            }

            d->cache_layer = u8;
            break;

        default:
            break;
        }

        if (s && ngx_http_sark_dup(pool, s, t.value, t.len) != NGX_OK) {
            return NGX_ERROR;
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


/*
 * A decision is known (L1 or sarkd): its audit event, its metrics, and
 * with sark_profile one line of where its time went, in microseconds:
 * {"audit_id","action","cache","auth_us","cache_us","sarkd_us",
 * "audit_us","overhead_us","total_us"} (total: from the request's start
 * in the module, or an MCP message's; overhead: what the parts leave).
 */

static void
ngx_http_sark_decided(ngx_http_request_t *r, ngx_http_sark_ctx_t *ctx)
{
    uint64_t                   t0, total, parts;
    ngx_str_t                 *aid;
    ngx_http_sark_loc_conf_t  *slcf;

    static const char         *layers[] = { "MISS", "L1", "L2" };

    slcf = ngx_http_get_module_loc_conf(r, ngx_http_sark_module);

    if (!slcf->profile) {
        ngx_http_sark_audit_decision(r, ctx);
        ngx_http_sark_metrics_decision(ctx);
        return;
    }

    t0 = ngx_http_sark_now_us();
    ngx_http_sark_audit_decision(r, ctx);
    ctx->audit_us = ngx_http_sark_now_us() - t0;

    ngx_http_sark_metrics_decision(ctx);

    total = ngx_http_sark_now_us() - ctx->started_us;
    parts = ctx->identity.auth_us + ctx->cache_us + ctx->sarkd_us
            + ctx->audit_us;

    aid = ngx_http_sark_audit_id(r->pool, ctx);

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "sark: profile {\"audit_id\":\"%V\",\"action\":\"%V\","
                  "\"cache\":\"%s\",\"auth_us\":%uL,\"cache_us\":%uL,"
                  "\"sarkd_us\":%uL,\"audit_us\":%uL,\"overhead_us\":%uL,"
                  "\"total_us\":%uL}",
                  aid ? aid : &ctx->query.action,
                  ngx_http_sark_log_safe(r->pool, &ctx->query.action),
                  layers[ctx->decision.cache_layer <= SARK_CACHE_L2
                         ? ctx->decision.cache_layer : 0],
                  ctx->identity.auth_us, ctx->cache_us, ctx->sarkd_us,
                  ctx->audit_us, total > parts ? total - parts : 0, total);
}


static void
ngx_http_sark_ctx_cleanup(void *data)
{
    ngx_http_sark_ctx_t  *ctx = data;

    ngx_http_sark_sarkd_cancel(&ctx->call);
}
