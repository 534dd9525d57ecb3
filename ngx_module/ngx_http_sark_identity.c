
/*
 * Copyright (C) sark-gateway authors
 */


/*
 * Who is asking: a user with a bearer JWT (verified here, or remembered
 * from a verification before: ngx_http_sark_memo.c), an admin (the admin
 * role, or sark_admin_key), or a gateway (sark_gateway_key).
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <openssl/crypto.h>

#include "ngx_http_sark_module.h"


static ngx_int_t ngx_http_sark_agent_of(ngx_http_request_t *r,
    sark_jwt_claims_t *claims, ngx_http_sark_identity_t *id);
static ngx_int_t ngx_http_sark_copy_strings(ngx_pool_t *pool,
    sark_jwt_str_t *src, size_t n, ngx_str_t **dst, ngx_uint_t *ndst);


/* the caller's token, verified; timed for sark_profile */

static ngx_int_t ngx_http_sark_authenticate_token(ngx_http_request_t *r,
    ngx_http_sark_loc_conf_t *slcf, ngx_http_sark_identity_t *id,
    ngx_http_sark_error_t *err);


ngx_int_t
ngx_http_sark_authenticate(ngx_http_request_t *r,
    ngx_http_sark_loc_conf_t *slcf, ngx_http_sark_identity_t *id,
    ngx_http_sark_error_t *err)
{
    uint64_t   t0;
    ngx_int_t  rc;

    if (!slcf->profile) {
        return ngx_http_sark_authenticate_token(r, slcf, id, err);
    }

    t0 = ngx_http_sark_now_us();
    rc = ngx_http_sark_authenticate_token(r, slcf, id, err);
    id->auth_us = ngx_http_sark_now_us() - t0;

    return rc;
}


static ngx_int_t
ngx_http_sark_authenticate_token(ngx_http_request_t *r,
    ngx_http_sark_loc_conf_t *slcf, ngx_http_sark_identity_t *id,
    ngx_http_sark_error_t *err)
{
    u_char             *p, *last;
    char                msg[128];
    ngx_str_t           token;
    sark_jwt_rc_e       rc;
    sark_jwt_opts_t     opts;
    ngx_table_elt_t    *h;
    sark_jwt_claims_t   claims;

    h = r->headers_in.authorization;

    if (h == NULL || h->value.len == 0) {
        ngx_http_sark_error_set(err, NGX_HTTP_UNAUTHORIZED, "AU-001",
                                "missing bearer token");
        err->www_authenticate = 1;
        return NGX_DECLINED;
    }

    p = h->value.data;
    last = p + h->value.len;

    if (h->value.len < 6
        || (ngx_memcmp(p, "Bearer", 6) != 0
            && ngx_strncasecmp(p, (u_char *) "Bearer", 6) != 0)
        || (h->value.len > 6 && p[6] != ' '))
    {
        ngx_http_sark_error_set(err, NGX_HTTP_UNAUTHORIZED, "AU-002",
                                "invalid authorization header: "
                                "expected \"Bearer <token>\"");
        err->www_authenticate = 1;
        err->invalid_token = 1;
        return NGX_DECLINED;
    }

    for (p += 6; p < last && *p == ' '; p++) { /* void */ }

    while (last > p && last[-1] == ' ') {
        last--;
    }

    token.data = p;
    token.len = last - p;

    if (token.len == 0) {
        ngx_http_sark_error_set(err, NGX_HTTP_UNAUTHORIZED, "AU-001",
                                "missing bearer token");
        err->www_authenticate = 1;
        return NGX_DECLINED;
    }

    switch (ngx_http_sark_token_recall(r, slcf, &token, id)) {

    case NGX_OK:
        return NGX_OK;

    case NGX_ERROR:
        return NGX_ERROR;

    case NGX_ABORT:
        ngx_http_sark_error_set(err, NGX_HTTP_UNAUTHORIZED, "AU-003",
                                "token expired");
        err->www_authenticate = 1;
        err->invalid_token = 1;
        return NGX_DECLINED;

    default:
        break;
    }

    ngx_memzero(&opts, sizeof(sark_jwt_opts_t));

    opts.keys = (const sark_jwt_key_t *const *) slcf->jwt_keys->elts;
    opts.nkeys = slcf->jwt_keys->nelts;
    opts.issuer = slcf->jwt_issuer.len ? (char *) slcf->jwt_issuer.data
                                       : NULL;
    opts.audience = slcf->jwt_audience.len
                    ? (char *) slcf->jwt_audience.data : NULL;
    opts.leeway = (long) slcf->jwt_leeway;
    opts.max_token_len = SARK_JWT_DEFAULT_MAX_LEN;

    msg[0] = '\0';

    rc = sark_jwt_verify((char *) token.data, token.len, &opts,
                         (long long) ngx_time(), ngx_http_sark_json_alloc,
                         r->pool, &claims, msg, sizeof(msg));

    if (rc == SARK_JWT_ERROR) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "sark: token verification failed: %s", msg);
        ngx_memzero(err, sizeof(ngx_http_sark_error_t));
        return NGX_ERROR;
    }

    if (rc != SARK_JWT_OK) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "sark: token rejected: %s (%s)",
                      sark_jwt_strerror(rc), msg);

        if (rc == SARK_JWT_EXPIRED) {
            ngx_http_sark_error_set(err, NGX_HTTP_UNAUTHORIZED, "AU-003",
                                    "token expired");

        } else if (msg[0] == '\0') {
            ngx_http_sark_error_fmt(r->pool, err, NGX_HTTP_UNAUTHORIZED,
                                    "AU-002", "%s", sark_jwt_strerror(rc));

        } else {
            /* messages that say "token" themselves are shown as they are */
            ngx_http_sark_error_fmt(r->pool, err, NGX_HTTP_UNAUTHORIZED,
                                    "AU-002",
                                    ngx_strstr(msg, "token") ? "%s"
                                    : "invalid token: %s", msg);
        }

        err->www_authenticate = 1;
        err->invalid_token = 1;
        return NGX_DECLINED;
    }

    if (claims.nroles > NGX_HTTP_SARK_MAX_ROLES
        || claims.nteams > NGX_HTTP_SARK_MAX_ROLES)
    {
        ngx_http_sark_error_set(err, NGX_HTTP_UNAUTHORIZED, "AU-002",
                                "invalid token: too many roles or teams");
        err->www_authenticate = 1;
        err->invalid_token = 1;
        return NGX_DECLINED;
    }

    id->sub.data = (u_char *) claims.sub.s;
    id->sub.len = claims.sub.len;
    id->email.data = (u_char *) claims.email.s;
    id->email.len = claims.email.len;
    id->exp = (time_t) claims.exp;

    if (ngx_http_sark_copy_strings(r->pool, claims.roles, claims.nroles,
                                   &id->roles, &id->nroles)
        != NGX_OK
        || ngx_http_sark_copy_strings(r->pool, claims.teams, claims.nteams,
                                      &id->teams, &id->nteams)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (claims.agent_id.s) {

        /* agent tokens are not remembered: the memo holds no agent */

        return ngx_http_sark_agent_of(r, &claims, id);
    }

    ngx_http_sark_token_remember(slcf, &token, id);

    return NGX_OK;
}


/*
 * An agent token's agent, as the a2a policy reads a source agent:
 * {"id", "type", "trust_level", "capabilities", "environment"}, each only
 * when the token has it (the policy denies a missing trust level).
 */

static ngx_int_t
ngx_http_sark_agent_of(ngx_http_request_t *r, sark_jwt_claims_t *claims,
    ngx_http_sark_identity_t *id)
{
    u_char             *p;
    size_t              len, i;
    ngx_str_t           s, type;
    const sark_json_t  *v;

    ngx_str_null(&type);

    v = claims->payload ? sark_json_get(claims->payload, "agent_type") : NULL;

    if (v && v->type == SARK_JSON_STRING) {
        type.data = (u_char *) v->str;
        type.len = v->len;
    }

    len = sizeof("{\"id\":,\"type\":,\"trust_level\":,\"capabilities\":[],"
                 "\"environment\":}") - 1
          + 2 + 6 * claims->agent_id.len
          + ngx_http_sark_string_len(&type)
          + 2 + 6 * claims->trust_level.len
          + 2 + 6 * claims->environment.len;

    for (i = 0; i < claims->ncapabilities; i++) {
        len += 3 + 6 * claims->capabilities[i].len;
    }

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    id->agent.data = p;
    id->agent_id.data = (u_char *) claims->agent_id.s;
    id->agent_id.len = claims->agent_id.len;

    p = ngx_http_sark_cpylit(p, "{\"id\":");
    p = ngx_http_sark_put_string(p, &id->agent_id);

    if (type.data) {
        p = ngx_http_sark_cpylit(p, ",\"type\":");
        p = ngx_http_sark_put_string(p, &type);
    }

    if (claims->trust_level.s) {
        s.data = (u_char *) claims->trust_level.s;
        s.len = claims->trust_level.len;
        p = ngx_http_sark_cpylit(p, ",\"trust_level\":");
        p = ngx_http_sark_put_string(p, &s);
    }

    p = ngx_http_sark_cpylit(p, ",\"capabilities\":[");

    for (i = 0; i < claims->ncapabilities; i++) {
        if (i) {
            *p++ = ',';
        }

        s.data = (u_char *) claims->capabilities[i].s;
        s.len = claims->capabilities[i].len;
        p = ngx_http_sark_put_string(p, &s);
    }

    *p++ = ']';

    if (claims->environment.s) {
        s.data = (u_char *) claims->environment.s;
        s.len = claims->environment.len;
        p = ngx_http_sark_cpylit(p, ",\"environment\":");
        p = ngx_http_sark_put_string(p, &s);
    }

    *p++ = '}';

    id->agent.len = p - id->agent.data;

    return NGX_OK;
}


static ngx_int_t
ngx_http_sark_copy_strings(ngx_pool_t *pool, sark_jwt_str_t *src, size_t n,
    ngx_str_t **dst, ngx_uint_t *ndst)
{
    size_t      i;
    ngx_str_t  *s;

    *ndst = n;
    *dst = NULL;

    if (n == 0) {
        return NGX_OK;
    }

    s = ngx_palloc(pool, n * sizeof(ngx_str_t));
    if (s == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < n; i++) {
        s[i].data = (u_char *) src[i].s;
        s[i].len = src[i].len;
    }

    *dst = s;

    return NGX_OK;
}


/* an admin is a token holding the role "admin", or the sark_admin_key */

ngx_int_t
ngx_http_sark_admin_check(ngx_http_request_t *r,
    ngx_http_sark_loc_conf_t *slcf, ngx_http_sark_ctx_t *ctx)
{
    ngx_int_t         rc;
    ngx_uint_t        i;
    ngx_table_elt_t  *h;

    static ngx_str_t  name = ngx_string("X-Admin-Key");

    if (slcf->admin_key.len) {
        h = ngx_http_sark_find_header(r, &name);

        if (h) {
            if (h->value.len == slcf->admin_key.len
                && CRYPTO_memcmp(h->value.data, slcf->admin_key.data,
                                 slcf->admin_key.len) == 0)
            {
                ngx_str_set(&ctx->identity.sub, "admin-key");
                return NGX_OK;
            }

            ngx_http_sark_error_set(&ctx->error, NGX_HTTP_UNAUTHORIZED,
                                    "AU-002", "invalid admin key");
            return NGX_DECLINED;
        }
    }

    if (slcf->jwt_keys == NULL) {
        ngx_http_sark_error_set(&ctx->error, NGX_HTTP_UNAUTHORIZED, "AU-001",
                                "missing admin key");
        return NGX_DECLINED;
    }

    rc = ngx_http_sark_authenticate(r, slcf, &ctx->identity, &ctx->error);

    if (rc != NGX_OK) {
        return rc;
    }

    for (i = 0; i < ctx->identity.nroles; i++) {
        if (ctx->identity.roles[i].len == 5
            && ngx_strncmp(ctx->identity.roles[i].data, "admin", 5) == 0)
        {
            return NGX_OK;
        }
    }

    ngx_http_sark_error_set(&ctx->error, NGX_HTTP_FORBIDDEN, "AZ-002",
                            "the admin role is required");

    return NGX_DECLINED;
}


/* the first request header called `name` (any case), or NULL */

ngx_table_elt_t *
ngx_http_sark_find_header(ngx_http_request_t *r, ngx_str_t *name)
{
    ngx_http_sark_header_iter_t  it;

    ngx_memzero(&it, sizeof(ngx_http_sark_header_iter_t));

    return ngx_http_sark_next_header(&r->headers_in.headers, name, &it);
}


/*
 * The next header of `list` called `name` (any case) after the ones `it`
 * has given (a zeroed `it` starts at the first), or NULL
 */

ngx_table_elt_t *
ngx_http_sark_next_header(ngx_list_t *list, ngx_str_t *name,
    ngx_http_sark_header_iter_t *it)
{
    ngx_table_elt_t  *h;

    if (it->part == NULL) {
        it->part = &list->part;
        it->i = 0;
    }

    for ( ;; ) {

        if (it->i >= it->part->nelts) {
            if (it->part->next == NULL) {
                return NULL;
            }

            it->part = it->part->next;
            it->i = 0;
            continue;
        }

        h = (ngx_table_elt_t *) it->part->elts + it->i++;

        if (h->key.len == name->len
            && ngx_strncasecmp(h->key.data, name->data, name->len) == 0)
        {
            return h;
        }
    }
}
