
/*
 * Copyright (C) sark-gateway authors
 */


/*
 * Enforcement on ordinary locations (`sark_authz on`): the access phase
 * authenticates the caller, decides (L1, else sarkd) and lets the request
 * go on to its content handler, or refuses it with 401/403/503 and the
 * JSON envelope.  While sarkd is asked the phase returns NGX_AGAIN and
 * resumes through ngx_http_core_run_phases() when the answer is in.
 *
 * A refusal is final: it is sent and the request finalized from the access
 * phase itself, so no later phase (try_files, mirror), no other access
 * module (satisfy any), no error_page and no post_action turns it into
 * content or an upstream request.  A precontent handler checks that a
 * request reaching content at an enforced location was allowed here: the
 * access phase does not run for subrequests, and under satisfy any an
 * access module that runs before this one may grant a request it never
 * saw; both are refused.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_sark_module.h"
#include "ngx_http_sark_mcp.h"


ngx_str_t  ngx_http_sark_audit_name = ngx_string("X-Sark-Audit-Id");


static ngx_int_t ngx_http_sark_access_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_sark_access_query(ngx_http_request_t *r,
    ngx_http_sark_loc_conf_t *slcf, ngx_http_sark_ctx_t *ctx);
static ngx_int_t ngx_http_sark_access_result(ngx_http_request_t *r,
    ngx_http_sark_ctx_t *ctx);
static void ngx_http_sark_access_done(ngx_http_request_t *r,
    ngx_http_sark_ctx_t *ctx);
static ngx_int_t ngx_http_sark_precontent_handler(ngx_http_request_t *r);


ngx_int_t
ngx_http_sark_access_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_ACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_sark_access_handler;

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_PRECONTENT_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_sark_precontent_handler;

    return NGX_OK;
}


static ngx_int_t
ngx_http_sark_access_handler(ngx_http_request_t *r)
{
    ngx_int_t                  rc;
    ngx_http_sark_ctx_t       *ctx;
    ngx_http_sark_loc_conf_t  *slcf;

    slcf = ngx_http_get_module_loc_conf(r, ngx_http_sark_module);

    if (!slcf->authz) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_sark_module);

    if (ctx) {
        if (ctx->waiting) {
            return NGX_AGAIN;
        }

        if (ctx->mcp) {
            return ngx_http_sark_mcp_resume(r, ctx);
        }

        return ngx_http_sark_access_result(r, ctx);
    }

    ctx = ngx_http_sark_create_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->done = ngx_http_sark_access_done;

    rc = ngx_http_sark_authenticate(r, slcf, &ctx->identity, &ctx->error);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc != NGX_OK) {
        return ngx_http_sark_access_result(r, ctx);
    }

    if (slcf->mcp) {
        return ngx_http_sark_mcp_start(r, slcf, ctx);
    }

    rc = ngx_http_sark_access_query(r, slcf, ctx);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc != NGX_OK) {
        return ngx_http_sark_access_result(r, ctx);
    }

    if (ngx_http_sark_new_audit_id(ctx) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_sark_decide(r, ctx);

    switch (rc) {

    case NGX_OK:
    case NGX_DECLINED:
        return ngx_http_sark_access_result(r, ctx);

    case NGX_AGAIN:
        r->write_event_handler = ngx_http_request_empty_handler;
        r->read_event_handler = ngx_http_test_reading;
        return NGX_AGAIN;

    default:
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
}


static ngx_int_t
ngx_http_sark_access_query(ngx_http_request_t *r,
    ngx_http_sark_loc_conf_t *slcf, ngx_http_sark_ctx_t *ctx)
{
    ngx_http_sark_query_t  *q;

    q = &ctx->query;

    if (slcf->authz_static) {

        /* checked when the configuration was read */

        q->action = slcf->authz_action->value;

        if (slcf->authz_server) {
            q->server_name = slcf->authz_server->value;
        }

        if (slcf->authz_tool) {
            q->tool_name = slcf->authz_tool->value;
        }

        if (slcf->authz_sensitivity) {
            q->sensitivity = slcf->authz_sensitivity->value;
        }

        return NGX_OK;
    }

    if (ngx_http_complex_value(r, slcf->authz_action, &q->action) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (slcf->authz_server
        && ngx_http_complex_value(r, slcf->authz_server, &q->server_name)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (slcf->authz_tool
        && ngx_http_complex_value(r, slcf->authz_tool, &q->tool_name)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (slcf->authz_sensitivity
        && ngx_http_complex_value(r, slcf->authz_sensitivity, &q->sensitivity)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (q->action.len == 0
        || q->action.len > NGX_HTTP_SARK_MAX_NAME
        || q->server_name.len > NGX_HTTP_SARK_MAX_NAME
        || q->tool_name.len > NGX_HTTP_SARK_MAX_NAME
        || (q->sensitivity.len
            && !ngx_http_sark_valid_sensitivity(&q->sensitivity)))
    {
        ngx_http_sark_error_set(&ctx->error, NGX_HTTP_BAD_REQUEST, "GW-100",
                                "request does not name a valid action, "
                                "server, tool or sensitivity");
        return NGX_DECLINED;
    }

    /* an empty value of a variable is no value */

    if (q->sensitivity.len == 0) {
        ngx_str_null(&q->sensitivity);
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_sark_access_result(ngx_http_request_t *r, ngx_http_sark_ctx_t *ctx)
{
    ngx_str_t                 *id;
    ngx_http_sark_decision_t  *d;

    d = &ctx->decision;

    if (ctx->error.status == 0) {

        if (d->decision == SARK_DECISION_ALLOW) {
            ctx->allowed = 1;

            /*
             * a client's X-Sark-Audit-Id never reaches the upstream as
             * the client wrote it (proxy_set_header X-Sark-Audit-Id
             * $sark_audit_id sends it always)
             */

            id = ngx_http_sark_find_header(r, &ngx_http_sark_audit_name)
                 ? ngx_http_sark_audit_id(r->pool, ctx) : NULL;

            if (id && ngx_http_sark_audit_header(r, id, 0) != NGX_OK) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            return NGX_OK;
        }

        ngx_http_sark_error_set(&ctx->error, NGX_HTTP_FORBIDDEN, "AZ-001",
                                "");
        ctx->error.message = d->reason;
    }

    return ngx_http_sark_refuse(r, &ctx->error);
}


static void
ngx_http_sark_access_done(ngx_http_request_t *r, ngx_http_sark_ctx_t *ctx)
{
    ngx_connection_t  *c;

    c = r->connection;

    r->read_event_handler = ngx_http_block_reading;
    r->write_event_handler = ngx_http_core_run_phases;

    ngx_http_core_run_phases(r);
    ngx_http_run_posted_requests(c);
}


/*
 * Sends the refusal and finalizes the request; NGX_DONE tells the phase
 * engine to run nothing more.  A refusal that cannot be sent closes the
 * connection: handing nginx an error status instead would let error_page
 * redirect the request.  Under sark_authz_dry_run the refusal is logged
 * instead and NGX_OK lets the request go on.
 */

ngx_int_t
ngx_http_sark_refuse(ngx_http_request_t *r, ngx_http_sark_error_t *err)
{
    ngx_http_sark_ctx_t       *ctx;
    ngx_http_sark_loc_conf_t  *slcf;

    slcf = ngx_http_get_module_loc_conf(r, ngx_http_sark_module);

    if (slcf->dry_run) {

        /* sark_authz_dry_run: said, not done */

        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "sark: dry run: would have refused with %ui %s: \"%V\"",
                      err->status, err->code,
                      ngx_http_sark_log_safe(r->pool, &err->message));

        ctx = ngx_http_get_module_ctx(r, ngx_http_sark_module);

        if (ctx) {
            ctx->allowed = 1;
            ctx->dry_run = 1;
        }

        return NGX_OK;
    }

    return ngx_http_sark_refuse_final(r, err);
}


/* the refusal itself, dry run or not (when the request cannot go on) */

ngx_int_t
ngx_http_sark_refuse_final(ngx_http_request_t *r, ngx_http_sark_error_t *err)
{
    ngx_int_t                  rc;
    ngx_http_core_loc_conf_t  *clcf;

    rc = ngx_http_discard_request_body(r);

    if (rc == NGX_OK) {
        rc = ngx_http_sark_send_error(r, err);
    }

    if (rc == NGX_ERROR || rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        rc = NGX_ERROR;
    }

    /*
     * post_action would send the refused request to its location once the
     * answer is out; nginx skips it for a request already in one that may
     * not redirect any more
     */

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    if (clcf->post_action.data) {
        r->post_action = 1;
        r->uri_changes = 0;
    }

    ngx_http_finalize_request(r, rc);

    return NGX_DONE;
}


static ngx_int_t
ngx_http_sark_precontent_handler(ngx_http_request_t *r)
{
    ngx_http_sark_ctx_t       *ctx;
    ngx_http_sark_error_t      err;
    ngx_http_sark_loc_conf_t  *slcf;

    slcf = ngx_http_get_module_loc_conf(r, ngx_http_sark_module);

    if (!slcf->authz) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_sark_module);

    if (ctx && ctx->allowed) {
        return NGX_DECLINED;
    }

    if (r != r->main) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "sark: refused a subrequest to an enforced location: "
                      "subrequests skip the access phase");

    } else {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "sark: refused a request that reached content without "
                      "a decision: another access module granted it before "
                      "sark_authz could decide (satisfy any?)");
    }

    ngx_http_sark_error_set(&err, NGX_HTTP_FORBIDDEN, "AZ-003",
                            "request was not authorized");

    if (ngx_http_sark_refuse(r, &err) == NGX_OK) {
        return NGX_DECLINED;        /* dry run: the phase goes on */
    }

    return NGX_DONE;
}


/*
 * The request's X-Sark-Audit-Id, for the upstream: every such header the
 * client sent gets `value`; with `add`, one is added when there is none
 */

ngx_int_t
ngx_http_sark_audit_header(ngx_http_request_t *r, ngx_str_t *value,
    ngx_uint_t add)
{
    ngx_uint_t                    found;
    ngx_table_elt_t              *h;
    ngx_http_sark_header_iter_t   it;

    static u_char  lowcase[] = "x-sark-audit-id";

    found = 0;
    ngx_memzero(&it, sizeof(ngx_http_sark_header_iter_t));

    while ((h = ngx_http_sark_next_header(&r->headers_in.headers,
                                          &ngx_http_sark_audit_name, &it)))
    {
        h->value = *value;
        found = 1;
    }

    if (found || !add) {
        return NGX_OK;
    }

    h = ngx_list_push(&r->headers_in.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    ngx_str_set(&h->key, "X-Sark-Audit-Id");
    h->value = *value;
    h->lowcase_key = lowcase;
    h->hash = ngx_hash_key(lowcase, sizeof(lowcase) - 1);

    return NGX_OK;
}
