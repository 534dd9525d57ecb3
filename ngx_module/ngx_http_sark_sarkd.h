
/*
 * Copyright (C) sark-gateway authors
 */


#ifndef _NGX_HTTP_SARK_SARKD_H_INCLUDED_
#define _NGX_HTTP_SARK_SARKD_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


/*
 * One persistent, non-blocking connection per worker to sarkd; calls are
 * multiplexed on it by frame id.  A call's handler runs exactly once: with
 * the answer, on timeout, or when the connection is lost.
 */

#define NGX_HTTP_SARK_CALL_OK           0
#define NGX_HTTP_SARK_CALL_TIMEOUT      1
#define NGX_HTTP_SARK_CALL_LOST         2   /* connection lost mid-call */


typedef struct ngx_http_sark_call_s  ngx_http_sark_call_t;

typedef void (*ngx_http_sark_call_handler_pt)(ngx_http_sark_call_t *call,
    ngx_uint_t status, u_char *payload, size_t len);

struct ngx_http_sark_call_s {
    ngx_rbtree_node_t               node;       /* key: frame id */
    ngx_event_t                     timer;
    ngx_http_sark_call_handler_pt   handler;
    void                           *data;
    unsigned                        pending:1;
};


typedef void (*ngx_http_sark_revision_pt)(ngx_str_t *revision);
typedef void (*ngx_http_sark_invalidate_pt)(ngx_str_t *pattern,
    uint64_t issued_at);
typedef void (*ngx_http_sark_exiting_pt)(ngx_uint_t force);
typedef void (*ngx_http_sark_keys_pt)(u_char *payload, size_t len);
typedef void (*ngx_http_sark_lost_pt)(void);

typedef struct {
    ngx_addr_t                     *addr;
    ngx_msec_t                      connect_timeout;
    size_t                          buffer_max;

    /* unsolicited frames from sarkd */
    ngx_http_sark_revision_pt       on_revision;
    ngx_http_sark_invalidate_pt     on_invalidate;
    ngx_http_sark_keys_pt           on_keys;        /* KEYS' payload */
    ngx_http_sark_keys_pt           on_registry;    /* REGISTRY's */

    /* the connection to sarkd is lost (what it pushed may be stale) */
    ngx_http_sark_lost_pt           on_lost;

    /*
     * the worker has begun a graceful exit (force = 0), or its
     * worker_shutdown_timeout has expired (force = 1)
     */
    ngx_http_sark_exiting_pt        on_exiting;
} ngx_http_sark_sarkd_conf_t;


ngx_int_t ngx_http_sark_sarkd_init(ngx_cycle_t *cycle,
    ngx_http_sark_sarkd_conf_t *conf);
void ngx_http_sark_sarkd_exit(ngx_cycle_t *cycle);

/*
 * Sends `frame` (header + payload; the id is filled in here).  Returns
 * NGX_OK when the call is pending, NGX_DECLINED when sarkd is not connected,
 * NGX_BUSY when the output buffer is full, NGX_ERROR on allocation failure.
 * A `timeout` of 0 arms no timer: the caller keeps the deadline and
 * cancels the call when it passes.
 */
ngx_int_t ngx_http_sark_sarkd_call(ngx_http_sark_call_t *call, u_char *frame,
    size_t len, ngx_msec_t timeout);
void ngx_http_sark_sarkd_cancel(ngx_http_sark_call_t *call);

/*
 * Sends a frame that has no answer (its id is 0) when sarkd is connected:
 * NGX_OK when queued, NGX_DECLINED when not connected or the buffer is
 * full (the frame is dropped).
 */
ngx_int_t ngx_http_sark_sarkd_notify(u_char *frame, size_t len);

/* bytes queued to sarkd and not yet written */
size_t ngx_http_sark_sarkd_queued(void);

/* ms since sarkd last said anything (a PONG at least every ~0.5 s while
 * it is alive); NGX_MAX_INT32_VALUE when not connected */
ngx_msec_t ngx_http_sark_sarkd_silence(void);


#endif /* _NGX_HTTP_SARK_SARKD_H_INCLUDED_ */
