
/*
 * Copyright (C) sark-gateway authors
 */


/*
 * sark_api_compat sark: a location answers as the Python SARK's clients
 * expect (docs/design.md, Compatibility with SARK's clients):
 *
 *   - errors are {"detail": "<message>"}, authentication failures
 *     {"detail": "...", "error_type": "authentication_error"};
 *   - a body (or header) that does not validate is 422
 *     {"detail": [{"type", "loc", "msg", "input"}]}, FastAPI's shape;
 *   - an outage of the decision API is a decision: 200 "allow": false,
 *     "cache_ttl": 0, audited as a deny;
 *   - a decision always carries "filtered_parameters" (null on a deny);
 *   - discovery answers bare arrays of SARK's GatewayServerInfo and
 *     GatewayToolInfo.
 *
 * The codes stay in the error log and the audit trail.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_sark_module.h"


static ngx_str_t  ngx_http_sark_outage_prefix =
    ngx_string("Policy evaluation failed: ");


/* 1 when err is a validation failure answered as FastAPI's 422 */

ngx_uint_t
ngx_http_sark_compat_invalid(ngx_http_sark_error_t *err)
{
    return err->status == NGX_HTTP_BAD_REQUEST && !err->page
           && ngx_strcmp(err->code, "GW-100") == 0;
}


ngx_int_t
ngx_http_sark_compat_error_body(ngx_http_request_t *r,
    ngx_http_sark_error_t *err, ngx_str_t *body)
{
    u_char     *p;
    size_t      len;
    ngx_str_t   field;

    field.data = (u_char *) err->field;
    field.len = err->field ? ngx_strlen(err->field) : 0;

    len = sizeof("{\"detail\":[{\"type\":\"value_error\",\"loc\":[\"header\","
                 "],\"msg\":,\"input\":null}],"
                 "\"error_type\":\"authentication_error\"}\n") - 1
          + ngx_http_sark_string_len(&field)
          + ngx_http_sark_string_len(&err->message);

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    body->data = p;

    if (!ngx_http_sark_compat_invalid(err)) {
        p = ngx_http_sark_cpylit(p, "{\"detail\":");
        p = ngx_http_sark_put_string(p, &err->message);

        if (err->status == NGX_HTTP_UNAUTHORIZED) {
            p = ngx_http_sark_cpylit(p,
                                ",\"error_type\":\"authentication_error\"");
        }

        p = ngx_http_sark_cpylit(p, "}\n");

        body->len = p - body->data;
        return NGX_OK;
    }

    p = err->missing ? ngx_http_sark_cpylit(p, "{\"detail\":[{\"type\":"
                                               "\"missing\",\"loc\":[")
                     : ngx_http_sark_cpylit(p, "{\"detail\":[{\"type\":"
                                               "\"value_error\",\"loc\":[");

    p = err->in_header ? ngx_http_sark_cpylit(p, "\"header\"")
        : err->in_query ? ngx_http_sark_cpylit(p, "\"query\"")
        : ngx_http_sark_cpylit(p, "\"body\"");

    if (field.len) {
        *p++ = ',';
        p = ngx_http_sark_put_string(p, &field);
    }

    p = ngx_http_sark_cpylit(p, "],\"msg\":");
    p = ngx_http_sark_put_string(p, &err->message);
    p = ngx_http_sark_cpylit(p, ",\"input\":null}]}\n");

    body->len = p - body->data;

    return NGX_OK;
}


/*
 * The decision API's outage (sarkd, OPA or the queue to them away) as
 * SARK answers it: a deny with cache_ttl 0 and the reason "Policy
 * evaluation failed: <message>", audited as a deny whose metadata names
 * the error code.
 */

void
ngx_http_sark_compat_outage(ngx_http_request_t *r, ngx_http_sark_ctx_t *ctx)
{
    u_char                    *p;
    size_t                     len;
    ngx_str_t                  code;
    ngx_http_sark_decision_t  *d;

    d = &ctx->decision;
    ngx_memzero(d, sizeof(ngx_http_sark_decision_t));

    d->decision = SARK_DECISION_DENY;
    d->cache_layer = SARK_CACHE_MISS;
    d->max_delegation = ctx->a2a ? 0 : -1;
    d->evaluated_at = (uint64_t) ngx_cached_time->sec * 1000
                      + ngx_cached_time->msec;
    d->policy_revision = ngx_http_sark_revision;

    len = ngx_http_sark_outage_prefix.len + ctx->error.message.len;

    p = ngx_pnalloc(r->pool, len);
    if (p != NULL) {
        d->reason.data = p;
        p = ngx_cpymem(p, ngx_http_sark_outage_prefix.data,
                       ngx_http_sark_outage_prefix.len);
        p = ngx_cpymem(p, ctx->error.message.data, ctx->error.message.len);
        d->reason.len = p - d->reason.data;

    } else {
        d->reason = ngx_http_sark_outage_prefix;
    }

    code.data = (u_char *) ctx->error.code;
    code.len = ngx_strlen(ctx->error.code);

    (void) ngx_http_sark_audit_meta_string(r->pool, &ctx->audit_metadata,
                                           "outage", &code);

    ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                  "sark: %s \"%V\" answered as a deny (sark_api_compat sark)",
                  ctx->error.code, &ctx->error.message);

    ngx_memzero(&ctx->error, sizeof(ngx_http_sark_error_t));

    ctx->decided = 1;
    ctx->elapsed = ngx_current_msec - ctx->started;

    ngx_http_sark_audit_decision(r, ctx);
}


static size_t ngx_http_sark_compat_params_len(const sark_json_t *schema);
static u_char *ngx_http_sark_compat_params(u_char *p,
    const sark_json_t *schema);


/*
 * Discovery as SARK answers it: a bare array of its GatewayServerInfo
 * ({"server_id", "server_name", "server_url", "sensitivity_level",
 * "authorized_teams", "access_restrictions": null, "health_status":
 * "unknown", "tools_count", "created_at": null, "updated_at": null}) for
 * the servers showing a tool, or of its GatewayToolInfo ({"tool_name",
 * "server_name", "description", "sensitivity_level", "parameters": [{"name",
 * "required", "schema"}], "sensitive_params": [], "required_capabilities":
 * []}) for the tools shown (of every server when none is named).  A server's
 * id is its name; its health is not probed.
 */

ngx_int_t
ngx_http_sark_compat_listing(ngx_http_request_t *r,
    ngx_http_sark_reg_server_t **servers, sark_json_t **visible,
    ngx_uint_t n, ngx_uint_t tools, ngx_str_t *body)
{
    u_char                      *p;
    size_t                       len;
    ngx_str_t                   *level;
    ngx_uint_t                   i, j, shown, first;
    ngx_http_sark_reg_tool_t    *t;
    ngx_http_sark_reg_server_t  *s;

    static ngx_str_t  medium = ngx_string("medium");

    len = sizeof("[]\n") - 1;

    for (i = 0; i < n; i++) {
        s = servers[i];

        if (!tools) {
            len += sizeof(",{\"server_id\":,\"server_name\":,\"server_url\":,"
                          "\"sensitivity_level\":,\"authorized_teams\":,"
                          "\"access_restrictions\":null,\"health_status\":"
                          "\"unknown\",\"tools_count\":,\"created_at\":null,"
                          "\"updated_at\":null}") - 1
                   + 2 * ngx_http_sark_string_len(&s->name)
                   + ngx_http_sark_string_len(&s->url)
                   + ngx_http_sark_string_len(&s->sensitivity)
                   + s->teams.len + NGX_INT_T_LEN;
            continue;
        }

        for (j = 0; j < s->ntools; j++) {
            t = &s->tools[j];
            len += sizeof(",{\"tool_name\":,\"server_name\":,\"description\":,"
                          "\"sensitivity_level\":,\"parameters\":,"
                          "\"sensitive_params\":[],"
                          "\"required_capabilities\":[]}") - 1
                   + ngx_http_sark_string_len(&t->name)
                   + ngx_http_sark_string_len(&s->name)
                   + ngx_http_sark_string_len(&t->description)
                   + ngx_http_sark_string_len(&medium)
                   + ngx_http_sark_compat_params_len(t->parameters);
        }
    }

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    body->data = p;
    *p++ = '[';
    first = 1;

    for (i = 0; i < n; i++) {
        s = servers[i];

        if (!tools) {
            shown = ngx_http_sark_discovery_count(s, visible[i]);

            if (shown == 0) {
                continue;
            }

            if (!first) {
                *p++ = ',';
            }

            first = 0;

            p = ngx_http_sark_cpylit(p, "{\"server_id\":");
            p = ngx_http_sark_put_string(p, &s->name);
            p = ngx_http_sark_cpylit(p, ",\"server_name\":");
            p = ngx_http_sark_put_string(p, &s->name);
            p = ngx_http_sark_cpylit(p, ",\"server_url\":");
            p = ngx_http_sark_put_string(p, &s->url);
            p = ngx_http_sark_cpylit(p, ",\"sensitivity_level\":");
            p = ngx_http_sark_put_string(p, &s->sensitivity);
            p = ngx_http_sark_cpylit(p, ",\"authorized_teams\":");
            p = ngx_cpymem(p, s->teams.data, s->teams.len);
            p = ngx_http_sark_cpylit(p, ",\"access_restrictions\":null,"
                                        "\"health_status\":\"unknown\","
                                        "\"tools_count\":");
            p = ngx_http_sark_put_uint(p, shown, 1);
            p = ngx_http_sark_cpylit(p, ",\"created_at\":null,"
                                        "\"updated_at\":null}");
            continue;
        }

        for (j = 0; j < s->ntools; j++) {
            t = &s->tools[j];

            if (!ngx_http_sark_discovery_shows(visible[i], &t->name)) {
                continue;
            }

            if (!first) {
                *p++ = ',';
            }

            first = 0;

            level = t->sensitivity.len ? &t->sensitivity
                    : s->sensitivity.len ? &s->sensitivity : &medium;

            p = ngx_http_sark_cpylit(p, "{\"tool_name\":");
            p = ngx_http_sark_put_string(p, &t->name);
            p = ngx_http_sark_cpylit(p, ",\"server_name\":");
            p = ngx_http_sark_put_string(p, &s->name);
            p = ngx_http_sark_cpylit(p, ",\"description\":");
            p = ngx_http_sark_put_string(p, &t->description);
            p = ngx_http_sark_cpylit(p, ",\"sensitivity_level\":");
            p = ngx_http_sark_put_string(p, level);
            p = ngx_http_sark_cpylit(p, ",\"parameters\":");
            p = ngx_http_sark_compat_params(p, t->parameters);
            p = ngx_http_sark_cpylit(p, ",\"sensitive_params\":[],"
                                        "\"required_capabilities\":[]}");
        }
    }

    p = ngx_http_sark_cpylit(p, "]\n");
    body->len = p - body->data;

    return NGX_OK;
}


/*
 * A tool's JSON schema as SARK's list of parameters: one {"name",
 * "required", "schema"} per member of "properties", "required" from the
 * schema's "required" array
 */

static size_t
ngx_http_sark_compat_params_len(const sark_json_t *schema)
{
    size_t              len;
    const sark_json_t  *props, *v;

    len = sizeof("[]") - 1;
    props = schema ? sark_json_get(schema, "properties") : NULL;

    if (props == NULL || props->type != SARK_JSON_OBJECT) {
        return len;
    }

    for (v = props->child; v; v = v->next) {
        len += sizeof(",{\"name\":,\"required\":false,\"schema\":}") - 1
               + 2 + 6 * v->key_len + v->raw_len;
    }

    return len;
}


static u_char *
ngx_http_sark_compat_params(u_char *p, const sark_json_t *schema)
{
    ngx_str_t           name;
    ngx_uint_t          required;
    const sark_json_t  *props, *req, *v, *w;

    *p++ = '[';

    props = schema ? sark_json_get(schema, "properties") : NULL;
    req = schema ? sark_json_get(schema, "required") : NULL;

    if (props == NULL || props->type != SARK_JSON_OBJECT) {
        *p++ = ']';
        return p;
    }

    for (v = props->child; v; v = v->next) {
        name.data = (u_char *) v->key;
        name.len = v->key_len;

        required = 0;

        for (w = (req && req->type == SARK_JSON_ARRAY) ? req->child : NULL;
             w;
             w = w->next)
        {
            if (w->type == SARK_JSON_STRING && w->len == name.len
                && ngx_memcmp(w->str, name.data, name.len) == 0)
            {
                required = 1;
                break;
            }
        }

        if (v != props->child) {
            *p++ = ',';
        }

        p = ngx_http_sark_cpylit(p, "{\"name\":");
        p = ngx_http_sark_put_string(p, &name);
        p = required ? ngx_http_sark_cpylit(p, ",\"required\":true")
                     : ngx_http_sark_cpylit(p, ",\"required\":false");
        p = ngx_http_sark_cpylit(p, ",\"schema\":");
        p = ngx_cpymem(p, v->raw, v->raw_len);
        *p++ = '}';
    }

    *p++ = ']';

    return p;
}
