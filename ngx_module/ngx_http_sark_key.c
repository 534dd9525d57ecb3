
/*
 * Copyright (C) sark-gateway authors
 */


/*
 * The decision key of a question (shared/sark_key.h; sarkd computes the
 * same one for L2): everything the policy sees except gateway_metadata,
 * each field with its presence (a string is present when its data is not
 * NULL, as it is sent to sarkd), under the policy revision the worker
 * knows.  The memos (ngx_http_sark_memo.c) spare the work of a question
 * asked before.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <openssl/evp.h>

#include "ngx_http_sark_module.h"


#define NGX_HTTP_SARK_STACK_ENC  512


static ngx_int_t ngx_http_sark_make_key(ngx_http_request_t *r,
    ngx_http_sark_ctx_t *ctx);


/*
 * ctx->key for ctx's question.  From the token's question memo when the
 * same question was asked with the same token there before: at an
 * enforced location whose values have no variables, or (set by
 * ngx_http_sark_recall_question()) at the decision API with the same body;
 * ctx->question then points to the memo until the decision is known or
 * goes to sarkd.  Otherwise computed, and remembered for such a location
 * or body.
 */

ngx_int_t
ngx_http_sark_key(ngx_http_request_t *r, ngx_http_sark_loc_conf_t *slcf,
    ngx_http_sark_ctx_t *ctx)
{
    ngx_uint_t                 fixed;
    ngx_http_sark_question_t  *m, question;

    if (ctx->keyed) {
        return NGX_OK;
    }

    fixed = slcf->authz_static
            && ctx->query.parameters.len == 0
            && ctx->query.context.len == 0;

    if (fixed) {
        m = ngx_http_sark_question_recall(&ctx->identity, slcf,
                                          ngx_http_sark_revision_gen,
                                          &ctx->body);
        if (m) {
            ctx->key = m->key;
            ctx->question = m;
            ctx->keyed = 1;
            return NGX_OK;
        }
    }

    if (ngx_http_sark_make_key(r, ctx) != NGX_OK) {
        return NGX_ERROR;
    }

    if (!fixed && ctx->spans == NULL) {
        return NGX_OK;
    }

    ngx_memzero(&question, sizeof(ngx_http_sark_question_t));

    if (ngx_http_sark_audit_query(r->pool, ctx, &question.audit_query)
        == NGX_OK)
    {
        question.key = ctx->key;
        question.body = ctx->body;

        if (ctx->spans) {
            question.spans = *ctx->spans;
        }

        ctx->question = ngx_http_sark_question_remember(&ctx->identity, slcf,
                                                   ngx_http_sark_revision_gen,
                                                   &question);
    }

    return NGX_OK;
}


/*
 * The decision API: a body this token sent to this location before, byte
 * for byte, under the same policy revision, asks what it asked then.  Its
 * members are taken from where they were in that body (each was checked
 * then, and strings remembered this way have no escapes), its key and
 * audit fields from the memo.  NGX_DECLINED: not seen before.
 */

ngx_int_t
ngx_http_sark_recall_question(ngx_http_request_t *r,
    ngx_http_sark_loc_conf_t *slcf, ngx_http_sark_ctx_t *ctx, ngx_str_t *body)
{
    ngx_str_t                 *f[NGX_HTTP_SARK_QUERY_MEMBERS];
    ngx_uint_t                 i;
    ngx_http_sark_query_t     *q;
    ngx_http_sark_question_t  *m;

    if (ngx_http_sark_revision.len == 0) {
        return NGX_DECLINED;
    }

    m = ngx_http_sark_question_recall(&ctx->identity, slcf,
                                      ngx_http_sark_revision_gen, body);
    if (m == NULL) {
        return NGX_DECLINED;
    }

    q = &ctx->query;

    f[0] = &q->action;
    f[1] = &q->server_name;
    f[2] = &q->tool_name;
    f[3] = &q->sensitivity;
    f[4] = &q->parameters;
    f[5] = &q->context;
    f[6] = &q->gateway_metadata;

    for (i = 0; i < NGX_HTTP_SARK_QUERY_MEMBERS; i++) {
        if (m->spans.len[i] == NGX_HTTP_SARK_SPAN_NONE) {
            ngx_str_null(f[i]);

        } else {
            f[i]->data = body->data + m->spans.off[i];
            f[i]->len = m->spans.len[i];
        }
    }

    ctx->key = m->key;
    ctx->question = m;
    ctx->keyed = 1;

    return NGX_OK;
}


static void
ngx_http_sark_key_field(sark_key_field_t *f, ngx_str_t *s)
{
    f->data = s->data;
    f->len = s->data ? s->len : 0;
    f->present = (s->data != NULL);
}


static ngx_int_t
ngx_http_sark_make_key(ngx_http_request_t *r, ngx_http_sark_ctx_t *ctx)
{
    u_char                    *enc, *p, md_value[EVP_MAX_MD_SIZE];
    u_char                     stack_enc[NGX_HTTP_SARK_STACK_ENC];
    size_t                     len;
    ngx_uint_t                 i;
    unsigned int               md_len;
    sark_key_input_t           in;
    sark_key_field_t           roles[NGX_HTTP_SARK_MAX_ROLES];
    sark_key_field_t           teams[NGX_HTTP_SARK_MAX_ROLES];
    ngx_http_sark_query_t     *q;
    ngx_http_sark_identity_t  *id;

    q = &ctx->query;
    id = &ctx->identity;

    if (id->nroles > NGX_HTTP_SARK_MAX_ROLES
        || id->nteams > NGX_HTTP_SARK_MAX_ROLES)
    {
        /* refused by authentication already; never keyed */
        return NGX_OK;
    }

    ngx_http_sark_key_field(&in.f[SARK_KEY_REVISION], &ngx_http_sark_revision);
    ngx_http_sark_key_field(&in.f[SARK_KEY_USER_ID], &id->sub);
    ngx_http_sark_key_field(&in.f[SARK_KEY_EMAIL], &id->email);
    ngx_http_sark_key_field(&in.f[SARK_KEY_ACTION], &q->action);
    ngx_http_sark_key_field(&in.f[SARK_KEY_SERVER], &q->server_name);
    ngx_http_sark_key_field(&in.f[SARK_KEY_TOOL], &q->tool_name);
    ngx_http_sark_key_field(&in.f[SARK_KEY_SENSITIVITY], &q->sensitivity);
    ngx_http_sark_key_field(&in.f[SARK_KEY_PARAMETERS], &q->parameters);
    ngx_http_sark_key_field(&in.f[SARK_KEY_CONTEXT], &q->context);
    ngx_http_sark_key_field(&in.f[SARK_KEY_SOURCE_AGENT], &q->source_agent);
    ngx_http_sark_key_field(&in.f[SARK_KEY_TARGET_AGENT], &q->target_agent);

    for (i = 0; i < id->nroles; i++) {
        ngx_http_sark_key_field(&roles[i], &id->roles[i]);
        roles[i].present = 1;
    }

    for (i = 0; i < id->nteams; i++) {
        ngx_http_sark_key_field(&teams[i], &id->teams[i]);
        teams[i].present = 1;
    }

    in.roles = roles;
    in.nroles = id->nroles;
    in.teams = teams;
    in.nteams = id->nteams;

    len = sark_key_encoded_len(&in);

    if (len <= NGX_HTTP_SARK_STACK_ENC) {
        enc = stack_enc;

    } else {
        enc = ngx_pnalloc(r->pool, len);
        if (enc == NULL) {
            return NGX_ERROR;
        }
    }

    len = sark_key_encode(enc, &in) - enc;

    /*
     * the text is read only while ngx_http_sark_decide() runs (pattern
     * checks, the request to sarkd); nothing can replace the memo's slot
     * before it returns
     */

    if (ngx_http_sark_key_recall(enc, len, &ctx->key) == NGX_OK) {
        ctx->keyed = 1;
        return NGX_OK;
    }

    if (EVP_Digest(enc, len, md_value, &md_len, EVP_sha256(), NULL) != 1) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "sark: SHA-256 failed");
        return NGX_ERROR;
    }

    ngx_memcpy(ctx->key.digest, md_value, NGX_HTTP_SARK_DIGEST_LEN);

    ctx->key.text.data = ngx_pnalloc(r->pool, sark_key_text_len(&in));
    if (ctx->key.text.data == NULL) {
        return NGX_ERROR;
    }

    p = (u_char *) sark_key_text((char *) ctx->key.text.data, &in, md_value);

    ctx->key.text.len = p - ctx->key.text.data;
    ctx->keyed = 1;

    ngx_http_sark_key_remember(enc, len, &ctx->key, r->connection->log);

    return NGX_OK;
}
