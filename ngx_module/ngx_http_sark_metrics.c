
/*
 * Copyright (C) sark-gateway authors
 */


/*
 * Prometheus metrics (docs/design.md, Observability).  Every worker counts
 * its decisions in a slot of its own in the shared zone "sark_metrics"
 * (made with sark_sarkd; atomic adds, so a worker of the previous
 * configuration still exiting after a reload can share its slot without
 * losing counts), so a scrape of any worker sees the sum over all of them;
 * the zone survives reloads, and so do the counters.  `sark_api metrics`
 * adds sarkd's own counters and gauges, asked over the worker's connection
 * (STATUS_REQ), and renders the Prometheus text format.  Labels are
 * bounded: decision, a known action (else "other"), cache layer,
 * component, dependency; never a user, tool or argument.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_sark_module.h"


#define NGX_HTTP_SARK_METRICS_MAGIC    0x53414b4d45540001ULL  /* "SAKMET", 1 */
#define NGX_HTTP_SARK_METRICS_SLOTS    64
#define NGX_HTTP_SARK_METRICS_SIZE     (256 * 1024)

#define NGX_HTTP_SARK_ACTIONS          6     /* the known ones, and other */
#define NGX_HTTP_SARK_LAYERS           3     /* L1, L2, MISS */
#define NGX_HTTP_SARK_BUCKETS          14    /* and +Inf */
#define NGX_HTTP_SARK_COMPONENTS       2


typedef struct {
    ngx_atomic_t                 requests[2][NGX_HTTP_SARK_ACTIONS]
                                         [NGX_HTTP_SARK_LAYERS];
    ngx_atomic_t                 latency[NGX_HTTP_SARK_BUCKETS + 1];
    ngx_atomic_t                 latency_sum_us;
    ngx_atomic_t                 errors[NGX_HTTP_SARK_COMPONENTS];
    ngx_atomic_t                 audit_pending;     /* gauges */
    ngx_atomic_t                 audit_held_bytes;
    ngx_atomic_t                 audit_dropped;
    u_char                       pad[64];           /* a line of its own */
} ngx_http_sark_metrics_slot_t;


typedef struct {
    uint64_t                      magic;
    ngx_http_sark_metrics_slot_t  slots[NGX_HTTP_SARK_METRICS_SLOTS];
} ngx_http_sark_metrics_sh_t;


static ngx_int_t ngx_http_sark_metrics_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static ngx_int_t ngx_http_sark_metrics_reply(ngx_http_request_t *r,
    ngx_http_sark_ctx_t *ctx, const sark_json_t *root, const char *why);


static ngx_http_sark_metrics_sh_t   *ngx_http_sark_metrics_sh;
static ngx_http_sark_metrics_slot_t *ngx_http_sark_metrics_mine;


static ngx_str_t  ngx_http_sark_text_type =
    ngx_string("text/plain; version=0.0.4");

static ngx_str_t  ngx_http_sark_actions[NGX_HTTP_SARK_ACTIONS] = {
    ngx_string("gateway:tool:invoke"),
    ngx_string("gateway:tool:discover"),
    ngx_string("gateway:server:access"),
    ngx_string("gateway:resource:read"),
    ngx_string("gateway:prompt:get"),
    ngx_string("other")
};

static const char  *ngx_http_sark_layers[NGX_HTTP_SARK_LAYERS] = {
    "miss", "l1", "l2"                 /* by SARK_CACHE_* */
};

static const char  *ngx_http_sark_components[NGX_HTTP_SARK_COMPONENTS] = {
    "sarkd", "opa"
};

/* upper bounds of the latency buckets, microseconds */
static const ngx_uint_t  ngx_http_sark_bounds[NGX_HTTP_SARK_BUCKETS] = {
    50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000,
    250000, 1000000, 2500000
};


ngx_int_t
ngx_http_sark_metrics_add(ngx_conf_t *cf)
{
    ngx_str_t        name;
    ngx_shm_zone_t  *shm_zone;

    ngx_str_set(&name, "sark_metrics");

    shm_zone = ngx_shared_memory_add(cf, &name, NGX_HTTP_SARK_METRICS_SIZE,
                                     &ngx_http_sark_module);
    if (shm_zone == NULL) {
        return NGX_ERROR;
    }

    shm_zone->init = ngx_http_sark_metrics_init_zone;
    shm_zone->data = &ngx_http_sark_metrics_sh;

    return NGX_OK;
}


static ngx_int_t
ngx_http_sark_metrics_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_slab_pool_t             *shpool;
    ngx_http_sark_metrics_sh_t  *sh;

    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists || (data && shpool->data)) {
        sh = shpool->data;

        if (sh && sh->magic == NGX_HTTP_SARK_METRICS_MAGIC) {
            ngx_http_sark_metrics_sh = sh;
            return NGX_OK;
        }
    }

    sh = ngx_slab_calloc(shpool, sizeof(ngx_http_sark_metrics_sh_t));
    if (sh == NULL) {
        return NGX_ERROR;
    }

    sh->magic = NGX_HTTP_SARK_METRICS_MAGIC;
    shpool->data = sh;
    ngx_http_sark_metrics_sh = sh;

    return NGX_OK;
}


/* the worker's slot, once it knows its number */

void
ngx_http_sark_metrics_init_process(void)
{
    if (ngx_http_sark_metrics_sh) {
        ngx_http_sark_metrics_mine = &ngx_http_sark_metrics_sh->slots[
                                      ngx_worker % NGX_HTTP_SARK_METRICS_SLOTS];
    }
}


/* one decision: counted by outcome, action, layer and latency */

void
ngx_http_sark_metrics_decision(ngx_http_sark_ctx_t *ctx)
{
    uint64_t                       us;
    ngx_uint_t                     a, b, layer;
    ngx_http_sark_metrics_slot_t  *s;

    s = ngx_http_sark_metrics_mine;

    if (s == NULL) {
        return;
    }

    for (a = 0; a < NGX_HTTP_SARK_ACTIONS - 1; a++) {
        if (ctx->query.action.len == ngx_http_sark_actions[a].len
            && ngx_memcmp(ctx->query.action.data,
                          ngx_http_sark_actions[a].data,
                          ngx_http_sark_actions[a].len)
               == 0)
        {
            break;
        }
    }

    layer = ctx->decision.cache_layer;

    if (layer >= NGX_HTTP_SARK_LAYERS) {
        layer = 0;
    }

    (void) ngx_atomic_fetch_add(&s->requests[ctx->decision.decision
                                             == SARK_DECISION_ALLOW ? 0 : 1]
                                            [a][layer], 1);

    us = ngx_http_sark_now_us() - ctx->started_us;

    for (b = 0; b < NGX_HTTP_SARK_BUCKETS; b++) {
        if (us <= ngx_http_sark_bounds[b]) {
            break;
        }
    }

    (void) ngx_atomic_fetch_add(&s->latency[b], 1);
    (void) ngx_atomic_fetch_add(&s->latency_sum_us, (ngx_atomic_int_t) us);
}


/* an answer that is no decision: sarkd away or silent, or OPA down */

void
ngx_http_sark_metrics_error(const char *code)
{
    ngx_http_sark_metrics_slot_t  *s;

    s = ngx_http_sark_metrics_mine;

    if (s) {
        (void) ngx_atomic_fetch_add(&s->errors[code[0] == 'O' ? 1 : 0], 1);
    }
}


void
ngx_http_sark_metrics_audit(ngx_uint_t pending, size_t held,
    ngx_uint_t dropped)
{
    ngx_http_sark_metrics_slot_t  *s;

    s = ngx_http_sark_metrics_mine;

    if (s) {
        s->audit_pending = pending;
        s->audit_held_bytes = held;
        s->audit_dropped = dropped;
    }
}


uint64_t
ngx_http_sark_now_us(void)
{
    struct timespec  ts;

    (void) clock_gettime(CLOCK_MONOTONIC, &ts);

    return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}


/* sark_api metrics: GET; sarkd's part when it answers */

ngx_int_t
ngx_http_sark_metrics_handler(ngx_http_request_t *r)
{
    return ngx_http_sark_status_request(r, ngx_http_sark_metrics_reply);
}


/* the text: HELP, TYPE and samples of one metric */

#define ngx_http_sark_metric_head(p, name, type, help)                       \
    p = ngx_sprintf(p, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type)


/* a label value as the text format writes it: \\, \" and \n escaped */

static u_char *
ngx_http_sark_label(u_char *p, const char *s, size_t len)
{
    size_t  i;

    for (i = 0; i < len && i < 256; i++) {
        if (s[i] == '"' || s[i] == '\\') {
            *p++ = '\\';
            *p++ = s[i];

        } else if (s[i] == '\n') {
            *p++ = '\\';
            *p++ = 'n';

        } else {
            *p++ = s[i];
        }
    }

    return p;
}


/*
 * sarkd's evaluations per OPA server: a histogram with the workers'
 * bounds, errors and timeouts (the servers are OPA_URL's: bounded)
 */

static u_char *
ngx_http_sark_opa_servers(u_char *p, const sark_json_t *servers)
{
    uint64_t            cum;
    ngx_uint_t          b, pass;
    const sark_json_t  *srv, *url, *n, *buckets, *x;

    static const char  *counters[] = { "errors", "timeouts" };

    if (servers == NULL || servers->type != SARK_JSON_ARRAY
        || servers->n == 0 || servers->n > 16)
    {
        return p;
    }

    ngx_http_sark_metric_head(p, "sark_opa_request_duration_seconds",
                              "histogram", "Time of policy evaluations, by "
                              "OPA server.");

    for (srv = servers->child; srv; srv = srv->next) {
        url = sark_json_get(srv, "url");
        buckets = sark_json_get(srv, "latency_buckets");
        n = sark_json_get(srv, "latency_sum_us");

        if (url == NULL || url->type != SARK_JSON_STRING
            || buckets == NULL || buckets->type != SARK_JSON_ARRAY
            || buckets->n != NGX_HTTP_SARK_BUCKETS + 1
            || n == NULL || !n->is_int)
        {
            continue;
        }

        cum = 0;

        for (b = 0, x = buckets->child; x; b++, x = x->next) {
            cum += x->is_int ? (uint64_t) x->ival : 0;

            p = ngx_cpymem(p, "sark_opa_request_duration_seconds_bucket"
                              "{server=\"",
                           sizeof("sark_opa_request_duration_seconds_bucket"
                                  "{server=\"") - 1);
            p = ngx_http_sark_label(p, url->str, url->len);

            if (b < NGX_HTTP_SARK_BUCKETS) {
                p = ngx_sprintf(p, "\",le=\"%ui.%06ui\"} %uL\n",
                                ngx_http_sark_bounds[b] / 1000000,
                                ngx_http_sark_bounds[b] % 1000000, cum);

            } else {
                p = ngx_sprintf(p, "\",le=\"+Inf\"} %uL\n", cum);
            }
        }

        p = ngx_cpymem(p, "sark_opa_request_duration_seconds_sum{server=\"",
                       sizeof("sark_opa_request_duration_seconds_sum"
                              "{server=\"") - 1);
        p = ngx_http_sark_label(p, url->str, url->len);
        p = ngx_sprintf(p, "\"} %uL.%06uL\n",
                        (uint64_t) n->ival / 1000000,
                        (uint64_t) n->ival % 1000000);

        p = ngx_cpymem(p, "sark_opa_request_duration_seconds_count"
                          "{server=\"",
                       sizeof("sark_opa_request_duration_seconds_count"
                              "{server=\"") - 1);
        p = ngx_http_sark_label(p, url->str, url->len);
        p = ngx_sprintf(p, "\"} %uL\n", cum);
    }

    for (pass = 0; pass < 2; pass++) {
        p = ngx_sprintf(p, "# HELP sark_opa_%s_total Policy evaluations that "
                           "%s, by OPA server.\n"
                           "# TYPE sark_opa_%s_total counter\n",
                        counters[pass],
                        pass ? "timed out" : "failed", counters[pass]);

        for (srv = servers->child; srv; srv = srv->next) {
            url = sark_json_get(srv, "url");
            n = sark_json_get(srv, counters[pass]);

            if (url == NULL || url->type != SARK_JSON_STRING
                || n == NULL || n->type != SARK_JSON_NUMBER)
            {
                continue;
            }

            p = ngx_sprintf(p, "sark_opa_%s_total{server=\"", counters[pass]);
            p = ngx_http_sark_label(p, url->str, url->len);
            p = ngx_sprintf(p, "\"} %*s\n", n->raw_len, n->raw);
        }
    }

    return p;
}


/* sarkd's figures: where in its status, and as which metric */

typedef struct {
    const char                  *object;
    const char                  *key;
    const char                  *name;
    const char                  *type;
    const char                  *help;
} ngx_http_sark_sarkd_metric_t;


static ngx_http_sark_sarkd_metric_t  ngx_http_sark_sarkd_metrics[] = {
    { "audit", "written", "sark_audit_events_written_total", "counter",
      "Audit events committed to PostgreSQL from memory." },
    { "audit", "replayed", "sark_audit_events_replayed_total", "counter",
      "Audit events committed to PostgreSQL from the spool." },
    { "audit", "spooled", "sark_audit_events_spooled_total", "counter",
      "Audit events written to the spool while the database was away." },
    { "audit", "refused", "sark_audit_events_refused_total", "counter",
      "Audit events the database refused for their data (set aside)." },
    { "audit", "invalid", "sark_audit_events_invalid_total", "counter",
      "Audit events refused for a field (set aside)." },
    { "audit", "lost", "sark_audit_events_lost_total", "counter",
      "Audit events neither stored nor spooled." },
    { "audit", "queued_events", "sark_audit_queue_depth", "gauge",
      "Audit events in sarkd's memory, not yet written." },
    { "audit", "spool_events", "sark_audit_spooled_events", "gauge",
      "Audit events in the spool, waiting to be replayed." },
    { "counters", "decision_requests", "sark_sarkd_decision_requests_total",
      "counter", "Decision requests sarkd received." },
    { "counters", "coalesced", "sark_sarkd_coalesced_total", "counter",
      "Decision requests that joined an evaluation already running." },
    { "counters", "opa_evaluations", "sark_opa_requests_total", "counter",
      "Policy evaluations sent to OPA." },
    { "counters", "l2_hits", "sark_gateway_l2_hits_total", "counter",
      "L2 (Redis) hits." },
    { "counters", "l2_misses", "sark_gateway_l2_misses_total", "counter",
      "L2 (Redis) misses." },
    { "counters", "l2_errors", "sark_gateway_l2_errors_total", "counter",
      "L2 (Redis) commands that failed." },
    { "counters", "l2_unauthenticated", "sark_gateway_l2_unauthenticated_total",
      "counter", "L2 values whose HMAC did not verify (dropped)." },
    { NULL, NULL, NULL, NULL, NULL }
};


static ngx_int_t
ngx_http_sark_metrics_reply(ngx_http_request_t *r, ngx_http_sark_ctx_t *ctx,
    const sark_json_t *root, const char *why)
{
    u_char                         *p;
    uint64_t                        cum, layer_sum[NGX_HTTP_SARK_LAYERS];
    ngx_str_t                       body;
    ngx_uint_t                      d, a, l, b, i, state;
    const sark_json_t              *deps, *dep, *v;
    ngx_http_sark_sarkd_metric_t   *m;
    ngx_http_sark_metrics_slot_t    total, *s;
    ngx_http_sark_main_conf_t      *smcf;
    ngx_http_sark_cache_stats_t     st;

    smcf = ngx_http_get_module_main_conf(r, ngx_http_sark_module);

    /* the sum over the workers' slots */

    ngx_memzero(&total, sizeof(ngx_http_sark_metrics_slot_t));

    for (i = 0; ngx_http_sark_metrics_sh && i < NGX_HTTP_SARK_METRICS_SLOTS;
         i++)
    {
        s = &ngx_http_sark_metrics_sh->slots[i];

        for (d = 0; d < 2; d++) {
            for (a = 0; a < NGX_HTTP_SARK_ACTIONS; a++) {
                for (l = 0; l < NGX_HTTP_SARK_LAYERS; l++) {
                    total.requests[d][a][l] += s->requests[d][a][l];
                }
            }
        }

        for (b = 0; b <= NGX_HTTP_SARK_BUCKETS; b++) {
            total.latency[b] += s->latency[b];
        }

        total.latency_sum_us += s->latency_sum_us;
        total.errors[0] += s->errors[0];
        total.errors[1] += s->errors[1];
        total.audit_pending += s->audit_pending;
        total.audit_held_bytes += s->audit_held_bytes;
        total.audit_dropped += s->audit_dropped;
    }

    p = ngx_pnalloc(r->pool, 32768 + (root ? root->raw_len * 4 : 0));
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    body.data = p;

    ngx_http_sark_metric_head(p, "sark_gateway_authz_requests_total",
                              "counter", "Decisions taken, by outcome, "
                              "action and where they came from.");

    ngx_memzero(layer_sum, sizeof(layer_sum));

    for (d = 0; d < 2; d++) {
        for (a = 0; a < NGX_HTTP_SARK_ACTIONS; a++) {
            for (l = 0; l < NGX_HTTP_SARK_LAYERS; l++) {
                p = ngx_sprintf(p, "sark_gateway_authz_requests_total"
                                   "{decision=\"%s\",action=\"%V\","
                                   "cache=\"%s\"} %uA\n",
                                d ? "deny" : "allow",
                                &ngx_http_sark_actions[a],
                                ngx_http_sark_layers[l],
                                total.requests[d][a][l]);
                layer_sum[l] += total.requests[d][a][l];
            }
        }
    }

    ngx_http_sark_metric_head(p, "sark_gateway_authz_latency_seconds",
                              "histogram", "Time to a decision, in the "
                              "worker, from the question to the answer.");

    cum = 0;

    for (b = 0; b < NGX_HTTP_SARK_BUCKETS; b++) {
        cum += total.latency[b];
        p = ngx_sprintf(p, "sark_gateway_authz_latency_seconds_bucket"
                           "{le=\"%ui.%06ui\"} %uL\n",
                        ngx_http_sark_bounds[b] / 1000000,
                        ngx_http_sark_bounds[b] % 1000000, cum);
    }

    cum += total.latency[NGX_HTTP_SARK_BUCKETS];

    p = ngx_sprintf(p, "sark_gateway_authz_latency_seconds_bucket"
                       "{le=\"+Inf\"} %uL\n"
                       "sark_gateway_authz_latency_seconds_sum %uA.%06uA\n"
                       "sark_gateway_authz_latency_seconds_count %uL\n",
                    cum, total.latency_sum_us / 1000000,
                    total.latency_sum_us % 1000000, cum);

    ngx_http_sark_metric_head(p, "sark_gateway_cache_hits_total", "counter",
                              "Decisions answered from a cache, by layer.");
    p = ngx_sprintf(p, "sark_gateway_cache_hits_total{layer=\"l1\"} %uL\n"
                       "sark_gateway_cache_hits_total{layer=\"l2\"} %uL\n",
                    layer_sum[1], layer_sum[2]);

    ngx_http_sark_metric_head(p, "sark_gateway_cache_misses_total", "counter",
                              "Decisions evaluated by the policy engine.");
    p = ngx_sprintf(p, "sark_gateway_cache_misses_total %uL\n", layer_sum[0]);

    ngx_http_sark_metric_head(p, "sark_gateway_errors_total", "counter",
                              "Requests answered 503 for want of a "
                              "decision, by the component that failed.");

    for (i = 0; i < NGX_HTTP_SARK_COMPONENTS; i++) {
        p = ngx_sprintf(p, "sark_gateway_errors_total{component=\"%s\"} "
                           "%uA\n",
                        ngx_http_sark_components[i], total.errors[i]);
    }

    ngx_memzero(&st, sizeof(ngx_http_sark_cache_stats_t));

    if (smcf->cache) {
        ngx_http_sark_cache_stats(smcf->cache, &st);
    }

    ngx_http_sark_metric_head(p, "sark_gateway_l1_entries", "gauge",
                              "Decisions in the L1 zone.");
    p = ngx_sprintf(p, "sark_gateway_l1_entries %ui\n", st.entries);
    ngx_http_sark_metric_head(p, "sark_gateway_l1_evictions_total", "counter",
                              "L1 entries evicted for room.");
    p = ngx_sprintf(p, "sark_gateway_l1_evictions_total %ui\n",
                    st.evictions);

    ngx_http_sark_metric_head(p, "sark_gateway_worker_audit_pending_events",
                              "gauge", "Audit events the workers hold "
                              "until sarkd acknowledges them.");
    p = ngx_sprintf(p, "sark_gateway_worker_audit_pending_events %uA\n",
                    total.audit_pending);
    ngx_http_sark_metric_head(p, "sark_gateway_worker_audit_buffer_bytes",
                              "gauge", "Bytes of the workers' audit "
                              "batches.");
    p = ngx_sprintf(p, "sark_gateway_worker_audit_buffer_bytes %uA\n",
                    total.audit_held_bytes);
    ngx_http_sark_metric_head(p, "sark_gateway_worker_audit_dropped_total",
                              "counter", "Audit events dropped by full "
                              "worker buffers (sark_audit_buffer).");
    p = ngx_sprintf(p, "sark_gateway_worker_audit_dropped_total %uA\n",
                    total.audit_dropped);

    ngx_http_sark_metric_head(p, "sark_sarkd_up", "gauge",
                              "1 when sarkd answered this scrape.");
    p = ngx_sprintf(p, "sark_sarkd_up %d\n", root ? 1 : 0);

    if (root == NULL) {
        goto done;
    }

    /* sarkd's part */

    deps = sark_json_get(root, "dependencies");

    ngx_http_sark_metric_head(p, "sark_gateway_circuit_breaker_state",
                              "gauge", "0 closed, 1 open, 2 half open.");

    for (dep = (deps && deps->type == SARK_JSON_OBJECT) ? deps->child : NULL;
         dep;
         dep = dep->next)
    {
        v = sark_json_get(dep, "circuit");
        state = 0;

        if (v && v->type == SARK_JSON_STRING) {
            state = (v->str[0] == 'o') ? 1 : (v->str[0] == 'h') ? 2 : 0;
        }

        /* dependency names are sarkd's own: opa, redis, postgresql */

        p = ngx_sprintf(p, "sark_gateway_circuit_breaker_state"
                           "{dependency=\"%*s\"} %ui\n",
                        ngx_min(dep->key_len, 32), dep->key, state);
    }

    ngx_http_sark_metric_head(p, "sark_gateway_dependency_up", "gauge",
                              "1 when the dependency is healthy.");

    for (dep = (deps && deps->type == SARK_JSON_OBJECT) ? deps->child : NULL;
         dep;
         dep = dep->next)
    {
        v = sark_json_get(dep, "healthy");
        p = ngx_sprintf(p, "sark_gateway_dependency_up{dependency=\"%*s\"} "
                           "%d\n",
                        ngx_min(dep->key_len, 32), dep->key,
                        (v && v->type == SARK_JSON_TRUE) ? 1 : 0);
    }

    p = ngx_http_sark_opa_servers(p, sark_json_get(root, "opa_servers"));

    v = sark_json_get(root, "invalidations");

    if (v && v->type == SARK_JSON_OBJECT) {
        ngx_http_sark_metric_head(p, "sark_gateway_invalidations_total",
                                  "counter", "Cache invalidations: issued "
                                  "here, confirmed by every host, answered "
                                  "partial, received from other hosts.");

        for (dep = v->child; dep; dep = dep->next) {
            if (dep->type == SARK_JSON_NUMBER && dep->key_len <= 16) {
                p = ngx_sprintf(p, "sark_gateway_invalidations_total"
                                   "{result=\"%*s\"} %*s\n",
                                dep->key_len, dep->key,
                                dep->raw_len, dep->raw);
            }
        }
    }

    for (m = ngx_http_sark_sarkd_metrics; m->key; m++) {
        v = sark_json_get(sark_json_get(root, m->object), m->key);

        if (v == NULL || v->type != SARK_JSON_NUMBER) {
            continue;
        }

        ngx_http_sark_metric_head(p, m->name, m->type, m->help);
        p = ngx_sprintf(p, "%s %*s\n", m->name, v->raw_len, v->raw);
    }

done:

    body.len = p - body.data;

    return ngx_http_sark_send_body(r, NGX_HTTP_OK, &ngx_http_sark_text_type,
                                   &body);
}
