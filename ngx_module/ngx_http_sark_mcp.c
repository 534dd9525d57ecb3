
/*
 * Copyright (C) sark-gateway authors
 */


/*
 * MCP-aware enforcement (`sark_mcp on`, docs/design.md section 4.4): the
 * access phase reads the whole Streamable HTTP body, parses it as JSON-RPC
 * 2.0 and decides every message by what it asks (tools/call of this tool
 * with these arguments, resources/read, prompts/get; everything else is
 * access to the server) through the same key, L1, sarkd and audit path as
 * sark_authz.  One refused message refuses the whole request, before any
 * byte reaches the upstream; an allowed one goes on with its body as it
 * came, or with the arguments the policy filtered.  GET (the SSE stream)
 * and DELETE (the end of a session) are access to the server.
 *
 * Reading the body follows the mirror module: the access phase starts it
 * and returns NGX_DONE; once it is whole the messages are decided, one
 * after the other (each may wait for sarkd), and the phases run again,
 * this handler then answering with what was decided.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_sark_mcp.h"


/* steps sark_json_equal() may take comparing filtered arguments */
#define NGX_HTTP_SARK_MCP_EQUAL_BUDGET  65536


static ngx_uint_t ngx_http_sark_mcp_json_type(ngx_http_request_t *r);
static void ngx_http_sark_mcp_body_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_sark_mcp_session(ngx_http_request_t *r,
    ngx_http_sark_ctx_t *ctx, ngx_str_t *session);
static ngx_int_t ngx_http_sark_mcp_parse(ngx_http_request_t *r,
    ngx_http_sark_ctx_t *ctx);
static ngx_int_t ngx_http_sark_mcp_message(ngx_http_request_t *r,
    ngx_http_sark_ctx_t *ctx, const sark_json_t *v,
    ngx_http_sark_mcp_msg_t *msg);
static ngx_int_t ngx_http_sark_mcp_decide(ngx_http_request_t *r,
    ngx_http_sark_ctx_t *ctx);
static ngx_int_t ngx_http_sark_mcp_decision(ngx_http_request_t *r,
    ngx_http_sark_ctx_t *ctx);
static void ngx_http_sark_mcp_decided(ngx_http_request_t *r,
    ngx_http_sark_ctx_t *ctx);
static void ngx_http_sark_mcp_run_phases(ngx_http_request_t *r);
static ngx_int_t ngx_http_sark_mcp_rewrite(ngx_http_request_t *r,
    ngx_http_sark_ctx_t *ctx);
static ngx_int_t ngx_http_sark_mcp_audit_header(ngx_http_request_t *r,
    ngx_http_sark_mcp_t *m);
static void ngx_http_sark_mcp_invalid(ngx_http_request_t *r,
    ngx_http_sark_ctx_t *ctx, ngx_int_t code, const char *message);


static ngx_str_t  ngx_http_sark_mcp_invoke = ngx_string("gateway:tool:invoke");
static ngx_str_t  ngx_http_sark_mcp_read = ngx_string("gateway:resource:read");
static ngx_str_t  ngx_http_sark_mcp_prompt = ngx_string("gateway:prompt:get");
static ngx_str_t  ngx_http_sark_mcp_access =
    ngx_string("gateway:server:access");

static ngx_str_t  ngx_http_sark_mcp_get_meta =
    ngx_string("{\"http_method\":\"GET\"}");
static ngx_str_t  ngx_http_sark_mcp_delete_meta =
    ngx_string("{\"http_method\":\"DELETE\"}");
static ngx_str_t  ngx_http_sark_mcp_response_meta =
    ngx_string("{\"mcp_message\":\"response\"}");


/*
 * The first run of the access phase for a request whose caller is
 * authenticated: what it returns goes back to the phase engine.
 */

ngx_int_t
ngx_http_sark_mcp_start(ngx_http_request_t *r, ngx_http_sark_loc_conf_t *slcf,
    ngx_http_sark_ctx_t *ctx)
{
    ngx_int_t                 rc;
    ngx_str_t                *session;
    ngx_http_sark_mcp_t      *m;
    ngx_http_sark_mcp_msg_t  *msg;

    m = ngx_pcalloc(r->pool, sizeof(ngx_http_sark_mcp_t));
    if (m == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->mcp = m;
    ctx->done = ngx_http_sark_mcp_decided;

    if (ngx_http_complex_value(r, slcf->authz_server, &m->server) != NGX_OK
        || (slcf->authz_sensitivity
            && ngx_http_complex_value(r, slcf->authz_sensitivity,
                                      &m->sensitivity)
               != NGX_OK))
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (m->server.len == 0
        || m->server.len > NGX_HTTP_SARK_MAX_NAME
        || (m->sensitivity.len
            && !ngx_http_sark_valid_sensitivity(&m->sensitivity)))
    {
        ngx_http_sark_error_set(&ctx->error, NGX_HTTP_BAD_REQUEST, "GW-100",
                                "request does not name a valid server or "
                                "sensitivity");
        m->state = NGX_HTTP_SARK_MCP_DONE;
        return ngx_http_sark_mcp_resume(r, ctx);
    }

    if (m->sensitivity.len == 0) {
        ngx_str_null(&m->sensitivity);
    }

    if (ngx_http_sark_mcp_session_count(r) > 1) {
        ngx_http_sark_mcp_invalid(r, ctx, NGX_HTTP_SARK_RPC_INVALID,
                                  "a request names one MCP session at most");
        m->state = NGX_HTTP_SARK_MCP_DONE;
        return ngx_http_sark_mcp_resume(r, ctx);
    }

    session = ngx_http_sark_mcp_session_id(r);

    if (session) {
        rc = ngx_http_sark_mcp_session(r, ctx, session);

        if (rc != NGX_OK) {
            m->state = NGX_HTTP_SARK_MCP_DONE;
            return (rc == NGX_ERROR) ? NGX_HTTP_INTERNAL_SERVER_ERROR
                                     : ngx_http_sark_mcp_resume(r, ctx);
        }
    }

    if (r->method == NGX_HTTP_POST) {

        /*
         * the upstream must read the bytes as this module does: UTF-8
         * JSON, not compressed (a charset such as UTF-7 would give the two
         * of them different messages in the same bytes)
         */

        if (!ngx_http_sark_mcp_json_type(r)) {
            ngx_http_sark_error_set(&ctx->error,
                                    NGX_HTTP_UNSUPPORTED_MEDIA_TYPE, "GW-415",
                                    "an MCP message is sent as "
                                    "Content-Type: application/json (UTF-8), "
                                    "not compressed");
            ctx->error.rpc_code = NGX_HTTP_SARK_RPC_INVALID;
            m->state = NGX_HTTP_SARK_MCP_DONE;
            return ngx_http_sark_mcp_resume(r, ctx);
        }

        m->state = NGX_HTTP_SARK_MCP_READING;

        rc = ngx_http_sark_read_body(r, ctx, slcf->mcp_max_body,
                                     ngx_http_sark_mcp_body_handler);

        if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
            if (rc == NGX_HTTP_REQUEST_ENTITY_TOO_LARGE) {
                ngx_http_sark_error_fmt(r->pool, &ctx->error, rc, "GW-413",
                                        "request body is larger than %uz "
                                        "bytes", slcf->mcp_max_body);
                ctx->error.rpc_code = NGX_HTTP_SARK_RPC_INVALID;

            } else {
                ngx_http_sark_error_set(&ctx->error, rc, "GW-500",
                                        "could not read the request body");
            }

            /* (even in a dry run: the body cannot go on half read) */

            m->state = NGX_HTTP_SARK_MCP_DONE;
            return ngx_http_sark_refuse_final(r, &ctx->error);
        }

        /* the body handler has run, or runs once the body is in */

        ngx_http_finalize_request(r, NGX_DONE);
        return NGX_DONE;
    }

    if (r->method != NGX_HTTP_GET && r->method != NGX_HTTP_DELETE) {
        ngx_http_sark_error_set(&ctx->error, NGX_HTTP_NOT_ALLOWED, "GW-101",
                                "an MCP endpoint takes POST, GET or DELETE");
        ctx->error.rpc_code = NGX_HTTP_SARK_RPC_INVALID;
        m->state = NGX_HTTP_SARK_MCP_DONE;
        return ngx_http_sark_mcp_resume(r, ctx);
    }

    /* the SSE stream, or the end of a session: access to the server */

    if (r->headers_in.content_length_n > 0 || r->headers_in.chunked) {

        /* a body here would go upstream unread */

        ngx_http_sark_mcp_invalid(r, ctx, NGX_HTTP_SARK_RPC_INVALID,
                                  "a GET or DELETE to an MCP endpoint has no "
                                  "body");
        m->state = NGX_HTTP_SARK_MCP_DONE;
        return ngx_http_sark_mcp_resume(r, ctx);
    }

    msg = ngx_pcalloc(r->pool, sizeof(ngx_http_sark_mcp_msg_t));
    if (msg == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* (a method that is an object is the audit metadata itself) */

    msg->action = ngx_http_sark_mcp_access;
    msg->method = (r->method == NGX_HTTP_GET) ? ngx_http_sark_mcp_get_meta
                                              : ngx_http_sark_mcp_delete_meta;
    m->msgs = msg;
    m->nmsgs = 1;
    m->state = NGX_HTTP_SARK_MCP_DECIDING;

    rc = ngx_http_sark_mcp_decide(r, ctx);

    if (rc == NGX_AGAIN) {
        r->write_event_handler = ngx_http_request_empty_handler;
        r->read_event_handler = ngx_http_test_reading;
        return NGX_AGAIN;
    }

    m->state = NGX_HTTP_SARK_MCP_DONE;

    return ngx_http_sark_mcp_resume(r, ctx);
}


/*
 * The session a request names, checked before it goes on: NGX_OK (with
 * m->claim set for an unknown id, bound when the upstream accepts the
 * request: ngx_http_sark_mcp_session.c); NGX_DECLINED with ctx->error set
 * (another subject's: 403 AZ-004; no free slot for an unknown one: 404,
 * which tells a client to start a new session); NGX_ERROR.
 */

static ngx_int_t
ngx_http_sark_mcp_session(ngx_http_request_t *r, ngx_http_sark_ctx_t *ctx,
    ngx_str_t *session)
{
    ngx_int_t  rc;

    rc = ngx_http_sark_mcp_session_bind(r, ctx, session,
                                        NGX_HTTP_SARK_SESSION_CHECK);

    switch (rc) {

    case NGX_OK:
        return NGX_OK;

    case NGX_DONE:
        ctx->mcp->claim = 1;
        return NGX_OK;

    case NGX_BUSY:
        ngx_http_sark_error_set(&ctx->error, NGX_HTTP_NOT_FOUND, "GW-404",
                                "unknown MCP session: start a new one");
        ctx->error.rpc_code = NGX_HTTP_SARK_RPC_INVALID;
        return NGX_DECLINED;

    case NGX_DECLINED:
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "sark: refused MCP session \"%V\" to subject "
                      "\"%V\": it belongs to another subject",
                      ngx_http_sark_log_safe(r->pool, session),
                      ngx_http_sark_log_safe(r->pool, &ctx->identity.sub));
        ngx_http_sark_error_set(&ctx->error, NGX_HTTP_FORBIDDEN, "AZ-004",
                                "this MCP session belongs to another caller");
        return NGX_DECLINED;

    default:
        return NGX_ERROR;
    }
}


/*
 * Content-Type application/json, with no parameter but charset=utf-8, and
 * no Content-Encoding but identity
 */

static ngx_uint_t
ngx_http_sark_mcp_json_type(ngx_http_request_t *r)
{
    u_char                       *p, *last;
    ngx_table_elt_t              *h;
    ngx_http_sark_header_iter_t   it;

    static ngx_str_t  encoding = ngx_string("Content-Encoding");

    /* every Content-Encoding header (the upstream applies them all) */

    ngx_memzero(&it, sizeof(ngx_http_sark_header_iter_t));

    while ((h = ngx_http_sark_next_header(&r->headers_in.headers, &encoding,
                                          &it)))
    {
        if (!(h->value.len == 8
              && ngx_strncasecmp(h->value.data, (u_char *) "identity", 8)
                 == 0))
        {
            return 0;
        }
    }

    h = r->headers_in.content_type;

    if (h == NULL || h->value.len < sizeof("application/json") - 1
        || ngx_strncasecmp(h->value.data, (u_char *) "application/json",
                           sizeof("application/json") - 1)
           != 0)
    {
        return 0;
    }

    p = h->value.data + sizeof("application/json") - 1;
    last = h->value.data + h->value.len;

    while (p < last && (*p == ' ' || *p == '\t')) {
        p++;
    }

    if (p == last) {
        return 1;
    }

    if (*p++ != ';') {
        return 0;
    }

    while (p < last && (*p == ' ' || *p == '\t')) {
        p++;
    }

    if ((size_t) (last - p) < sizeof("charset=utf-8") - 1
        || ngx_strncasecmp(p, (u_char *) "charset=", 8) != 0)
    {
        return 0;
    }

    p += 8;

    if (p < last && *p == '"') {
        p++;

        if (last[-1] != '"') {
            return 0;
        }

        last--;
    }

    while (last > p && (last[-1] == ' ' || last[-1] == '\t')) {
        last--;
    }

    return (last - p == 5 && ngx_strncasecmp(p, (u_char *) "utf-8", 5) == 0)
           || (last - p == 4 && ngx_strncasecmp(p, (u_char *) "utf8", 4) == 0);
}


/*
 * The access phase once every message is decided (or one refused): the
 * refusal, or the request on its way upstream.
 */

ngx_int_t
ngx_http_sark_mcp_resume(ngx_http_request_t *r, ngx_http_sark_ctx_t *ctx)
{
    ngx_http_sark_mcp_t       *m;
    ngx_http_sark_loc_conf_t  *slcf;

    m = ctx->mcp;

    if (m->state != NGX_HTTP_SARK_MCP_DONE) {
        return NGX_AGAIN;
    }

    if (ctx->error.status) {
        return ngx_http_sark_refuse(r, &ctx->error);
    }

    slcf = ngx_http_get_module_loc_conf(r, ngx_http_sark_module);

    /* a dry run changes nothing: the body goes on as it came */

    if (m->rewrite && !slcf->dry_run
        && ngx_http_sark_mcp_rewrite(r, ctx) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_sark_mcp_audit_header(r, m) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->allowed = 1;

    return NGX_OK;
}


static void
ngx_http_sark_mcp_body_handler(ngx_http_request_t *r)
{
    ngx_int_t             rc;
    ngx_http_sark_ctx_t  *ctx;
    ngx_http_sark_mcp_t  *m;

    ctx = ngx_http_get_module_ctx(r, ngx_http_sark_module);
    m = ctx->mcp;

    rc = ngx_http_sark_mcp_parse(r, ctx);

    if (rc == NGX_OK) {
        m->state = NGX_HTTP_SARK_MCP_DECIDING;

        if (ngx_http_sark_mcp_decide(r, ctx) == NGX_AGAIN) {
            r->write_event_handler = ngx_http_request_empty_handler;
            r->read_event_handler = ngx_http_test_reading;
            return;
        }
    }

    m->state = NGX_HTTP_SARK_MCP_DONE;

    r->write_event_handler = ngx_http_core_run_phases;
    ngx_http_core_run_phases(r);
}


/* the body as JSON-RPC: one message or a batch of them */

static ngx_int_t
ngx_http_sark_mcp_parse(ngx_http_request_t *r, ngx_http_sark_ctx_t *ctx)
{
    char                       msg[SARK_JSON_ERR_LEN];
    ngx_uint_t                 i, n;
    sark_json_t               *root;
    const sark_json_t         *v;
    ngx_http_sark_mcp_t       *m;
    ngx_http_sark_loc_conf_t  *slcf;

    m = ctx->mcp;
    slcf = ngx_http_get_module_loc_conf(r, ngx_http_sark_module);

    if (ctx->body.len == 0) {
        ngx_http_sark_mcp_invalid(r, ctx, NGX_HTTP_SARK_RPC_INVALID,
                                  "request body is empty: expected a "
                                  "JSON-RPC message");
        return NGX_DECLINED;
    }

    msg[0] = '\0';

    if (sark_json_parse(ctx->body.data, ctx->body.len, slcf->json_max_depth,
                        ngx_http_sark_json_alloc, r->pool, &root,
                        msg, sizeof(msg))
        != 0)
    {
        ngx_http_sark_error_fmt(r->pool, &ctx->error, NGX_HTTP_BAD_REQUEST,
                                "GW-100", "%s",
                                msg[0] ? msg : "invalid JSON");
        ctx->error.rpc_code = NGX_HTTP_SARK_RPC_PARSE;
        return NGX_DECLINED;
    }

    if (root->type == SARK_JSON_ARRAY) {
        if (root->n == 0 || root->n > NGX_HTTP_SARK_MCP_BATCH_MAX) {
            ngx_http_sark_error_fmt(r->pool, &ctx->error,
                                    NGX_HTTP_BAD_REQUEST, "GW-100",
                                    "a batch holds 1 to %d messages",
                                    NGX_HTTP_SARK_MCP_BATCH_MAX);
            ctx->error.rpc_code = NGX_HTTP_SARK_RPC_INVALID;
            return NGX_DECLINED;
        }

        m->batch = 1;
        n = root->n;
        v = root->child;

    } else {
        n = 1;
        v = root;
    }

    m->msgs = ngx_pcalloc(r->pool, n * sizeof(ngx_http_sark_mcp_msg_t));
    if (m->msgs == NULL) {
        ngx_http_sark_error_set(&ctx->error, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                "GW-500", "out of memory");
        return NGX_ERROR;
    }

    m->nmsgs = n;

    for (i = 0; i < n; i++, v = v->next) {
        if (ngx_http_sark_mcp_message(r, ctx, v, &m->msgs[i]) != NGX_OK) {
            return NGX_DECLINED;
        }
    }

    return NGX_OK;
}


/* one JSON-RPC message: what it asks, or ctx->error when it is not one */

static ngx_int_t
ngx_http_sark_mcp_message(ngx_http_request_t *r, ngx_http_sark_ctx_t *ctx,
    const sark_json_t *v, ngx_http_sark_mcp_msg_t *msg)
{
    const char           *method;
    const sark_json_t    *version, *id, *name, *params, *args;
    ngx_http_sark_mcp_t  *m;

    m = ctx->mcp;

    if (v->type != SARK_JSON_OBJECT) {
        ngx_http_sark_mcp_invalid(r, ctx, NGX_HTTP_SARK_RPC_INVALID,
                                  "a JSON-RPC message is an object");
        return NGX_DECLINED;
    }

    msg->msg = v;

    id = sark_json_get(v, "id");

    if (id) {
        if (id->type != SARK_JSON_STRING && id->type != SARK_JSON_NUMBER) {
            ngx_http_sark_mcp_invalid(r, ctx, NGX_HTTP_SARK_RPC_INVALID,
                                      "\"id\" must be a string or a number");
            return NGX_DECLINED;
        }

        msg->id.data = (u_char *) id->raw;
        msg->id.len = id->raw_len;

        /* errors from here on answer this message's id */
        m->error_id = msg->id;
    }

    version = sark_json_get(v, "jsonrpc");

    if (version == NULL
        || version->type != SARK_JSON_STRING
        || version->len != 3
        || ngx_strncmp(version->str, "2.0", 3) != 0)
    {
        ngx_http_sark_mcp_invalid(r, ctx, NGX_HTTP_SARK_RPC_INVALID,
                                  "\"jsonrpc\" must be \"2.0\"");
        return NGX_DECLINED;
    }

    name = sark_json_get(v, "method");

    if (name == NULL) {

        /* the client's answer to a request of the server */

        if (id == NULL
            || (sark_json_get(v, "result") == NULL
                && sark_json_get(v, "error") == NULL))
        {
            ngx_http_sark_mcp_invalid(r, ctx, NGX_HTTP_SARK_RPC_INVALID,
                                      "a JSON-RPC message has a \"method\", "
                                      "or an \"id\" and a \"result\" or "
                                      "\"error\"");
            return NGX_DECLINED;
        }

        msg->action = ngx_http_sark_mcp_access;
        msg->response = 1;
        return NGX_OK;
    }

    if (name->type != SARK_JSON_STRING || name->len == 0) {
        ngx_http_sark_mcp_invalid(r, ctx, NGX_HTTP_SARK_RPC_INVALID,
                                  "\"method\" must be a non-empty string");
        return NGX_DECLINED;
    }

    msg->method.data = (u_char *) name->raw;
    msg->method.len = name->raw_len;

    method = name->str;

    params = sark_json_get(v, "params");

    if (params && params->type != SARK_JSON_OBJECT) {
        ngx_http_sark_mcp_invalid(r, ctx, NGX_HTTP_SARK_RPC_PARAMS,
                                  "\"params\" must be an object");
        return NGX_DECLINED;
    }

    if (ngx_strcmp(method, "tools/call") == 0) {

        if (id == NULL) {
            ngx_http_sark_mcp_invalid(r, ctx, NGX_HTTP_SARK_RPC_INVALID,
                                      "tools/call is a request: it needs an "
                                      "\"id\"");
            return NGX_DECLINED;
        }

        name = sark_json_get(params, "name");

        if (name == NULL
            || name->type != SARK_JSON_STRING
            || name->len == 0
            || name->len > NGX_HTTP_SARK_MAX_NAME)
        {
            ngx_http_sark_mcp_invalid(r, ctx, NGX_HTTP_SARK_RPC_PARAMS,
                                      "\"params.name\" must be a tool name: "
                                      "a non-empty string of at most 256 "
                                      "bytes");
            return NGX_DECLINED;
        }

        args = sark_json_get(params, "arguments");

        if (args && args->type == SARK_JSON_NULL) {
            args = NULL;
        }

        if (args && args->type != SARK_JSON_OBJECT) {
            ngx_http_sark_mcp_invalid(r, ctx, NGX_HTTP_SARK_RPC_PARAMS,
                                      "\"params.arguments\" must be an "
                                      "object");
            return NGX_DECLINED;
        }

        msg->action = ngx_http_sark_mcp_invoke;
        msg->tool.data = (u_char *) name->str;
        msg->tool.len = name->len;
        msg->parameters = args;

        return NGX_OK;
    }

    if (ngx_strcmp(method, "resources/read") == 0
        || ngx_strcmp(method, "prompts/get") == 0)
    {
        name = sark_json_get(params,
                             (method[0] == 'r') ? "uri" : "name");

        if (name == NULL || name->type != SARK_JSON_STRING || name->len == 0)
        {
            ngx_http_sark_mcp_invalid(r, ctx, NGX_HTTP_SARK_RPC_PARAMS,
                                      (method[0] == 'r')
                                      ? "\"params.uri\" must be a non-empty "
                                        "string"
                                      : "\"params.name\" must be a non-empty "
                                        "string");
            return NGX_DECLINED;
        }

        msg->action = (method[0] == 'r') ? ngx_http_sark_mcp_read
                                         : ngx_http_sark_mcp_prompt;
        msg->parameters = params;

        return NGX_OK;
    }

    if (ngx_strcmp(method, "tools/list") == 0 && id) {
        if (m->batch) {
            ngx_http_sark_mcp_invalid(r, ctx, NGX_HTTP_SARK_RPC_INVALID,
                                      "tools/list cannot be batched: its "
                                      "answer is filtered for the caller");
            return NGX_DECLINED;
        }

        msg->list = 1;
    }

    /* initialize, ping, lists, notifications, ...: access to the server */

    msg->action = ngx_http_sark_mcp_access;

    return NGX_OK;
}


/*
 * Decides the messages from m->next on.  NGX_AGAIN: sarkd was asked, and
 * ngx_http_sark_mcp_decided() goes on; NGX_DONE: all are decided, or
 * ctx->error says why the request is refused.
 */

static ngx_int_t
ngx_http_sark_mcp_decide(ngx_http_request_t *r, ngx_http_sark_ctx_t *ctx)
{
    ngx_int_t                 rc;
    ngx_str_t                 meta, params;
    ngx_http_sark_mcp_t      *m;
    ngx_http_sark_mcp_msg_t  *msg;

    m = ctx->mcp;

    for ( /* void */ ; m->next < m->nmsgs; m->next++) {

        msg = &m->msgs[m->next];

        if (msg->id.len) {
            m->error_id = msg->id;
        }

        /* the audit row names the JSON-RPC method */

        if (msg->response) {
            meta = ngx_http_sark_mcp_response_meta;

        } else if (msg->method.data[0] == '{') {
            meta = msg->method;

        } else if (ngx_http_sark_mcp_method_meta(r, &msg->method, &meta)
                   != NGX_OK)
        {
            goto failed;
        }

        params.data = NULL;
        params.len = 0;

        if (msg->parameters) {
            params.data = (u_char *) msg->parameters->raw;
            params.len = msg->parameters->raw_len;
        }

        rc = ngx_http_sark_mcp_ask(r, ctx, &msg->action, &msg->tool,
                                   &params, &meta);

        if (rc == NGX_AGAIN) {
            return NGX_AGAIN;
        }

        if (rc == NGX_ERROR) {
            goto failed;
        }

        /* NGX_OK: from L1; NGX_DECLINED: ctx->error is set */

        if (ngx_http_sark_mcp_decision(r, ctx) != NGX_OK) {
            return NGX_DONE;
        }
    }

    return NGX_DONE;

failed:

    ngx_http_sark_error_set(&ctx->error, NGX_HTTP_INTERNAL_SERVER_ERROR,
                            "GW-500", "internal error");
    return NGX_DONE;
}


/*
 * One decision on ctx, fresh: action, tool and parameters (JSON object
 * text) of the location's server, `meta` for the audit row.  Returns as
 * ngx_http_sark_decide() does.
 */

ngx_int_t
ngx_http_sark_mcp_ask(ngx_http_request_t *r, ngx_http_sark_ctx_t *ctx,
    ngx_str_t *action, ngx_str_t *tool, ngx_str_t *params, ngx_str_t *meta)
{
    ngx_http_sark_mcp_t    *m;
    ngx_http_sark_query_t  *q;

    m = ctx->mcp;
    q = &ctx->query;

    ngx_memzero(q, sizeof(ngx_http_sark_query_t));
    ngx_memzero(&ctx->decision, sizeof(ngx_http_sark_decision_t));
    ctx->keyed = 0;
    ctx->decided = 0;
    ctx->question = NULL;
    ctx->started = ngx_current_msec;
    ctx->started_us = ngx_http_sark_now_us();
    ctx->cache_us = 0;
    ctx->sarkd_us = 0;

    q->action = *action;
    q->server_name = m->server;
    q->sensitivity = m->sensitivity;

    if (tool->len) {
        q->tool_name = *tool;
    }

    if (params->data) {
        q->parameters = *params;
    }

    /* the arguments the policy filtered, or the tools it shows */

    ctx->want_params = (params->data != NULL
                        && action->data != ngx_http_sark_mcp_read.data
                        && action->data != ngx_http_sark_mcp_prompt.data);

    ctx->audit_metadata = *meta;

    if (ngx_http_sark_new_audit_id(ctx) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_sark_decide(r, ctx);
}


/* {"mcp_method":METHOD} for a method as it came (a JSON string) */

ngx_int_t
ngx_http_sark_mcp_method_meta(ngx_http_request_t *r, ngx_str_t *method,
    ngx_str_t *meta)
{
    u_char  *p;

    p = ngx_pnalloc(r->pool, sizeof("{\"mcp_method\":}") - 1 + method->len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    meta->data = p;
    p = ngx_http_sark_cpylit(p, "{\"mcp_method\":");
    p = ngx_cpymem(p, method->data, method->len);
    *p++ = '}';
    meta->len = p - meta->data;

    return NGX_OK;
}


/* sarkd has answered for m->msgs[m->next] */

static void
ngx_http_sark_mcp_decided(ngx_http_request_t *r, ngx_http_sark_ctx_t *ctx)
{
    ngx_http_sark_mcp_t  *m;

    m = ctx->mcp;

    if (ngx_http_sark_mcp_decision(r, ctx) == NGX_OK) {
        m->next++;

        if (ngx_http_sark_mcp_decide(r, ctx) == NGX_AGAIN) {
            return;
        }
    }

    m->state = NGX_HTTP_SARK_MCP_DONE;

    ngx_http_sark_mcp_run_phases(r);
}


static void
ngx_http_sark_mcp_run_phases(ngx_http_request_t *r)
{
    ngx_connection_t  *c;

    c = r->connection;

    r->read_event_handler = ngx_http_block_reading;
    r->write_event_handler = ngx_http_core_run_phases;

    ngx_http_core_run_phases(r);
    ngx_http_run_posted_requests(c);
}


/*
 * What was decided for the current message: NGX_OK when it is allowed
 * (its filtered arguments noted when they differ from what it sent),
 * else ctx->error is set.
 */

static ngx_int_t
ngx_http_sark_mcp_decision(ngx_http_request_t *r, ngx_http_sark_ctx_t *ctx)
{
    char                       err[SARK_JSON_ERR_LEN];
    ngx_str_t                 *aid, *fp;
    sark_json_t               *filtered;
    ngx_http_sark_mcp_t       *m;
    ngx_http_sark_mcp_msg_t   *msg;
    ngx_http_sark_loc_conf_t  *slcf;

    m = ctx->mcp;
    msg = &m->msgs[m->next];

    if (ctx->error.status) {
        return NGX_DECLINED;
    }

    aid = ngx_http_sark_audit_id(r->pool, ctx);
    if (aid) {
        msg->audit_id = *aid;
    }

    if (ctx->decision.decision != SARK_DECISION_ALLOW) {
        ngx_http_sark_error_set(&ctx->error, NGX_HTTP_FORBIDDEN, "AZ-001",
                                "");
        ctx->error.message = ctx->decision.reason;
        return NGX_DECLINED;
    }

    fp = &ctx->decision.filtered_parameters;

    if (msg->parameters == NULL || !ctx->want_params || fp->len == 0) {
        return NGX_OK;
    }

    /* the arguments go upstream as the policy filtered them */

    slcf = ngx_http_get_module_loc_conf(r, ngx_http_sark_module);

    if (sark_json_parse(fp->data, fp->len, slcf->json_max_depth + 1,
                        ngx_http_sark_json_alloc, r->pool, &filtered,
                        err, sizeof(err))
        != 0
        || filtered->type != SARK_JSON_OBJECT)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "sark: the policy's filtered arguments for tool \"%V\" "
                      "are not a JSON object; refused", &msg->tool);
        ngx_http_sark_error_set(&ctx->error, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                "GW-500", "the policy's filtered arguments "
                                "are not a JSON object");
        return NGX_DECLINED;
    }

    if (!sark_json_equal(filtered, msg->parameters,
                         NGX_HTTP_SARK_MCP_EQUAL_BUDGET))
    {
        msg->replacement = *fp;
        m->rewrite = 1;
    }

    return NGX_OK;
}


/*
 * The body upstream gets when the policy filtered arguments: the one read,
 * with each message's "arguments" replaced by the filtered object, every
 * other byte as it was.  It replaces nginx's copy of the body (memory or
 * temp file) and its length; a chunked body goes on with this length.
 */

static ngx_int_t
ngx_http_sark_mcp_rewrite(ngx_http_request_t *r, ngx_http_sark_ctx_t *ctx)
{
    u_char                   *p, *from;
    size_t                    len;
    ngx_buf_t                *b;
    ngx_uint_t                i;
    ngx_chain_t              *cl;
    ngx_http_sark_mcp_t      *m;
    ngx_http_sark_mcp_msg_t  *msg;

    m = ctx->mcp;

    if (r->request_body == NULL) {
        return NGX_ERROR;
    }

    len = ctx->body.len;

    for (i = 0; i < m->nmsgs; i++) {
        msg = &m->msgs[i];

        if (msg->replacement.len) {
            len = len - msg->parameters->raw_len + msg->replacement.len;
        }
    }

    b = ngx_create_temp_buf(r->pool, len ? len : 1);
    cl = ngx_alloc_chain_link(r->pool);

    if (b == NULL || cl == NULL) {
        return NGX_ERROR;
    }

    p = b->last;
    from = ctx->body.data;

    /* the messages, and their arguments, are in the order of the body */

    for (i = 0; i < m->nmsgs; i++) {
        msg = &m->msgs[i];

        if (msg->replacement.len == 0) {
            continue;
        }

        p = ngx_cpymem(p, from, (u_char *) msg->parameters->raw - from);
        p = ngx_cpymem(p, msg->replacement.data, msg->replacement.len);
        from = (u_char *) msg->parameters->raw + msg->parameters->raw_len;
    }

    p = ngx_cpymem(p, from, ctx->body.data + ctx->body.len - from);

    b->last = p;
    b->last_buf = 1;
    b->last_in_chain = 1;

    cl->buf = b;
    cl->next = NULL;

    r->request_body->bufs = cl;
    r->request_body->buf = b;
    r->request_body->temp_file = NULL;

    r->headers_in.content_length_n = p - b->pos;
    r->headers_in.content_length = NULL;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "sark mcp: arguments filtered, body is now %O bytes",
                   r->headers_in.content_length_n);

    return NGX_OK;
}


/*
 * X-Sark-Audit-Id for the upstream: the audit ids of the decisions, in the
 * order of the messages.  A header of that name the client sent is
 * overwritten, never passed on.
 */

static ngx_int_t
ngx_http_sark_mcp_audit_header(ngx_http_request_t *r, ngx_http_sark_mcp_t *m)
{
    u_char      *p;
    size_t       len;
    ngx_str_t    value;
    ngx_uint_t   i;

    len = 0;

    for (i = 0; i < m->nmsgs; i++) {
        len += m->msgs[i].audit_id.len + 1;
    }

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    value.data = p;

    for (i = 0; i < m->nmsgs; i++) {
        if (m->msgs[i].audit_id.len == 0) {
            continue;
        }

        if (p != value.data) {
            *p++ = ',';
        }

        p = ngx_cpymem(p, m->msgs[i].audit_id.data, m->msgs[i].audit_id.len);
    }

    value.len = p - value.data;

    return ngx_http_sark_audit_header(r, &value, 1);
}


static void
ngx_http_sark_mcp_invalid(ngx_http_request_t *r, ngx_http_sark_ctx_t *ctx,
    ngx_int_t code, const char *message)
{
    ngx_http_sark_error_set(&ctx->error, NGX_HTTP_BAD_REQUEST, "GW-100",
                            message);
    ctx->error.rpc_code = code;
}


/*
 * The JSON-RPC error object an MCP location answers with:
 * {"jsonrpc":"2.0","id":...,"error":{"code":N,"message":"...",
 *  "data":{"code":"AZ-001","request_id":"..."}}}; the id is the one of the
 * message the error is about, else null.
 */

ngx_int_t
ngx_http_sark_mcp_error_body(ngx_http_request_t *r, ngx_http_sark_error_t *err,
    ngx_str_t *body)
{
    u_char               *p;
    size_t                len;
    ngx_int_t             code;
    ngx_str_t             id, scode, *rid;
    ngx_http_sark_ctx_t  *ctx;

    static ngx_str_t      null = ngx_string("null");

    ctx = ngx_http_get_module_ctx(r, ngx_http_sark_module);

    id = null;

    if (ctx && ctx->mcp && ctx->mcp->error_id.len) {
        id = ctx->mcp->error_id;
    }

    code = err->rpc_code;

    if (code == 0) {
        switch (err->status) {

        case NGX_HTTP_UNAUTHORIZED:
            code = NGX_HTTP_SARK_RPC_UNAUTHORIZED;
            break;

        case NGX_HTTP_FORBIDDEN:
            code = NGX_HTTP_SARK_RPC_FORBIDDEN;
            break;

        case NGX_HTTP_BAD_REQUEST:
        case NGX_HTTP_NOT_ALLOWED:
        case NGX_HTTP_REQUEST_ENTITY_TOO_LARGE:
            code = NGX_HTTP_SARK_RPC_INVALID;
            break;

        case NGX_HTTP_INTERNAL_SERVER_ERROR:
            code = NGX_HTTP_SARK_RPC_INTERNAL;
            break;

        default:
            code = NGX_HTTP_SARK_RPC_UNAVAILABLE;
        }
    }

    scode.data = (u_char *) err->code;
    scode.len = ngx_strlen(err->code);

    /* the audit row of a refusal the policy decided */

    rid = (ctx && ctx->decided) ? ngx_http_sark_audit_id(r->pool, ctx) : NULL;

    len = sizeof("{\"jsonrpc\":\"2.0\",\"id\":,\"error\":{\"code\":,"
                 "\"message\":,\"data\":{\"code\":,\"audit_id\":}}}\n") - 1
          + id.len + NGX_INT_T_LEN
          + ngx_http_sark_string_len(&err->message)
          + ngx_http_sark_string_len(&scode)
          + (rid ? ngx_http_sark_string_len(rid) : sizeof("null") - 1);

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    body->data = p;

    p = ngx_http_sark_cpylit(p, "{\"jsonrpc\":\"2.0\",\"id\":");
    p = ngx_cpymem(p, id.data, id.len);
    p = ngx_sprintf(p, ",\"error\":{\"code\":%i,\"message\":", code);
    p = ngx_http_sark_put_string(p, &err->message);
    p = ngx_http_sark_cpylit(p, ",\"data\":{\"code\":");
    p = ngx_http_sark_put_string(p, &scode);
    p = ngx_http_sark_cpylit(p, ",\"audit_id\":");

    if (rid) {
        p = ngx_http_sark_put_string(p, rid);

    } else {
        p = ngx_http_sark_cpylit(p, "null");
    }

    p = ngx_http_sark_cpylit(p, "}}}\n");

    body->len = p - body->data;

    return NGX_OK;
}
