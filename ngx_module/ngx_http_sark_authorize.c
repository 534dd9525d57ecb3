
/*
 * Copyright (C) sark-gateway authors
 */


/*
 * The decision API, POST /api/v1/gateway/authorize (docs/design.md,
 * Decision API): a user with a bearer token, or a gateway with a key,
 * asks a question in the body; every decision is answered 200 {"allow",
 * "reason", ...}.  POST /api/v1/gateway/authorize-a2a goes the same way
 * with its own caller and body (ngx_http_sark_a2a.c).
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_sark_module.h"


static ngx_int_t ngx_http_sark_authorize_caller(ngx_http_request_t *r,
    ngx_http_sark_loc_conf_t *slcf, ngx_http_sark_ctx_t *ctx);
static ngx_uint_t ngx_http_sark_same_user(const sark_json_t *v,
    ngx_http_sark_identity_t *id);
static ngx_int_t ngx_http_sark_body_user(ngx_http_request_t *r,
    const sark_json_t *v, ngx_http_sark_ctx_t *ctx,
    ngx_http_sark_error_t *err);
static ngx_int_t ngx_http_sark_string_list(ngx_http_request_t *r,
    const sark_json_t *v, const char *name, ngx_str_t **out, ngx_uint_t *n,
    ngx_http_sark_error_t *err);
static ngx_int_t ngx_http_sark_parse_query(ngx_http_request_t *r,
    const sark_json_t *root, ngx_str_t *body, ngx_http_sark_ctx_t *ctx,
    ngx_http_sark_error_t *err);
static void ngx_http_sark_query_spans(ngx_http_request_t *r,
    const sark_json_t **m, ngx_str_t *body, ngx_http_sark_ctx_t *ctx);
static ngx_int_t ngx_http_sark_one_of(ngx_str_t *s, ngx_str_t *set);
static ngx_int_t ngx_http_sark_send_decision(ngx_http_request_t *r,
    ngx_http_sark_ctx_t *ctx);
static ngx_uint_t ngx_http_sark_compat_outage_of(ngx_http_request_t *r,
    ngx_http_sark_ctx_t *ctx);


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


/* the members of a decision request, found in one pass over the body */

enum {
    NGX_HTTP_SARK_Q_ACTION = 0,
    NGX_HTTP_SARK_Q_SERVER,
    NGX_HTTP_SARK_Q_TOOL,
    NGX_HTTP_SARK_Q_SENSITIVITY,
    NGX_HTTP_SARK_Q_PARAMETERS,
    NGX_HTTP_SARK_Q_CONTEXT,
    NGX_HTTP_SARK_Q_METADATA,
    NGX_HTTP_SARK_Q_N            /* NGX_HTTP_SARK_QUERY_MEMBERS */
};

static ngx_str_t  ngx_http_sark_query_names[] = {
    ngx_string("action"),
    ngx_string("server_name"),
    ngx_string("tool_name"),
    ngx_string("sensitivity_level"),
    ngx_string("parameters"),
    ngx_string("context"),
    ngx_string("gateway_metadata")
};


static ngx_str_t  ngx_http_sark_cache_names[] = {
    ngx_string("MISS"),
    ngx_string("L1"),
    ngx_string("L2")
};


ngx_int_t
ngx_http_sark_authorize_handler(ngx_http_request_t *r)
{
    ngx_http_sark_ctx_t       *ctx;
    ngx_http_sark_loc_conf_t  *slcf;

    slcf = ngx_http_get_module_loc_conf(r, ngx_http_sark_module);

    ctx = ngx_http_sark_create_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->done = ngx_http_sark_authorize_done;
    ctx->want_params = 1;

    /* agent-to-agent decisions differ in their caller and their body */

    if (slcf->api == NGX_HTTP_SARK_API_A2A) {
        ctx->a2a = 1;
        return ngx_http_sark_start(r, ctx, ngx_http_sark_agent_caller);
    }

    return ngx_http_sark_start(r, ctx, ngx_http_sark_authorize_caller);
}


/*
 * The decision API's callers: a gateway with a key of scope authorize
 * (acting as the body's user), or a user with a valid token (acting as
 * itself).
 */

static ngx_int_t
ngx_http_sark_authorize_caller(ngx_http_request_t *r,
    ngx_http_sark_loc_conf_t *slcf, ngx_http_sark_ctx_t *ctx)
{
    ngx_int_t  rc;

    rc = ngx_http_sark_gateway_caller(r, slcf, ctx, 0,
                                      SARK_KEY_SCOPE_AUTHORIZE);

    if (rc != NGX_ABORT) {
        return rc;
    }

    rc = ngx_http_sark_authenticate(r, slcf, &ctx->identity, &ctx->error);

    if (rc == NGX_OK) {
        return NGX_OK;
    }

    return ctx->error.status ? NGX_DECLINED : NGX_ERROR;
}


/* after the body is read: the question, then the decision */

ngx_int_t
ngx_http_sark_authorize_start(ngx_http_request_t *r, ngx_http_sark_ctx_t *ctx)
{
    ngx_int_t                  rc;
    ngx_str_t                  body;
    sark_json_t               *root;
    ngx_http_sark_error_t     *err;
    ngx_http_sark_loc_conf_t  *slcf;

    err = &ctx->error;
    slcf = ngx_http_get_module_loc_conf(r, ngx_http_sark_module);

    rc = ngx_http_sark_json_body(r, &body, err);
    if (rc != NGX_OK) {
        return rc;
    }

    if (ngx_http_sark_recall_question(r, slcf, ctx, &body) != NGX_OK) {

        rc = ngx_http_sark_parse_json(r, &body, &root, err);
        if (rc != NGX_OK) {
            return rc;
        }

        if (ngx_http_sark_parse_query(r, root, &body, ctx, err) != NGX_OK) {
            return err->status ? NGX_DECLINED
                               : NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    if (ngx_http_sark_new_audit_id(ctx) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the row says which gateway asked */

    if (ctx->gateway_key.len
        && ngx_http_sark_audit_meta_string(r->pool, &ctx->audit_metadata,
                                           "gateway_key", &ctx->gateway_key)
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_sark_decide_and_answer(r, ctx);
}


/* a question is ready: decided from L1 and answered, or sent to sarkd */

ngx_int_t
ngx_http_sark_decide_and_answer(ngx_http_request_t *r,
    ngx_http_sark_ctx_t *ctx)
{
    switch (ngx_http_sark_decide(r, ctx)) {

    case NGX_OK:
        return ngx_http_sark_send_decision(r, ctx);

    case NGX_AGAIN:
        return NGX_DONE;

    case NGX_DECLINED:
        if (ngx_http_sark_compat_outage_of(r, ctx)) {
            return ngx_http_sark_send_decision(r, ctx);
        }

        return NGX_DECLINED;

    default:
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
}


/* sark_api_compat sark: an outage is answered as a deny */

static ngx_uint_t
ngx_http_sark_compat_outage_of(ngx_http_request_t *r,
    ngx_http_sark_ctx_t *ctx)
{
    ngx_http_sark_loc_conf_t  *slcf;

    slcf = ngx_http_get_module_loc_conf(r, ngx_http_sark_module);

    if (slcf->compat != NGX_HTTP_SARK_COMPAT_SARK
        || ctx->error.status != NGX_HTTP_SERVICE_UNAVAILABLE)
    {
        return 0;
    }

    ngx_http_sark_compat_outage(r, ctx);

    return 1;
}


void
ngx_http_sark_authorize_done(ngx_http_request_t *r, ngx_http_sark_ctx_t *ctx)
{
    ngx_int_t          rc;
    ngx_connection_t  *c;

    c = r->connection;

    if (ctx->error.status && !ngx_http_sark_compat_outage_of(r, ctx)) {
        rc = ngx_http_sark_send_error(r, &ctx->error);

    } else {
        rc = ngx_http_sark_send_decision(r, ctx);
    }

    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}


static ngx_int_t
ngx_http_sark_parse_query(ngx_http_request_t *r, const sark_json_t *root,
    ngx_str_t *body, ngx_http_sark_ctx_t *ctx, ngx_http_sark_error_t *err)
{
    ngx_uint_t                 i, invoke, serverless;
    const sark_json_t         *v, *user, *m[NGX_HTTP_SARK_Q_N];
    ngx_http_sark_query_t     *q;
    ngx_http_sark_loc_conf_t  *slcf;

    q = &ctx->query;
    slcf = ngx_http_get_module_loc_conf(r, ngx_http_sark_module);

    if (root->type != SARK_JSON_OBJECT) {
        ngx_http_sark_error_set(err, NGX_HTTP_BAD_REQUEST, "GW-100",
                                "request body must be a JSON object");
        return NGX_DECLINED;
    }

    /* the parser refuses duplicate names: a member matches at most once */

    ngx_memzero(m, sizeof(m));
    user = NULL;

    for (v = root->child; v; v = v->next) {
        if (v->key_len == 4 && ngx_memcmp(v->key, "user", 4) == 0) {
            user = v;
            continue;
        }

        for (i = 0; i < NGX_HTTP_SARK_Q_N; i++) {
            if (v->key_len == ngx_http_sark_query_names[i].len
                && ngx_memcmp(v->key, ngx_http_sark_query_names[i].data,
                              v->key_len) == 0)
            {
                m[i] = v;
                break;
            }
        }
    }

    /* a gateway names its subject; a user token is its own */

    if (ctx->gateway_key.len) {
        if (ngx_http_sark_body_user(r, user, ctx, err) != NGX_OK) {
            return NGX_DECLINED;
        }

    } else if (user && user->type != SARK_JSON_NULL
               && !ngx_http_sark_same_user(user, &ctx->identity))
    {
        ngx_http_sark_error_set(err, NGX_HTTP_BAD_REQUEST, "GW-100",
                                "field \"user\" names another subject: only "
                                "a gateway (X-Gateway-Api-Key) may ask for "
                                "someone else; a token acts as its own");
        err->field = "user";
        return NGX_DECLINED;
    }

    if (ngx_http_sark_check_string(r, m[NGX_HTTP_SARK_Q_ACTION], "action",
                                   NGX_HTTP_SARK_NAME_FIELD,
                                   NGX_HTTP_SARK_MAX_NAME, &q->action, err)
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

    /* SARK's clients may leave both out (its fields default to null) */

    if (slcf->compat == NGX_HTTP_SARK_COMPAT_SARK) {
        invoke = 0;
        serverless = 1;
    }

    if (ngx_http_sark_check_string(r, m[NGX_HTTP_SARK_Q_SERVER],
                                   "server_name",
                                   serverless ? 0 : NGX_HTTP_SARK_NAME_FIELD,
                                   NGX_HTTP_SARK_MAX_NAME, &q->server_name,
                                   err)
        != NGX_OK
        || ngx_http_sark_check_string(r, m[NGX_HTTP_SARK_Q_TOOL], "tool_name",
                                      invoke ? NGX_HTTP_SARK_NAME_FIELD : 0,
                                      NGX_HTTP_SARK_MAX_NAME, &q->tool_name,
                                      err)
           != NGX_OK
        || ngx_http_sark_check_string(r, m[NGX_HTTP_SARK_Q_SENSITIVITY],
                                      "sensitivity_level", 0,
                                      NGX_HTTP_SARK_MAX_NAME, &q->sensitivity,
                                      err)
           != NGX_OK)
    {
        return NGX_DECLINED;
    }

    if (q->sensitivity.data && !ngx_http_sark_valid_sensitivity(&q->sensitivity))
    {
        ngx_http_sark_error_fmt(r->pool, err, NGX_HTTP_BAD_REQUEST, "GW-100",
                                "invalid sensitivity_level \"%V\": expected "
                                "low, medium, high or critical",
                                &q->sensitivity);
        err->field = "sensitivity_level";
        return NGX_DECLINED;
    }

    if (ngx_http_sark_check_object(r, m[NGX_HTTP_SARK_Q_PARAMETERS],
                                   "parameters", &q->parameters, err)
        != NGX_OK
        || ngx_http_sark_check_object(r, m[NGX_HTTP_SARK_Q_CONTEXT],
                                      "context", &q->context, err)
           != NGX_OK
        || ngx_http_sark_check_object(r, m[NGX_HTTP_SARK_Q_METADATA],
                                      "gateway_metadata",
                                      &q->gateway_metadata, err)
           != NGX_OK)
    {
        return NGX_DECLINED;
    }

    ngx_http_sark_query_spans(r, m, body, ctx);

    return NGX_OK;
}


/*
 * A gateway's subject, the body's "user": {"id", "email", "roles",
 * "teams"}, id required, the same limits as a token's claims.
 */

/*
 * A token caller's "user" that names it (an object whose id is the
 * token's sub) is ignored: the token's claims are the subject.
 */

static ngx_uint_t
ngx_http_sark_same_user(const sark_json_t *v, ngx_http_sark_identity_t *id)
{
    const sark_json_t  *uid;

    if (v->type != SARK_JSON_OBJECT) {
        return 0;
    }

    uid = sark_json_get(v, "id");

    return uid && uid->type == SARK_JSON_STRING && uid->len == id->sub.len
           && ngx_memcmp(uid->str, id->sub.data, uid->len) == 0;
}


static ngx_int_t
ngx_http_sark_body_user(ngx_http_request_t *r, const sark_json_t *v,
    ngx_http_sark_ctx_t *ctx, ngx_http_sark_error_t *err)
{
    ngx_http_sark_identity_t  *id;

    id = &ctx->identity;

    if (v == NULL || v->type == SARK_JSON_NULL) {
        ngx_http_sark_error_set(err, NGX_HTTP_BAD_REQUEST, "GW-100",
                                "missing required field \"user\": a "
                                "gateway names the user it asks for");
        err->field = "user";
        err->missing = 1;
        return NGX_DECLINED;
    }

    if (v->type != SARK_JSON_OBJECT) {
        ngx_http_sark_error_set(err, NGX_HTTP_BAD_REQUEST, "GW-100",
                                "field \"user\" must be an object");
        err->field = "user";
        return NGX_DECLINED;
    }

    if (ngx_http_sark_get_string(r, v, "id", NGX_HTTP_SARK_NAME_FIELD,
                                 NGX_HTTP_SARK_MAX_NAME, &id->sub, err)
        != NGX_OK
        || ngx_http_sark_get_string(r, v, "email",
                                    NGX_HTTP_SARK_FIELD_NULLABLE,
                                    NGX_HTTP_SARK_MAX_NAME, &id->email, err)
           != NGX_OK
        || ngx_http_sark_string_list(r, sark_json_get(v, "roles"), "roles",
                                     &id->roles, &id->nroles, err)
           != NGX_OK
        || ngx_http_sark_string_list(r, sark_json_get(v, "teams"), "teams",
                                     &id->teams, &id->nteams, err)
           != NGX_OK)
    {
        err->field = "user";
        return NGX_DECLINED;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_sark_string_list(ngx_http_request_t *r, const sark_json_t *v,
    const char *name, ngx_str_t **out, ngx_uint_t *n,
    ngx_http_sark_error_t *err)
{
    ngx_uint_t          i;
    const sark_json_t  *e;

    *out = NULL;
    *n = 0;

    if (v == NULL || v->type == SARK_JSON_NULL) {
        return NGX_OK;
    }

    if (v->type != SARK_JSON_ARRAY) {
        ngx_http_sark_error_fmt(r->pool, err, NGX_HTTP_BAD_REQUEST, "GW-100",
                                "field \"user.%s\" must be an array of "
                                "strings", name);
        return NGX_DECLINED;
    }

    for (i = 0, e = v->child; e; e = e->next) {
        i++;
    }

    if (i > NGX_HTTP_SARK_MAX_ROLES) {
        ngx_http_sark_error_fmt(r->pool, err, NGX_HTTP_BAD_REQUEST, "GW-100",
                                "field \"user.%s\" has more than %d entries",
                                name, NGX_HTTP_SARK_MAX_ROLES);
        return NGX_DECLINED;
    }

    if (i == 0) {
        return NGX_OK;
    }

    *out = ngx_palloc(r->pool, i * sizeof(ngx_str_t));
    if (*out == NULL) {
        return NGX_ERROR;
    }

    for (e = v->child; e; e = e->next) {
        if (e->type != SARK_JSON_STRING || e->len == 0
            || e->len > NGX_HTTP_SARK_MAX_NAME)
        {
            ngx_http_sark_error_fmt(r->pool, err, NGX_HTTP_BAD_REQUEST,
                                    "GW-100", "field \"user.%s\" must hold "
                                    "strings of 1 to %d bytes", name,
                                    NGX_HTTP_SARK_MAX_NAME);
            return NGX_DECLINED;
        }

        (*out)[*n].data = (u_char *) e->str;
        (*out)[*n].len = e->len;
        (*n)++;
    }

    return NGX_OK;
}


/*
 * A query whose strings have no escapes can be taken from the body again
 * when the same body comes back (ngx_http_sark_recall_question()): where its
 * members are is noted in ctx->spans, for the token's memo.
 */

static void
ngx_http_sark_query_spans(ngx_http_request_t *r, const sark_json_t **m,
    ngx_str_t *body, ngx_http_sark_ctx_t *ctx)
{
    ngx_uint_t              i;
    const sark_json_t      *v;
    ngx_http_sark_spans_t  *spans;

    spans = ngx_palloc(r->pool, sizeof(ngx_http_sark_spans_t));
    if (spans == NULL) {
        return;
    }

    for (i = 0; i < NGX_HTTP_SARK_QUERY_MEMBERS; i++) {
        v = m[i];

        if (v == NULL || v->type == SARK_JSON_NULL) {
            spans->off[i] = 0;
            spans->len[i] = NGX_HTTP_SARK_SPAN_NONE;
            continue;
        }

        if (v->type == SARK_JSON_STRING) {

            /* every escape decodes to fewer bytes than it takes */

            if (v->len + 2 != v->raw_len) {
                return;
            }

            spans->off[i] = (uint32_t) (v->raw + 1 - body->data);
            spans->len[i] = (uint32_t) v->len;

        } else {
            spans->off[i] = (uint32_t) (v->raw - body->data);
            spans->len[i] = (uint32_t) v->raw_len;
        }
    }

    ctx->body = *body;
    ctx->spans = spans;
}


ngx_int_t
ngx_http_sark_check_object(ngx_http_request_t *r, const sark_json_t *v,
    const char *name, ngx_str_t *out, ngx_http_sark_error_t *err)
{
    ngx_str_null(out);

    if (v == NULL || v->type == SARK_JSON_NULL) {
        return NGX_OK;
    }

    if (v->type != SARK_JSON_OBJECT) {
        ngx_http_sark_error_fmt(r->pool, err, NGX_HTTP_BAD_REQUEST, "GW-100",
                                "field \"%s\" must be an object", name);
        err->field = name;
        return NGX_DECLINED;
    }

    out->data = (u_char *) v->raw;
    out->len = v->raw_len;

    return NGX_OK;
}


/* low, medium, high or critical */

ngx_int_t
ngx_http_sark_valid_sensitivity(ngx_str_t *s)
{
    return ngx_http_sark_one_of(s, ngx_http_sark_sensitivities);
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


static ngx_int_t
ngx_http_sark_send_decision(ngx_http_request_t *r, ngx_http_sark_ctx_t *ctx)
{
    u_char                    *p;
    size_t                     len;
    ngx_str_t                  body, *cache, *aid;
    ngx_uint_t                 allow;
    ngx_http_sark_decision_t  *d;
    ngx_http_sark_loc_conf_t  *slcf;

    slcf = ngx_http_get_module_loc_conf(r, ngx_http_sark_module);
    d = &ctx->decision;
    aid = ngx_http_sark_audit_id(r->pool, ctx);

    allow = (d->decision == SARK_DECISION_ALLOW);
    cache = &ngx_http_sark_cache_names[d->cache_layer <= SARK_CACHE_L2
                                       ? d->cache_layer : 0];

    len = sizeof("{\"allow\":false,\"reason\":,\"filtered_parameters\":,"
                 "\"audit_id\":,\"cache_ttl\":,\"metadata\":{"
                 "\"policy_revision\":,\"evaluated_at\":"
                 "\"YYYY-MM-DDTHH:MM:SS.mmmZ\",\"cache\":\"MISS\"}}\n") - 1
          + ngx_http_sark_string_len(&d->reason)
          + d->filtered_parameters.len
          + ngx_http_sark_string_len(aid)
          + NGX_INT_T_LEN
          + sizeof(",\"max_delegation_depth\":") - 1 + NGX_INT_T_LEN
          + ngx_http_sark_string_len(&d->policy_revision);

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    body.data = p;

    p = allow ? ngx_http_sark_cpylit(p, "{\"allow\":true,\"reason\":")
              : ngx_http_sark_cpylit(p, "{\"allow\":false,\"reason\":");
    p = ngx_http_sark_put_string(p, &d->reason);

    if (allow && d->filtered_parameters.len) {
        p = ngx_http_sark_cpylit(p, ",\"filtered_parameters\":");
        p = ngx_cpymem(p, d->filtered_parameters.data,
                       d->filtered_parameters.len);

    } else if (slcf->compat == NGX_HTTP_SARK_COMPAT_SARK) {
        /* SARK always sends it */
        p = ngx_http_sark_cpylit(p, ",\"filtered_parameters\":null");
    }

    p = ngx_http_sark_cpylit(p, ",\"audit_id\":");

    if (aid) {
        /* hex digits and dashes: nothing to escape */
        *p++ = '"';
        p = ngx_cpymem(p, aid->data, aid->len);
        *p++ = '"';

    } else {
        p = ngx_http_sark_cpylit(p, "null");
    }

    p = ngx_http_sark_cpylit(p, ",\"cache_ttl\":");
    p = ngx_http_sark_put_uint(p, d->cache_ttl, 1);

    if (d->max_delegation >= 0) {
        p = ngx_http_sark_cpylit(p, ",\"max_delegation_depth\":");
        p = ngx_http_sark_put_uint(p, (ngx_uint_t) d->max_delegation, 1);
    }
    p = ngx_http_sark_cpylit(p, ",\"metadata\":{\"policy_revision\":");
    p = ngx_http_sark_put_string(p, &d->policy_revision);
    p = ngx_http_sark_cpylit(p, ",\"evaluated_at\":\"");
    p = ngx_http_sark_put_time(p, d->evaluated_at);
    p = ngx_http_sark_cpylit(p, "Z\",\"cache\":\"");
    p = ngx_cpymem(p, cache->data, cache->len);
    p = ngx_http_sark_cpylit(p, "\"}}\n");

    body.len = p - body.data;

    return ngx_http_sark_send_json(r, NGX_HTTP_OK, &body);
}
