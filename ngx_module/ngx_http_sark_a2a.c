
/*
 * Copyright (C) sark-gateway authors
 */


/*
 * Agent-to-agent decisions, POST /api/v1/gateway/authorize-a2a
 * (docs/design.md, Agent-to-agent decisions): an agent, with its token,
 * asks whether it may invoke or delegate to another agent.  The source
 * agent is the token's (its agent_id, agent_type, trust_level,
 * capabilities and environment; the body may add a display name, never
 * change what the token says); the target agent, the tool, the
 * parameters and the context come from the body.  The policy document is
 * sark.a2a; the answer is the decision API's plus "max_delegation_depth";
 * decisions are cached and audited as the others are, with event_type
 * "a2a" and the source's agent_id.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_sark_module.h"


static ngx_int_t ngx_http_sark_a2a_query(ngx_http_request_t *r,
    const sark_json_t *root, ngx_http_sark_ctx_t *ctx,
    ngx_http_sark_error_t *err);
static ngx_int_t ngx_http_sark_a2a_source(ngx_http_request_t *r,
    const sark_json_t *v, ngx_http_sark_ctx_t *ctx,
    ngx_http_sark_error_t *err);


/* an agent: a valid token with an agent_id */

ngx_int_t
ngx_http_sark_agent_caller(ngx_http_request_t *r,
    ngx_http_sark_loc_conf_t *slcf, ngx_http_sark_ctx_t *ctx)
{
    ngx_int_t  rc;

    rc = ngx_http_sark_authenticate(r, slcf, &ctx->identity, &ctx->error);

    if (rc != NGX_OK) {
        return ctx->error.status ? NGX_DECLINED : NGX_ERROR;
    }

    if (ctx->identity.agent.len == 0) {
        ngx_http_sark_error_set(&ctx->error, NGX_HTTP_UNAUTHORIZED, "AU-002",
                                "not an agent token: it has no agent_id");
        ctx->error.www_authenticate = 1;
        ctx->error.invalid_token = 1;
        return NGX_DECLINED;
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_sark_a2a_start(ngx_http_request_t *r, ngx_http_sark_ctx_t *ctx)
{
    ngx_int_t     rc;
    sark_json_t  *root;

    rc = ngx_http_sark_read_json(r, &root, &ctx->error);
    if (rc != NGX_OK) {
        return rc;
    }

    if (ngx_http_sark_a2a_query(r, root, ctx, &ctx->error) != NGX_OK) {
        return ctx->error.status ? NGX_DECLINED
                                 : NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_sark_new_audit_id(ctx) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_sark_decide_and_answer(r, ctx);
}


/*
 * {"action": "a2a:invoke"|"a2a:delegate", "source_agent": {"id", "name"},
 *  "target_agent": {"id", ...}, "tool_name", "parameters", "context"}
 */

static ngx_int_t
ngx_http_sark_a2a_query(ngx_http_request_t *r, const sark_json_t *root,
    ngx_http_sark_ctx_t *ctx, ngx_http_sark_error_t *err)
{
    ngx_str_t               target_id;
    const sark_json_t      *target;
    ngx_http_sark_query_t  *q;

    q = &ctx->query;

    if (root->type != SARK_JSON_OBJECT) {
        ngx_http_sark_error_set(err, NGX_HTTP_BAD_REQUEST, "GW-100",
                                "request body must be a JSON object");
        return NGX_DECLINED;
    }

    if (ngx_http_sark_get_string(r, root, "action", NGX_HTTP_SARK_NAME_FIELD,
                                 NGX_HTTP_SARK_MAX_NAME, &q->action, err)
        != NGX_OK)
    {
        return NGX_DECLINED;
    }

    if (!((q->action.len == sizeof("a2a:invoke") - 1
           && ngx_strncmp(q->action.data, "a2a:invoke", q->action.len) == 0)
          || (q->action.len == sizeof("a2a:delegate") - 1
              && ngx_strncmp(q->action.data, "a2a:delegate", q->action.len)
                 == 0)))
    {
        ngx_http_sark_error_fmt(r->pool, err, NGX_HTTP_BAD_REQUEST, "GW-100",
                                "unknown action \"%V\": expected a2a:invoke "
                                "or a2a:delegate", &q->action);
        err->field = "action";
        return NGX_DECLINED;
    }

    target = sark_json_get(root, "target_agent");

    if (target == NULL || target->type == SARK_JSON_NULL) {
        ngx_http_sark_error_set(err, NGX_HTTP_BAD_REQUEST, "GW-100",
                                "missing required field \"target_agent\"");
        err->field = "target_agent";
        err->missing = 1;
        return NGX_DECLINED;
    }

    if (ngx_http_sark_check_object(r, target, "target_agent",
                                   &q->target_agent, err)
        != NGX_OK
        || ngx_http_sark_get_string(r, target, "id", NGX_HTTP_SARK_NAME_FIELD,
                                    NGX_HTTP_SARK_MAX_NAME, &target_id, err)
           != NGX_OK)
    {
        err->field = "target_agent";
        return NGX_DECLINED;
    }

    /* the target names the "server" of the key and the audit row */
    q->server_name = target_id;

    if (ngx_http_sark_get_string(r, root, "tool_name", 0,
                                 NGX_HTTP_SARK_MAX_NAME, &q->tool_name, err)
        != NGX_OK
        || ngx_http_sark_check_object(r, sark_json_get(root, "parameters"),
                                      "parameters", &q->parameters, err)
           != NGX_OK
        || ngx_http_sark_check_object(r, sark_json_get(root, "context"),
                                      "context", &q->context, err)
           != NGX_OK)
    {
        return NGX_DECLINED;
    }

    return ngx_http_sark_a2a_source(r, sark_json_get(root, "source_agent"),
                                    ctx, err);
}


/*
 * The source agent: the token's.  A body's source_agent may name it (its
 * "id" must be the token's agent_id) and give it a display "name"; its
 * other members are not taken (trust and capabilities are the token's).
 */

static ngx_int_t
ngx_http_sark_a2a_source(ngx_http_request_t *r, const sark_json_t *v,
    ngx_http_sark_ctx_t *ctx, ngx_http_sark_error_t *err)
{
    u_char                    *p;
    ngx_str_t                  id, name, *agent;
    ngx_http_sark_identity_t  *ident;

    ident = &ctx->identity;
    agent = &ident->agent;

    ctx->query.source_agent = *agent;

    if (v == NULL || v->type == SARK_JSON_NULL) {
        return NGX_OK;
    }

    if (v->type != SARK_JSON_OBJECT) {
        ngx_http_sark_error_set(err, NGX_HTTP_BAD_REQUEST, "GW-100",
                                "field \"source_agent\" must be an object");
        err->field = "source_agent";
        return NGX_DECLINED;
    }

    if (ngx_http_sark_get_string(r, v, "id", NGX_HTTP_SARK_FIELD_NULLABLE,
                                 NGX_HTTP_SARK_MAX_NAME, &id, err)
        != NGX_OK
        || ngx_http_sark_get_string(r, v, "name",
                                    NGX_HTTP_SARK_FIELD_NULLABLE,
                                    NGX_HTTP_SARK_MAX_NAME, &name, err)
           != NGX_OK)
    {
        err->field = "source_agent";
        return NGX_DECLINED;
    }

    if (id.data
        && (id.len != ident->agent_id.len
            || ngx_memcmp(id.data, ident->agent_id.data, id.len) != 0))
    {
        ngx_http_sark_error_set(err, NGX_HTTP_BAD_REQUEST, "GW-100",
                                "field \"source_agent\" names another agent: "
                                "an agent token speaks for its own agent");
        err->field = "source_agent";
        return NGX_DECLINED;
    }

    if (name.data == NULL) {
        return NGX_OK;
    }

    /* the token's agent with the name: {...,"name":"..."} */

    p = ngx_pnalloc(r->pool, agent->len + sizeof(",\"name\":") - 1
                             + ngx_http_sark_string_len(&name));
    if (p == NULL) {
        return NGX_ERROR;
    }

    ctx->query.source_agent.data = p;
    p = ngx_cpymem(p, agent->data, agent->len - 1);
    p = ngx_http_sark_cpylit(p, ",\"name\":");
    p = ngx_http_sark_put_string(p, &name);
    *p++ = '}';
    ctx->query.source_agent.len = p - ctx->query.source_agent.data;

    return NGX_OK;
}
