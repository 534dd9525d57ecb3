
/*
 * Copyright (C) sark-gateway authors
 */


/*
 * Discovery (docs/design.md, Discovery): GET /api/v1/gateway/servers and
 * GET /api/v1/gateway/tools?server_name=, the registry entries the caller
 * (a user with a token) may use.  What a caller may use on a server is one
 * question, gateway:tool:discover with {"tools": [the server's tool
 * names]}, whose answer lists the visible tools (filtered_parameters): a
 * server is listed when it shows at least one tool, a tool when it is
 * shown.  Each question is decided as any other (L1, else sarkd: L2, else
 * OPA, coalesced) and audited; the questions of a listing are all asked at
 * once, each on a context of its own, and the answer is sent when the
 * last one is known.  Any outage fails the whole listing (503): an
 * incomplete list could look like a complete one.  With sark_api_compat
 * sark the answers take SARK's shapes (ngx_http_sark_compat_listing) and
 * an outage is an empty list.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_sark_module.h"


/* the servers of one listing, at most */
#define NGX_HTTP_SARK_DISCOVERY_MAX  1024


typedef struct {
    ngx_http_sark_ctx_t          *main;         /* the request's ctx */
    ngx_http_sark_registry_t     *reg;
    ngx_http_sark_reg_server_t  **servers;      /* asked about */
    ngx_http_sark_ctx_t         **asks;         /* one per server */
    ngx_uint_t                    n;
    ngx_uint_t                    pending;
    unsigned                      tools:1;      /* GET /tools */
} ngx_http_sark_discovery_t;


static ngx_int_t ngx_http_sark_discovery_ask(ngx_http_request_t *r,
    ngx_http_sark_discovery_t *dv, ngx_uint_t i);
static void ngx_http_sark_discovery_done(ngx_http_request_t *r,
    ngx_http_sark_ctx_t *ask);
static ngx_int_t ngx_http_sark_discovery_answer(ngx_http_request_t *r,
    ngx_http_sark_discovery_t *dv);
static sark_json_t *ngx_http_sark_discovery_visible(ngx_http_request_t *r,
    ngx_http_sark_ctx_t *ask);
static ngx_int_t ngx_http_sark_discovery_servers(ngx_http_request_t *r,
    ngx_http_sark_discovery_t *dv, sark_json_t **visible, ngx_str_t *body);
static ngx_int_t ngx_http_sark_discovery_tools(ngx_http_request_t *r,
    ngx_http_sark_reg_server_t *s, sark_json_t *visible, ngx_str_t *body);


static ngx_str_t  ngx_http_sark_discover = ngx_string("gateway:tool:discover");


ngx_int_t
ngx_http_sark_discovery_handler(ngx_http_request_t *r)
{
    ngx_int_t                   rc;
    ngx_str_t                   name;
    ngx_uint_t                  i, n, want, compat;
    ngx_http_sark_ctx_t        *ctx;
    ngx_http_sark_error_t      *err;
    ngx_http_sark_loc_conf_t   *slcf;
    ngx_http_sark_discovery_t  *dv;
    ngx_http_sark_reg_server_t *s;

    static const char  *known[] = { "server_name", NULL };

    slcf = ngx_http_get_module_loc_conf(r, ngx_http_sark_module);

    rc = ngx_http_sark_get_start(r, &ctx, 1);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    err = &ctx->error;

    dv = ngx_pcalloc(r->pool, sizeof(ngx_http_sark_discovery_t));
    if (dv == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    dv->main = ctx;
    dv->tools = (slcf->api == NGX_HTTP_SARK_API_TOOLS);
    ctx->data = dv;

    /* server_name: required, except by SARK's clients (all servers) */

    compat = (slcf->compat == NGX_HTTP_SARK_COMPAT_SARK);
    ngx_str_null(&name);

    if (ngx_http_sark_query_check(r, dv->tools ? known : known + 1, err)
        != NGX_OK)
    {
        return ngx_http_sark_send_error(r, err);
    }

    if (dv->tools) {
        if (ngx_http_sark_query_arg(r, "server_name", &name) != NGX_OK) {
            ngx_http_sark_error_set(err, NGX_HTTP_BAD_REQUEST, "GW-100",
                                    "parameter \"server_name\" is empty, "
                                    "holds a NUL or is not UTF-8");
            err->field = "server_name";
            err->in_query = 1;
            return ngx_http_sark_send_error(r, err);
        }

        if (name.data == NULL && !compat) {
            ngx_http_sark_error_set(err, NGX_HTTP_BAD_REQUEST, "GW-100",
                                    "missing required parameter "
                                    "\"server_name\"");
            err->field = "server_name";
            err->in_query = 1;
            err->missing = 1;
            return ngx_http_sark_send_error(r, err);
        }
    }

    dv->reg = ngx_http_sark_registry_hold(r);

    if (dv->reg == NULL) {
        ngx_http_sark_error_set(err, NGX_HTTP_SERVICE_UNAVAILABLE, "CN-001",
                                "the MCP registry is not known yet: sarkd "
                                "has not sent it");
        err->retry_after = 1;
        return ngx_http_sark_send_error(r, err);
    }

    if (dv->tools && name.data) {
        s = ngx_http_sark_registry_find(dv->reg, &name);
        n = 1;

        if (s == NULL && compat) {
            /* SARK's clients get an empty list */
            n = 0;

        } else if (s == NULL) {
            ngx_http_sark_error_fmt(r->pool, err, NGX_HTTP_NOT_FOUND,
                                    "GW-404", "unknown MCP server \"%V\"",
                                    ngx_http_sark_log_safe(r->pool, &name));
            return ngx_http_sark_send_error(r, err);
        }

    } else {
        s = dv->reg->servers;
        n = ngx_min(dv->reg->nservers, NGX_HTTP_SARK_DISCOVERY_MAX);
    }

    dv->servers = ngx_palloc(r->pool, (n ? n : 1) * sizeof(void *));
    dv->asks = ngx_pcalloc(r->pool, (n ? n : 1) * sizeof(void *));
    if (dv->servers == NULL || dv->asks == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    for (i = 0; i < n; i++) {
        dv->servers[i] = &s[i];
    }

    dv->n = n;

    /* every question at once; those L1 knows are decided here */

    want = 0;

    for (i = 0; i < n; i++) {
        rc = ngx_http_sark_discovery_ask(r, dv, i);

        if (rc == NGX_ERROR) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (rc == NGX_AGAIN) {
            want++;
        }
    }

    if (want == 0) {
        return ngx_http_sark_discovery_answer(r, dv);
    }

    dv->pending = want;
    r->main->count++;

    return NGX_DONE;
}


/* NGX_OK: decided (or refused: its ctx says); NGX_AGAIN: sarkd asked */

static ngx_int_t
ngx_http_sark_discovery_ask(ngx_http_request_t *r,
    ngx_http_sark_discovery_t *dv, ngx_uint_t i)
{
    ngx_int_t                    rc;
    ngx_http_sark_ctx_t         *ask;
    ngx_http_sark_reg_server_t  *s;

    static ngx_str_t  meta = ngx_string("{\"discovery\":true}");

    s = dv->servers[i];

    ask = ngx_pcalloc(r->pool, sizeof(ngx_http_sark_ctx_t));
    if (ask == NULL) {
        return NGX_ERROR;
    }

    ngx_http_sark_init_ctx(r, ask);

    ask->identity = dv->main->identity;
    ask->identity.token_slot = NULL;     /* no memo of these questions */
    ask->query.action = ngx_http_sark_discover;
    ask->query.server_name = s->name;
    ask->query.sensitivity = s->sensitivity;
    ask->query.parameters = s->tools_param;
    ask->want_params = 1;
    ask->audit_metadata = meta;
    ask->data = dv;
    ask->done = ngx_http_sark_discovery_done;

    dv->asks[i] = ask;

    if (ngx_http_sark_new_audit_id(ask) != NGX_OK) {
        return NGX_ERROR;
    }

    rc = ngx_http_sark_decide(r, ask);

    switch (rc) {

    case NGX_OK:
    case NGX_DECLINED:
        return NGX_OK;

    case NGX_AGAIN:
        return NGX_AGAIN;

    default:
        return NGX_ERROR;
    }
}


static void
ngx_http_sark_discovery_done(ngx_http_request_t *r, ngx_http_sark_ctx_t *ask)
{
    ngx_connection_t           *c;
    ngx_http_sark_discovery_t  *dv;

    dv = ask->data;

    if (--dv->pending) {
        return;
    }

    c = r->connection;

    ngx_http_finalize_request(r, ngx_http_sark_discovery_answer(r, dv));
    ngx_http_run_posted_requests(c);
}


static ngx_int_t
ngx_http_sark_discovery_answer(ngx_http_request_t *r,
    ngx_http_sark_discovery_t *dv)
{
    ngx_int_t                    rc;
    ngx_str_t                    body;
    ngx_uint_t                   i, compat;
    sark_json_t                **visible;
    ngx_http_sark_ctx_t         *ask;
    ngx_http_sark_loc_conf_t    *slcf;
    ngx_http_sark_reg_server_t  *s;

    static ngx_str_t  empty = ngx_string("[]\n");

    slcf = ngx_http_get_module_loc_conf(r, ngx_http_sark_module);
    compat = (slcf->compat == NGX_HTTP_SARK_COMPAT_SARK);

    /*
     * an outage of any question fails the listing; SARK's clients get an
     * empty one (its answer to a listing it could not filter)
     */

    for (i = 0; i < dv->n; i++) {
        ask = dv->asks[i];

        if (ask->error.status == 0) {
            continue;
        }

        if (!compat) {
            return ngx_http_sark_send_error(r, &ask->error);
        }

        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "sark: %s \"%V\": the listing answered empty "
                      "(sark_api_compat sark)",
                      ask->error.code, &ask->error.message);

        return ngx_http_sark_send_json(r, NGX_HTTP_OK, &empty);
    }

    visible = ngx_pcalloc(r->pool, (dv->n ? dv->n : 1) * sizeof(void *));
    if (visible == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    for (i = 0; i < dv->n; i++) {
        visible[i] = ngx_http_sark_discovery_visible(r, dv->asks[i]);
    }

    if (compat) {
        rc = ngx_http_sark_compat_listing(r, dv->servers, visible, dv->n,
                                          dv->tools, &body);

    } else if (dv->tools) {
        s = dv->servers[0];

        if (ngx_http_sark_discovery_count(s, visible[0]) == 0) {

            /* as /servers hides it, so does /tools: as if unknown */

            ngx_http_sark_error_fmt(r->pool, &dv->main->error,
                                    NGX_HTTP_NOT_FOUND, "GW-404",
                                    "unknown MCP server \"%V\"",
                                    ngx_http_sark_log_safe(r->pool,
                                                           &s->name));
            return ngx_http_sark_send_error(r, &dv->main->error);
        }

        rc = ngx_http_sark_discovery_tools(r, s, visible[0], &body);

    } else {
        rc = ngx_http_sark_discovery_servers(r, dv, visible, &body);
    }

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_sark_send_json(r, NGX_HTTP_OK, &body);
}


/* the tools an allowed answer shows (a JSON array), or NULL */

static sark_json_t *
ngx_http_sark_discovery_visible(ngx_http_request_t *r,
    ngx_http_sark_ctx_t *ask)
{
    char                       msg[SARK_JSON_ERR_LEN];
    sark_json_t               *root;
    const sark_json_t         *v;
    ngx_http_sark_decision_t  *d;

    d = &ask->decision;

    if (d->decision != SARK_DECISION_ALLOW || d->filtered_parameters.len == 0)
    {
        return NULL;
    }

    if (sark_json_parse(d->filtered_parameters.data,
                        d->filtered_parameters.len, 8,
                        ngx_http_sark_json_alloc, r->pool, &root, msg,
                        sizeof(msg))
        != 0)
    {
        return NULL;
    }

    v = sark_json_get(root, "tools");

    return (v && v->type == SARK_JSON_ARRAY) ? (sark_json_t *) v : NULL;
}


ngx_uint_t
ngx_http_sark_discovery_shows(const sark_json_t *tools, ngx_str_t *name)
{
    const sark_json_t  *v;

    for (v = tools ? tools->child : NULL; v; v = v->next) {
        if (v->type == SARK_JSON_STRING && v->len == name->len
            && ngx_memcmp(v->str, name->data, name->len) == 0)
        {
            return 1;
        }
    }

    return 0;
}


/* how many of the server's tools are shown */

ngx_uint_t
ngx_http_sark_discovery_count(ngx_http_sark_reg_server_t *s,
    const sark_json_t *visible)
{
    ngx_uint_t  j, shown;

    for (j = 0, shown = 0; j < s->ntools; j++) {
        shown += ngx_http_sark_discovery_shows(visible, &s->tools[j].name);
    }

    return shown;
}


/*
 * {"servers": [{"name", "url", "description", "sensitivity_level",
 *  "owner", "teams", "tools_count"}]}: the servers showing a tool, with the
 *  number they show
 */

static ngx_int_t
ngx_http_sark_discovery_servers(ngx_http_request_t *r,
    ngx_http_sark_discovery_t *dv, sark_json_t **visible, ngx_str_t *body)
{
    u_char                      *p;
    size_t                       len;
    ngx_uint_t                   i, shown, first;
    ngx_http_sark_reg_server_t  *s;

    len = sizeof("{\"servers\":[]}\n") - 1;

    for (i = 0; i < dv->n; i++) {
        s = dv->servers[i];

        len += sizeof(",{\"name\":,\"url\":,\"description\":,"
                      "\"sensitivity_level\":,\"owner\":,\"teams\":,"
                      "\"tools_count\":}") - 1
               + ngx_http_sark_string_len(&s->name)
               + ngx_http_sark_string_len(&s->url)
               + ngx_http_sark_string_len(&s->description)
               + ngx_http_sark_string_len(&s->sensitivity)
               + ngx_http_sark_string_len(&s->owner)
               + s->teams.len + NGX_INT_T_LEN;
    }

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    body->data = p;
    p = ngx_http_sark_cpylit(p, "{\"servers\":[");
    first = 1;

    for (i = 0; i < dv->n; i++) {
        s = dv->servers[i];
        shown = ngx_http_sark_discovery_count(s, visible[i]);

        if (shown == 0) {
            continue;
        }

        if (!first) {
            *p++ = ',';
        }

        first = 0;

        p = ngx_http_sark_cpylit(p, "{\"name\":");
        p = ngx_http_sark_put_string(p, &s->name);
        p = ngx_http_sark_cpylit(p, ",\"url\":");
        p = ngx_http_sark_put_string(p, &s->url);
        p = ngx_http_sark_cpylit(p, ",\"description\":");
        p = ngx_http_sark_put_string(p, &s->description);
        p = ngx_http_sark_cpylit(p, ",\"sensitivity_level\":");
        p = ngx_http_sark_put_string(p, &s->sensitivity);
        p = ngx_http_sark_cpylit(p, ",\"owner\":");
        p = ngx_http_sark_put_string(p, &s->owner);
        p = ngx_http_sark_cpylit(p, ",\"teams\":");
        p = ngx_cpymem(p, s->teams.data, s->teams.len);
        p = ngx_http_sark_cpylit(p, ",\"tools_count\":");
        p = ngx_http_sark_put_uint(p, shown, 1);
        *p++ = '}';
    }

    p = ngx_http_sark_cpylit(p, "]}\n");
    body->len = p - body->data;

    return NGX_OK;
}


/*
 * {"server_name", "tools": [{"name", "description", "sensitivity_level",
 *  "parameters"}]}: the registry's entries of the tools shown
 */

static ngx_int_t
ngx_http_sark_discovery_tools(ngx_http_request_t *r,
    ngx_http_sark_reg_server_t *s, sark_json_t *visible, ngx_str_t *body)
{
    u_char      *p;
    size_t       len;
    ngx_uint_t   j, first;

    len = sizeof("{\"server_name\":,\"tools\":[]}\n") - 1
          + ngx_http_sark_string_len(&s->name);

    for (j = 0; j < s->ntools; j++) {
        len += 1 + s->tools[j].json.len;
    }

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    body->data = p;
    p = ngx_http_sark_cpylit(p, "{\"server_name\":");
    p = ngx_http_sark_put_string(p, &s->name);
    p = ngx_http_sark_cpylit(p, ",\"tools\":[");
    first = 1;

    for (j = 0; j < s->ntools; j++) {
        if (!ngx_http_sark_discovery_shows(visible, &s->tools[j].name)) {
            continue;
        }

        if (!first) {
            *p++ = ',';
        }

        first = 0;
        p = ngx_cpymem(p, s->tools[j].json.data, s->tools[j].json.len);
    }

    p = ngx_http_sark_cpylit(p, "]}\n");
    body->len = p - body->data;

    return NGX_OK;
}
