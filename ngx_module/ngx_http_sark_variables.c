
/*
 * Copyright (C) sark-gateway authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_sark_module.h"


static ngx_int_t ngx_http_sark_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);


enum {
    ngx_http_sark_var_decision = 0,
    ngx_http_sark_var_cache,
    ngx_http_sark_var_user,
    ngx_http_sark_var_reason,
    ngx_http_sark_var_audit_id,
    ngx_http_sark_var_authz_time
};


static ngx_int_t ngx_http_sark_zone_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);


static ngx_http_variable_t  ngx_http_sark_vars[] = {

    { ngx_string("sark_decision"), NULL, ngx_http_sark_variable,
      ngx_http_sark_var_decision, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("sark_cache"), NULL, ngx_http_sark_variable,
      ngx_http_sark_var_cache, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("sark_user"), NULL, ngx_http_sark_variable,
      ngx_http_sark_var_user, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("sark_reason"), NULL, ngx_http_sark_variable,
      ngx_http_sark_var_reason, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("sark_audit_id"), NULL, ngx_http_sark_variable,
      ngx_http_sark_var_audit_id, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("sark_authz_time"), NULL, ngx_http_sark_variable,
      ngx_http_sark_var_authz_time, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("sark_cache_entries"), NULL, ngx_http_sark_zone_variable,
      offsetof(ngx_http_sark_cache_stats_t, entries),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("sark_cache_hits"), NULL, ngx_http_sark_zone_variable,
      offsetof(ngx_http_sark_cache_stats_t, hits),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("sark_cache_misses"), NULL, ngx_http_sark_zone_variable,
      offsetof(ngx_http_sark_cache_stats_t, misses),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("sark_cache_evictions"), NULL, ngx_http_sark_zone_variable,
      offsetof(ngx_http_sark_cache_stats_t, evictions),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


static ngx_str_t  ngx_http_sark_cache_values[] = {
    ngx_string("MISS"),
    ngx_string("L1"),
    ngx_string("L2")
};


ngx_int_t
ngx_http_sark_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_sark_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_sark_variable(ngx_http_request_t *r, ngx_http_variable_value_t *v,
    uintptr_t data)
{
    u_char               *p;
    ngx_str_t             s;
    ngx_http_sark_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_sark_module);

    if (ctx == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    ngx_str_null(&s);

    switch (data) {

    case ngx_http_sark_var_decision:
        if (ctx->decided) {
            if (ctx->decision.decision == SARK_DECISION_ALLOW) {
                ngx_str_set(&s, "allow");

            } else if (ctx->dry_run) {
                ngx_str_set(&s, "dry_run_deny");    /* let through */

            } else {
                ngx_str_set(&s, "deny");
            }

        } else if (ctx->error.status) {
            ngx_str_set(&s, "error");
        }

        break;

    case ngx_http_sark_var_cache:
        if (ctx->decided && ctx->decision.cache_layer <= SARK_CACHE_L2) {
            s = ngx_http_sark_cache_values[ctx->decision.cache_layer];
        }

        break;

    case ngx_http_sark_var_user:
        s = ctx->identity.sub;
        break;

    case ngx_http_sark_var_reason:
        s = ctx->decided ? ctx->decision.reason : ctx->error.message;
        break;

    case ngx_http_sark_var_audit_id:
        if (ngx_http_sark_audit_id(r->pool, ctx) != NULL) {
            s = ctx->audit_id;
        }

        break;

    case ngx_http_sark_var_authz_time:
        p = ngx_pnalloc(r->pool, NGX_TIME_T_LEN + 4);
        if (p == NULL) {
            return NGX_ERROR;
        }

        s.data = p;
        s.len = ngx_sprintf(p, "%T.%03M", (time_t) ctx->elapsed / 1000,
                            ctx->elapsed % 1000)
                - p;
        break;
    }

    if (s.data == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->len = s.len;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
    v->data = s.data;

    return NGX_OK;
}


/* decisions held in the L1 zone right now (all workers) */

/* one of the L1 zone's counters (data: its offset in the stats) */

static ngx_int_t
ngx_http_sark_zone_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char                       *p;
    ngx_http_sark_cache_stats_t   st;
    ngx_http_sark_main_conf_t    *smcf;

    smcf = ngx_http_get_module_main_conf(r, ngx_http_sark_module);

    if (smcf->cache == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, NGX_INT_T_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_http_sark_cache_stats(smcf->cache, &st);

    v->len = ngx_sprintf(p, "%ui", *(ngx_uint_t *) ((u_char *) &st + data))
             - p;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
    v->data = p;

    return NGX_OK;
}
