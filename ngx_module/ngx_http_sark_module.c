
/*
 * Copyright (C) sark-gateway authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_sark_module.h"
#include "ngx_http_sark_mcp.h"


static void *ngx_http_sark_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_sark_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_sark_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_sark_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_http_sark_sarkd(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_sark_api(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_sark_cache_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_sark_preconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_sark_postconfiguration(ngx_conf_t *cf);
static char *ngx_http_sark_jwt_secret(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_sark_jwt_jwks_file(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_sark_jwt_key_file(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_sark_add_key(ngx_conf_t *cf,
    ngx_http_sark_loc_conf_t *slcf, sark_jwt_key_t *key);
static void ngx_http_sark_key_cleanup(void *data);
static char *ngx_http_sark_check_depth(ngx_conf_t *cf, void *post,
    void *data);
static char *ngx_http_sark_check_msec(ngx_conf_t *cf, void *post,
    void *data);
static char *ngx_http_sark_check_audit_batch(ngx_conf_t *cf, void *post,
    void *data);
static char *ngx_http_sark_check_gateway_key(ngx_conf_t *cf, void *post,
    void *data);
static ngx_int_t ngx_http_sark_init_process(ngx_cycle_t *cycle);
static void ngx_http_sark_exit_process(ngx_cycle_t *cycle);


static char *ngx_http_sark_compat(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


static ngx_conf_enum_t  ngx_http_sark_api_kinds[] = {
    { ngx_string("off"), NGX_HTTP_SARK_API_OFF },
    { ngx_string("authorize"), NGX_HTTP_SARK_API_AUTHORIZE },
    { ngx_string("invalidate"), NGX_HTTP_SARK_API_INVALIDATE },
    { ngx_string("warm"), NGX_HTTP_SARK_API_WARM },
    { ngx_string("audit"), NGX_HTTP_SARK_API_AUDIT },
    { ngx_string("health_live"), NGX_HTTP_SARK_API_LIVE },
    { ngx_string("health_ready"), NGX_HTTP_SARK_API_READY },
    { ngx_string("health_detailed"), NGX_HTTP_SARK_API_DETAILED },
    { ngx_string("metrics"), NGX_HTTP_SARK_API_METRICS },
    { ngx_string("authorize_a2a"), NGX_HTTP_SARK_API_A2A },
    { ngx_string("servers"), NGX_HTTP_SARK_API_SERVERS },
    { ngx_string("tools"), NGX_HTTP_SARK_API_TOOLS },
    { ngx_string("audit_events"), NGX_HTTP_SARK_API_AUDIT_EVENTS },
    { ngx_null_string, 0 }
};


/* the largest JWKS document read */
#define NGX_HTTP_SARK_JWKS_MAX  (1024 * 1024)


static ngx_conf_enum_t  ngx_http_sark_compat_modes[] = {
    { ngx_string("off"), NGX_HTTP_SARK_COMPAT_OFF },
    { ngx_string("sark"), NGX_HTTP_SARK_COMPAT_SARK },
    { ngx_null_string, 0 }
};


static ngx_conf_post_handler_pt  ngx_http_sark_depth_post =
    ngx_http_sark_check_depth;


/* a time directive's bounds, checked by ngx_http_sark_check_msec() */
typedef struct {
    ngx_conf_post_handler_pt     post_handler;
    ngx_msec_t                   low;
    ngx_msec_t                   high;
    char                        *error;
} ngx_http_sark_msec_bounds_t;

static ngx_http_sark_msec_bounds_t  ngx_http_sark_audit_flush_bounds = {
    ngx_http_sark_check_msec, 1, 10000, "must be between 1ms and 10s"
};
static ngx_http_sark_msec_bounds_t  ngx_http_sark_audit_exit_wait_bounds = {
    ngx_http_sark_check_msec, 1000, 3600000, "must be between 1s and 1h"
};
static ngx_http_sark_msec_bounds_t  ngx_http_sark_audit_ack_timeout_bounds = {
    ngx_http_sark_check_msec, 1000, 3600000, "must be between 1s and 1h"
};

static ngx_conf_post_handler_pt  ngx_http_sark_audit_batch_post =
    ngx_http_sark_check_audit_batch;
static ngx_conf_post_handler_pt  ngx_http_sark_gateway_key_post =
    ngx_http_sark_check_gateway_key;


/*
 * Audit (ngx_http_sark_audit.c):
 *
 *   sark_audit on|off         http, server, location; default on.  Every
 *                             decision taken in the location becomes an
 *                             audit event (row of gateway_audit_events).
 *   sark_audit_flush TIME     http; default 100ms (1ms..10s).  How long an
 *                             event may wait in the worker's current batch
 *                             before the batch is sent to sarkd.
 *   sark_audit_batch SIZE     http; default 64k (4k..1m, at most a quarter
 *                             of sark_sarkd_buffer_max).  A batch is sent
 *                             at once when it holds this many bytes.
 *   sark_audit_buffer SIZE    http; default 32m (at least 4 batches).  All
 *                             batches a worker holds until sarkd
 *                             acknowledges them; beyond it new events are
 *                             dropped, counted and logged once a second.
 *   sark_audit_ack_timeout TIME
 *                             http; default 30s (1s..1h).  A batch sarkd
 *                             has not acknowledged this long after it was
 *                             sent is sent again.
 *
 * Gateway events (ngx_http_sark_gateway_audit.c) and gateway callers
 * (ngx_http_sark_gateway_key.c):
 *
 *   sark_api audit            location.  POST /api/v1/gateway/audit.
 *   sark_gateway_key KEY      http, server, location; at least 16 bytes.
 *                             A static key besides those sarkd pushes;
 *                             accepted in X-Gateway-Api-Key or as a Bearer
 *                             token.
 *
 * What the answers look like (ngx_http_sark_compat.c):
 *
 *   sark_api_compat off|sark  http, server, location; default off.  sark:
 *                             errors, validation failures and outages as
 *                             the Python SARK's clients expect them.
 */


static ngx_command_t  ngx_http_sark_commands[] = {

    { ngx_string("sark_sarkd"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_sark_sarkd,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("sark_sarkd_buffer_max"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_sark_main_conf_t, sarkd_buffer_max),
      NULL },

    { ngx_string("sark_cache_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE2,
      ngx_http_sark_cache_zone,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("sark_authz"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_sark_loc_conf_t, authz),
      NULL },

    { ngx_string("sark_authz_action"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_set_complex_value_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_sark_loc_conf_t, authz_action),
      NULL },

    { ngx_string("sark_authz_server"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_set_complex_value_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_sark_loc_conf_t, authz_server),
      NULL },

    { ngx_string("sark_authz_tool"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_set_complex_value_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_sark_loc_conf_t, authz_tool),
      NULL },

    { ngx_string("sark_authz_sensitivity"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_set_complex_value_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_sark_loc_conf_t, authz_sensitivity),
      NULL },

    { ngx_string("sark_profile"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_sark_loc_conf_t, profile),
      NULL },

    { ngx_string("sark_authz_dry_run"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_sark_loc_conf_t, dry_run),
      NULL },

    { ngx_string("sark_mcp"),
      NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_sark_loc_conf_t, mcp),
      NULL },

    { ngx_string("sark_mcp_sessions"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_sark_main_conf_t, mcp_sessions_size),
      NULL },

    { ngx_string("sark_mcp_max_body"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_sark_loc_conf_t, mcp_max_body),
      NULL },

    { ngx_string("sark_gateway_key"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_sark_loc_conf_t, gateway_key),
      &ngx_http_sark_gateway_key_post },

    { ngx_string("sark_api_compat"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_sark_compat,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("sark_audit"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_sark_loc_conf_t, audit),
      NULL },

    { ngx_string("sark_audit_flush"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_sark_main_conf_t, audit_flush),
      &ngx_http_sark_audit_flush_bounds },

    { ngx_string("sark_audit_batch"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_sark_main_conf_t, audit_batch),
      &ngx_http_sark_audit_batch_post },

    { ngx_string("sark_audit_ack_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_sark_main_conf_t, audit_ack_timeout),
      &ngx_http_sark_audit_ack_timeout_bounds },

    { ngx_string("sark_audit_exit_wait"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_sark_main_conf_t, audit_exit_wait),
      &ngx_http_sark_audit_exit_wait_bounds },

    { ngx_string("sark_audit_buffer"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_sark_main_conf_t, audit_buffer),
      NULL },

    { ngx_string("sark_admin_key"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_sark_loc_conf_t, admin_key),
      NULL },

    { ngx_string("sark_api"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_sark_api,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_sark_loc_conf_t, api),
      &ngx_http_sark_api_kinds },

    { ngx_string("sark_jwt_secret"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_sark_jwt_secret,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("sark_jwt_jwks_file"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_sark_jwt_jwks_file,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("sark_jwt_key_file"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_sark_jwt_key_file,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("sark_jwt_issuer"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_sark_loc_conf_t, jwt_issuer),
      NULL },

    { ngx_string("sark_jwt_audience"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_sark_loc_conf_t, jwt_audience),
      NULL },

    { ngx_string("sark_jwt_leeway"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_sark_loc_conf_t, jwt_leeway),
      NULL },

    { ngx_string("sark_resource_metadata"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_sark_loc_conf_t, resource_metadata),
      NULL },

    { ngx_string("sark_protected_resource"),
      NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_sark_protected_resource,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("sark_max_body_size"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_sark_loc_conf_t, max_body_size),
      NULL },

    { ngx_string("sark_json_max_depth"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_sark_loc_conf_t, json_max_depth),
      &ngx_http_sark_depth_post },

    { ngx_string("sark_decision_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_sark_loc_conf_t, decision_timeout),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_sark_module_ctx = {
    ngx_http_sark_preconfiguration,        /* preconfiguration */
    ngx_http_sark_postconfiguration,       /* postconfiguration */

    ngx_http_sark_create_main_conf,        /* create main configuration */
    ngx_http_sark_init_main_conf,          /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_sark_create_loc_conf,         /* create location configuration */
    ngx_http_sark_merge_loc_conf           /* merge location configuration */
};


ngx_module_t  ngx_http_sark_module = {
    NGX_MODULE_V1,
    &ngx_http_sark_module_ctx,             /* module context */
    ngx_http_sark_commands,                /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_sark_init_process,            /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_sark_exit_process,            /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_str_t  ngx_http_sark_request_id = ngx_string("request_id");


static void *
ngx_http_sark_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_sark_main_conf_t  *smcf;

    smcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_sark_main_conf_t));
    if (smcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     smcf->sarkd = NULL;
     */

    smcf->sarkd_buffer_max = NGX_CONF_UNSET_SIZE;
    smcf->request_id_index = NGX_ERROR;
    smcf->audit_flush = NGX_CONF_UNSET_MSEC;
    smcf->audit_ack_timeout = NGX_CONF_UNSET_MSEC;
    smcf->audit_exit_wait = NGX_CONF_UNSET_MSEC;
    smcf->audit_batch = NGX_CONF_UNSET_SIZE;
    smcf->audit_buffer = NGX_CONF_UNSET_SIZE;
    smcf->mcp_sessions_size = NGX_CONF_UNSET_SIZE;

    return smcf;
}


static char *
ngx_http_sark_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_sark_main_conf_t  *smcf = conf;

    ngx_conf_init_size_value(smcf->sarkd_buffer_max, 16 * 1024 * 1024);

    if (smcf->sarkd_buffer_max < 2 * (SARK_PROTO_HDR_LEN + 64 * 1024)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"sark_sarkd_buffer_max\" must be at least 128k");
        return NGX_CONF_ERROR;
    }

    ngx_conf_init_msec_value(smcf->audit_flush, 100);
    ngx_conf_init_msec_value(smcf->audit_ack_timeout, 30000);
    ngx_conf_init_msec_value(smcf->audit_exit_wait, 60000);
    ngx_conf_init_size_value(smcf->audit_batch, 64 * 1024);
    ngx_conf_init_size_value(smcf->audit_buffer, 32 * 1024 * 1024);
    ngx_conf_init_size_value(smcf->mcp_sessions_size, 1024 * 1024);

    if (smcf->mcp_sessions_size < 64 * 1024) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"sark_mcp_sessions\" must be at least 64k");
        return NGX_CONF_ERROR;
    }

    if (smcf->audit_batch > smcf->sarkd_buffer_max / 4) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"sark_audit_batch\" %uz is more than a quarter "
                           "of \"sark_sarkd_buffer_max\" %uz",
                           smcf->audit_batch, smcf->sarkd_buffer_max);
        return NGX_CONF_ERROR;
    }

    if (smcf->audit_buffer / 4 < smcf->audit_batch) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"sark_audit_buffer\" %uz must hold at least 4 "
                           "batches of \"sark_audit_batch\" %uz",
                           smcf->audit_buffer, smcf->audit_batch);
        return NGX_CONF_ERROR;
    }

    smcf->request_id_index = ngx_http_get_variable_index(cf,
                                                  &ngx_http_sark_request_id);
    if (smcf->request_id_index == NGX_ERROR) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static void *
ngx_http_sark_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_sark_loc_conf_t  *slcf;

    slcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_sark_loc_conf_t));
    if (slcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     slcf->jwt_issuer = { 0, NULL };
     *     slcf->jwt_audience = { 0, NULL };
     *     slcf->resource_metadata = { 0, NULL };
     *     slcf->resource_doc = { 0, NULL };
     *     slcf->admin_key = { 0, NULL };
     *     slcf->gateway_key = { 0, NULL };
     */

    slcf->api = NGX_CONF_UNSET_UINT;
    slcf->jwt_keys = NGX_CONF_UNSET_PTR;
    slcf->jwt_leeway = NGX_CONF_UNSET;
    slcf->max_body_size = NGX_CONF_UNSET_SIZE;
    slcf->json_max_depth = NGX_CONF_UNSET_UINT;
    slcf->decision_timeout = NGX_CONF_UNSET_MSEC;
    slcf->authz = NGX_CONF_UNSET;
    slcf->authz_action = NGX_CONF_UNSET_PTR;
    slcf->authz_server = NGX_CONF_UNSET_PTR;
    slcf->authz_tool = NGX_CONF_UNSET_PTR;
    slcf->authz_sensitivity = NGX_CONF_UNSET_PTR;
    slcf->audit = NGX_CONF_UNSET;
    slcf->compat = NGX_CONF_UNSET_UINT;
    slcf->dry_run = NGX_CONF_UNSET;
    slcf->profile = NGX_CONF_UNSET;
    slcf->mcp = NGX_CONF_UNSET;
    slcf->mcp_max_body = NGX_CONF_UNSET_SIZE;

    return slcf;
}


static char *
ngx_http_sark_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_sark_loc_conf_t *prev = parent;
    ngx_http_sark_loc_conf_t *conf = child;

    const char                 *directive;
    ngx_http_sark_main_conf_t  *smcf;

    ngx_conf_merge_uint_value(conf->api, prev->api, NGX_HTTP_SARK_API_OFF);
    ngx_conf_merge_ptr_value(conf->jwt_keys, prev->jwt_keys, NULL);
    ngx_conf_merge_str_value(conf->jwt_issuer, prev->jwt_issuer, "");
    ngx_conf_merge_str_value(conf->jwt_audience, prev->jwt_audience, "");
    ngx_conf_merge_value(conf->jwt_leeway, prev->jwt_leeway, 30);
    ngx_conf_merge_str_value(conf->resource_metadata,
                             prev->resource_metadata, "");
    ngx_conf_merge_size_value(conf->max_body_size, prev->max_body_size,
                              64 * 1024);
    ngx_conf_merge_uint_value(conf->json_max_depth, prev->json_max_depth, 32);
    ngx_conf_merge_msec_value(conf->decision_timeout,
                              prev->decision_timeout, 3000);

    ngx_conf_merge_value(conf->dry_run, prev->dry_run, 0);
    ngx_conf_merge_value(conf->profile, prev->profile, 0);
    ngx_conf_merge_value(conf->mcp, prev->mcp, 0);
    ngx_conf_merge_size_value(conf->mcp_max_body, prev->mcp_max_body,
                              1024 * 1024);

    /* sark_mcp takes the action and tool from each JSON-RPC message */

    if (conf->mcp
        && (conf->authz_action != NGX_CONF_UNSET_PTR
            || conf->authz_tool != NGX_CONF_UNSET_PTR))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"sark_mcp\" takes the action and the tool from "
                           "each JSON-RPC message: remove "
                           "\"sark_authz_action\" and \"sark_authz_tool\" "
                           "from this location");
        return NGX_CONF_ERROR;
    }

    if (conf->mcp && conf->authz == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"sark_mcp on\" enforces: it cannot go with "
                           "\"sark_authz off\"");
        return NGX_CONF_ERROR;
    }

    if (conf->mcp) {
        conf->authz = 1;
    }

    ngx_conf_merge_value(conf->authz, prev->authz, 0);
    ngx_conf_merge_ptr_value(conf->authz_action, prev->authz_action, NULL);
    ngx_conf_merge_ptr_value(conf->authz_server, prev->authz_server, NULL);
    ngx_conf_merge_ptr_value(conf->authz_tool, prev->authz_tool, NULL);
    ngx_conf_merge_ptr_value(conf->authz_sensitivity,
                             prev->authz_sensitivity, NULL);
    ngx_conf_merge_str_value(conf->admin_key, prev->admin_key, "");
    ngx_conf_merge_str_value(conf->gateway_key, prev->gateway_key, "");
    ngx_conf_merge_value(conf->audit, prev->audit, 1);
    ngx_conf_merge_uint_value(conf->compat, prev->compat,
                              NGX_HTTP_SARK_COMPAT_OFF);

    if (conf->resource_doc.data
        && (conf->api != NGX_HTTP_SARK_API_OFF || conf->authz))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"sark_protected_resource\" serves a public "
                           "document: it cannot share a location with "
                           "\"sark_api\" or \"sark_authz\"");
        return NGX_CONF_ERROR;
    }

    if (conf->api == NGX_HTTP_SARK_API_OFF && !conf->authz) {
        return NGX_CONF_OK;
    }

    directive = conf->mcp ? "sark_mcp" : conf->authz ? "sark_authz"
                                                      : "sark_api";

    smcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_sark_module);

    if (smcf->sarkd == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%s\" requires \"sark_sarkd\" "
                           "in the http block", directive);
        return NGX_CONF_ERROR;
    }

    /* gateways and admins with a key need no JWT key; enforcement does */

    if (conf->jwt_keys == NULL
        && (conf->authz
            || !(conf->api == NGX_HTTP_SARK_API_AUDIT
                 || conf->api >= NGX_HTTP_SARK_API_LIVE
                 || ((conf->api == NGX_HTTP_SARK_API_INVALIDATE
                      || conf->api == NGX_HTTP_SARK_API_WARM)
                     && conf->admin_key.len))))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%s\" requires \"sark_jwt_secret\" or "
                           "\"sark_jwt_key_file\" (or \"sark_jwt_jwks_file\")",
                           directive);
        return NGX_CONF_ERROR;
    }

    if (conf->mcp) {
        if (conf->api != NGX_HTTP_SARK_API_OFF) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"sark_mcp\" and \"sark_api\" cannot share "
                               "a location");
            return NGX_CONF_ERROR;
        }

        if (conf->authz_server == NULL) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"sark_mcp\" requires \"sark_authz_server\": "
                               "the MCP server's name in the policy");
            return NGX_CONF_ERROR;
        }

        if (conf->authz_server->lengths == NULL
            && (conf->authz_server->value.len == 0
                || conf->authz_server->value.len > NGX_HTTP_SARK_MAX_NAME))
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"sark_authz_server\" must be 1 to %d bytes",
                               NGX_HTTP_SARK_MAX_NAME);
            return NGX_CONF_ERROR;
        }

        if (conf->authz_sensitivity
            && conf->authz_sensitivity->lengths == NULL
            && !ngx_http_sark_valid_sensitivity(
                   &conf->authz_sensitivity->value))
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"sark_authz_sensitivity\" must be low, "
                               "medium, high or critical");
            return NGX_CONF_ERROR;
        }

        conf->authz_static = 0;

        if (smcf->mcp_sessions == NULL) {
            smcf->mcp_sessions = ngx_http_sark_sessions_add(cf,
                                                   smcf->mcp_sessions_size);
            if (smcf->mcp_sessions == NULL) {
                return NGX_CONF_ERROR;
            }
        }

        conf->mcp_sessions = smcf->mcp_sessions;

        return NGX_CONF_OK;
    }

    if (conf->authz && conf->authz_action == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"sark_authz\" requires \"sark_authz_action\"");
        return NGX_CONF_ERROR;
    }

    conf->authz_static = conf->authz
        && conf->authz_action->lengths == NULL
        && (conf->authz_server == NULL || conf->authz_server->lengths == NULL)
        && (conf->authz_tool == NULL || conf->authz_tool->lengths == NULL)
        && (conf->authz_sensitivity == NULL
            || conf->authz_sensitivity->lengths == NULL);

    /* fixed values are checked now, as requests would check them */

    if (conf->authz_static
        && (conf->authz_action->value.len == 0
            || conf->authz_action->value.len > NGX_HTTP_SARK_MAX_NAME
            || (conf->authz_server
                && conf->authz_server->value.len > NGX_HTTP_SARK_MAX_NAME)
            || (conf->authz_tool
                && conf->authz_tool->value.len > NGX_HTTP_SARK_MAX_NAME)
            || (conf->authz_sensitivity
                && !ngx_http_sark_valid_sensitivity(
                        &conf->authz_sensitivity->value))))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"sark_authz_action\" must not be empty, no "
                           "\"sark_authz_*\" value may be longer than %d "
                           "bytes, and \"sark_authz_sensitivity\" must be "
                           "low, medium, high or critical",
                           NGX_HTTP_SARK_MAX_NAME);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_sark_sarkd(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_sark_main_conf_t *smcf = conf;

    ngx_str_t  *value;
    ngx_url_t   u;

    if (smcf->sarkd != NULL) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strncmp(value[1].data, "unix:", 5) != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid sarkd address \"%V\": "
                           "expected \"unix:/path/to/sarkd.sock\"",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&u, sizeof(ngx_url_t));

    u.url = value[1];
    u.no_resolve = 1;

    if (ngx_parse_url(cf->pool, &u) != NGX_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid sarkd address \"%V\": %s",
                           &value[1], u.err ? u.err : "unknown error");
        return NGX_CONF_ERROR;
    }

    smcf->sarkd = &u.addrs[0];

    if (ngx_http_sark_metrics_add(cf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_sark_cache_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_sark_main_conf_t *smcf = conf;

    ssize_t     size;
    ngx_str_t  *value;

    if (smcf->cache != NULL) {
        return "is duplicate";
    }

    value = cf->args->elts;

    size = ngx_parse_size(&value[2]);

    if (size == NGX_ERROR || size < (ssize_t) (64 * ngx_pagesize)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid sark cache zone size \"%V\": "
                           "expected at least %uz bytes",
                           &value[2], 64 * ngx_pagesize);
        return NGX_CONF_ERROR;
    }

    smcf->cache = ngx_http_sark_cache_add(cf, &value[1], (size_t) size);
    if (smcf->cache == NULL) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_sark_api(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_sark_loc_conf_t *slcf = conf;

    char                      *rv;
    ngx_http_core_loc_conf_t  *clcf;

    rv = ngx_conf_set_enum_slot(cf, cmd, conf);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    if (slcf->api != NGX_HTTP_SARK_API_OFF) {
        clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
        clcf->handler = ngx_http_sark_api_handler;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_sark_jwt_secret(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_sark_loc_conf_t *slcf = conf;

    char             err[256];
    ngx_str_t       *value;
    sark_jwt_key_t  *key;

    value = cf->args->elts;

    key = sark_jwt_key_hs256(value[1].data, value[1].len, err, sizeof(err));
    if (key == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid \"sark_jwt_secret\": %s", err);
        return NGX_CONF_ERROR;
    }

    if (ngx_http_sark_add_key(cf, slcf, key) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_sark_jwt_key_file(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_sark_loc_conf_t *slcf = conf;

    char             err[256];
    ngx_str_t       *value, path;
    sark_jwt_key_t  *key;

    value = cf->args->elts;
    path = value[1];

    if (ngx_conf_full_name(cf->cycle, &path, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    key = sark_jwt_key_pem_file((char *) path.data, err, sizeof(err));
    if (key == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid \"sark_jwt_key_file\" \"%V\": %s",
                           &path, err);
        return NGX_CONF_ERROR;
    }

    if (ngx_http_sark_add_key(cf, slcf, key) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * A JWKS document (RFC 7517), as an identity provider publishes it: every
 * RS256 and ES256 signing key in it is added, with its "kid"; other keys
 * are skipped (and named at notice level), a broken one is an error.  Read
 * when the configuration is, so `nginx -s reload` takes a new file.
 */

static char *
ngx_http_sark_jwt_jwks_file(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_sark_loc_conf_t *slcf = conf;

    int                 skip;
    char                err[256], msg[SARK_JSON_ERR_LEN];
    u_char             *buf;
    ssize_t             n;
    ngx_str_t          *value, path;
    ngx_uint_t          added;
    ngx_file_t          file;
    sark_json_t        *root;
    sark_jwt_key_t     *key;
    ngx_file_info_t     fi;
    const sark_json_t  *keys, *jwk;

    value = cf->args->elts;
    path = value[1];

    if (ngx_conf_full_name(cf->cycle, &path, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&file, sizeof(ngx_file_t));
    file.name = path;
    file.log = cf->log;

    file.fd = ngx_open_file(path.data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (file.fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "\"sark_jwt_jwks_file\": cannot open \"%V\"",
                           &path);
        return NGX_CONF_ERROR;
    }

    buf = NULL;
    n = NGX_ERROR;

    if (ngx_fd_info(file.fd, &fi) != NGX_FILE_ERROR
        && ngx_file_size(&fi) <= NGX_HTTP_SARK_JWKS_MAX)
    {
        buf = ngx_pnalloc(cf->temp_pool, (size_t) ngx_file_size(&fi) + 1);
        if (buf != NULL) {
            n = ngx_read_file(&file, buf, (size_t) ngx_file_size(&fi), 0);
        }
    }

    ngx_close_file(file.fd);

    if (n == NGX_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"sark_jwt_jwks_file\": cannot read \"%V\" (at "
                           "most %d bytes)", &path, NGX_HTTP_SARK_JWKS_MAX);
        return NGX_CONF_ERROR;
    }

    if (sark_json_parse(buf, (size_t) n, 16, ngx_http_sark_json_alloc,
                        cf->temp_pool, &root, msg, sizeof(msg))
        != 0
        || (keys = sark_json_get(root, "keys")) == NULL
        || keys->type != SARK_JSON_ARRAY)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"sark_jwt_jwks_file\" \"%V\" is not a JWKS "
                           "document (a JSON object with a \"keys\" array)",
                           &path);
        return NGX_CONF_ERROR;
    }

    added = 0;

    for (jwk = keys->child; jwk; jwk = jwk->next) {
        key = sark_jwt_key_jwk(jwk, &skip, err, sizeof(err));

        if (key == NULL && skip) {
            ngx_conf_log_error(NGX_LOG_NOTICE, cf, 0,
                               "\"sark_jwt_jwks_file\" \"%V\": a key is "
                               "skipped: %s", &path, err);
            continue;
        }

        if (key == NULL) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid \"sark_jwt_jwks_file\" \"%V\": %s",
                               &path, err);
            return NGX_CONF_ERROR;
        }

        if (ngx_http_sark_add_key(cf, slcf, key) != NGX_OK) {
            return NGX_CONF_ERROR;
        }

        added++;
    }

    if (added == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"sark_jwt_jwks_file\" \"%V\" holds no RS256 or "
                           "ES256 signing key", &path);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_sark_add_key(ngx_conf_t *cf, ngx_http_sark_loc_conf_t *slcf,
    sark_jwt_key_t *key)
{
    sark_jwt_key_t     **k;
    ngx_pool_cleanup_t  *cln;

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        sark_jwt_key_free(key);
        return NGX_ERROR;
    }

    cln->handler = ngx_http_sark_key_cleanup;
    cln->data = key;

    if (slcf->jwt_keys == NGX_CONF_UNSET_PTR || slcf->jwt_keys == NULL) {
        slcf->jwt_keys = ngx_array_create(cf->pool, 2,
                                          sizeof(sark_jwt_key_t *));
        if (slcf->jwt_keys == NULL) {
            return NGX_ERROR;
        }
    }

    k = ngx_array_push(slcf->jwt_keys);
    if (k == NULL) {
        return NGX_ERROR;
    }

    *k = key;

    return NGX_OK;
}


static void
ngx_http_sark_key_cleanup(void *data)
{
    sark_jwt_key_free(data);
}


static char *
ngx_http_sark_check_depth(ngx_conf_t *cf, void *post, void *data)
{
    ngx_uint_t  *np = data;

    if (*np < 2 || *np > 256) {
        return "must be between 2 and 256";
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_sark_check_msec(ngx_conf_t *cf, void *post, void *data)
{
    ngx_http_sark_msec_bounds_t  *b = post;
    ngx_msec_t                   *mp = data;

    if (*mp < b->low || *mp > b->high) {
        return b->error;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_sark_check_audit_batch(ngx_conf_t *cf, void *post, void *data)
{
    size_t  *sp = data;

    if (*sp < 4 * 1024 || *sp > 1024 * 1024) {
        return "must be between 4k and 1m";
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_sark_check_gateway_key(ngx_conf_t *cf, void *post, void *data)
{
    ngx_str_t  *key = data;

    if (key->len < 16) {
        return "must be at least 16 bytes";
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_sark_preconfiguration(ngx_conf_t *cf)
{
    return ngx_http_sark_add_variables(cf);
}


static ngx_int_t
ngx_http_sark_postconfiguration(ngx_conf_t *cf)
{
    if (ngx_http_sark_body_init(cf) != NGX_OK
        || ngx_http_sark_error_page_init(cf) != NGX_OK
        || ngx_http_sark_mcp_session_init(cf) != NGX_OK
        || ngx_http_sark_mcp_list_init(cf) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_sark_access_init(cf);
}


static ngx_int_t
ngx_http_sark_init_process(ngx_cycle_t *cycle)
{
    ngx_http_sark_main_conf_t   *smcf;
    ngx_http_sark_sarkd_conf_t   conf;

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    smcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_sark_module);

    if (smcf == NULL || smcf->sarkd == NULL) {
        return NGX_OK;
    }

    ngx_http_sark_metrics_init_process();

    conf.addr = smcf->sarkd;
    conf.connect_timeout = NGX_HTTP_SARK_CONNECT_TIMEOUT;
    conf.buffer_max = smcf->sarkd_buffer_max;
    conf.on_revision = ngx_http_sark_set_revision;
    conf.on_invalidate = ngx_http_sark_apply_invalidation;
    conf.on_exiting = ngx_http_sark_audit_exiting;
    conf.on_keys = ngx_http_sark_keys_update;
    conf.on_registry = ngx_http_sark_registry_update;
    conf.on_lost = ngx_http_sark_keys_lost;

    ngx_http_sark_load_revision(cycle);

    if (ngx_http_sark_sarkd_init(cycle, &conf) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_sark_audit_init(cycle, smcf);
}


static void
ngx_http_sark_exit_process(ngx_cycle_t *cycle)
{
    /* first: in-flight audit calls are cancelled on a live connection */

    ngx_http_sark_audit_exit(cycle);
    ngx_http_sark_sarkd_exit(cycle);
}


/* sark_api_compat off|sark, with a message that says what is accepted */

static char *
ngx_http_sark_compat(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_sark_loc_conf_t *slcf = conf;

    ngx_str_t        *value;
    ngx_conf_enum_t  *e;

    if (slcf->compat != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    for (e = ngx_http_sark_compat_modes; e->name.len; e++) {
        if (e->name.len == value[1].len
            && ngx_strcmp(e->name.data, value[1].data) == 0)
        {
            slcf->compat = e->value;
            return NGX_CONF_OK;
        }
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "\"sark_api_compat\" must be \"off\" or \"sark\", "
                       "not \"%V\"", &value[1]);

    return NGX_CONF_ERROR;
}
