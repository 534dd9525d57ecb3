
/*
 * Copyright (C) sark-gateway authors
 */


/*
 * The MCP registry as this worker knows it (docs/design.md, Registry):
 * sarkd pushes the whole document (REGISTRY frame) at connect and on
 * every change; it is parsed into a pool of its own that replaces the
 * previous one (kept while a request that holds it is still answering:
 * ngx_http_sark_registry_hold()).  Servers and their tools come sorted by
 * name (byte order), so lookups are binary searches.  A registered sensitivity is
 * used for a question that names none (the tool's, else its server's):
 * a new registry bumps the key generation, as a new policy revision
 * does, so no remembered key outlives the sensitivity it was made with.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_sark_module.h"


#define NGX_HTTP_SARK_REGISTRY_DEPTH  64
#define NGX_HTTP_SARK_LEVELS          4


static ngx_int_t ngx_http_sark_registry_server(ngx_pool_t *pool,
    const sark_json_t *v, ngx_http_sark_reg_server_t *s);
static ngx_int_t ngx_http_sark_registry_tools_param(ngx_pool_t *pool,
    ngx_http_sark_reg_server_t *s);
static ngx_int_t ngx_http_sark_registry_text(const sark_json_t *obj,
    const char *name, ngx_str_t *out);
static ngx_int_t ngx_http_sark_registry_sensitivity_of(const sark_json_t *obj,
    ngx_str_t *out);
static ngx_int_t ngx_http_sark_registry_cmp(ngx_str_t *a, ngx_str_t *b);
static ngx_int_t ngx_http_sark_registry_rank(ngx_str_t *level);


static void ngx_http_sark_registry_release(void *data);


/* the sensitivities, lowest first */
static ngx_str_t  ngx_http_sark_levels[NGX_HTTP_SARK_LEVELS] = {
    ngx_string("low"), ngx_string("medium"), ngx_string("high"),
    ngx_string("critical")
};


/* the current registry; NULL until sarkd sent one */
ngx_http_sark_registry_t  *ngx_http_sark_registry;


void
ngx_http_sark_registry_update(u_char *payload, size_t len)
{
    size_t                        off;
    u_char                       *text;
    char                          msg[SARK_JSON_ERR_LEN];
    ngx_uint_t                    n, i;
    sark_tlv_t                    t;
    ngx_pool_t                   *pool;
    sark_json_t                  *root;
    const sark_json_t            *servers, *v;
    ngx_http_sark_registry_t     *reg, *old;
    ngx_http_sark_reg_server_t   *s;

    off = 0;
    text = NULL;
    pool = NULL;

    while (sark_tlv_next(payload, len, &off, &t) == SARK_PROTO_OK) {
        if (t.tag != SARK_REG_JSON) {
            continue;
        }

        pool = ngx_create_pool(ngx_max(2 * t.len + 4096,
                                       NGX_DEFAULT_POOL_SIZE),
                               ngx_cycle->log);
        if (pool == NULL) {
            return;
        }

        /* the nodes point into the text: it lives in the pool too */

        text = ngx_pnalloc(pool, t.len);
        if (text == NULL) {
            goto failed;
        }

        ngx_memcpy(text, t.value, t.len);
        len = t.len;
        break;
    }

    if (text == NULL) {
        goto malformed;
    }

    if (sark_json_parse(text, len, NGX_HTTP_SARK_REGISTRY_DEPTH,
                        ngx_http_sark_json_alloc, pool, &root, msg,
                        sizeof(msg))
        != 0)
    {
        goto malformed;
    }

    servers = sark_json_get(root, "servers");

    if (servers == NULL || servers->type != SARK_JSON_ARRAY) {
        goto malformed;
    }

    for (n = 0, v = servers->child; v; v = v->next) {
        n++;
    }

    s = ngx_pcalloc(pool, (n ? n : 1) * sizeof(ngx_http_sark_reg_server_t));
    if (s == NULL) {
        goto failed;
    }

    for (i = 0, v = servers->child; v; v = v->next, i++) {
        if (ngx_http_sark_registry_server(pool, v, &s[i]) != NGX_OK
            || (i && ngx_http_sark_registry_cmp(&s[i - 1].name, &s[i].name)
                     >= 0))
        {
            goto malformed;
        }
    }

    reg = ngx_pcalloc(pool, sizeof(ngx_http_sark_registry_t));
    if (reg == NULL) {
        goto failed;
    }

    reg->pool = pool;
    reg->servers = s;
    reg->nservers = n;

    old = ngx_http_sark_registry;
    ngx_http_sark_registry = reg;

    if (old && old->refs == 0) {
        ngx_destroy_pool(old->pool);
    }

    /* keys remembered with the old sensitivities are made again */
    ngx_http_sark_revision_gen++;

    ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, 0,
                  "sark: registry of %ui MCP servers from sarkd", n);

    return;

malformed:

    ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                  "sark: malformed registry from sarkd ignored");

failed:

    if (pool) {
        ngx_destroy_pool(pool);
    }
}


static ngx_int_t
ngx_http_sark_registry_server(ngx_pool_t *pool, const sark_json_t *v,
    ngx_http_sark_reg_server_t *s)
{
    ngx_uint_t                  n, i;
    const sark_json_t          *tools, *t, *teams, *params;
    ngx_http_sark_reg_tool_t   *tool;

    if (v->type != SARK_JSON_OBJECT
        || ngx_http_sark_registry_text(v, "name", &s->name) != NGX_OK
        || s->name.len == 0
        || ngx_http_sark_registry_text(v, "url", &s->url) != NGX_OK
        || ngx_http_sark_registry_text(v, "description", &s->description)
           != NGX_OK
        || ngx_http_sark_registry_text(v, "owner", &s->owner) != NGX_OK
        || ngx_http_sark_registry_sensitivity_of(v, &s->sensitivity) != NGX_OK)
    {
        return NGX_ERROR;
    }

    teams = sark_json_get(v, "teams");
    if (teams == NULL || teams->type != SARK_JSON_ARRAY) {
        return NGX_ERROR;
    }

    s->teams.data = (u_char *) teams->raw;
    s->teams.len = teams->raw_len;

    tools = sark_json_get(v, "tools");
    if (tools == NULL || tools->type != SARK_JSON_ARRAY) {
        return NGX_ERROR;
    }

    for (n = 0, t = tools->child; t; t = t->next) {
        n++;
    }

    tool = ngx_pcalloc(pool, (n ? n : 1) * sizeof(ngx_http_sark_reg_tool_t));
    if (tool == NULL) {
        return NGX_ERROR;
    }

    for (i = 0, t = tools->child; t; t = t->next, i++) {
        if (t->type != SARK_JSON_OBJECT
            || ngx_http_sark_registry_text(t, "name", &tool[i].name) != NGX_OK
            || tool[i].name.len == 0
            || ngx_http_sark_registry_text(t, "description",
                                           &tool[i].description)
               != NGX_OK
            || ngx_http_sark_registry_sensitivity_of(t, &tool[i].sensitivity)
               != NGX_OK
            || (i && ngx_http_sark_registry_cmp(&tool[i - 1].name,
                                                &tool[i].name) >= 0))
        {
            return NGX_ERROR;
        }

        tool[i].json.data = (u_char *) t->raw;
        tool[i].json.len = t->raw_len;

        params = sark_json_get(t, "parameters");

        if (params && params->type == SARK_JSON_OBJECT) {
            tool[i].parameters = params;

        } else if (params && params->type != SARK_JSON_NULL) {
            return NGX_ERROR;
        }
    }

    s->tools = tool;
    s->ntools = n;

    return ngx_http_sark_registry_tools_param(pool, s);
}


/* {"tools":["a","b",...]}: the parameters of the server's discover question */

static ngx_int_t
ngx_http_sark_registry_tools_param(ngx_pool_t *pool,
    ngx_http_sark_reg_server_t *s)
{
    u_char      *p;
    size_t       len;
    ngx_uint_t   i;

    len = sizeof("{\"tools\":[]}") - 1;

    for (i = 0; i < s->ntools; i++) {
        len += 1 + ngx_http_sark_string_len(&s->tools[i].name);
    }

    p = ngx_pnalloc(pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    s->tools_param.data = p;
    p = ngx_http_sark_cpylit(p, "{\"tools\":[");

    for (i = 0; i < s->ntools; i++) {
        if (i) {
            *p++ = ',';
        }

        p = ngx_http_sark_put_string(p, &s->tools[i].name);
    }

    p = ngx_http_sark_cpylit(p, "]}");
    s->tools_param.len = p - s->tools_param.data;

    return NGX_OK;
}


/* a string member, or null (an empty string) */

static ngx_int_t
ngx_http_sark_registry_text(const sark_json_t *obj, const char *name,
    ngx_str_t *out)
{
    const sark_json_t  *v;

    ngx_str_null(out);

    v = sark_json_get(obj, name);

    if (v == NULL || v->type == SARK_JSON_NULL) {
        return NGX_OK;
    }

    if (v->type != SARK_JSON_STRING) {
        return NGX_ERROR;
    }

    out->data = (u_char *) v->str;
    out->len = v->len;

    return NGX_OK;
}


static ngx_int_t
ngx_http_sark_registry_sensitivity_of(const sark_json_t *obj, ngx_str_t *out)
{
    ngx_int_t  i;
    ngx_str_t  level;

    ngx_str_null(out);

    if (ngx_http_sark_registry_text(obj, "sensitivity_level", &level)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (level.data == NULL) {
        return NGX_OK;
    }

    i = ngx_http_sark_registry_rank(&level);

    if (i < 0) {
        return NGX_ERROR;
    }

    *out = ngx_http_sark_levels[i];

    return NGX_OK;
}


static ngx_int_t
ngx_http_sark_registry_cmp(ngx_str_t *a, ngx_str_t *b)
{
    ngx_int_t  rc;

    rc = ngx_memcmp(a->data, b->data, ngx_min(a->len, b->len));

    if (rc != 0) {
        return rc;
    }

    return (ngx_int_t) a->len - (ngx_int_t) b->len;
}


/*
 * The current registry for request r, which may answer from it after a
 * new one came: it is kept until r's pool goes.  NULL: none yet (or no
 * memory).
 */

ngx_http_sark_registry_t *
ngx_http_sark_registry_hold(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t        *cln;
    ngx_http_sark_registry_t  *reg;

    reg = ngx_http_sark_registry;

    if (reg == NULL) {
        return NULL;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    cln->handler = ngx_http_sark_registry_release;
    cln->data = reg;
    reg->refs++;

    return reg;
}


static void
ngx_http_sark_registry_release(void *data)
{
    ngx_http_sark_registry_t  *reg = data;

    if (--reg->refs == 0 && reg != ngx_http_sark_registry) {
        ngx_destroy_pool(reg->pool);
    }
}


ngx_http_sark_reg_server_t *
ngx_http_sark_registry_find(ngx_http_sark_registry_t *reg, ngx_str_t *name)
{
    ngx_int_t                     rc;
    ngx_uint_t                    lo, hi, mid;
    ngx_http_sark_reg_server_t   *s;

    s = reg->servers;
    lo = 0;
    hi = reg->nservers;

    while (lo < hi) {
        mid = lo + (hi - lo) / 2;
        rc = ngx_http_sark_registry_cmp(name, &s[mid].name);

        if (rc == 0) {
            return &s[mid];
        }

        if (rc < 0) {
            hi = mid;

        } else {
            lo = mid + 1;
        }
    }

    return NULL;
}


ngx_http_sark_reg_tool_t *
ngx_http_sark_registry_tool(ngx_http_sark_reg_server_t *s, ngx_str_t *name)
{
    ngx_int_t   rc;
    ngx_uint_t  lo, hi, mid;

    lo = 0;
    hi = s->ntools;

    while (lo < hi) {
        mid = lo + (hi - lo) / 2;
        rc = ngx_http_sark_registry_cmp(name, &s->tools[mid].name);

        if (rc == 0) {
            return &s->tools[mid];
        }

        if (rc < 0) {
            hi = mid;

        } else {
            lo = mid + 1;
        }
    }

    return NULL;
}


/*
 * The registered sensitivity of a question's tool (else of its server) is
 * a floor: a question without one gets it, a question that names a lower
 * one gets it as well (the caller's word may raise a tool's sensitivity,
 * never lower it: the TTL, the audit row and OPA_FAIL_CLOSED=false's
 * fail-open, which only low and medium questions get, follow it).  Static
 * strings: the question may outlive this registry.
 */

void
ngx_http_sark_registry_sensitivity(ngx_http_sark_query_t *q)
{
    ngx_str_t                   *level;
    ngx_http_sark_reg_tool_t    *t;
    ngx_http_sark_reg_server_t  *s;

    if (q->server_name.len == 0
        || ngx_http_sark_registry == NULL
        || ngx_http_sark_registry->nservers == 0)
    {
        return;
    }

    s = ngx_http_sark_registry_find(ngx_http_sark_registry, &q->server_name);
    if (s == NULL) {
        return;
    }

    t = q->tool_name.len ? ngx_http_sark_registry_tool(s, &q->tool_name)
                         : NULL;

    level = (t && t->sensitivity.data) ? &t->sensitivity : &s->sensitivity;

    if (level->data == NULL) {
        return;
    }

    if (q->sensitivity.data == NULL
        || ngx_http_sark_registry_rank(&q->sensitivity)
           < ngx_http_sark_registry_rank(level))
    {
        q->sensitivity = *level;
    }
}


/* low 0, medium 1, high 2, critical 3; another word -1 (refused later) */

static ngx_int_t
ngx_http_sark_registry_rank(ngx_str_t *level)
{
    ngx_uint_t  i;

    for (i = 0; i < NGX_HTTP_SARK_LEVELS; i++) {
        if (level->len == ngx_http_sark_levels[i].len
            && ngx_strncmp(level->data, ngx_http_sark_levels[i].data,
                           level->len) == 0)
        {
            return i;
        }
    }

    return -1;
}
