
/*
 * Copyright (C) sark-gateway authors
 */


#ifndef _NGX_HTTP_SARK_CACHE_H_INCLUDED_
#define _NGX_HTTP_SARK_CACHE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "sark_proto.h"


/*
 * L1 decision cache: one shared-memory zone for all workers, an rbtree on
 * the key digest plus an LRU queue, TTL per entry.  Invalidation patterns
 * are kept in the zone (a small ring) and checked against entries that
 * were evaluated before the pattern was issued; "authz:*" and ring
 * overflow raise a floor instead.
 */

#define NGX_HTTP_SARK_DIGEST_LEN        16
#define NGX_HTTP_SARK_REVISION_MAX      SARK_PROTO_MAX_REVISION
#define NGX_HTTP_SARK_PATTERNS          32
#define NGX_HTTP_SARK_PATTERN_MAX       256


typedef struct {
    uint64_t                     issued_at;
    size_t                       len;
    u_char                       data[NGX_HTTP_SARK_PATTERN_MAX];
} ngx_http_sark_pattern_t;


/*
 * The zone's layout: a zone kept across a reload is used only when it was
 * made with this layout (the header and the entries as this file and
 * ngx_http_sark_cache.c define them).  Bump the version with any change.
 */
#define NGX_HTTP_SARK_CACHE_MAGIC       0x53414b4c31000003ULL  /* "SAKL1", 3 */


typedef struct {
    uint64_t                     magic;         /* first, in every version */
    ngx_rbtree_t                 rbtree;
    ngx_rbtree_node_t            sentinel;
    ngx_queue_t                  lru;

    /* under the mutex; read by ngx_http_sark_cache_stats() */
    ngx_uint_t                   entries;
    ngx_uint_t                   hits;
    ngx_uint_t                   misses;        /* expired ones included */
    ngx_uint_t                   evictions;     /* for room, not expiry */

    size_t                       revision_len;
    u_char                       revision[NGX_HTTP_SARK_REVISION_MAX];

    uint64_t                     floor;
    ngx_uint_t                   npatterns;     /* ever issued */
    ngx_http_sark_pattern_t      patterns[NGX_HTTP_SARK_PATTERNS];
} ngx_http_sark_cache_sh_t;


typedef struct {
    ngx_http_sark_cache_sh_t    *sh;
    ngx_slab_pool_t             *shpool;
    ngx_shm_zone_t              *shm_zone;
} ngx_http_sark_cache_t;


typedef struct {
    u_char                       digest[NGX_HTTP_SARK_DIGEST_LEN];
    ngx_str_t                    text;          /* authz:{user}:...:{hex};
                                                   valid while deciding */
} ngx_http_sark_key_t;


/* what a hit gives back, copied out of the zone into the request pool */
typedef struct {
    ngx_uint_t                   decision;
    ngx_uint_t                   cache_ttl;
    ngx_int_t                    max_delegation;    /* -1: none */
    uint64_t                     evaluated_at;
    uint64_t                     expires_at;
    ngx_str_t                    reason;
    ngx_str_t                    filtered_parameters;
} ngx_http_sark_cached_t;


ngx_http_sark_cache_t *ngx_http_sark_cache_add(ngx_conf_t *cf,
    ngx_str_t *name, size_t size);

ngx_int_t ngx_http_sark_cache_lookup(ngx_http_sark_cache_t *cache,
    ngx_pool_t *pool, ngx_http_sark_key_t *key, ngx_uint_t want_params,
    ngx_http_sark_cached_t *out);
void ngx_http_sark_cache_store(ngx_http_sark_cache_t *cache,
    ngx_http_sark_key_t *key, ngx_http_sark_cached_t *in, ngx_log_t *log);

void ngx_http_sark_cache_invalidate(ngx_http_sark_cache_t *cache,
    ngx_str_t *pattern, uint64_t issued_at);
void ngx_http_sark_cache_set_revision(ngx_http_sark_cache_t *cache,
    ngx_str_t *revision);
void ngx_http_sark_cache_get_revision(ngx_http_sark_cache_t *cache,
    u_char *buf, size_t *len);
typedef struct {
    ngx_uint_t                   entries;
    ngx_uint_t                   hits;
    ngx_uint_t                   misses;
    ngx_uint_t                   evictions;
} ngx_http_sark_cache_stats_t;

void ngx_http_sark_cache_stats(ngx_http_sark_cache_t *cache,
    ngx_http_sark_cache_stats_t *st);

uint64_t ngx_http_sark_now_ms(void);


#endif /* _NGX_HTTP_SARK_CACHE_H_INCLUDED_ */
