
/*
 * Copyright (C) sark-gateway authors
 */


#ifndef _NGX_HTTP_SARK_MODULE_H_INCLUDED_
#define _NGX_HTTP_SARK_MODULE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "sark_json.h"
#include "sark_jwt.h"
#include "sark_proto.h"
#include "sark_key.h"
#include "ngx_http_sark_sarkd.h"
#include "ngx_http_sark_cache.h"


#define NGX_HTTP_SARK_API_OFF          0
#define NGX_HTTP_SARK_API_AUTHORIZE    1
#define NGX_HTTP_SARK_API_INVALIDATE   2
#define NGX_HTTP_SARK_API_WARM         3
#define NGX_HTTP_SARK_API_AUDIT        4
#define NGX_HTTP_SARK_API_A2A          5
/* from here on: GET endpoints */
#define NGX_HTTP_SARK_API_SERVERS      6
#define NGX_HTTP_SARK_API_TOOLS        7
#define NGX_HTTP_SARK_API_AUDIT_EVENTS 8
/* from here on: GET endpoints without a caller's token */
#define NGX_HTTP_SARK_API_LIVE         9
#define NGX_HTTP_SARK_API_READY        10
#define NGX_HTTP_SARK_API_DETAILED     11
#define NGX_HTTP_SARK_API_METRICS      12

#define NGX_HTTP_SARK_COMPAT_OFF       0
#define NGX_HTTP_SARK_COMPAT_SARK      1

#define NGX_HTTP_SARK_UNPROCESSABLE    422

#define NGX_HTTP_SARK_MAX_ROLES        SARK_PROTO_MAX_ROLES
#define NGX_HTTP_SARK_MAX_NAME         SARK_PROTO_MAX_NAME

/* how long a worker waits for connect() to sarkd's socket */
#define NGX_HTTP_SARK_CONNECT_TIMEOUT  1000


typedef struct {
    ngx_addr_t                  *sarkd;
    size_t                       sarkd_buffer_max;
    ngx_int_t                    request_id_index;
    ngx_http_sark_cache_t       *cache;

    ngx_msec_t                   audit_flush;
    ngx_msec_t                   audit_ack_timeout;
    ngx_msec_t                   audit_exit_wait;
    size_t                       audit_batch;
    size_t                       audit_buffer;

    size_t                       mcp_sessions_size;
    void                        *mcp_sessions;  /* the zone, when a location
                                                   has sark_mcp on */
} ngx_http_sark_main_conf_t;


typedef struct {
    ngx_uint_t                   api;

    ngx_array_t                 *jwt_keys;      /* of sark_jwt_key_t * */
    ngx_str_t                    jwt_issuer;
    ngx_str_t                    jwt_audience;
    time_t                       jwt_leeway;
    ngx_str_t                    resource_metadata;
    ngx_str_t                    resource_doc;  /* sark_protected_resource's
                                                   document, this location's
                                                   own */

    size_t                       max_body_size;
    ngx_uint_t                   json_max_depth;
    ngx_msec_t                   decision_timeout;

    ngx_flag_t                   authz;
    ngx_flag_t                   authz_static;  /* no variables in the
                                                   sark_authz_* values */
    ngx_http_complex_value_t    *authz_action;
    ngx_http_complex_value_t    *authz_server;
    ngx_http_complex_value_t    *authz_tool;
    ngx_http_complex_value_t    *authz_sensitivity;

    ngx_str_t                    admin_key;
    ngx_str_t                    gateway_key;

    ngx_flag_t                   audit;
    ngx_uint_t                   compat;        /* sark_api_compat */

    ngx_flag_t                   dry_run;       /* sark_authz_dry_run */
    ngx_flag_t                   profile;       /* sark_profile */
    ngx_flag_t                   mcp;           /* sark_mcp */
    size_t                       mcp_max_body;
    void                        *mcp_sessions;
} ngx_http_sark_loc_conf_t;


/* who is asking: from the verified token */
typedef struct {
    ngx_str_t                    sub;
    ngx_str_t                    email;
    ngx_str_t                   *roles;
    ngx_uint_t                   nroles;
    ngx_str_t                   *teams;
    ngx_uint_t                   nteams;
    time_t                       exp;

    /* an agent token's: its agent_id, and the agent as a JSON object
     * {"id", "type", "trust_level", "capabilities", "environment"} */
    ngx_str_t                    agent_id;
    ngx_str_t                    agent;

    uint64_t                     auth_us;       /* sark_profile */

    /* the worker's slot of the verified token, while it still holds it
     * (ngx_http_sark_memo.c) */
    void                        *token_slot;
    ngx_uint_t                   token_gen;
} ngx_http_sark_identity_t;


/* what is asked: from the body or the directives */
typedef struct {
    ngx_str_t                    action;
    ngx_str_t                    server_name;
    ngx_str_t                    tool_name;
    ngx_str_t                    sensitivity;
    ngx_str_t                    parameters;    /* JSON object text */
    ngx_str_t                    context;       /* JSON object text */
    ngx_str_t                    gateway_metadata;
    ngx_str_t                    source_agent;  /* a2a: JSON object text */
    ngx_str_t                    target_agent;
} ngx_http_sark_query_t;


/*
 * Where the members of a decision request are in its body (action,
 * server_name, tool_name, sensitivity_level, parameters, context,
 * gateway_metadata, in that order): offsets and lengths, the length
 * NGX_HTTP_SARK_SPAN_NONE for a member absent or null.
 */

#define NGX_HTTP_SARK_QUERY_MEMBERS  7
#define NGX_HTTP_SARK_SPAN_NONE      0xffffffff

typedef struct {
    uint32_t                     off[NGX_HTTP_SARK_QUERY_MEMBERS];
    uint32_t                     len[NGX_HTTP_SARK_QUERY_MEMBERS];
} ngx_http_sark_spans_t;


/*
 * What a worker remembers with a verified token about the last question
 * it asked at one location, under one policy revision
 * (ngx_http_sark_memo.c).
 */

typedef struct {
    ngx_http_sark_key_t          key;
    ngx_str_t                    audit_query;
    ngx_str_t                    body;          /* the decision API's body;
                                                   empty when enforcing */
    ngx_http_sark_spans_t        spans;
} ngx_http_sark_question_t;


/* the answer, from sarkd (or, later, a cache) */
typedef struct {
    ngx_uint_t                   decision;      /* SARK_DECISION_* */
    ngx_str_t                    reason;
    ngx_str_t                    filtered_parameters;
    ngx_str_t                    policy_revision;
    ngx_str_t                    error_code;
    uint64_t                     evaluated_at;  /* Unix ms */
    ngx_uint_t                   cache_ttl;
    ngx_uint_t                   retry_after;
    ngx_uint_t                   cache_layer;
    ngx_int_t                    max_delegation;    /* a2a; -1: none */
} ngx_http_sark_decision_t;


/* an error to answer with: HTTP status + envelope code + message */
typedef struct {
    ngx_uint_t                   status;
    const char                  *code;
    ngx_str_t                    message;
    ngx_uint_t                   retry_after;
    ngx_int_t                    rpc_code;      /* JSON-RPC error code on
                                                   MCP locations; 0: by
                                                   status */
    const char                  *field;         /* the member of the body
                                                   (or header) at fault */
    unsigned                     in_header:1;   /* field names a header */
    unsigned                     in_query:1;    /* field names a query
                                                   argument */
    unsigned                     page:1;        /* nginx's own error page */
    unsigned                     missing:1;     /* field is not there */
    unsigned                     www_authenticate:1;
    unsigned                     invalid_token:1;
} ngx_http_sark_error_t;


typedef struct ngx_http_sark_ctx_s  ngx_http_sark_ctx_t;
typedef struct ngx_http_sark_mcp_s  ngx_http_sark_mcp_t;

typedef void (*ngx_http_sark_done_pt)(ngx_http_request_t *r,
    ngx_http_sark_ctx_t *ctx);

struct ngx_http_sark_ctx_s {
    ngx_http_request_t          *request;
    ngx_http_sark_call_t         call;
    ngx_http_sark_identity_t     identity;
    ngx_http_sark_query_t        query;
    ngx_http_sark_decision_t     decision;
    ngx_http_sark_key_t          key;
    ngx_uint_t                   key_gen;       /* revision generation the
                                                   key was made under */
    ngx_http_sark_question_t    *question;      /* the token's memo of this
                                                   question, the same while
                                                   deciding from L1 */
    ngx_str_t                    body;          /* the request body (the
                                                   sark_api endpoints'), */
    size_t                       body_cap;      /* room at body.data */
    size_t                       body_max;
    ngx_http_sark_spans_t       *spans;         /* where its query is, when
                                                   it may be remembered */
    u_char                       audit_raw[16]; /* UUIDv7, formatted when
                                                   first asked for */
    ngx_str_t                    audit_id;

    /* runs when a decision that went to sarkd is known */
    ngx_http_sark_done_pt        done;
    ngx_http_sark_error_t        error;         /* set when status != 0 */

    ngx_msec_t                   started;
    ngx_msec_t                   elapsed;
    uint64_t                     started_us;    /* monotonic, for the
                                                   latency histogram */
    uint64_t                     cache_us;      /* sark_profile: L1 lookup, */
    uint64_t                     sarkd_us;      /* the call to sarkd, */
    uint64_t                     audit_us;      /* the audit event */

    void                        *data;          /* the endpoint's own */
    ngx_http_sark_mcp_t         *mcp;           /* at sark_mcp locations */
    ngx_str_t                    audit_metadata;    /* JSON object text */
    ngx_str_t                    gateway_key;   /* the id of the key a
                                                   gateway caller presents
                                                   ("static": the
                                                   sark_gateway_key) */

    ngx_str_t                    page;          /* the envelope that
                                                   replaces nginx's own
                                                   error page */

    unsigned                     keyed:1;       /* key computed */
    unsigned                     waiting:1;
    unsigned                     decided:1;
    unsigned                     want_params:1;
    unsigned                     has_audit_id:1;
    unsigned                     cancelable:1;  /* cleanup registered */
    unsigned                     reading_body:1;
    unsigned                     body_too_large:1;
    unsigned                     allowed:1;     /* by sark_authz, at this
                                                   location */
    unsigned                     error_page:1;  /* nginx's own error page
                                                   becomes the envelope */
    unsigned                     dry_run:1;     /* a refusal let through by
                                                   sark_authz_dry_run */
    unsigned                     a2a:1;         /* an agent-to-agent
                                                   decision */
};


extern ngx_module_t  ngx_http_sark_module;

/* the policy revision the worker keys its L1 with (ngx_http_sark_decide.c) */
extern ngx_str_t     ngx_http_sark_revision;
extern ngx_uint_t    ngx_http_sark_revision_gen;   /* bumped on each change */


/*
 * A fast 64-bit hash (MurmurHash64A's mixing, 8 bytes a step) for the
 * per-worker memo tables; entries are always confirmed by a full compare,
 * so it only has to spread keys well.
 */

static ngx_inline uint64_t
ngx_http_sark_hash(const u_char *p, size_t len)
{
    size_t    i;
    uint64_t  h, k;

    const uint64_t  m = 0xc6a4a7935bd1e995ULL;

    h = 0x5bd1e9955bd1e995ULL ^ (len * m);

    for (i = 0; i + 8 <= len; i += 8) {
        ngx_memcpy(&k, p + i, 8);

        k *= m;
        k ^= k >> 47;
        k *= m;

        h ^= k;
        h *= m;
    }

    if (i < len) {
        k = 0;
        ngx_memcpy(&k, p + i, len - i);
        h ^= k;
        h *= m;
    }

    h ^= h >> 47;
    h *= m;
    h ^= h >> 47;

    return h;
}


typedef ngx_int_t (*ngx_http_sark_caller_pt)(ngx_http_request_t *r,
    ngx_http_sark_loc_conf_t *slcf, ngx_http_sark_ctx_t *ctx);


/*
 * The files, in the order one decision goes through them: the request
 * comes to an enforced location (access) or a sark_api endpoint
 * (endpoint, then authorize, invalidate, warm or gateway_audit), its
 * caller is identified (identity, with the memos), its body read (body),
 * its question keyed (key), decided from L1 (decide, cache) or by sarkd
 * (sarkd), audited (audit), and answered (response, error_page).
 */

/* ngx_http_sark_access.c */
ngx_int_t ngx_http_sark_access_init(ngx_conf_t *cf);
extern ngx_str_t  ngx_http_sark_audit_name;
ngx_int_t ngx_http_sark_audit_header(ngx_http_request_t *r, ngx_str_t *value,
    ngx_uint_t add);
ngx_int_t ngx_http_sark_refuse(ngx_http_request_t *r,
    ngx_http_sark_error_t *err);
ngx_int_t ngx_http_sark_refuse_final(ngx_http_request_t *r,
    ngx_http_sark_error_t *err);

/* ngx_http_sark_mcp.c */
ngx_int_t ngx_http_sark_mcp_error_body(ngx_http_request_t *r,
    ngx_http_sark_error_t *err, ngx_str_t *body);

/* ngx_http_sark_mcp_session.c */
void *ngx_http_sark_sessions_add(ngx_conf_t *cf, size_t size);
ngx_int_t ngx_http_sark_mcp_session_init(ngx_conf_t *cf);

/* ngx_http_sark_endpoint.c */
ngx_int_t ngx_http_sark_api_handler(ngx_http_request_t *r);

/* ngx_http_sark_metrics.c */
ngx_int_t ngx_http_sark_metrics_add(ngx_conf_t *cf);
void ngx_http_sark_metrics_init_process(void);
void ngx_http_sark_metrics_decision(ngx_http_sark_ctx_t *ctx);
void ngx_http_sark_metrics_error(const char *code);
void ngx_http_sark_metrics_audit(ngx_uint_t pending, size_t held,
    ngx_uint_t dropped);
uint64_t ngx_http_sark_now_us(void);
ngx_int_t ngx_http_sark_metrics_handler(ngx_http_request_t *r);

/* ngx_http_sark_health.c */
/* sarkd's status, a JSON object, or NULL and why there is none */
typedef ngx_int_t (*ngx_http_sark_status_pt)(ngx_http_request_t *r,
    ngx_http_sark_ctx_t *ctx, const sark_json_t *root, const char *why);

ngx_int_t ngx_http_sark_health_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_sark_get_only(ngx_http_request_t *r);
ngx_int_t ngx_http_sark_status_request(ngx_http_request_t *r,
    ngx_http_sark_status_pt reply);

/* ngx_http_sark_resource_doc.c */
char *ngx_http_sark_protected_resource(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_sark_start(ngx_http_request_t *r, ngx_http_sark_ctx_t *ctx,
    ngx_http_sark_caller_pt caller);
void ngx_http_sark_body_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_sark_admin_start(ngx_http_request_t *r,
    ngx_http_sark_call_handler_pt answer);
ngx_int_t ngx_http_sark_get_start(ngx_http_request_t *r,
    ngx_http_sark_ctx_t **ctxp, ngx_uint_t token);
ngx_int_t ngx_http_sark_query_check(ngx_http_request_t *r,
    const char **known, ngx_http_sark_error_t *err);
ngx_int_t ngx_http_sark_query_arg(ngx_http_request_t *r, const char *name,
    ngx_str_t *out);

/* ngx_http_sark_authorize.c */
ngx_int_t ngx_http_sark_authorize_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_sark_authorize_start(ngx_http_request_t *r,
    ngx_http_sark_ctx_t *ctx);
ngx_int_t ngx_http_sark_valid_sensitivity(ngx_str_t *s);
ngx_int_t ngx_http_sark_decide_and_answer(ngx_http_request_t *r,
    ngx_http_sark_ctx_t *ctx);
void ngx_http_sark_authorize_done(ngx_http_request_t *r,
    ngx_http_sark_ctx_t *ctx);
ngx_int_t ngx_http_sark_check_object(ngx_http_request_t *r,
    const sark_json_t *v, const char *name, ngx_str_t *out,
    ngx_http_sark_error_t *err);

/* ngx_http_sark_a2a.c */
ngx_int_t ngx_http_sark_agent_caller(ngx_http_request_t *r,
    ngx_http_sark_loc_conf_t *slcf, ngx_http_sark_ctx_t *ctx);
ngx_int_t ngx_http_sark_a2a_start(ngx_http_request_t *r,
    ngx_http_sark_ctx_t *ctx);

/* ngx_http_sark_invalidate.c */
ngx_int_t ngx_http_sark_invalidate_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_sark_invalidate_start(ngx_http_request_t *r,
    ngx_http_sark_ctx_t *ctx);

/* ngx_http_sark_warm.c */
ngx_int_t ngx_http_sark_warm_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_sark_warm_start(ngx_http_request_t *r,
    ngx_http_sark_ctx_t *ctx);

/* ngx_http_sark_gateway_audit.c */
ngx_int_t ngx_http_sark_gateway_audit_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_sark_gateway_audit_start(ngx_http_request_t *r,
    ngx_http_sark_ctx_t *ctx);

/* ngx_http_sark_identity.c */
ngx_int_t ngx_http_sark_authenticate(ngx_http_request_t *r,
    ngx_http_sark_loc_conf_t *slcf, ngx_http_sark_identity_t *id,
    ngx_http_sark_error_t *err);
ngx_int_t ngx_http_sark_admin_check(ngx_http_request_t *r,
    ngx_http_sark_loc_conf_t *slcf, ngx_http_sark_ctx_t *ctx);
ngx_table_elt_t *ngx_http_sark_find_header(ngx_http_request_t *r,
    ngx_str_t *name);

typedef struct {
    ngx_list_part_t             *part;
    ngx_uint_t                   i;
} ngx_http_sark_header_iter_t;

ngx_table_elt_t *ngx_http_sark_next_header(ngx_list_t *list, ngx_str_t *name,
    ngx_http_sark_header_iter_t *it);

/* ngx_http_sark_memo.c */
ngx_int_t ngx_http_sark_token_recall(ngx_http_request_t *r,
    ngx_http_sark_loc_conf_t *slcf, ngx_str_t *token,
    ngx_http_sark_identity_t *id);
void ngx_http_sark_token_remember(ngx_http_sark_loc_conf_t *slcf,
    ngx_str_t *token, ngx_http_sark_identity_t *id);
ngx_http_sark_question_t *ngx_http_sark_question_recall(
    ngx_http_sark_identity_t *id, void *loc, ngx_uint_t rev, ngx_str_t *body);
ngx_http_sark_question_t *ngx_http_sark_question_remember(
    ngx_http_sark_identity_t *id, void *loc, ngx_uint_t rev,
    ngx_http_sark_question_t *q);
ngx_int_t ngx_http_sark_key_recall(u_char *enc, size_t len,
    ngx_http_sark_key_t *key);
void ngx_http_sark_key_remember(u_char *enc, size_t len,
    ngx_http_sark_key_t *key, ngx_log_t *log);

/* ngx_http_sark_body.c */
#define NGX_HTTP_SARK_FIELD_REQUIRED  0x1
#define NGX_HTTP_SARK_FIELD_NONEMPTY  0x2
#define NGX_HTTP_SARK_FIELD_NULLABLE  0x4
#define NGX_HTTP_SARK_NAME_FIELD                                              \
    (NGX_HTTP_SARK_FIELD_REQUIRED|NGX_HTTP_SARK_FIELD_NONEMPTY)

ngx_int_t ngx_http_sark_body_init(ngx_conf_t *cf);
ngx_int_t ngx_http_sark_read_body(ngx_http_request_t *r,
    ngx_http_sark_ctx_t *ctx, size_t max,
    ngx_http_client_body_handler_pt post_handler);
void ngx_http_sark_text_body(ngx_http_request_t *r, ngx_str_t *body);
ngx_int_t ngx_http_sark_json_body(ngx_http_request_t *r, ngx_str_t *body,
    ngx_http_sark_error_t *err);
ngx_int_t ngx_http_sark_read_json(ngx_http_request_t *r, sark_json_t **root,
    ngx_http_sark_error_t *err);
ngx_int_t ngx_http_sark_parse_json(ngx_http_request_t *r, ngx_str_t *body,
    sark_json_t **root, ngx_http_sark_error_t *err);
ngx_int_t ngx_http_sark_get_string(ngx_http_request_t *r,
    const sark_json_t *root, const char *name, ngx_uint_t flags, size_t max,
    ngx_str_t *out, ngx_http_sark_error_t *err);
ngx_int_t ngx_http_sark_check_string(ngx_http_request_t *r,
    const sark_json_t *v, const char *name, ngx_uint_t flags, size_t max,
    ngx_str_t *out, ngx_http_sark_error_t *err);
void *ngx_http_sark_json_alloc(void *pool, size_t size);

/* ngx_http_sark_key.c */
ngx_int_t ngx_http_sark_key(ngx_http_request_t *r,
    ngx_http_sark_loc_conf_t *slcf, ngx_http_sark_ctx_t *ctx);
ngx_int_t ngx_http_sark_recall_question(ngx_http_request_t *r,
    ngx_http_sark_loc_conf_t *slcf, ngx_http_sark_ctx_t *ctx,
    ngx_str_t *body);

/* ngx_http_sark_decide.c */
ngx_http_sark_ctx_t *ngx_http_sark_create_ctx(ngx_http_request_t *r);
void ngx_http_sark_init_ctx(ngx_http_request_t *r,
    ngx_http_sark_ctx_t *ctx);
ngx_int_t ngx_http_sark_ctx_call(ngx_http_sark_ctx_t *ctx, u_char *frame,
    size_t len, ngx_msec_t timeout);
void ngx_http_sark_call_refused(ngx_http_sark_error_t *err, ngx_int_t rc);
ngx_int_t ngx_http_sark_decide(ngx_http_request_t *r,
    ngx_http_sark_ctx_t *ctx);
void ngx_http_sark_set_revision(ngx_str_t *revision);
void ngx_http_sark_load_revision(ngx_cycle_t *cycle);
void ngx_http_sark_apply_invalidation(ngx_str_t *pattern,
    uint64_t issued_at);

/* ngx_http_sark_audit.c */

/* one audit row; strings with data == NULL are left out (SQL NULL) */
typedef struct {
    u_char                      *id;            /* 16 bytes, UUIDv7 */
    uint64_t                     timestamp;     /* Unix microseconds */
    ngx_str_t                    query;         /* when set, event_type to
                                                   sensitivity as encoded by
                                                   ngx_http_sark_audit_query()
                                                   instead of the fields */
    ngx_str_t                    event_type;
    ngx_str_t                    user_id;
    ngx_str_t                    agent_id;
    ngx_str_t                    server_name;
    ngx_str_t                    tool_name;
    ngx_str_t                    action;
    ngx_str_t                    sensitivity;
    ngx_str_t                    decision;
    ngx_str_t                    reason;
    ngx_str_t                    policy_revision;
    ngx_str_t                    request_id;
    ngx_str_t                    client_ip;
    ngx_str_t                    metadata;      /* JSON object text */
    ngx_uint_t                   cache_layer;
    uint32_t                     latency_us;
    unsigned                     has_cache_layer:1;
    unsigned                     has_latency:1;
} ngx_http_sark_audit_event_t;

ngx_int_t ngx_http_sark_audit_init(ngx_cycle_t *cycle,
    ngx_http_sark_main_conf_t *smcf);
void ngx_http_sark_audit_exit(ngx_cycle_t *cycle);
void ngx_http_sark_audit_exiting(ngx_uint_t force);
ngx_int_t ngx_http_sark_new_audit_id(ngx_http_sark_ctx_t *ctx);
ngx_str_t *ngx_http_sark_audit_id(ngx_pool_t *pool, ngx_http_sark_ctx_t *ctx);
void ngx_http_sark_audit_decision(ngx_http_request_t *r,
    ngx_http_sark_ctx_t *ctx);
ngx_int_t ngx_http_sark_audit_query(ngx_pool_t *pool,
    ngx_http_sark_ctx_t *ctx, ngx_str_t *out);
size_t ngx_http_sark_audit_event_size(ngx_http_sark_audit_event_t *ev,
    ngx_uint_t same);
u_char *ngx_http_sark_audit_event_write(u_char *p,
    ngx_http_sark_audit_event_t *ev, ngx_uint_t same);
uint64_t ngx_http_sark_audit_now_us(void);
ngx_int_t ngx_http_sark_audit_meta_add(ngx_pool_t *pool, ngx_str_t *metadata,
    ngx_str_t *member);
ngx_int_t ngx_http_sark_audit_meta_string(ngx_pool_t *pool,
    ngx_str_t *metadata, const char *name, ngx_str_t *value);
ngx_int_t ngx_http_sark_audit_ack(u_char *payload, size_t len,
    ngx_uint_t *status, uint32_t *events, ngx_str_t *message);

/* ngx_http_sark_response.c */
#define ngx_http_sark_cpylit(p, lit)  ngx_cpymem(p, lit, sizeof(lit) - 1)

ngx_int_t ngx_http_sark_send_error(ngx_http_request_t *r,
    ngx_http_sark_error_t *err);
ngx_int_t ngx_http_sark_error_envelope(ngx_http_request_t *r,
    ngx_http_sark_error_t *err, ngx_str_t *body);
ngx_int_t ngx_http_sark_add_header(ngx_http_request_t *r, const char *name,
    ngx_str_t *value);
ngx_int_t ngx_http_sark_send_json(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *body);
ngx_int_t ngx_http_sark_send_body(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *type, ngx_str_t *body);
size_t ngx_http_sark_string_len(ngx_str_t *s);
u_char *ngx_http_sark_put_string(u_char *p, ngx_str_t *s);
u_char *ngx_http_sark_put_uint(u_char *p, ngx_uint_t v, ngx_uint_t width);
u_char *ngx_http_sark_put_time(u_char *p, uint64_t ms);
ngx_str_t *ngx_http_sark_log_safe(ngx_pool_t *pool, ngx_str_t *s);

/* ngx_http_sark_gateway_key.c */
void ngx_http_sark_keys_update(u_char *payload, size_t len);
void ngx_http_sark_keys_lost(void);
ngx_int_t ngx_http_sark_gateway_caller(ngx_http_request_t *r,
    ngx_http_sark_loc_conf_t *slcf, ngx_http_sark_ctx_t *ctx,
    ngx_uint_t any_bearer, uint32_t scope);
ngx_int_t ngx_http_sark_gateway_check(ngx_http_request_t *r,
    ngx_http_sark_loc_conf_t *slcf, ngx_http_sark_ctx_t *ctx);
/* ngx_http_sark_registry.c */
typedef struct {
    ngx_str_t                    name;
    ngx_str_t                    sensitivity;   /* static; empty: the
                                                   server's */
    ngx_str_t                    json;          /* the entry, as sent */
    ngx_str_t                    description;
    const sark_json_t           *parameters;    /* object, or NULL */
} ngx_http_sark_reg_tool_t;

typedef struct {
    ngx_str_t                    name;
    ngx_str_t                    url;
    ngx_str_t                    description;
    ngx_str_t                    owner;
    ngx_str_t                    sensitivity;   /* static */
    ngx_str_t                    teams;         /* JSON array text */
    ngx_http_sark_reg_tool_t    *tools;         /* by name */
    ngx_uint_t                   ntools;
    ngx_str_t                    tools_param;   /* {"tools":[names]} */
} ngx_http_sark_reg_server_t;

typedef struct {
    ngx_pool_t                  *pool;          /* holds all of it */
    ngx_http_sark_reg_server_t  *servers;       /* by name */
    ngx_uint_t                   nservers;
    ngx_uint_t                   refs;          /* requests holding it */
} ngx_http_sark_registry_t;

extern ngx_http_sark_registry_t  *ngx_http_sark_registry;

void ngx_http_sark_registry_update(u_char *payload, size_t len);
ngx_http_sark_registry_t *ngx_http_sark_registry_hold(ngx_http_request_t *r);
ngx_http_sark_reg_server_t *ngx_http_sark_registry_find(
    ngx_http_sark_registry_t *reg, ngx_str_t *name);
ngx_http_sark_reg_tool_t *ngx_http_sark_registry_tool(
    ngx_http_sark_reg_server_t *s, ngx_str_t *name);
void ngx_http_sark_registry_sensitivity(ngx_http_sark_query_t *q);

/* ngx_http_sark_audit_query.c */
ngx_int_t ngx_http_sark_audit_query_handler(ngx_http_request_t *r);

/* ngx_http_sark_discovery.c */
ngx_int_t ngx_http_sark_discovery_handler(ngx_http_request_t *r);
ngx_uint_t ngx_http_sark_discovery_shows(const sark_json_t *tools,
    ngx_str_t *name);
ngx_uint_t ngx_http_sark_discovery_count(ngx_http_sark_reg_server_t *s,
    const sark_json_t *visible);

/* ngx_http_sark_compat.c */
ngx_uint_t ngx_http_sark_compat_invalid(ngx_http_sark_error_t *err);
ngx_int_t ngx_http_sark_compat_error_body(ngx_http_request_t *r,
    ngx_http_sark_error_t *err, ngx_str_t *body);
void ngx_http_sark_compat_outage(ngx_http_request_t *r,
    ngx_http_sark_ctx_t *ctx);
ngx_int_t ngx_http_sark_compat_listing(ngx_http_request_t *r,
    ngx_http_sark_reg_server_t **servers, sark_json_t **visible,
    ngx_uint_t n, ngx_uint_t tools, ngx_str_t *body);

/* ngx_http_sark_error_page.c */
ngx_int_t ngx_http_sark_error_page_init(ngx_conf_t *cf);

/* ngx_http_sark_variables.c */
ngx_int_t ngx_http_sark_add_variables(ngx_conf_t *cf);

/*
 * Refusals and failures are off the L1-hit paths: the compiler keeps the
 * code that leads to them apart from those paths (fewer instruction cache
 * lines per answered request).
 */
#if (defined __GNUC__)
#define NGX_HTTP_SARK_COLD  __attribute__((cold))
#else
#define NGX_HTTP_SARK_COLD
#endif

void ngx_http_sark_error_set(ngx_http_sark_error_t *err, ngx_uint_t status,
    const char *code, const char *message) NGX_HTTP_SARK_COLD;
void ngx_http_sark_error_fmt(ngx_pool_t *pool, ngx_http_sark_error_t *err,
    ngx_uint_t status, const char *code, const char *fmt, ...)
    NGX_HTTP_SARK_COLD;


#endif /* _NGX_HTTP_SARK_MODULE_H_INCLUDED_ */
