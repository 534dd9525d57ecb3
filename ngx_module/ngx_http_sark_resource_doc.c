
/*
 * Copyright (C) sark-gateway authors
 */


/*
 * The OAuth 2.0 protected resource metadata document (RFC 9728) of the
 * routes sark guards: `sark_protected_resource RESOURCE [ISSUER ...]` in a
 * location (usually /.well-known/oauth-protected-resource, or that path
 * followed by the resource's own path) serves
 *
 *   {"resource":"RESOURCE","authorization_servers":["ISSUER",...],
 *    "bearer_methods_supported":["header"]}
 *
 * to GET and HEAD.  MCP clients read it after a 401 whose WWW-Authenticate
 * names it (sark_resource_metadata) to find where to get a token.  The
 * document is made once, when the configuration is read.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_sark_module.h"


static ngx_int_t ngx_http_sark_resource_doc_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_sark_valid_url(ngx_str_t *url);


char *
ngx_http_sark_protected_resource(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_sark_loc_conf_t *slcf = conf;

    u_char                    *p;
    size_t                     len;
    ngx_str_t                 *value;
    ngx_uint_t                 i;
    ngx_http_core_loc_conf_t  *clcf;

    if (slcf->resource_doc.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    len = sizeof("{\"resource\":\"\",\"authorization_servers\":[]"
                 ",\"bearer_methods_supported\":[\"header\"]}") - 1;

    for (i = 1; i < cf->args->nelts; i++) {
        if (ngx_http_sark_valid_url(&value[i]) != NGX_OK) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\" is not an absolute http or https URL "
                               "without a fragment, spaces or quotes",
                               &value[i]);
            return NGX_CONF_ERROR;
        }

        /* quotes and a comma around each; checked: nothing to escape */
        len += value[i].len + 3;
    }

    p = ngx_pnalloc(cf->pool, len);
    if (p == NULL) {
        return NGX_CONF_ERROR;
    }

    slcf->resource_doc.data = p;

    p = ngx_sprintf(p, "{\"resource\":\"%V\"", &value[1]);

    if (cf->args->nelts > 2) {
        p = ngx_http_sark_cpylit(p, ",\"authorization_servers\":[");

        for (i = 2; i < cf->args->nelts; i++) {
            p = ngx_sprintf(p, "%s\"%V\"", i > 2 ? "," : "", &value[i]);
        }

        *p++ = ']';
    }

    p = ngx_http_sark_cpylit(p, ",\"bearer_methods_supported\":[\"header\"]}");

    slcf->resource_doc.len = p - slcf->resource_doc.data;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_sark_resource_doc_handler;

    return NGX_CONF_OK;
}


/*
 * RFC 9728 wants the https scheme for the resource and the issuers; plain
 * http is accepted for loopback and test setups.  The characters refused
 * are those that would need escaping in JSON or quoting in a header.
 */

static ngx_int_t
ngx_http_sark_valid_url(ngx_str_t *url)
{
    u_char  *p, *last, *host;

    p = url->data;
    last = p + url->len;

    if (url->len > 8 && ngx_strncasecmp(p, (u_char *) "https://", 8) == 0) {
        host = p + 8;

    } else if (url->len > 7
               && ngx_strncasecmp(p, (u_char *) "http://", 7) == 0)
    {
        host = p + 7;

    } else {
        return NGX_ERROR;
    }

    if (*host == '/' || *host == '?' || *host == '#') {
        return NGX_ERROR;
    }

    for ( /* void */ ; p < last; p++) {
        if (*p <= ' ' || *p >= 0x7f || *p == '"' || *p == '\\' || *p == '#') {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_sark_resource_doc_handler(ngx_http_request_t *r)
{
    ngx_int_t                  rc;
    ngx_http_sark_loc_conf_t  *slcf;

    static ngx_str_t  cache_control = ngx_string("max-age=3600");

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    slcf = ngx_http_get_module_loc_conf(r, ngx_http_sark_module);

    if (ngx_http_sark_add_header(r, "Cache-Control", &cache_control)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_sark_send_json(r, NGX_HTTP_OK, &slcf->resource_doc);
}
