
/*
 * Copyright (C) sark-gateway authors
 */


#ifndef _NGX_HTTP_SARK_MCP_H_INCLUDED_
#define _NGX_HTTP_SARK_MCP_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_sark_module.h"


/* at most this many messages in one JSON-RPC batch */
#define NGX_HTTP_SARK_MCP_BATCH_MAX    64

/* JSON-RPC error codes of the answers (docs/design.md, section 4.4) */
#define NGX_HTTP_SARK_RPC_PARSE        -32700
#define NGX_HTTP_SARK_RPC_INVALID      -32600
#define NGX_HTTP_SARK_RPC_PARAMS       -32602
#define NGX_HTTP_SARK_RPC_INTERNAL     -32603
#define NGX_HTTP_SARK_RPC_UNAVAILABLE  -32000
#define NGX_HTTP_SARK_RPC_UNAUTHORIZED -32001
#define NGX_HTTP_SARK_RPC_FORBIDDEN    -32003


#define NGX_HTTP_SARK_MCP_READING      0
#define NGX_HTTP_SARK_MCP_DECIDING     1
#define NGX_HTTP_SARK_MCP_DONE         2


/* one JSON-RPC message of the request, and what was decided for it */
typedef struct {
    const sark_json_t           *msg;
    ngx_str_t                    id;            /* raw JSON; empty: none */
    ngx_str_t                    method;        /* raw JSON string */
    ngx_str_t                    action;
    ngx_str_t                    tool;
    const sark_json_t           *parameters;    /* NULL: none */
    ngx_str_t                    audit_id;
    ngx_str_t                    replacement;   /* filtered arguments, when
                                                   they differ */
    unsigned                     list:1;        /* tools/list */
    unsigned                     response:1;    /* the client's answer to
                                                   a server request */
} ngx_http_sark_mcp_msg_t;


struct ngx_http_sark_mcp_s {
    ngx_uint_t                   state;
    ngx_str_t                    server;
    ngx_str_t                    sensitivity;

    ngx_http_sark_mcp_msg_t     *msgs;
    ngx_uint_t                   nmsgs;
    ngx_uint_t                   next;          /* the one being decided */
    ngx_str_t                    error_id;      /* raw JSON id the error
                                                   answers; empty: null */
    unsigned                     batch:1;
    unsigned                     rewrite:1;
    unsigned                     claim:1;       /* an unknown session id,
                                                   bound when the upstream
                                                   accepts the request */

    /* the tools/list answer (ngx_http_sark_mcp_list.c) */
    void                        *list;
};


ngx_int_t ngx_http_sark_mcp_start(ngx_http_request_t *r,
    ngx_http_sark_loc_conf_t *slcf, ngx_http_sark_ctx_t *ctx);
ngx_int_t ngx_http_sark_mcp_resume(ngx_http_request_t *r,
    ngx_http_sark_ctx_t *ctx);

ngx_int_t ngx_http_sark_mcp_ask(ngx_http_request_t *r,
    ngx_http_sark_ctx_t *ctx, ngx_str_t *action, ngx_str_t *tool,
    ngx_str_t *params, ngx_str_t *meta);
ngx_int_t ngx_http_sark_mcp_method_meta(ngx_http_request_t *r,
    ngx_str_t *method, ngx_str_t *meta);

/* ngx_http_sark_mcp_list.c */
ngx_int_t ngx_http_sark_mcp_list_init(ngx_conf_t *cf);

/* ngx_http_sark_mcp_session.c */
#define NGX_HTTP_SARK_SESSION_ANSWER  0     /* the upstream hands it out */
#define NGX_HTTP_SARK_SESSION_CLAIM   1     /* the upstream accepted it */
#define NGX_HTTP_SARK_SESSION_CHECK   2     /* a request names it */

ngx_int_t ngx_http_sark_mcp_session_bind(ngx_http_request_t *r,
    ngx_http_sark_ctx_t *ctx, ngx_str_t *id, ngx_uint_t mode);
ngx_str_t *ngx_http_sark_mcp_session_id(ngx_http_request_t *r);
ngx_uint_t ngx_http_sark_mcp_session_count(ngx_http_request_t *r);


#endif /* _NGX_HTTP_SARK_MCP_H_INCLUDED_ */
