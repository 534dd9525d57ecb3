
/*
 * Copyright (C) sark-gateway authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_sark_module.h"


static ngx_int_t ngx_http_sark_user_caller(ngx_http_request_t *r,
    ngx_http_sark_loc_conf_t *slcf, ngx_http_sark_ctx_t *ctx);
static ngx_int_t ngx_http_sark_api_decide(ngx_http_request_t *r,
    ngx_http_sark_ctx_t *ctx);
static ngx_int_t ngx_http_sark_parse_query(ngx_http_request_t *r,
    const sark_json_t *root, ngx_str_t *body, ngx_http_sark_ctx_t *ctx,
    ngx_http_sark_error_t *err);
static void ngx_http_sark_query_spans(ngx_http_request_t *r,
    const sark_json_t **m, ngx_str_t *body, ngx_http_sark_ctx_t *ctx);
static ngx_int_t ngx_http_sark_check_object(ngx_http_request_t *r,
    const sark_json_t *v, const char *name, ngx_str_t *out,
    ngx_http_sark_error_t *err);
static ngx_int_t ngx_http_sark_one_of(ngx_str_t *s, ngx_str_t *set);
static void ngx_http_sark_api_done(ngx_http_request_t *r,
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


ngx_int_t
ngx_http_sark_api_handler(ngx_http_request_t *r)
{
    ngx_http_sark_ctx_t       *ctx;
    ngx_http_sark_loc_conf_t  *slcf;

    slcf = ngx_http_get_module_loc_conf(r, ngx_http_sark_module);

    if (slcf->api == NGX_HTTP_SARK_API_INVALIDATE) {
        return ngx_http_sark_invalidate_handler(r);
    }

    if (slcf->api == NGX_HTTP_SARK_API_WARM) {
        return ngx_http_sark_warm_handler(r);
    }

    if (slcf->api == NGX_HTTP_SARK_API_AUDIT) {
        return ngx_http_sark_gateway_audit_handler(r);
    }

    ctx = ngx_http_sark_create_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->done = ngx_http_sark_api_done;
    ctx->want_params = 1;

    return ngx_http_sark_start(r, ctx, ngx_http_sark_user_caller);
}


/*
 * The common start of every sark_api endpoint: POST only, a caller that
 * `caller` accepts, a body within sark_max_body_size, read into ctx->body
 * (ngx_http_sark_body.c), then ngx_http_sark_body_handler().  Refusals
 * discard the body and answer with the envelope at once.
 */

ngx_int_t
ngx_http_sark_start(ngx_http_request_t *r, ngx_http_sark_ctx_t *ctx,
    ngx_http_sark_caller_pt caller)
{
    ngx_int_t                  rc;
    ngx_http_sark_loc_conf_t  *slcf;

    slcf = ngx_http_get_module_loc_conf(r, ngx_http_sark_module);

    if (!(r->method & NGX_HTTP_POST)) {
        ngx_http_sark_error_set(&ctx->error, NGX_HTTP_NOT_ALLOWED, "GW-101",
                                "method not allowed: use POST");
        goto reject;
    }

    rc = caller(r, slcf, ctx);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc != NGX_OK) {
        goto reject;
    }

    if (r->headers_in.content_length_n > (off_t) slcf->max_body_size) {
        ngx_http_sark_error_fmt(r->pool, &ctx->error,
                                NGX_HTTP_REQUEST_ENTITY_TOO_LARGE, "GW-413",
                                "request body is larger than %uz bytes",
                                slcf->max_body_size);
        goto reject;
    }

    rc = ngx_http_sark_read_body(r, ctx, slcf->max_body_size,
                                 ngx_http_sark_body_handler);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;

reject:

    rc = ngx_http_discard_request_body(r);

    if (rc != NGX_OK) {
        return rc;
    }

    return ngx_http_sark_send_error(r, &ctx->error);
}


/* the decision API's callers: a user with a valid token */

static ngx_int_t
ngx_http_sark_user_caller(ngx_http_request_t *r,
    ngx_http_sark_loc_conf_t *slcf, ngx_http_sark_ctx_t *ctx)
{
    ngx_int_t  rc;

    rc = ngx_http_sark_authenticate(r, slcf, &ctx->identity, &ctx->error);

    if (rc == NGX_OK) {
        return NGX_OK;
    }

    return ctx->error.status ? NGX_DECLINED : NGX_ERROR;
}


/* every sark_api endpoint goes on here once its body is read */

void
ngx_http_sark_body_handler(ngx_http_request_t *r)
{
    ngx_int_t                  rc;
    ngx_http_sark_ctx_t       *ctx;
    ngx_http_sark_loc_conf_t  *slcf;

    slcf = ngx_http_get_module_loc_conf(r, ngx_http_sark_module);
    ctx = ngx_http_get_module_ctx(r, ngx_http_sark_module);

    switch (slcf->api) {

    case NGX_HTTP_SARK_API_INVALIDATE:
        rc = ngx_http_sark_invalidate_start(r, ctx);
        break;

    case NGX_HTTP_SARK_API_WARM:
        rc = ngx_http_sark_warm_start(r, ctx);
        break;

    case NGX_HTTP_SARK_API_AUDIT:
        rc = ngx_http_sark_gateway_audit_start(r, ctx);
        break;

    default:
        rc = ngx_http_sark_api_decide(r, ctx);
    }

    if (rc == NGX_DONE) {
        return;
    }

    if (rc == NGX_DECLINED) {
        rc = ngx_http_sark_send_error(r, &ctx->error);
    }

    ngx_http_finalize_request(r, rc);
}


static ngx_int_t
ngx_http_sark_api_decide(ngx_http_request_t *r, ngx_http_sark_ctx_t *ctx)
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

    if (ngx_http_sark_recall_query(r, slcf, ctx, &body) != NGX_OK) {

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

    rc = ngx_http_sark_decide(r, ctx);

    switch (rc) {

    case NGX_OK:
        return ngx_http_sark_send_decision(r, ctx);

    case NGX_AGAIN:
        return NGX_DONE;

    case NGX_DECLINED:
        return NGX_DECLINED;

    default:
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
}


static void
ngx_http_sark_api_done(ngx_http_request_t *r, ngx_http_sark_ctx_t *ctx)
{
    ngx_int_t          rc;
    ngx_connection_t  *c;

    c = r->connection;

    if (ctx->error.status) {
        rc = ngx_http_sark_send_error(r, &ctx->error);

    } else {
        rc = ngx_http_sark_send_decision(r, ctx);
    }

    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}


/* the first request header called `name` (any case), or NULL */

ngx_table_elt_t *
ngx_http_sark_find_header(ngx_http_request_t *r, ngx_str_t *name)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NULL;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == name->len
            && ngx_strncasecmp(h[i].key.data, name->data, name->len) == 0)
        {
            return &h[i];
        }
    }
}


/*
 * The request body as a JSON document: read whole, within
 * sark_max_body_size, not empty, parsed within sark_json_max_depth.
 * NGX_DECLINED with err set for a bad body.
 */

ngx_int_t
ngx_http_sark_read_json(ngx_http_request_t *r, sark_json_t **root,
    ngx_http_sark_error_t *err)
{
    ngx_int_t  rc;
    ngx_str_t  body;

    rc = ngx_http_sark_json_body(r, &body, err);
    if (rc != NGX_OK) {
        return rc;
    }

    return ngx_http_sark_parse_json(r, &body, root, err);
}


/* the request body, read whole by ngx_http_sark_read_body(), not empty */

ngx_int_t
ngx_http_sark_json_body(ngx_http_request_t *r, ngx_str_t *body,
    ngx_http_sark_error_t *err)
{
    ngx_http_sark_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_sark_module);

    *body = ctx->body;

    if (body->len == 0) {
        ngx_http_sark_error_set(err, NGX_HTTP_BAD_REQUEST, "GW-100",
                                "request body is empty: "
                                "expected a JSON object");
        return NGX_DECLINED;
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_sark_parse_json(ngx_http_request_t *r, ngx_str_t *body,
    sark_json_t **root, ngx_http_sark_error_t *err)
{
    char                       msg[SARK_JSON_ERR_LEN];
    ngx_http_sark_loc_conf_t  *slcf;

    slcf = ngx_http_get_module_loc_conf(r, ngx_http_sark_module);

    msg[0] = '\0';

    if (sark_json_parse(body->data, body->len, slcf->json_max_depth,
                        ngx_http_sark_json_alloc, r->pool, root,
                        msg, sizeof(msg))
        != 0)
    {
        ngx_http_sark_error_fmt(r->pool, err, NGX_HTTP_BAD_REQUEST, "GW-100",
                                "%s", msg[0] ? msg : "invalid JSON");
        return NGX_DECLINED;
    }

    return NGX_OK;
}


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


static ngx_int_t
ngx_http_sark_parse_query(ngx_http_request_t *r, const sark_json_t *root,
    ngx_str_t *body, ngx_http_sark_ctx_t *ctx, ngx_http_sark_error_t *err)
{
    ngx_uint_t              i, invoke, serverless;
    const sark_json_t      *v, *m[NGX_HTTP_SARK_Q_N];
    ngx_http_sark_query_t  *q;

    q = &ctx->query;

    if (root->type != SARK_JSON_OBJECT) {
        ngx_http_sark_error_set(err, NGX_HTTP_BAD_REQUEST, "GW-100",
                                "request body must be a JSON object");
        return NGX_DECLINED;
    }

    /* the parser refuses duplicate names: a member matches at most once */

    ngx_memzero(m, sizeof(m));

    for (v = root->child; v; v = v->next) {
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
 * A query whose strings have no escapes can be taken from the body again
 * when the same body comes back (ngx_http_sark_recall_query()): where its
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


/*
 * A string field of a request body: absent and null give a NULL string,
 * refused when NGX_HTTP_SARK_FIELD_REQUIRED; an empty one is refused with
 * NGX_HTTP_SARK_FIELD_NONEMPTY (when required); longer than max is refused.
 * NGX_HTTP_SARK_FIELD_NULLABLE only words the type error ("string or null").
 */

ngx_int_t
ngx_http_sark_get_string(ngx_http_request_t *r, const sark_json_t *root,
    const char *name, ngx_uint_t flags, size_t max, ngx_str_t *out,
    ngx_http_sark_error_t *err)
{
    return ngx_http_sark_check_string(r, sark_json_get(root, name), name,
                                      flags, max, out, err);
}


/* the same for a member already found (v), or not there (NULL) */

ngx_int_t
ngx_http_sark_check_string(ngx_http_request_t *r, const sark_json_t *v,
    const char *name, ngx_uint_t flags, size_t max, ngx_str_t *out,
    ngx_http_sark_error_t *err)
{
    ngx_str_null(out);

    if (v == NULL || v->type == SARK_JSON_NULL) {
        if (flags & NGX_HTTP_SARK_FIELD_REQUIRED) {
            ngx_http_sark_error_fmt(r->pool, err, NGX_HTTP_BAD_REQUEST,
                                    "GW-100", "missing required field \"%s\"",
                                    name);
            return NGX_DECLINED;
        }

        return NGX_OK;
    }

    if (v->type != SARK_JSON_STRING) {
        ngx_http_sark_error_fmt(r->pool, err, NGX_HTTP_BAD_REQUEST, "GW-100",
                                (flags & NGX_HTTP_SARK_FIELD_NULLABLE)
                                ? "field \"%s\" must be a string or null"
                                : "field \"%s\" must be a string",
                                name);
        return NGX_DECLINED;
    }

    if (v->len == 0
        && (flags & NGX_HTTP_SARK_FIELD_REQUIRED)
        && (flags & NGX_HTTP_SARK_FIELD_NONEMPTY))
    {
        ngx_http_sark_error_fmt(r->pool, err, NGX_HTTP_BAD_REQUEST, "GW-100",
                                "field \"%s\" must not be empty", name);
        return NGX_DECLINED;
    }

    if (v->len > max) {
        ngx_http_sark_error_fmt(r->pool, err, NGX_HTTP_BAD_REQUEST, "GW-100",
                                "field \"%s\" is longer than %uz bytes",
                                name, max);
        return NGX_DECLINED;
    }

    /* the parser has checked the UTF-8; an empty string stays one */

    out->data = (u_char *) v->str;
    out->len = v->len;

    return NGX_OK;
}


static ngx_int_t
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


