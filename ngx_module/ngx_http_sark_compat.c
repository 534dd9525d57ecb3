
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
 *   - a decision always carries "filtered_parameters" (null on a deny).
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
    ngx_str_t                  code, member;
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

    len = sizeof("\"outage\":") - 1 + ngx_http_sark_string_len(&code);

    p = ngx_pnalloc(r->pool, len);
    if (p != NULL) {
        member.data = p;
        p = ngx_http_sark_cpylit(p, "\"outage\":");
        p = ngx_http_sark_put_string(p, &code);
        member.len = p - member.data;

        ngx_http_sark_audit_meta_add(r->pool, &ctx->audit_metadata, &member);
    }

    ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                  "sark: %s \"%V\" answered as a deny (sark_api_compat sark)",
                  ctx->error.code, &ctx->error.message);

    ngx_memzero(&ctx->error, sizeof(ngx_http_sark_error_t));

    ctx->decided = 1;
    ctx->elapsed = ngx_current_msec - ctx->started;

    ngx_http_sark_audit_decision(r, ctx);
}
