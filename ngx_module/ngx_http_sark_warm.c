
/*
 * Copyright (C) sark-gateway authors
 */


/*
 * POST /api/v1/admin/cache/warm (admin only):
 *
 *   {"patterns": [{"action": "...", "server": "...", "tool": "...",
 *                  "sensitivity": "...", "users": ["u1", {"id": "u2",
 *                  "email": "...", "roles": [...], "teams": [...]}]}]}
 *
 * Every (pattern, user) pair is decided through the ordinary path, so the
 * answers land in L1 and, through sarkd, in L2.  A user given as a plain id
 * has no roles or email: decisions are cached for exactly that identity.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_sark_module.h"


#define NGX_HTTP_SARK_WARM_MAX  1000


typedef struct {
    ngx_uint_t                   pending;
    ngx_uint_t                   total;
    ngx_uint_t                   cached;
    ngx_uint_t                   allowed;
    ngx_uint_t                   denied;
    ngx_uint_t                   errors;
    unsigned                     started:1;
} ngx_http_sark_warm_t;


static ngx_int_t ngx_http_sark_warm_one(ngx_http_request_t *r,
    ngx_http_sark_warm_t *w, const sark_json_t *pattern,
    const sark_json_t *user, ngx_http_sark_error_t *err);
static ngx_int_t ngx_http_sark_warm_user(ngx_http_request_t *r,
    const sark_json_t *user, ngx_http_sark_identity_t *id);
static ngx_int_t ngx_http_sark_warm_strings(ngx_pool_t *pool,
    const sark_json_t *arr, ngx_str_t **out, ngx_uint_t *n);
static void ngx_http_sark_warm_count(ngx_http_sark_warm_t *w,
    ngx_http_sark_ctx_t *item);
static void ngx_http_sark_warm_item_done(ngx_http_request_t *r,
    ngx_http_sark_ctx_t *item);
static ngx_int_t ngx_http_sark_warm_reply(ngx_http_request_t *r,
    ngx_http_sark_warm_t *w);
static void ngx_http_sark_str_of(const sark_json_t *v, ngx_str_t *s);


ngx_int_t
ngx_http_sark_warm_handler(ngx_http_request_t *r)
{
    return ngx_http_sark_admin_start(r, NULL);
}


ngx_int_t
ngx_http_sark_warm_start(ngx_http_request_t *r, ngx_http_sark_ctx_t *ctx)
{
    char                       msg[160];
    ngx_str_t                  body;
    sark_json_t               *root;
    const sark_json_t         *patterns, *p, *users, *u;
    ngx_http_sark_warm_t      *w;
    ngx_http_sark_loc_conf_t  *slcf;

    slcf = ngx_http_get_module_loc_conf(r, ngx_http_sark_module);

    ngx_http_sark_text_body(r, &body);

    msg[0] = '\0';

    if (body.len == 0
        || sark_json_parse(body.data, body.len, slcf->json_max_depth,
                           ngx_http_sark_json_alloc, r->pool, &root,
                           msg, sizeof(msg))
           != 0)
    {
        ngx_http_sark_error_fmt(r->pool, &ctx->error, NGX_HTTP_BAD_REQUEST,
                                "GW-100", "%s", msg[0] ? msg
                                : "expected {\"patterns\": [...]}");
        return NGX_DECLINED;
    }

    patterns = sark_json_get(root, "patterns");

    if (patterns == NULL || patterns->type != SARK_JSON_ARRAY) {
        ngx_http_sark_error_set(&ctx->error, NGX_HTTP_BAD_REQUEST, "GW-100",
                                "expected {\"patterns\": [...]}");
        return NGX_DECLINED;
    }

    w = ngx_pcalloc(r->pool, sizeof(ngx_http_sark_warm_t));
    if (w == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->data = w;

    /* validate everything before the first decision is asked */

    for (p = patterns->child; p; p = p->next) {
        users = sark_json_get(p, "users");

        if (p->type != SARK_JSON_OBJECT
            || users == NULL || users->type != SARK_JSON_ARRAY)
        {
            ngx_http_sark_error_set(&ctx->error, NGX_HTTP_BAD_REQUEST,
                                    "GW-100", "each pattern needs \"action\" "
                                    "and a \"users\" array");
            return NGX_DECLINED;
        }

        w->total += users->n;
    }

    if (w->total > NGX_HTTP_SARK_WARM_MAX) {
        ngx_http_sark_error_fmt(r->pool, &ctx->error, NGX_HTTP_BAD_REQUEST,
                                "GW-100", "at most %d decisions per warm-up",
                                NGX_HTTP_SARK_WARM_MAX);
        return NGX_DECLINED;
    }

    for (p = patterns->child; p; p = p->next) {
        users = sark_json_get(p, "users");

        for (u = users->child; u; u = u->next) {
            if (ngx_http_sark_warm_one(r, w, p, u, &ctx->error) != NGX_OK) {
                return ctx->error.status ? NGX_DECLINED
                                         : NGX_HTTP_INTERNAL_SERVER_ERROR;
            }
        }
    }

    w->started = 1;

    if (w->pending) {
        return NGX_DONE;
    }

    return ngx_http_sark_warm_reply(r, w);
}


static ngx_int_t
ngx_http_sark_warm_one(ngx_http_request_t *r, ngx_http_sark_warm_t *w,
    const sark_json_t *pattern, const sark_json_t *user,
    ngx_http_sark_error_t *err)
{
    ngx_int_t               rc;
    ngx_http_sark_ctx_t    *item;
    ngx_http_sark_query_t  *q;

    item = ngx_pcalloc(r->pool, sizeof(ngx_http_sark_ctx_t));
    if (item == NULL) {
        return NGX_ERROR;
    }

    ngx_http_sark_init_ctx(r, item);
    item->done = ngx_http_sark_warm_item_done;
    item->data = w;

    q = &item->query;

    ngx_http_sark_str_of(sark_json_get(pattern, "action"), &q->action);
    ngx_http_sark_str_of(sark_json_get(pattern, "server"), &q->server_name);
    ngx_http_sark_str_of(sark_json_get(pattern, "tool"), &q->tool_name);
    ngx_http_sark_str_of(sark_json_get(pattern, "sensitivity"),
                         &q->sensitivity);

    if (q->action.len == 0
        || ngx_http_sark_warm_user(r, user, &item->identity) != NGX_OK)
    {
        ngx_http_sark_error_set(err, NGX_HTTP_BAD_REQUEST, "GW-100",
                                "each pattern needs an \"action\"; users are "
                                "ids or {\"id\", \"email\", \"roles\", "
                                "\"teams\"}");
        return NGX_DECLINED;
    }

    rc = ngx_http_sark_decide(r, item);

    switch (rc) {

    case NGX_OK:
        w->cached++;
        ngx_http_sark_warm_count(w, item);
        return NGX_OK;

    case NGX_AGAIN:
        w->pending++;
        return NGX_OK;

    case NGX_DECLINED:
        w->errors++;
        return NGX_OK;

    default:
        return NGX_ERROR;
    }
}


static ngx_int_t
ngx_http_sark_warm_user(ngx_http_request_t *r, const sark_json_t *user,
    ngx_http_sark_identity_t *id)
{
    if (user->type == SARK_JSON_STRING) {
        ngx_http_sark_str_of(user, &id->sub);
        return id->sub.len ? NGX_OK : NGX_DECLINED;
    }

    if (user->type != SARK_JSON_OBJECT) {
        return NGX_DECLINED;
    }

    ngx_http_sark_str_of(sark_json_get(user, "id"), &id->sub);
    ngx_http_sark_str_of(sark_json_get(user, "email"), &id->email);

    if (id->sub.len == 0
        || ngx_http_sark_warm_strings(r->pool, sark_json_get(user, "roles"),
                                      &id->roles, &id->nroles)
           != NGX_OK
        || ngx_http_sark_warm_strings(r->pool, sark_json_get(user, "teams"),
                                      &id->teams, &id->nteams)
           != NGX_OK)
    {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_sark_warm_strings(ngx_pool_t *pool, const sark_json_t *arr,
    ngx_str_t **out, ngx_uint_t *n)
{
    ngx_uint_t          i;
    const sark_json_t  *e;

    *out = NULL;
    *n = 0;

    if (arr == NULL) {
        return NGX_OK;
    }

    if (arr->type != SARK_JSON_ARRAY || arr->n > NGX_HTTP_SARK_MAX_ROLES) {
        return NGX_DECLINED;
    }

    *out = ngx_palloc(pool, (arr->n + 1) * sizeof(ngx_str_t));
    if (*out == NULL) {
        return NGX_ERROR;
    }

    for (i = 0, e = arr->child; e; e = e->next, i++) {
        if (e->type != SARK_JSON_STRING) {
            return NGX_DECLINED;
        }

        ngx_http_sark_str_of(e, &(*out)[i]);
    }

    *n = i;

    return NGX_OK;
}


static void
ngx_http_sark_warm_count(ngx_http_sark_warm_t *w, ngx_http_sark_ctx_t *item)
{
    if (item->error.status) {
        w->errors++;

    } else if (item->decision.decision == SARK_DECISION_ALLOW) {
        w->allowed++;

    } else {
        w->denied++;
    }
}


static void
ngx_http_sark_warm_item_done(ngx_http_request_t *r, ngx_http_sark_ctx_t *item)
{
    ngx_int_t              rc;
    ngx_connection_t      *c;
    ngx_http_sark_warm_t  *w;

    w = item->data;

    ngx_http_sark_warm_count(w, item);

    if (--w->pending || !w->started) {
        return;
    }

    c = r->connection;

    rc = ngx_http_sark_warm_reply(r, w);

    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}


static ngx_int_t
ngx_http_sark_warm_reply(ngx_http_request_t *r, ngx_http_sark_warm_t *w)
{
    ngx_str_t  body;

    body.data = ngx_pnalloc(r->pool, 160 + 6 * NGX_INT_T_LEN);
    if (body.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    body.len = ngx_sprintf(body.data,
                           "{\"status\":\"warmed\",\"decisions\":%ui,"
                           "\"already_cached\":%ui,\"allowed\":%ui,"
                           "\"denied\":%ui,\"errors\":%ui}\n",
                           w->total, w->cached, w->allowed, w->denied,
                           w->errors)
               - body.data;

    return ngx_http_sark_send_json(r, NGX_HTTP_OK, &body);
}


static void
ngx_http_sark_str_of(const sark_json_t *v, ngx_str_t *s)
{
    if (v == NULL || v->type != SARK_JSON_STRING
        || v->len > NGX_HTTP_SARK_MAX_NAME)
    {
        ngx_str_null(s);
        return;
    }

    s->data = (u_char *) v->str;
    s->len = v->len;
}
