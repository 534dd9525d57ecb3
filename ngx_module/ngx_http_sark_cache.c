
/*
 * Copyright (C) sark-gateway authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "sark_glob.h"
#include "ngx_http_sark_cache.h"


typedef struct {
    u_char                       color;
    u_char                       decision;
    u_short                      reason_len;
    uint32_t                     params_len;
    uint32_t                     cache_ttl;
    int32_t                      max_delegation;    /* -1: none */
    ngx_queue_t                  queue;
    uint64_t                     evaluated_at;
    uint64_t                     expires_at;
    u_char                       digest[NGX_HTTP_SARK_DIGEST_LEN];
    u_char                       data[1];      /* reason, then parameters */
} ngx_http_sark_cache_node_t;


static void ngx_http_sark_cache_rbtree_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
static ngx_int_t ngx_http_sark_cache_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static ngx_http_sark_cache_node_t *ngx_http_sark_cache_find(
    ngx_http_sark_cache_sh_t *sh, u_char *digest);
static ngx_uint_t ngx_http_sark_cache_stale(ngx_http_sark_cache_sh_t *sh,
    ngx_http_sark_cache_node_t *cn, ngx_http_sark_key_t *key, uint64_t now);
static void ngx_http_sark_cache_delete(ngx_http_sark_cache_t *cache,
    ngx_http_sark_cache_node_t *cn);
static void ngx_http_sark_cache_expire(ngx_http_sark_cache_t *cache,
    ngx_uint_t force, uint64_t now);
static ngx_rbtree_key_t ngx_http_sark_digest_key(u_char *digest);
static ngx_int_t ngx_http_sark_cache_copy(ngx_http_sark_cache_node_t *cn,
    ngx_pool_t *pool, ngx_uint_t want_params, ngx_http_sark_cached_t *out);


extern ngx_module_t  ngx_http_sark_module;


#define ngx_http_sark_node(cn)                                                \
    ((ngx_rbtree_node_t *) ((u_char *) (cn)                                   \
                            - offsetof(ngx_rbtree_node_t, color)))


ngx_http_sark_cache_t *
ngx_http_sark_cache_add(ngx_conf_t *cf, ngx_str_t *name, size_t size)
{
    ngx_shm_zone_t         *shm_zone;
    ngx_http_sark_cache_t  *cache;

    cache = ngx_pcalloc(cf->pool, sizeof(ngx_http_sark_cache_t));
    if (cache == NULL) {
        return NULL;
    }

    shm_zone = ngx_shared_memory_add(cf, name, size, &ngx_http_sark_module);
    if (shm_zone == NULL) {
        return NULL;
    }

    if (shm_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "sark cache zone \"%V\" is already used", name);
        return NULL;
    }

    shm_zone->init = ngx_http_sark_cache_init_zone;
    shm_zone->data = cache;
    cache->shm_zone = shm_zone;

    return cache;
}


static ngx_int_t
ngx_http_sark_cache_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_sark_cache_t  *ocache = data;

    size_t                  len;
    ngx_http_sark_cache_t  *cache;

    cache = shm_zone->data;

    if (ocache) {
        /* reload: keep the entries, if they have this module's layout */

        if (ocache->sh->magic != NGX_HTTP_SARK_CACHE_MAGIC) {
            ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                          "sark cache zone \"%V\" was made by another "
                          "version of the module; restart nginx, or give the "
                          "zone another name, to use this one",
                          &shm_zone->shm.name);
            return NGX_ERROR;
        }

        cache->sh = ocache->sh;
        cache->shpool = ocache->shpool;
        return NGX_OK;
    }

    cache->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        cache->sh = cache->shpool->data;

        if (cache->sh->magic != NGX_HTTP_SARK_CACHE_MAGIC) {
            ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                          "sark cache zone \"%V\" was made by another "
                          "version of the module", &shm_zone->shm.name);
            return NGX_ERROR;
        }

        return NGX_OK;
    }

    cache->sh = ngx_slab_calloc(cache->shpool,
                                sizeof(ngx_http_sark_cache_sh_t));
    if (cache->sh == NULL) {
        return NGX_ERROR;
    }

    cache->shpool->data = cache->sh;
    cache->sh->magic = NGX_HTTP_SARK_CACHE_MAGIC;

    ngx_rbtree_init(&cache->sh->rbtree, &cache->sh->sentinel,
                    ngx_http_sark_cache_rbtree_insert);
    ngx_queue_init(&cache->sh->lru);

    len = sizeof(" in sark cache zone \"\"") + shm_zone->shm.name.len;

    cache->shpool->log_ctx = ngx_slab_alloc(cache->shpool, len);
    if (cache->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(cache->shpool->log_ctx, " in sark cache zone \"%V\"%Z",
                &shm_zone->shm.name);

    /* a full zone evicts; it never fails a request */
    cache->shpool->log_nomem = 0;

    return NGX_OK;
}


ngx_int_t
ngx_http_sark_cache_lookup(ngx_http_sark_cache_t *cache, ngx_pool_t *pool,
    ngx_http_sark_key_t *key, ngx_uint_t want_params,
    ngx_http_sark_cached_t *out)
{
    uint64_t                     now;
    ngx_int_t                    rc;
    ngx_http_sark_cache_sh_t    *sh;
    ngx_http_sark_cache_node_t  *cn;

    sh = cache->sh;
    now = ngx_http_sark_now_ms();

    ngx_shmtx_lock(&cache->shpool->mutex);

    cn = ngx_http_sark_cache_find(sh, key->digest);

    /* (the counters change under the zone's mutex only) */

    if (cn == NULL) {
        sh->misses++;
        ngx_shmtx_unlock(&cache->shpool->mutex);
        return NGX_DECLINED;
    }

    if (ngx_http_sark_cache_stale(sh, cn, key, now)) {
        ngx_http_sark_cache_delete(cache, cn);
        sh->misses++;
        ngx_shmtx_unlock(&cache->shpool->mutex);
        return NGX_DECLINED;
    }

    /* (an entry already at the head stays: no write to shared lines) */

    if (ngx_queue_head(&sh->lru) != &cn->queue) {
        ngx_queue_remove(&cn->queue);
        ngx_queue_insert_head(&sh->lru, &cn->queue);
    }

    rc = ngx_http_sark_cache_copy(cn, pool, want_params, out);

    if (rc == NGX_OK) {
        sh->hits++;
    }

    ngx_shmtx_unlock(&cache->shpool->mutex);

    return rc;
}


/* the entry's decision, its texts copied into the pool (under the mutex) */

static ngx_int_t
ngx_http_sark_cache_copy(ngx_http_sark_cache_node_t *cn, ngx_pool_t *pool,
    ngx_uint_t want_params, ngx_http_sark_cached_t *out)
{
    u_char  *p;
    size_t   params_len;

    params_len = want_params ? cn->params_len : 0;

    out->decision = cn->decision;
    out->cache_ttl = cn->cache_ttl;
    out->max_delegation = cn->max_delegation;
    out->evaluated_at = cn->evaluated_at;
    out->expires_at = cn->expires_at;

    p = ngx_pnalloc(pool, cn->reason_len + params_len + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    out->reason.data = p;
    out->reason.len = cn->reason_len;
    p = ngx_cpymem(p, cn->data, cn->reason_len);

    out->filtered_parameters.data = params_len ? p : NULL;
    out->filtered_parameters.len = params_len;

    if (params_len) {
        ngx_memcpy(p, cn->data + cn->reason_len, params_len);
    }

    return NGX_OK;
}


void
ngx_http_sark_cache_store(ngx_http_sark_cache_t *cache,
    ngx_http_sark_key_t *key, ngx_http_sark_cached_t *in, ngx_log_t *log)
{
    size_t                       size;
    uint64_t                     now;
    ngx_uint_t                   tries;
    ngx_rbtree_node_t           *node;
    ngx_http_sark_cache_sh_t    *sh;
    ngx_http_sark_cache_node_t  *cn;

    now = ngx_http_sark_now_ms();

    if (in->expires_at <= now || in->reason.len > 0xffff) {
        return;
    }

    sh = cache->sh;

    size = offsetof(ngx_rbtree_node_t, color)
           + offsetof(ngx_http_sark_cache_node_t, data)
           + in->reason.len + in->filtered_parameters.len;

    ngx_shmtx_lock(&cache->shpool->mutex);

    cn = ngx_http_sark_cache_find(sh, key->digest);
    if (cn) {
        ngx_http_sark_cache_delete(cache, cn);
    }

    ngx_http_sark_cache_expire(cache, 0, now);

    node = ngx_slab_alloc_locked(cache->shpool, size);

    for (tries = 0; node == NULL && tries < 64; tries++) {
        if (ngx_queue_empty(&sh->lru)) {
            break;
        }

        ngx_http_sark_cache_expire(cache, 1, now);
        node = ngx_slab_alloc_locked(cache->shpool, size);
    }

    if (node == NULL) {
        ngx_shmtx_unlock(&cache->shpool->mutex);
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "sark: cache zone \"%V\" has no room for a %uz-byte "
                      "entry; answer not cached",
                      &cache->shm_zone->shm.name, size);
        return;
    }

    cn = (ngx_http_sark_cache_node_t *) &node->color;

    node->key = ngx_http_sark_digest_key(key->digest);
    cn->decision = (u_char) in->decision;
    cn->reason_len = (u_short) in->reason.len;
    cn->params_len = (uint32_t) in->filtered_parameters.len;
    cn->cache_ttl = (uint32_t) in->cache_ttl;
    cn->max_delegation = (int32_t) in->max_delegation;
    cn->evaluated_at = in->evaluated_at;
    cn->expires_at = in->expires_at;
    ngx_memcpy(cn->digest, key->digest, NGX_HTTP_SARK_DIGEST_LEN);
    if (in->reason.len) {
        ngx_memcpy(cn->data, in->reason.data, in->reason.len);
    }

    if (in->filtered_parameters.len) {
        ngx_memcpy(cn->data + in->reason.len, in->filtered_parameters.data,
                   in->filtered_parameters.len);
    }

    ngx_rbtree_insert(&sh->rbtree, node);
    ngx_queue_insert_head(&sh->lru, &cn->queue);
    sh->entries++;

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, log, 0,
                   "sark: cached %uz bytes, %ui entries, %ui forced",
                   size, sh->entries, tries);

    ngx_shmtx_unlock(&cache->shpool->mutex);
}


void
ngx_http_sark_cache_invalidate(ngx_http_sark_cache_t *cache,
    ngx_str_t *pattern, uint64_t issued_at)
{
    ngx_uint_t                 i;
    ngx_http_sark_pattern_t   *pt;
    ngx_http_sark_cache_sh_t  *sh;

    sh = cache->sh;

    ngx_shmtx_lock(&cache->shpool->mutex);

    if ((pattern->len == 7 && ngx_strncmp(pattern->data, "authz:*", 7) == 0)
        || pattern->len > NGX_HTTP_SARK_PATTERN_MAX)
    {
        if (issued_at > sh->floor) {
            sh->floor = issued_at;
        }

        ngx_shmtx_unlock(&cache->shpool->mutex);
        return;
    }

    /* the same invalidation arrives through every worker: apply it once */

    for (i = 0; i < ngx_min(sh->npatterns, NGX_HTTP_SARK_PATTERNS); i++) {
        pt = &sh->patterns[i];

        if (pt->issued_at == issued_at && pt->len == pattern->len
            && ngx_memcmp(pt->data, pattern->data, pattern->len) == 0)
        {
            ngx_shmtx_unlock(&cache->shpool->mutex);
            return;
        }
    }

    pt = &sh->patterns[sh->npatterns % NGX_HTTP_SARK_PATTERNS];

    if (sh->npatterns >= NGX_HTTP_SARK_PATTERNS && pt->issued_at > sh->floor)
    {
        /* the oldest pattern falls out of the ring: be conservative */
        sh->floor = pt->issued_at;
    }

    pt->issued_at = issued_at;
    pt->len = pattern->len;
    ngx_memcpy(pt->data, pattern->data, pattern->len);

    sh->npatterns++;

    ngx_shmtx_unlock(&cache->shpool->mutex);
}


/* the zone's counters, of all workers since the zone was made */

void
ngx_http_sark_cache_stats(ngx_http_sark_cache_t *cache,
    ngx_http_sark_cache_stats_t *st)
{
    ngx_shmtx_lock(&cache->shpool->mutex);
    st->entries = cache->sh->entries;
    st->hits = cache->sh->hits;
    st->misses = cache->sh->misses;
    st->evictions = cache->sh->evictions;
    ngx_shmtx_unlock(&cache->shpool->mutex);
}


void
ngx_http_sark_cache_set_revision(ngx_http_sark_cache_t *cache,
    ngx_str_t *revision)
{
    ngx_http_sark_cache_sh_t  *sh;

    if (revision->len > NGX_HTTP_SARK_REVISION_MAX) {
        return;
    }

    sh = cache->sh;

    ngx_shmtx_lock(&cache->shpool->mutex);
    ngx_memcpy(sh->revision, revision->data, revision->len);
    sh->revision_len = revision->len;
    ngx_shmtx_unlock(&cache->shpool->mutex);
}


void
ngx_http_sark_cache_get_revision(ngx_http_sark_cache_t *cache, u_char *buf,
    size_t *len)
{
    ngx_http_sark_cache_sh_t  *sh;

    sh = cache->sh;

    ngx_shmtx_lock(&cache->shpool->mutex);
    ngx_memcpy(buf, sh->revision, sh->revision_len);
    *len = sh->revision_len;
    ngx_shmtx_unlock(&cache->shpool->mutex);
}


uint64_t
ngx_http_sark_now_ms(void)
{
    ngx_time_t  *tp;

    tp = ngx_timeofday();

    return (uint64_t) tp->sec * 1000 + tp->msec;
}


/* rbtree ordered by the digest's first word, ties by the whole digest */

static void
ngx_http_sark_cache_rbtree_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t           **p;
    ngx_http_sark_cache_node_t   *cn, *cnt;

    for ( ;; ) {

        if (node->key < temp->key) {
            p = &temp->left;

        } else if (node->key > temp->key) {
            p = &temp->right;

        } else {
            cn = (ngx_http_sark_cache_node_t *) &node->color;
            cnt = (ngx_http_sark_cache_node_t *) &temp->color;

            p = (ngx_memcmp(cn->digest, cnt->digest,
                            NGX_HTTP_SARK_DIGEST_LEN) < 0)
                ? &temp->left : &temp->right;
        }

        if (*p == sentinel) {
            break;
        }

        temp = *p;
    }

    *p = node;
    node->parent = temp;
    node->left = sentinel;
    node->right = sentinel;
    ngx_rbt_red(node);
}


static ngx_http_sark_cache_node_t *
ngx_http_sark_cache_find(ngx_http_sark_cache_sh_t *sh, u_char *digest)
{
    ngx_int_t                    rc;
    ngx_rbtree_key_t             k;
    ngx_rbtree_node_t           *node, *sentinel;
    ngx_http_sark_cache_node_t  *cn;

    k = ngx_http_sark_digest_key(digest);

    node = sh->rbtree.root;
    sentinel = sh->rbtree.sentinel;

    while (node != sentinel) {

        if (k < node->key) {
            node = node->left;
            continue;
        }

        if (k > node->key) {
            node = node->right;
            continue;
        }

        cn = (ngx_http_sark_cache_node_t *) &node->color;

        rc = ngx_memcmp(digest, cn->digest, NGX_HTTP_SARK_DIGEST_LEN);

        if (rc == 0) {
            return cn;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    return NULL;
}


static ngx_uint_t
ngx_http_sark_cache_stale(ngx_http_sark_cache_sh_t *sh,
    ngx_http_sark_cache_node_t *cn, ngx_http_sark_key_t *key, uint64_t now)
{
    ngx_uint_t                i, n;
    ngx_http_sark_pattern_t  *pt;

    if (cn->expires_at <= now
        || cn->evaluated_at <= sh->floor + SARK_INVALIDATION_SKEW_MS)
    {
        return 1;
    }

    n = ngx_min(sh->npatterns, NGX_HTTP_SARK_PATTERNS);

    for (i = 0; i < n; i++) {
        pt = &sh->patterns[i];

        if (cn->evaluated_at > pt->issued_at + SARK_INVALIDATION_SKEW_MS) {
            continue;
        }

        if (key->text.len == 0
            || sark_glob_match((char *) pt->data, pt->len,
                               (char *) key->text.data, key->text.len))
        {
            return 1;
        }
    }

    return 0;
}


static void
ngx_http_sark_cache_delete(ngx_http_sark_cache_t *cache,
    ngx_http_sark_cache_node_t *cn)
{
    ngx_queue_remove(&cn->queue);
    ngx_rbtree_delete(&cache->sh->rbtree, ngx_http_sark_node(cn));
    ngx_slab_free_locked(cache->shpool, ngx_http_sark_node(cn));
    cache->sh->entries--;
}


/* drops up to two expired entries from the LRU tail, or with `force` the
 * oldest entry whatever its age */

static void
ngx_http_sark_cache_expire(ngx_http_sark_cache_t *cache, ngx_uint_t force,
    uint64_t now)
{
    ngx_uint_t                   n;
    ngx_queue_t                 *q;
    ngx_http_sark_cache_node_t  *cn;

    for (n = 0; n < 2; n++) {

        if (ngx_queue_empty(&cache->sh->lru)) {
            return;
        }

        q = ngx_queue_last(&cache->sh->lru);
        cn = ngx_queue_data(q, ngx_http_sark_cache_node_t, queue);

        if (!force && cn->expires_at > now) {
            return;
        }

        if (force) {
            cache->sh->evictions++;
        }

        ngx_http_sark_cache_delete(cache, cn);

        if (force) {
            return;
        }
    }
}


static ngx_rbtree_key_t
ngx_http_sark_digest_key(u_char *digest)
{
    ngx_rbtree_key_t  k;

    ngx_memcpy(&k, digest, sizeof(ngx_rbtree_key_t));

    return k;
}
