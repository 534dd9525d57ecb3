
/*
 * Copyright (C) sark-gateway authors
 */


/*
 * MCP sessions bound to their caller.  An MCP server trusts the
 * Mcp-Session-Id header: whoever presents an id acts in that session.  So
 * the id an upstream hands out in its answer to one subject (the token's
 * `sub`) is recorded with that subject, and another subject presenting it
 * is refused with 403 AZ-004.  An id the zone does not know (issued before
 * nginx started, by another gateway host, or pushed out of the table) is
 * bound to the first subject that presents it, in a free slot only: when
 * there is none the request is refused with 404, which tells an MCP client
 * to start a new session.
 *
 * The table lives in its own shared zone (sark_mcp_sessions, made when a
 * location has sark_mcp on): fixed slots of HMAC-SHA-256 prefixes of the
 * id and of the subject, under a key drawn when the zone is made (so no
 * one can compute which slots an id takes), found by open addressing
 * within NGX_HTTP_SARK_SESSION_PROBE slots.  An id the upstream hands out
 * takes a free slot or the least recently used one; a slot unused for
 * NGX_HTTP_SARK_SESSION_IDLE counts as free.  No allocation per request,
 * bounded work under the zone's mutex.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "ngx_http_sark_mcp.h"


#define NGX_HTTP_SARK_SESSION_DIGEST  16
#define NGX_HTTP_SARK_SESSION_PROBE   8
#define NGX_HTTP_SARK_SESSION_IDLE    86400  /* seconds */
#define NGX_HTTP_SARK_SESSION_MAGIC   0x53414b5345530002ULL  /* "SAKSES", 2 */


typedef struct {
    u_char                       id[NGX_HTTP_SARK_SESSION_DIGEST];
    u_char                       sub[NGX_HTTP_SARK_SESSION_DIGEST];
    uint32_t                     used;          /* seconds; 0: free */
} ngx_http_sark_session_slot_t;


typedef struct {
    uint64_t                     magic;
    u_char                       key[32];
    ngx_uint_t                   nslots;
    ngx_http_sark_session_slot_t slots[1];
} ngx_http_sark_sessions_sh_t;


typedef struct {
    ngx_http_sark_sessions_sh_t *sh;
    ngx_slab_pool_t             *shpool;
} ngx_http_sark_sessions_t;


static ngx_int_t ngx_http_sark_sessions_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static ngx_int_t ngx_http_sark_session_digest(ngx_http_request_t *r,
    u_char *key, ngx_str_t *s, u_char *out);
static ngx_int_t ngx_http_sark_session_header_filter(ngx_http_request_t *r);


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;

static ngx_str_t  ngx_http_sark_session_header = ngx_string("Mcp-Session-Id");


/* the zone, once per configuration, for the first sark_mcp location */

void *
ngx_http_sark_sessions_add(ngx_conf_t *cf, size_t size)
{
    ngx_str_t                  name;
    ngx_shm_zone_t            *shm_zone;
    ngx_http_sark_sessions_t  *ss;

    ngx_str_set(&name, "sark_mcp_sessions");

    shm_zone = ngx_shared_memory_add(cf, &name, size, &ngx_http_sark_module);
    if (shm_zone == NULL) {
        return NULL;
    }

    if (shm_zone->data) {
        return shm_zone->data;
    }

    ss = ngx_pcalloc(cf->pool, sizeof(ngx_http_sark_sessions_t));
    if (ss == NULL) {
        return NULL;
    }

    shm_zone->init = ngx_http_sark_sessions_init_zone;
    shm_zone->data = ss;

    return ss;
}


static ngx_int_t
ngx_http_sark_sessions_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_sark_sessions_t  *oss = data;

    size_t                     room;
    ngx_uint_t                 n;
    ngx_http_sark_sessions_t  *ss;

    ss = shm_zone->data;

    if (oss && oss->sh->magic == NGX_HTTP_SARK_SESSION_MAGIC) {
        ss->sh = oss->sh;
        ss->shpool = oss->shpool;
        return NGX_OK;
    }

    ss->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        ss->sh = ss->shpool->data;
        return NGX_OK;
    }

    /* as many slots as half the zone holds: the slab keeps the rest */

    room = shm_zone->shm.size / 2;
    n = (room - sizeof(ngx_http_sark_sessions_sh_t))
        / sizeof(ngx_http_sark_session_slot_t) + 1;

    if (n < NGX_HTTP_SARK_SESSION_PROBE) {
        n = NGX_HTTP_SARK_SESSION_PROBE;
    }

    ss->sh = ngx_slab_calloc(ss->shpool, sizeof(ngx_http_sark_sessions_sh_t)
                             + (n - 1) * sizeof(ngx_http_sark_session_slot_t));
    if (ss->sh == NULL) {
        ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                      "sark: zone \"sark_mcp_sessions\" is too small");
        return NGX_ERROR;
    }

    if (RAND_bytes(ss->sh->key, sizeof(ss->sh->key)) != 1) {
        ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                      "sark: no random key for zone \"sark_mcp_sessions\"");
        return NGX_ERROR;
    }

    ss->sh->magic = NGX_HTTP_SARK_SESSION_MAGIC;
    ss->sh->nslots = n;
    ss->shpool->data = ss->sh;

    return NGX_OK;
}


ngx_int_t
ngx_http_sark_mcp_session_init(ngx_conf_t *cf)
{
    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_sark_session_header_filter;

    return NGX_OK;
}


/*
 * Binds session id `id` to ctx's subject.  A request (CHECK, CLAIM): an id
 * bound to another subject stays theirs (NGX_DECLINED); an unknown one
 * needs a free slot (else NGX_BUSY).  CHECK, before the request goes on,
 * binds nothing (NGX_DONE: an unknown id, claimed when the upstream
 * accepts the request, so neither refused requests nor ids the upstream
 * never issued hold a slot); CLAIM binds it.  An id the upstream hands
 * out (ANSWER): the binding is made or replaced, in the least recently
 * used slot when none is free.
 */

ngx_int_t
ngx_http_sark_mcp_session_bind(ngx_http_request_t *r,
    ngx_http_sark_ctx_t *ctx, ngx_str_t *id, ngx_uint_t mode)
{
    u_char                         did[EVP_MAX_MD_SIZE], dsub[EVP_MAX_MD_SIZE];
    uint32_t                       now;
    ngx_int_t                      rc;
    ngx_uint_t                     i, start;
    ngx_http_sark_sessions_t      *ss;
    ngx_http_sark_session_slot_t  *slot, *found, *victim;
    ngx_http_sark_loc_conf_t      *slcf;

    slcf = ngx_http_get_module_loc_conf(r, ngx_http_sark_module);
    ss = slcf->mcp_sessions;

    if (ss == NULL || ss->sh == NULL) {
        return NGX_OK;
    }

    if (ngx_http_sark_session_digest(r, ss->sh->key, id, did) != NGX_OK
        || ngx_http_sark_session_digest(r, ss->sh->key, &ctx->identity.sub,
                                        dsub)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    now = (uint32_t) ngx_time();
    rc = NGX_OK;

    ngx_memcpy(&start, did, sizeof(ngx_uint_t));

    ngx_shmtx_lock(&ss->shpool->mutex);

    found = NULL;
    victim = NULL;

    for (i = 0; i < NGX_HTTP_SARK_SESSION_PROBE; i++) {
        slot = &ss->sh->slots[(start + i) % ss->sh->nslots];

        if (slot->used
            && ngx_memcmp(slot->id, did, NGX_HTTP_SARK_SESSION_DIGEST) == 0)
        {
            found = slot;
            break;
        }

        if (slot->used + NGX_HTTP_SARK_SESSION_IDLE < now) {
            slot->used = 0;
        }

        if (victim == NULL || slot->used < victim->used) {
            victim = slot;
        }
    }

    if (found) {
        if (ngx_memcmp(found->sub, dsub, NGX_HTTP_SARK_SESSION_DIGEST) != 0) {
            if (mode != NGX_HTTP_SARK_SESSION_ANSWER) {
                rc = NGX_DECLINED;

            } else {
                ngx_memcpy(found->sub, dsub, NGX_HTTP_SARK_SESSION_DIGEST);
            }
        }

        if (rc == NGX_OK) {
            found->used = now;
        }

    } else if (mode != NGX_HTTP_SARK_SESSION_ANSWER && victim->used) {
        rc = NGX_BUSY;

    } else if (mode == NGX_HTTP_SARK_SESSION_CHECK) {
        rc = NGX_DONE;

    } else {
        ngx_memcpy(victim->id, did, NGX_HTTP_SARK_SESSION_DIGEST);
        ngx_memcpy(victim->sub, dsub, NGX_HTTP_SARK_SESSION_DIGEST);
        victim->used = now;
    }

    ngx_shmtx_unlock(&ss->shpool->mutex);

    return rc;
}


/* the session a request names, or NULL */

ngx_str_t *
ngx_http_sark_mcp_session_id(ngx_http_request_t *r)
{
    ngx_table_elt_t  *h;

    h = ngx_http_sark_find_header(r, &ngx_http_sark_session_header);

    return (h && h->value.len) ? &h->value : NULL;
}


/* how many Mcp-Session-Id headers a request has */

ngx_uint_t
ngx_http_sark_mcp_session_count(ngx_http_request_t *r)
{
    ngx_uint_t                    n;
    ngx_http_sark_header_iter_t   it;

    n = 0;
    ngx_memzero(&it, sizeof(ngx_http_sark_header_iter_t));

    while (ngx_http_sark_next_header(&r->headers_in.headers,
                                     &ngx_http_sark_session_header, &it))
    {
        n++;
    }

    return n;
}


static ngx_int_t
ngx_http_sark_session_digest(ngx_http_request_t *r, u_char *key, ngx_str_t *s,
    u_char *out)
{
    unsigned int  len;

    if (HMAC(EVP_sha256(), key, 32, s->data, s->len, out, &len) == NULL) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "sark: HMAC-SHA-256 failed");
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * The id an upstream hands out belongs to the subject it answered; an
 * unknown id the request named becomes its subject's once the upstream
 * accepts it (2xx)
 */

static ngx_int_t
ngx_http_sark_session_header_filter(ngx_http_request_t *r)
{
    ngx_int_t                     rc;
    ngx_str_t                    *named;
    ngx_table_elt_t              *h;
    ngx_http_sark_ctx_t          *ctx;
    ngx_http_sark_header_iter_t   it;

    ctx = ngx_http_get_module_ctx(r, ngx_http_sark_module);

    if (ctx == NULL || ctx->mcp == NULL || !ctx->allowed) {
        return ngx_http_next_header_filter(r);
    }

    if (ctx->mcp->claim && r == r->main
        && r->headers_out.status >= NGX_HTTP_OK
        && r->headers_out.status < NGX_HTTP_SPECIAL_RESPONSE)
    {
        ctx->mcp->claim = 0;
        named = ngx_http_sark_mcp_session_id(r);

        rc = named ? ngx_http_sark_mcp_session_bind(r, ctx, named,
                                                    NGX_HTTP_SARK_SESSION_CLAIM)
                   : NGX_OK;

        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }

        if (rc != NGX_OK) {
            ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                          "sark: MCP session \"%V\" not bound to subject "
                          "\"%V\": %s",
                          ngx_http_sark_log_safe(r->pool, named),
                          ngx_http_sark_log_safe(r->pool, &ctx->identity.sub),
                          rc == NGX_BUSY ? "no free slot"
                                         : "another subject took it meanwhile");
        }
    }

    ngx_memzero(&it, sizeof(ngx_http_sark_header_iter_t));

    while ((h = ngx_http_sark_next_header(&r->headers_out.headers,
                                          &ngx_http_sark_session_header, &it)))
    {
        if (h->hash == 0 || h->value.len == 0) {
            continue;
        }

        if (ngx_http_sark_mcp_session_bind(r, ctx, &h->value,
                                           NGX_HTTP_SARK_SESSION_ANSWER)
            == NGX_ERROR)
        {
            return NGX_ERROR;
        }
    }

    return ngx_http_next_header_filter(r);
}
