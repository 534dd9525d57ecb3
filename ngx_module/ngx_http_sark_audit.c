
/*
 * Copyright (C) sark-gateway authors
 */


/*
 * Audit events of decisions, shipped to sarkd in batches.
 *
 * Every decision (L1 hits included) becomes one event, encoded at once
 * into this worker's current batch: a buffer that starts with room for a
 * frame header, then SARK_AUD_EVENT TLVs, so a closed batch is a complete
 * AUDIT_BATCH frame.  No syscall and, in the steady state, no allocation
 * happens per event.  Requests refused before a decision (401, 400) or for
 * want of one (503 outage) produce no event.
 *
 * A batch is closed every sark_audit_flush, or as soon as it holds
 * sark_audit_batch bytes, and sent as a call on the worker's connection to
 * sarkd.  It is forgotten only when sarkd acknowledges it (durable, or
 * rejected as malformed); when no acknowledgement comes within
 * sark_audit_ack_timeout or the connection is lost it goes back into the
 * unsent queue, in order, and is sent again.  One timer watches the oldest
 * batch in flight, not one per batch: while a slow database holds back
 * the acknowledgements hundreds of batches can be in flight, and their
 * timers would deepen the tree every request's timers go through.
 * All batches a worker holds stay within sark_audit_buffer: beyond it new
 * events are dropped and counted, never failing the request.
 *
 * On a graceful exit (a reload, nginx -s quit) the worker sends everything
 * at once and stays alive until all of it is acknowledged, for at most
 * sark_audit_exit_wait: long enough for sarkd to come back, or for a slow
 * database to take what sarkd holds.  What it still holds then is logged
 * at error level, and truly: events that never reached sarkd are lost;
 * events sarkd received but did not confirm may still be stored.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <openssl/rand.h>

#include "ngx_http_sark_module.h"


#define NGX_HTTP_SARK_AUDIT_RETRY_MAX    30000

/* standard-size buffers kept for reuse once their batch is acknowledged */
#define NGX_HTTP_SARK_AUDIT_SPARES       4

/* a batch with less room than this left is full */
#define NGX_HTTP_SARK_AUDIT_TAIL         512


typedef struct {
    ngx_queue_t                  queue;
    ngx_http_sark_call_t         call;
    u_char                      *start;     /* frame header, then events */
    u_char                      *last;
    u_char                      *end;
    uint64_t                     seq;
    ngx_uint_t                   events;
    ngx_msec_t                   sent;      /* when it went in flight */
} ngx_http_sark_audit_batch_t;


typedef struct {
    ngx_http_sark_audit_batch_t  *current;
    ngx_queue_t                   unsent;    /* closed, in order of seq */
    ngx_queue_t                   inflight;  /* sent, awaiting their ack */
    ngx_queue_t                   free;      /* those with a buffer first */

    uint64_t                      seq;
    ngx_uint_t                    pending;   /* events not acknowledged */

    /*
     * the inheritable fields of the last event written in full, in the
     * current batch (see ngx_http_sark_audit_same())
     */
    u_char                       *prev;
    size_t                        prev_len;
    uint64_t                      prev_seq;

    ngx_uint_t                    spares;
    size_t                        held;      /* bytes of batch buffers */
    size_t                        max;
    size_t                        batch_cap; /* a standard buffer */
    size_t                        event_max;
    size_t                        sarkd_max;
    ngx_msec_t                    flush;
    ngx_msec_t                    ack_timeout;

    ngx_uint_t                    dropped;   /* since the last log line */
    ngx_uint_t                    dropped_total;
    time_t                        drop_logged;

    ngx_uint_t                    losses;    /* retries in a row */
    ngx_msec_t                    retry_at;

    ngx_msec_t                    drain_until;
    ngx_msec_t                    exit_wait;
    unsigned                      loss_reported:1;

    ngx_event_t                   tick;
    ngx_event_t                   ship;
    ngx_event_t                   drain;
    ngx_event_t                   ack;       /* the oldest batch in flight */

    ngx_pool_t                   *pool;
    ngx_log_t                    *log;

    unsigned                      retrying:1;
    unsigned                      draining:1;
    unsigned                      drained:1; /* gave up: deadline, force */
} ngx_http_sark_audit_t;


static void ngx_http_sark_audit_add(ngx_http_sark_audit_t *a,
    ngx_http_sark_audit_event_t *ev);
static size_t ngx_http_sark_audit_rest_size(ngx_http_sark_audit_event_t *ev);
static ngx_uint_t ngx_http_sark_audit_same(ngx_http_sark_audit_t *a,
    ngx_http_sark_audit_batch_t *b, ngx_http_sark_audit_event_t *ev,
    size_t len);
static ngx_http_sark_audit_batch_t *ngx_http_sark_audit_batch(
    ngx_http_sark_audit_t *a, size_t size);
static void ngx_http_sark_audit_release(ngx_http_sark_audit_t *a,
    ngx_http_sark_audit_batch_t *b);
static void ngx_http_sark_audit_close(ngx_http_sark_audit_t *a);
static ngx_inline void ngx_http_sark_audit_post(ngx_http_sark_audit_t *a);
static void ngx_http_sark_audit_requeue(ngx_http_sark_audit_t *a,
    ngx_http_sark_audit_batch_t *b);
static void ngx_http_sark_audit_send(ngx_http_sark_audit_t *a);
static void ngx_http_sark_audit_answer(ngx_http_sark_call_t *call,
    ngx_uint_t status, u_char *payload, size_t len);
static void ngx_http_sark_audit_start_drain(ngx_http_sark_audit_t *a);
static void ngx_http_sark_audit_drop(ngx_http_sark_audit_t *a);
static void ngx_http_sark_audit_log_drops(ngx_http_sark_audit_t *a);
static void ngx_http_sark_audit_tick_handler(ngx_event_t *ev);
static void ngx_http_sark_audit_ship_handler(ngx_event_t *ev);
static void ngx_http_sark_audit_drain_handler(ngx_event_t *ev);
static void ngx_http_sark_audit_report_loss(ngx_http_sark_audit_t *a,
    ngx_log_t *log, const char *when);
static void ngx_http_sark_audit_ack_handler(ngx_event_t *ev);
static void ngx_http_sark_audit_free_queue(ngx_queue_t *queue);
static void ngx_http_sark_caller_request_id(ngx_http_request_t *r,
    ngx_http_sark_ctx_t *ctx, ngx_str_t *out);
static void ngx_http_sark_audit_query_fields(ngx_http_sark_audit_event_t *ev,
    ngx_http_sark_ctx_t *ctx);
static size_t ngx_http_sark_audit_query_size(ngx_http_sark_audit_event_t *ev);
static u_char *ngx_http_sark_audit_query_write(u_char *p,
    ngx_http_sark_audit_event_t *ev);


/* one per worker process */
static ngx_http_sark_audit_t  *ngx_http_sark_audit;


static ngx_str_t  ngx_http_sark_audit_authorization =
    ngx_string("authorization");
static ngx_str_t  ngx_http_sark_audit_allow = ngx_string("allow");
static ngx_str_t  ngx_http_sark_audit_deny = ngx_string("deny");
static ngx_str_t  ngx_http_sark_audit_medium = ngx_string("medium");
static ngx_str_t  ngx_http_sark_audit_a2a = ngx_string("a2a");


ngx_int_t
ngx_http_sark_audit_init(ngx_cycle_t *cycle, ngx_http_sark_main_conf_t *smcf)
{
    ngx_http_sark_audit_t  *a;

    a = ngx_pcalloc(cycle->pool, sizeof(ngx_http_sark_audit_t));
    if (a == NULL) {
        return NGX_ERROR;
    }

    ngx_queue_init(&a->unsent);
    ngx_queue_init(&a->inflight);
    ngx_queue_init(&a->free);

    a->max = smcf->audit_buffer;
    a->batch_cap = SARK_PROTO_HDR_LEN + smcf->audit_batch;
    a->sarkd_max = smcf->sarkd_buffer_max;
    a->flush = smcf->audit_flush;
    a->ack_timeout = smcf->audit_ack_timeout;
    a->exit_wait = smcf->audit_exit_wait;
    a->pool = cycle->pool;
    a->log = cycle->log;

    /* one event, in a batch of its own, must fit everywhere it goes */
    a->event_max = ngx_min(a->max / 4, a->sarkd_max / 2) - SARK_PROTO_HDR_LEN;
    a->event_max = ngx_min(a->event_max, SARK_PROTO_MAX_PAYLOAD);

    a->tick.handler = ngx_http_sark_audit_tick_handler;
    a->tick.data = a;
    a->tick.log = cycle->log;

    /*
     * armed only while events are held, and no more once an exit has
     * given up on them: an exiting worker lives until it has looked at
     * what it holds
     */
    a->tick.cancelable = 0;

    a->ship.handler = ngx_http_sark_audit_ship_handler;
    a->ship.data = a;
    a->ship.log = cycle->log;

    /* keeps an exiting worker alive while its events are unacknowledged */
    a->drain.handler = ngx_http_sark_audit_drain_handler;
    a->drain.data = a;
    a->drain.log = cycle->log;
    a->drain.cancelable = 0;

    a->ack.handler = ngx_http_sark_audit_ack_handler;
    a->ack.data = a;
    a->ack.log = cycle->log;

    /*
     * the drain timer, not a wait for an acknowledgement, decides how
     * long an exiting worker stays
     */
    a->ack.cancelable = 1;

    ngx_http_sark_audit = a;

    return NGX_OK;
}


void
ngx_http_sark_audit_exit(ngx_cycle_t *cycle)
{
    ngx_queue_t                  *q;
    ngx_http_sark_audit_t        *a;
    ngx_http_sark_audit_batch_t  *b;

    a = ngx_http_sark_audit;

    if (a == NULL) {
        return;
    }

    if (a->pending && !a->loss_reported) {
        ngx_http_sark_audit_report_loss(a, cycle->log, "as the worker exits");
    }

    if (a->dropped_total) {
        ngx_log_error(NGX_LOG_NOTICE, cycle->log, 0,
                      "sark: %ui audit events were dropped by this worker "
                      "(audit buffer full)", a->dropped_total);
    }

    for (q = ngx_queue_head(&a->inflight);
         q != ngx_queue_sentinel(&a->inflight);
         q = ngx_queue_next(q))
    {
        b = ngx_queue_data(q, ngx_http_sark_audit_batch_t, queue);
        ngx_http_sark_sarkd_cancel(&b->call);
    }

    if (a->current) {
        ngx_free(a->current->start);
        a->current = NULL;
    }

    ngx_http_sark_audit_free_queue(&a->unsent);
    ngx_http_sark_audit_free_queue(&a->inflight);
    ngx_http_sark_audit_free_queue(&a->free);

    if (a->tick.timer_set) {
        ngx_del_timer(&a->tick);
    }

    if (a->drain.timer_set) {
        ngx_del_timer(&a->drain);
    }

    if (a->ack.timer_set) {
        ngx_del_timer(&a->ack);
    }

    if (a->ship.posted) {
        ngx_delete_posted_event(&a->ship);
    }

    ngx_http_sark_audit = NULL;
}


static void
ngx_http_sark_audit_free_queue(ngx_queue_t *queue)
{
    ngx_queue_t                  *q;
    ngx_http_sark_audit_batch_t  *b;

    for (q = ngx_queue_head(queue);
         q != ngx_queue_sentinel(queue);
         q = ngx_queue_next(q))
    {
        b = ngx_queue_data(q, ngx_http_sark_audit_batch_t, queue);

        if (b->start) {
            ngx_free(b->start);
            b->start = NULL;
        }
    }

    ngx_queue_init(queue);
}


/* the fields of a decision event that follow from who asks what */

static void
ngx_http_sark_audit_query_fields(ngx_http_sark_audit_event_t *ev,
    ngx_http_sark_ctx_t *ctx)
{
    ngx_http_sark_query_t  *q;

    q = &ctx->query;

    ev->event_type = ctx->a2a ? ngx_http_sark_audit_a2a
                              : ngx_http_sark_audit_authorization;
    ev->user_id = ctx->identity.sub;

    if (ctx->identity.agent_id.len) {
        ev->agent_id = ctx->identity.agent_id;
    }

    if (q->action.len) {
        ev->action = q->action;
    }

    if (q->server_name.len) {
        ev->server_name = q->server_name;
    }

    if (q->tool_name.len) {
        ev->tool_name = q->tool_name;
    }

    /* as sarkd and the cache key take it when the request names none */
    ev->sensitivity = q->sensitivity.len ? q->sensitivity
                                         : ngx_http_sark_audit_medium;
}


/*
 * Those fields encoded once, as ngx_http_sark_audit_event_write() puts
 * them, for a query asked again and again (see ngx_http_sark_key()).
 */

ngx_int_t
ngx_http_sark_audit_query(ngx_pool_t *pool, ngx_http_sark_ctx_t *ctx,
    ngx_str_t *out)
{
    ngx_http_sark_audit_event_t  ev;

    ngx_memzero(&ev, sizeof(ngx_http_sark_audit_event_t));
    ngx_http_sark_audit_query_fields(&ev, ctx);

    out->len = ngx_http_sark_audit_query_size(&ev);

    out->data = ngx_pnalloc(pool, out->len);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    (void) ngx_http_sark_audit_query_write(out->data, &ev);

    return NGX_OK;
}


/*
 * The decision of ctx is known: its event goes into the current batch
 * before the answer is sent, so an answered request always has its event
 * queued.  Called for decisions only (from L1, or answered by sarkd).
 */

void
ngx_http_sark_audit_decision(ngx_http_request_t *r, ngx_http_sark_ctx_t *ctx)
{
    ngx_http_sark_decision_t     *d;
    ngx_http_sark_loc_conf_t     *slcf;
    ngx_http_sark_audit_event_t   ev;

    static ngx_str_t  dry_run = ngx_string("\"dry_run\":true");

    if (ngx_http_sark_audit == NULL || !ctx->has_audit_id) {
        return;
    }

    slcf = ngx_http_get_module_loc_conf(r, ngx_http_sark_module);

    if (!slcf->audit) {
        return;
    }

    d = &ctx->decision;

    ngx_memzero(&ev, sizeof(ngx_http_sark_audit_event_t));

    ev.id = ctx->audit_raw;
    ev.timestamp = ngx_http_sark_audit_now_us();

    /*
     * the query's fields encoded: the memo's, or encoded here (when that
     * fails they are written one by one, and not compared)
     */

    if (ctx->question) {
        ev.query = ctx->question->audit_query;

    } else if (ngx_http_sark_audit_query(r->pool, ctx, &ev.query) != NGX_OK) {
        ngx_http_sark_audit_query_fields(&ev, ctx);
    }

    ev.decision = (d->decision == SARK_DECISION_ALLOW)
                  ? ngx_http_sark_audit_allow : ngx_http_sark_audit_deny;
    ev.reason = d->reason;

    if (ev.reason.data == NULL) {
        ngx_str_set(&ev.reason, "");
    }

    ev.cache_layer = d->cache_layer;
    ev.has_cache_layer = 1;

    /* what $sark_authz_time shows, in microseconds */
    ev.latency_us = (ctx->elapsed < 4294967) ? (uint32_t) ctx->elapsed * 1000
                                             : 0xffffffff;
    ev.has_latency = 1;

    if (d->policy_revision.len) {
        ev.policy_revision = d->policy_revision;
    }

    ngx_http_sark_caller_request_id(r, ctx, &ev.request_id);

    ev.client_ip = r->connection->addr_text;

    if (ctx->audit_metadata.len) {
        ev.metadata = ctx->audit_metadata;
    }

    /* a deny sark_authz_dry_run lets through says so in its row */

    if (slcf->dry_run && slcf->authz && d->decision != SARK_DECISION_ALLOW) {
        (void) ngx_http_sark_audit_meta_add(r->pool, &ev.metadata, &dry_run);
    }

    ngx_http_sark_audit_add(ngx_http_sark_audit, &ev);
}


/*
 * `member` ("name":value) added to a row's metadata (a JSON object, or
 * none), first; NGX_ERROR (the metadata as it was) when out of memory
 */

ngx_int_t
ngx_http_sark_audit_meta_add(ngx_pool_t *pool, ngx_str_t *metadata,
    ngx_str_t *member)
{
    u_char  *p, *start;

    if (metadata->len < 2) {
        metadata->len = 0;
    }

    start = ngx_pnalloc(pool, metadata->len + member->len + 3);
    if (start == NULL) {
        return NGX_ERROR;
    }

    /* '{', the member, then the rest ("}" alone needs no comma) */

    p = start;
    *p++ = '{';
    p = ngx_cpymem(p, member->data, member->len);

    if (metadata->len > 2) {
        *p++ = ',';
        p = ngx_cpymem(p, metadata->data + 1, metadata->len - 1);

    } else {
        *p++ = '}';
    }

    metadata->data = start;
    metadata->len = p - start;

    return NGX_OK;
}


/* "name": "<value, escaped>" added to a row's metadata, as above */

ngx_int_t
ngx_http_sark_audit_meta_string(ngx_pool_t *pool, ngx_str_t *metadata,
    const char *name, ngx_str_t *value)
{
    u_char     *p;
    size_t      len;
    ngx_str_t   member;

    len = ngx_strlen(name);

    p = ngx_pnalloc(pool, len + 3 + ngx_http_sark_string_len(value));
    if (p == NULL) {
        return NGX_ERROR;
    }

    member.data = p;
    *p++ = '"';
    p = ngx_cpymem(p, name, len);
    *p++ = '"';
    *p++ = ':';
    p = ngx_http_sark_put_string(p, value);
    member.len = p - member.data;

    return ngx_http_sark_audit_meta_add(pool, metadata, &member);
}


/*
 * The request id the caller gave, for the row's gateway_request_id:
 * gateway_metadata.request_id of a decision API request, else the
 * X-Request-Id header; at most NGX_HTTP_SARK_MAX_NAME bytes.  Nothing
 * otherwise: the row's id is the answer's audit_id, which $sark_audit_id
 * puts in the access log.
 */

static void
ngx_http_sark_caller_request_id(ngx_http_request_t *r,
    ngx_http_sark_ctx_t *ctx, ngx_str_t *out)
{
    char                msg[SARK_JSON_ERR_LEN];
    sark_json_t        *root;
    ngx_table_elt_t    *h;
    const sark_json_t  *v;

    static ngx_str_t  header = ngx_string("X-Request-Id");

    ngx_str_null(out);

    /* (the body it came in was parsed whole already: it is valid JSON) */

    if (ctx->query.gateway_metadata.len
        && sark_json_parse(ctx->query.gateway_metadata.data,
                           ctx->query.gateway_metadata.len, 256,
                           ngx_http_sark_json_alloc, r->pool, &root,
                           msg, sizeof(msg))
           == 0
        && (v = sark_json_get(root, "request_id")) != NULL
        && v->type == SARK_JSON_STRING && v->len)
    {
        out->data = (u_char *) v->str;
        out->len = v->len;

    } else {
        h = ngx_http_sark_find_header(r, &header);

        if (h == NULL || h->value.len == 0) {
            return;
        }

        *out = h->value;
    }

    if (out->len > NGX_HTTP_SARK_MAX_NAME) {
        out->len = NGX_HTTP_SARK_MAX_NAME;
    }
}


uint64_t
ngx_http_sark_audit_now_us(void)
{
    ngx_time_t  *tp;

    /* the cached time: millisecond precision, no syscall */

    tp = ngx_timeofday();

    return ((uint64_t) tp->sec * 1000 + tp->msec) * 1000;
}


#define ngx_http_sark_audit_str_size(s)                                       \
    ((s).data ? SARK_PROTO_TLV_HDR_LEN + (s).len : 0)


static size_t
ngx_http_sark_audit_query_size(ngx_http_sark_audit_event_t *ev)
{
    if (ev->query.len) {
        return ev->query.len;
    }

    return ngx_http_sark_audit_str_size(ev->event_type)
           + ngx_http_sark_audit_str_size(ev->user_id)
           + ngx_http_sark_audit_str_size(ev->agent_id)
           + ngx_http_sark_audit_str_size(ev->server_name)
           + ngx_http_sark_audit_str_size(ev->tool_name)
           + ngx_http_sark_audit_str_size(ev->action)
           + ngx_http_sark_audit_str_size(ev->sensitivity);
}


/* the fields a SAME_AS_PREVIOUS stands for: event_type to policy_revision */

static size_t
ngx_http_sark_audit_block_size(ngx_http_sark_audit_event_t *ev)
{
    return ngx_http_sark_audit_query_size(ev)
           + ngx_http_sark_audit_str_size(ev->decision)
           + ngx_http_sark_audit_str_size(ev->reason)
           + ngx_http_sark_audit_str_size(ev->policy_revision);
}


/* the event written in full (same == 0), or with SAME_AS_PREVIOUS */

size_t
ngx_http_sark_audit_event_size(ngx_http_sark_audit_event_t *ev,
    ngx_uint_t same)
{
    return ngx_http_sark_audit_rest_size(ev)
           + (same ? SARK_PROTO_TLV_HDR_LEN
                   : ngx_http_sark_audit_block_size(ev));
}


/* all of the event but that block, its SARK_AUD_EVENT header included */

static size_t
ngx_http_sark_audit_rest_size(ngx_http_sark_audit_event_t *ev)
{
    size_t  n;

    n = 2 * SARK_PROTO_TLV_HDR_LEN + 16 + 8
        + ngx_http_sark_audit_str_size(ev->request_id)
        + ngx_http_sark_audit_str_size(ev->client_ip)
        + ngx_http_sark_audit_str_size(ev->metadata);

    if (ev->has_cache_layer) {
        n += SARK_PROTO_TLV_HDR_LEN + 1;
    }

    if (ev->has_latency) {
        n += SARK_PROTO_TLV_HDR_LEN + 4;
    }

    /* the SARK_AUD_EVENT around them */

    return SARK_PROTO_TLV_HDR_LEN + n;
}


static ngx_inline u_char *
ngx_http_sark_audit_tlv(u_char *p, uint16_t tag, u_char *value, size_t len)
{
    sark_put_u16(p, tag);
    sark_put_u32(p + 2, (uint32_t) len);

    p += SARK_PROTO_TLV_HDR_LEN;

    return len ? ngx_cpymem(p, value, len) : p;
}


#define ngx_http_sark_audit_put(p, tag, s)                                    \
    if ((s).data) {                                                           \
        p = ngx_http_sark_audit_tlv(p, tag, (s).data, (s).len);               \
    }


/* event_type to sensitivity, as ngx_http_sark_audit_query_size() counts */

static u_char *
ngx_http_sark_audit_query_write(u_char *p, ngx_http_sark_audit_event_t *ev)
{
    if (ev->query.len) {
        return ngx_cpymem(p, ev->query.data, ev->query.len);
    }

    ngx_http_sark_audit_put(p, SARK_AUDF_EVENT_TYPE, ev->event_type);
    ngx_http_sark_audit_put(p, SARK_AUDF_USER_ID, ev->user_id);
    ngx_http_sark_audit_put(p, SARK_AUDF_AGENT_ID, ev->agent_id);
    ngx_http_sark_audit_put(p, SARK_AUDF_SERVER_NAME, ev->server_name);
    ngx_http_sark_audit_put(p, SARK_AUDF_TOOL_NAME, ev->tool_name);
    ngx_http_sark_audit_put(p, SARK_AUDF_ACTION, ev->action);
    ngx_http_sark_audit_put(p, SARK_AUDF_SENSITIVITY, ev->sensitivity);

    return p;
}


/*
 * Writes exactly ngx_http_sark_audit_event_size(ev, same) bytes at p: with
 * same, one empty SAME_AS_PREVIOUS instead of event_type to policy_revision
 * (the block ngx_http_sark_audit_same() compares).
 */

u_char *
ngx_http_sark_audit_event_write(u_char *p, ngx_http_sark_audit_event_t *ev,
    ngx_uint_t same)
{
    u_char  *start, v[8];

    start = p;
    p += SARK_PROTO_TLV_HDR_LEN;

    p = ngx_http_sark_audit_tlv(p, SARK_AUDF_ID, ev->id, 16);

    sark_put_u64(v, ev->timestamp);
    p = ngx_http_sark_audit_tlv(p, SARK_AUDF_TIMESTAMP, v, 8);

    if (same) {
        p = ngx_http_sark_audit_tlv(p, SARK_AUDF_SAME_AS_PREVIOUS, NULL, 0);

    } else {
        p = ngx_http_sark_audit_query_write(p, ev);
        ngx_http_sark_audit_put(p, SARK_AUDF_DECISION, ev->decision);
        ngx_http_sark_audit_put(p, SARK_AUDF_REASON, ev->reason);
        ngx_http_sark_audit_put(p, SARK_AUDF_POLICY_REVISION,
                                ev->policy_revision);
    }

    if (ev->has_cache_layer) {
        v[0] = (u_char) ev->cache_layer;
        p = ngx_http_sark_audit_tlv(p, SARK_AUDF_CACHE_LAYER, v, 1);
    }

    if (ev->has_latency) {
        sark_put_u32(v, ev->latency_us);
        p = ngx_http_sark_audit_tlv(p, SARK_AUDF_LATENCY_US, v, 4);
    }

    ngx_http_sark_audit_put(p, SARK_AUDF_REQUEST_ID, ev->request_id);
    ngx_http_sark_audit_put(p, SARK_AUDF_CLIENT_IP, ev->client_ip);
    ngx_http_sark_audit_put(p, SARK_AUDF_METADATA, ev->metadata);

    sark_put_u16(start, SARK_AUD_EVENT);
    sark_put_u32(start + 2,
                 (uint32_t) (p - start - SARK_PROTO_TLV_HDR_LEN));

    return p;
}


/* AUDIT_ACK: NGX_OK with the status, or NGX_ERROR when it does not decode */

ngx_int_t
ngx_http_sark_audit_ack(u_char *payload, size_t len, ngx_uint_t *status,
    uint32_t *events, ngx_str_t *message)
{
    int          rc;
    size_t       off;
    uint8_t      st;
    sark_tlv_t   t;
    ngx_uint_t   have_status;

    have_status = 0;
    *events = 0;
    ngx_str_null(message);
    off = 0;

    while ((rc = sark_tlv_next(payload, len, &off, &t)) == SARK_PROTO_OK) {

        switch (t.tag) {

        case SARK_ACK_STATUS:
            if (!sark_tlv_u8(&t, &st)
                || (st != SARK_ACK_DURABLE && st != SARK_ACK_REJECTED))
            {
                return NGX_ERROR;
            }

            *status = st;
            have_status = 1;
            break;

        case SARK_ACK_EVENTS:
            if (!sark_tlv_u32(&t, events)) {
                return NGX_ERROR;
            }

            break;

        case SARK_ACK_MESSAGE:
            message->data = (u_char *) t.value;
            message->len = t.len;
            break;

        default:
            break;
        }
    }

    if (rc != SARK_PROTO_END || !have_status) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_http_sark_audit_add(ngx_http_sark_audit_t *a,
    ngx_http_sark_audit_event_t *ev)
{
    u_char                       *start;
    size_t                        size, len;
    ngx_uint_t                    same;
    ngx_msec_int_t                left;
    ngx_http_sark_audit_batch_t  *b;

    /* room for the event in full: a new batch has nothing to refer to */

    len = ngx_http_sark_audit_block_size(ev);
    size = ngx_http_sark_audit_rest_size(ev) + len;

    if (size > a->event_max) {
        ngx_log_error(NGX_LOG_ERR, a->log, 0,
                      "sark: audit event of %uz bytes dropped: larger than "
                      "%uz bytes", size, a->event_max);
        a->dropped_total++;
        return;
    }

    b = a->current;

    if (b && (size_t) (b->end - b->last) < size) {
        ngx_http_sark_audit_close(a);
        ngx_http_sark_audit_post(a);
        b = NULL;
    }

    if (b == NULL) {
        b = ngx_http_sark_audit_batch(a, size);

        if (b == NULL) {
            ngx_http_sark_audit_drop(a);
            return;
        }

        a->current = b;
    }

    same = ngx_http_sark_audit_same(a, b, ev, len);

    start = b->last;
    b->last = ngx_http_sark_audit_event_write(start, ev, same);

    if (!same) {
        /* after the event's own TLV header, its id and its timestamp */
        a->prev = start + 3 * SARK_PROTO_TLV_HDR_LEN + 16 + 8;
        a->prev_len = len;
        a->prev_seq = b->seq;
    }

    b->events++;
    a->pending++;

    ngx_http_sark_metrics_audit(a->pending, a->held, a->dropped_total);

    if (a->draining) {

        /* events of requests an exiting worker still finishes */

        if (!a->drain.timer_set && !a->drained) {
            left = (ngx_msec_int_t) (a->drain_until - ngx_current_msec);

            if (left > 0) {
                ngx_add_timer(&a->drain, (ngx_msec_t) left);

            } else {
                a->drained = 1;
            }
        }

        ngx_http_sark_audit_close(a);
        ngx_http_sark_audit_post(a);
        return;
    }

    if ((size_t) (b->end - b->last) < NGX_HTTP_SARK_AUDIT_TAIL) {
        ngx_http_sark_audit_close(a);
        ngx_http_sark_audit_post(a);
        return;
    }

    if (!a->tick.timer_set) {
        ngx_add_timer(&a->tick, a->flush);
    }
}


/*
 * Whether the fields SAME_AS_PREVIOUS stands for (event_type to
 * policy_revision, `len` bytes encoded) of ev are, byte for byte, those of
 * the last event written in full in batch b.  A decision asked again and
 * again (L1 hits of one subject, tool and policy) then ships about a third
 * of the bytes, and the fields are compared, not written.  The query's
 * fields are compared encoded (ev->query); an event without them encoded
 * is written in full.
 */

static ngx_inline ngx_uint_t
ngx_http_sark_audit_same_tlv(u_char **pp, uint16_t tag, ngx_str_t *s)
{
    u_char  *p;

    if (s->data == NULL) {
        return 1;
    }

    p = *pp;

    if (sark_get_u16(p) != tag || sark_get_u32(p + 2) != s->len
        || ngx_memcmp(p + SARK_PROTO_TLV_HDR_LEN, s->data, s->len) != 0)
    {
        return 0;
    }

    *pp = p + SARK_PROTO_TLV_HDR_LEN + s->len;

    return 1;
}


static ngx_uint_t
ngx_http_sark_audit_same(ngx_http_sark_audit_t *a,
    ngx_http_sark_audit_batch_t *b, ngx_http_sark_audit_event_t *ev,
    size_t len)
{
    u_char  *p;

    /*
     * the lengths of the whole and of each field are compared before its
     * bytes: no comparison reads beyond the previous block
     */

    if (a->prev == NULL || a->prev_seq != b->seq || a->prev_len != len) {
        return 0;
    }

    p = a->prev;

    if (ev->query.len == 0
        || ngx_memcmp(p, ev->query.data, ev->query.len) != 0)
    {
        return 0;
    }

    p += ev->query.len;

    return ngx_http_sark_audit_same_tlv(&p, SARK_AUDF_DECISION, &ev->decision)
           && ngx_http_sark_audit_same_tlv(&p, SARK_AUDF_REASON, &ev->reason)
           && ngx_http_sark_audit_same_tlv(&p, SARK_AUDF_POLICY_REVISION,
                                           &ev->policy_revision);
}


/* a batch with room for an event of `size` bytes, or NULL: buffer full */

static ngx_http_sark_audit_batch_t *
ngx_http_sark_audit_batch(ngx_http_sark_audit_t *a, size_t size)
{
    u_char                       *p;
    size_t                        cap;
    ngx_queue_t                  *q;
    ngx_http_sark_audit_batch_t  *b;

    cap = ngx_max(a->batch_cap, SARK_PROTO_HDR_LEN + size);
    b = NULL;

    if (!ngx_queue_empty(&a->free)) {
        q = ngx_queue_head(&a->free);
        b = ngx_queue_data(q, ngx_http_sark_audit_batch_t, queue);

        if (b->start && (size_t) (b->end - b->start) >= cap) {
            ngx_queue_remove(q);
            a->spares--;
            goto ready;
        }

        /* those without a buffer are at the tail */

        q = ngx_queue_last(&a->free);
        b = ngx_queue_data(q, ngx_http_sark_audit_batch_t, queue);

        if (b->start) {
            b = NULL;
        }
    }

    if (a->held + cap > a->max) {
        return NULL;
    }

    p = ngx_alloc(cap, a->log);
    if (p == NULL) {
        return NULL;
    }

    if (b) {
        ngx_queue_remove(&b->queue);

    } else {
        b = ngx_pcalloc(a->pool, sizeof(ngx_http_sark_audit_batch_t));
        if (b == NULL) {
            ngx_free(p);
            return NULL;
        }
    }

    b->start = p;
    b->end = p + cap;
    a->held += cap;

ready:

    b->last = b->start + SARK_PROTO_HDR_LEN;
    b->events = 0;
    b->seq = ++a->seq;

    a->prev = NULL;

    ngx_memzero(&b->call, sizeof(ngx_http_sark_call_t));
    b->call.handler = ngx_http_sark_audit_answer;
    b->call.data = b;

    return b;
}


static void
ngx_http_sark_audit_release(ngx_http_sark_audit_t *a,
    ngx_http_sark_audit_batch_t *b)
{
    size_t  cap;

    a->pending -= b->events;
    b->events = 0;

    ngx_http_sark_metrics_audit(a->pending, a->held, a->dropped_total);

    cap = b->end - b->start;

    if (cap != a->batch_cap || a->spares >= NGX_HTTP_SARK_AUDIT_SPARES) {
        ngx_free(b->start);
        a->held -= cap;

        b->start = NULL;
        b->last = NULL;
        b->end = NULL;

        ngx_queue_insert_tail(&a->free, &b->queue);
        return;
    }

    a->spares++;
    ngx_queue_insert_head(&a->free, &b->queue);
}


/* the current batch becomes a frame at the end of the unsent queue */

static void
ngx_http_sark_audit_close(ngx_http_sark_audit_t *a)
{
    sark_frame_hdr_t              h;
    ngx_http_sark_audit_batch_t  *b;

    b = a->current;

    if (b == NULL) {
        return;
    }

    a->current = NULL;

    ngx_memzero(&h, sizeof(sark_frame_hdr_t));
    h.type = SARK_MSG_AUDIT_BATCH;
    h.length = (uint32_t) (b->last - b->start - SARK_PROTO_HDR_LEN);
    sark_frame_hdr_encode(b->start, &h);

    ngx_queue_insert_tail(&a->unsent, &b->queue);
}


static ngx_inline void
ngx_http_sark_audit_post(ngx_http_sark_audit_t *a)
{
    if (!a->ship.posted) {
        ngx_post_event(&a->ship, &ngx_posted_events);
    }
}


/* back into the unsent queue, before every later batch */

static void
ngx_http_sark_audit_requeue(ngx_http_sark_audit_t *a,
    ngx_http_sark_audit_batch_t *b)
{
    ngx_queue_t                  *q;
    ngx_http_sark_audit_batch_t  *n;

    for (q = ngx_queue_head(&a->unsent);
         q != ngx_queue_sentinel(&a->unsent);
         q = ngx_queue_next(q))
    {
        n = ngx_queue_data(q, ngx_http_sark_audit_batch_t, queue);

        if (n->seq > b->seq) {
            break;
        }
    }

    /* before q, or at the tail when q is the sentinel */
    ngx_queue_insert_tail(q, &b->queue);
}


static void
ngx_http_sark_audit_send(ngx_http_sark_audit_t *a)
{
    size_t                        len, queued;
    ngx_int_t                     rc;
    ngx_msec_int_t                wait;
    ngx_queue_t                  *q;
    ngx_http_sark_audit_batch_t  *b;

    if (ngx_exiting && !a->draining) {
        ngx_http_sark_audit_start_drain(a);
    }

    ngx_http_sark_audit_log_drops(a);

    if (a->drained) {
        if (a->tick.timer_set) {
            ngx_del_timer(&a->tick);
        }

        return;
    }

    if (a->retrying) {
        wait = (ngx_msec_int_t) (a->retry_at - ngx_current_msec);

        if (wait > 0) {
            ngx_add_timer(&a->tick, (ngx_msec_t) wait);
            return;
        }

        a->retrying = 0;
    }

    while (!ngx_queue_empty(&a->unsent)) {
        q = ngx_queue_head(&a->unsent);
        b = ngx_queue_data(q, ngx_http_sark_audit_batch_t, queue);

        len = b->last - b->start;

        /* at least half of the output buffer stays for decisions */

        queued = ngx_http_sark_sarkd_queued();

        if (queued && queued + len > a->sarkd_max / 2) {
            break;
        }

        rc = ngx_http_sark_sarkd_call(&b->call, b->start, len, 0);

        if (rc != NGX_OK) {
            /* not connected, buffer full: the next tick tries again */
            break;
        }

        ngx_queue_remove(q);
        ngx_queue_insert_tail(&a->inflight, q);

        b->sent = ngx_current_msec;

        if (!a->ack.timer_set) {
            ngx_add_timer(&a->ack, a->ack_timeout);
        }
    }

    if (!ngx_queue_empty(&a->unsent) && !a->tick.timer_set) {
        ngx_add_timer(&a->tick, a->flush);
    }
}


static void
ngx_http_sark_audit_answer(ngx_http_sark_call_t *call, ngx_uint_t status,
    u_char *payload, size_t len)
{
    uint32_t                      events;
    ngx_str_t                     message;
    ngx_uint_t                    st, shift;
    ngx_msec_t                    delay;
    ngx_http_sark_audit_t        *a;
    ngx_http_sark_audit_batch_t  *b;

    b = call->data;
    a = ngx_http_sark_audit;

    ngx_queue_remove(&b->queue);

    switch (status) {

    case NGX_HTTP_SARK_CALL_OK:

        if (ngx_http_sark_audit_ack(payload, len, &st, &events, &message)
            != NGX_OK)
        {
            ngx_log_error(NGX_LOG_ERR, a->log, 0,
                          "sark: invalid audit acknowledgement from sarkd; "
                          "the batch will be sent again");
            break;
        }

        if (st == SARK_ACK_REJECTED) {
            ngx_log_error(NGX_LOG_ERR, a->log, 0,
                          "sark: sarkd rejected an audit batch of %ui "
                          "events: \"%*s\"", b->events,
                          ngx_min(message.len, 512), message.data);
        }

        a->losses = 0;

        ngx_http_sark_audit_release(a, b);

        if (a->draining && a->pending == 0) {
            if (a->drain.timer_set) {
                ngx_del_timer(&a->drain);
            }

            if (a->tick.timer_set) {
                ngx_del_timer(&a->tick);
            }

            ngx_log_error(NGX_LOG_INFO, a->log, 0,
                          "sark: every audit event acknowledged by sarkd");
            return;
        }

        if (!ngx_queue_empty(&a->unsent)) {
            ngx_http_sark_audit_post(a);
        }

        return;

    case NGX_HTTP_SARK_CALL_TIMEOUT:
        ngx_log_error(NGX_LOG_WARN, a->log, 0,
                      "sark: no acknowledgement for an audit batch of %ui "
                      "events; it will be sent again", b->events);
        break;

    default: /* NGX_HTTP_SARK_CALL_LOST */
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, a->log, 0,
                       "sark: audit batch of %ui events lost with the "
                       "connection; it will be sent again", b->events);
        break;
    }

    ngx_http_sark_audit_requeue(a, b);

    /*
     * no retry before one more flush interval, doubling while nothing is
     * acknowledged: a batch that keeps breaking the connection (or a
     * sarkd that cannot take it) is not sent in a tight loop; all calls
     * lost with one connection count once
     */

    if (!a->retrying) {
        shift = a->draining ? 0 : ngx_min(a->losses, 16);
        delay = ngx_min(a->flush << shift, NGX_HTTP_SARK_AUDIT_RETRY_MAX);

        a->losses++;
        a->retrying = 1;
        a->retry_at = ngx_current_msec + delay;
    }

    if (!a->drained && !a->tick.timer_set) {
        ngx_add_timer(&a->tick, a->flush);
    }
}


/*
 * The batches in flight are in the order they were sent: those at the
 * head that have waited sark_audit_ack_timeout time out (and go back to
 * be sent again); the timer is then set for the next one's deadline.
 */

static void
ngx_http_sark_audit_ack_handler(ngx_event_t *ev)
{
    ngx_msec_int_t                left;
    ngx_queue_t                  *q;
    ngx_http_sark_audit_t        *a;
    ngx_http_sark_audit_batch_t  *b;

    a = ev->data;

    while (!ngx_queue_empty(&a->inflight)) {
        q = ngx_queue_head(&a->inflight);
        b = ngx_queue_data(q, ngx_http_sark_audit_batch_t, queue);

        left = (ngx_msec_int_t) (b->sent + a->ack_timeout - ngx_current_msec);

        if (left > 0) {
            ngx_add_timer(ev, (ngx_msec_t) left);
            return;
        }

        /* takes b out of the in-flight queue */

        ngx_http_sark_sarkd_cancel(&b->call);
        ngx_http_sark_audit_answer(&b->call, NGX_HTTP_SARK_CALL_TIMEOUT,
                                   NULL, 0);
    }
}


/*
 * sarkd's connection says the worker is exiting: at once when the exit
 * is graceful (send everything, wait for acks), or it has to let go.
 */

void
ngx_http_sark_audit_exiting(ngx_uint_t force)
{
    ngx_http_sark_audit_t  *a;

    a = ngx_http_sark_audit;

    if (a == NULL) {
        return;
    }

    if (force) {
        a->drained = 1;

        if (a->drain.timer_set) {
            ngx_del_timer(&a->drain);
        }

        if (a->tick.timer_set) {
            ngx_del_timer(&a->tick);
        }

        return;
    }

    ngx_http_sark_audit_start_drain(a);
}


static void
ngx_http_sark_audit_start_drain(ngx_http_sark_audit_t *a)
{
    if (a->draining) {
        return;
    }

    a->draining = 1;
    a->drain_until = ngx_current_msec + a->exit_wait;

    /* a lost connection is retried at once now */
    a->retrying = 0;

    if (a->pending == 0) {
        return;
    }

    ngx_log_error(NGX_LOG_NOTICE, a->log, 0,
                  "sark: worker exiting: sending %ui unacknowledged audit "
                  "events to sarkd", a->pending);

    ngx_add_timer(&a->drain, a->exit_wait);

    ngx_http_sark_audit_close(a);
    ngx_http_sark_audit_post(a);
}


static void
ngx_http_sark_audit_drop(ngx_http_sark_audit_t *a)
{
    a->dropped++;
    a->dropped_total++;

    ngx_http_sark_metrics_audit(a->pending, a->held, a->dropped_total);

    ngx_http_sark_audit_log_drops(a);
}


static void
ngx_http_sark_audit_log_drops(ngx_http_sark_audit_t *a)
{
    if (a->dropped == 0) {
        return;
    }

    if (a->drop_logged == ngx_time()) {

        /* the rest is told a second later, even if no event comes */

        if (!a->tick.timer_set && !a->drained) {
            ngx_add_timer(&a->tick, 1000);
        }

        return;
    }

    ngx_log_error(NGX_LOG_ERR, a->log, 0,
                  "sark: audit buffer full, %ui events dropped", a->dropped);

    a->dropped = 0;
    a->drop_logged = ngx_time();
}


/* every sark_audit_flush while events are held: close and send */

static void
ngx_http_sark_audit_tick_handler(ngx_event_t *ev)
{
    ngx_http_sark_audit_t  *a;

    a = ev->data;

    ngx_http_sark_audit_close(a);
    ngx_http_sark_audit_send(a);
}


/* posted: a batch is full, an ack made room, or the worker is exiting */

static void
ngx_http_sark_audit_ship_handler(ngx_event_t *ev)
{
    ngx_http_sark_audit_t  *a;

    a = ev->data;

    ngx_http_sark_audit_send(a);
}


/*
 * What the worker gives up: the events of batches sarkd never received
 * (the current and the unsent ones) are lost; those of batches sent and
 * not acknowledged may still be stored by sarkd, and are said to be so.
 */

static void
ngx_http_sark_audit_report_loss(ngx_http_sark_audit_t *a, ngx_log_t *log,
    const char *when)
{
    ngx_uint_t                    unsent, unconfirmed;
    ngx_queue_t                  *q;
    ngx_http_sark_audit_batch_t  *b;

    unsent = a->current ? a->current->events : 0;
    unconfirmed = 0;

    for (q = ngx_queue_head(&a->unsent);
         q != ngx_queue_sentinel(&a->unsent);
         q = ngx_queue_next(q))
    {
        b = ngx_queue_data(q, ngx_http_sark_audit_batch_t, queue);
        unsent += b->events;
    }

    for (q = ngx_queue_head(&a->inflight);
         q != ngx_queue_sentinel(&a->inflight);
         q = ngx_queue_next(q))
    {
        b = ngx_queue_data(q, ngx_http_sark_audit_batch_t, queue);
        unconfirmed += b->events;
    }

    if (unsent) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "sark: %ui audit events never reached sarkd and are "
                      "lost %s", unsent, when);
    }

    if (unconfirmed) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "sark: %ui audit events were sent to sarkd and not "
                      "confirmed %s: sarkd may still store them",
                      unconfirmed, when);
    }

    a->loss_reported = 1;
}


static void
ngx_http_sark_audit_drain_handler(ngx_event_t *ev)
{
    ngx_http_sark_audit_t  *a;

    a = ev->data;

    ngx_http_sark_audit_report_loss(a, a->log, "after sark_audit_exit_wait");

    a->drained = 1;

    if (a->tick.timer_set) {
        ngx_del_timer(&a->tick);
    }
}


/*
 * Audit ids are RFC 9562 UUIDv7: 48-bit Unix ms, then 74 random bits.  The
 * random bits come from the OpenSSL CSPRNG, drawn 4 KB at a time into a
 * per-worker pool: one RAND_bytes() call costs about as many instructions
 * as the rest of an L1 hit (make bench-ir), a pool of 409 ids a tenth of
 * that per id.  Ids are unique, time-ordered (audit rows index well) and
 * not guessable from the ones before.
 */

#define NGX_HTTP_SARK_RANDOM_POOL  4096

static u_char      ngx_http_sark_random_pool[NGX_HTTP_SARK_RANDOM_POOL];
static ngx_uint_t  ngx_http_sark_random_left;


static u_char *
ngx_http_sark_random_bytes(size_t n)
{
    if (ngx_http_sark_random_left < n) {
        if (RAND_bytes(ngx_http_sark_random_pool, NGX_HTTP_SARK_RANDOM_POOL)
            != 1)
        {
            return NULL;
        }

        ngx_http_sark_random_left = NGX_HTTP_SARK_RANDOM_POOL;
    }

    ngx_http_sark_random_left -= n;

    return ngx_http_sark_random_pool + ngx_http_sark_random_left;
}


ngx_int_t
ngx_http_sark_new_audit_id(ngx_http_sark_ctx_t *ctx)
{
    u_char      *b, *rnd;
    uint64_t     ms;
    ngx_time_t  *tp;

    rnd = ngx_http_sark_random_bytes(10);
    if (rnd == NULL) {
        return NGX_ERROR;
    }

    b = ctx->audit_raw;

    tp = ngx_timeofday();
    ms = (uint64_t) tp->sec * 1000 + tp->msec;

    /* 48-bit big-endian milliseconds, then the random bits */

    sark_put_u16(b, (uint16_t) (ms >> 32));
    sark_put_u32(b + 2, (uint32_t) ms);
    ngx_memcpy(b + 6, rnd, 10);

    b[6] = (u_char) (0x70 | (b[6] & 0x0f));
    b[8] = (u_char) (0x80 | (b[8] & 0x3f));

    ctx->has_audit_id = 1;
    ngx_str_null(&ctx->audit_id);

    return NGX_OK;
}


/* the id as text, formatted on first use; NULL when there is none */

ngx_str_t *
ngx_http_sark_audit_id(ngx_pool_t *pool, ngx_http_sark_ctx_t *ctx)
{
    u_char  *p, hex[32];

    if (!ctx->has_audit_id) {
        return NULL;
    }

    if (ctx->audit_id.data) {
        return &ctx->audit_id;
    }

    p = ngx_pnalloc(pool, 36);
    if (p == NULL) {
        return NULL;
    }

    ctx->audit_id.data = p;
    ctx->audit_id.len = 36;

    /* 8-4-4-4-12 */

    (void) ngx_hex_dump(hex, ctx->audit_raw, 16);

    p = ngx_cpymem(p, hex, 8);
    *p++ = '-';
    p = ngx_cpymem(p, hex + 8, 4);
    *p++ = '-';
    p = ngx_cpymem(p, hex + 12, 4);
    *p++ = '-';
    p = ngx_cpymem(p, hex + 16, 4);
    *p++ = '-';
    ngx_memcpy(p, hex + 20, 12);

    return &ctx->audit_id;
}
