
/*
 * Copyright (C) sark-gateway authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "sark_proto.h"
#include "ngx_http_sark_sarkd.h"


#define NGX_HTTP_SARK_SARKD_BUF          (64 * 1024)
#define NGX_HTTP_SARK_BACKOFF_MIN        50
#define NGX_HTTP_SARK_BACKOFF_MAX        1000

/* frames this large skip the output buffer when nothing else waits */
#define NGX_HTTP_SARK_SEND_DIRECT        4096

/* a PING when sarkd has said nothing for this long (ms) */
#define NGX_HTTP_SARK_PROBE              500


typedef struct {
    ngx_http_sark_sarkd_conf_t   conf;
    ngx_peer_connection_t        pc;
    ngx_connection_t            *c;

    ngx_rbtree_t                 calls;
    ngx_rbtree_node_t            sentinel;
    uint32_t                     next_id;

    u_char                      *out;
    size_t                       out_pos;
    size_t                       out_last;
    size_t                       out_cap;

    u_char                      *in;
    size_t                       in_last;
    size_t                       in_cap;

    ngx_event_t                  reconnect;
    ngx_msec_t                   backoff;
    ngx_msec_t                   last_attempt;

    ngx_event_t                  probe;
    ngx_msec_t                   heard;         /* sarkd's last bytes */

    ngx_log_t                   *log;
    ngx_log_t                    quiet_log;

    unsigned                     connected:1;
    unsigned                     down:1;
} ngx_http_sark_sarkd_t;


static ngx_int_t ngx_http_sark_sarkd_connect(ngx_http_sark_sarkd_t *sd);
static void ngx_http_sark_sarkd_connected(ngx_http_sark_sarkd_t *sd);
static void ngx_http_sark_sarkd_fail(ngx_http_sark_sarkd_t *sd,
    const char *why);
static void ngx_http_sark_sarkd_schedule(ngx_http_sark_sarkd_t *sd);
static void ngx_http_sark_sarkd_reconnect_handler(ngx_event_t *ev);
static void ngx_http_sark_sarkd_probe_handler(ngx_event_t *ev);
static void ngx_http_sark_sarkd_read_handler(ngx_event_t *rev);
static void ngx_http_sark_sarkd_write_handler(ngx_event_t *wev);
static ngx_int_t ngx_http_sark_sarkd_flush(ngx_http_sark_sarkd_t *sd);
static ngx_int_t ngx_http_sark_sarkd_process(ngx_http_sark_sarkd_t *sd);
static ngx_int_t ngx_http_sark_sarkd_dispatch(ngx_http_sark_sarkd_t *sd,
    sark_frame_hdr_t *h, u_char *payload);
static ngx_int_t ngx_http_sark_sarkd_queue(ngx_http_sark_sarkd_t *sd,
    u_char *data, size_t len);
static ngx_int_t ngx_http_sark_sarkd_reserve(u_char **buf, size_t *cap,
    size_t used, size_t need, size_t max);
static ngx_int_t ngx_http_sark_sarkd_notice(ngx_http_sark_sarkd_t *sd,
    sark_frame_hdr_t *h, u_char *payload);
static ngx_http_sark_call_t *ngx_http_sark_sarkd_lookup(
    ngx_http_sark_sarkd_t *sd, uint32_t id);
static void ngx_http_sark_sarkd_finish(ngx_http_sark_call_t *call,
    ngx_uint_t status, u_char *payload, size_t len);
static void ngx_http_sark_call_timeout_handler(ngx_event_t *ev);


/* one per worker process */
static ngx_http_sark_sarkd_t  *ngx_http_sark_sarkd;


ngx_int_t
ngx_http_sark_sarkd_init(ngx_cycle_t *cycle, ngx_http_sark_sarkd_conf_t *conf)
{
    ngx_http_sark_sarkd_t  *sd;

    sd = ngx_pcalloc(cycle->pool, sizeof(ngx_http_sark_sarkd_t));
    if (sd == NULL) {
        return NGX_ERROR;
    }

    sd->conf = *conf;
    sd->log = cycle->log;

    /* failed reconnects are reported once, not on every attempt */
    sd->quiet_log = *cycle->log;
    sd->quiet_log.log_level = NGX_LOG_ALERT;

    ngx_rbtree_init(&sd->calls, &sd->sentinel, ngx_rbtree_insert_value);

    sd->reconnect.handler = ngx_http_sark_sarkd_reconnect_handler;
    sd->reconnect.data = sd;
    sd->reconnect.log = cycle->log;
    sd->reconnect.cancelable = 1;

    sd->probe.handler = ngx_http_sark_sarkd_probe_handler;
    sd->probe.data = sd;
    sd->probe.log = cycle->log;
    sd->probe.cancelable = 1;

    sd->backoff = NGX_HTTP_SARK_BACKOFF_MIN;
    sd->next_id = (uint32_t) ngx_pid << 16;

    ngx_http_sark_sarkd = sd;

    ngx_add_timer(&sd->reconnect, 1);

    return NGX_OK;
}


void
ngx_http_sark_sarkd_exit(ngx_cycle_t *cycle)
{
    ngx_http_sark_sarkd_t  *sd;

    sd = ngx_http_sark_sarkd;

    if (sd == NULL) {
        return;
    }

    if (sd->reconnect.timer_set) {
        ngx_del_timer(&sd->reconnect);
    }

    if (sd->probe.timer_set) {
        ngx_del_timer(&sd->probe);
    }

    if (sd->c) {
        ngx_close_connection(sd->c);
        sd->c = NULL;
    }

    if (sd->in) {
        ngx_free(sd->in);
        sd->in = NULL;
    }

    if (sd->out) {
        ngx_free(sd->out);
        sd->out = NULL;
    }

    ngx_http_sark_sarkd = NULL;
}


ngx_int_t
ngx_http_sark_sarkd_call(ngx_http_sark_call_t *call, u_char *frame,
    size_t len, ngx_msec_t timeout)
{
    uint32_t                id;
    ngx_int_t               rc;
    ngx_http_sark_sarkd_t  *sd;

    sd = ngx_http_sark_sarkd;

    if (sd == NULL) {
        return NGX_DECLINED;
    }

    if (sd->c == NULL) {
        if (ngx_current_msec - sd->last_attempt < NGX_HTTP_SARK_BACKOFF_MIN
            || ngx_http_sark_sarkd_connect(sd) != NGX_OK)
        {
            return NGX_DECLINED;
        }
    }

    do {
        id = ++sd->next_id;
    } while (id == 0 || ngx_http_sark_sarkd_lookup(sd, id) != NULL);

    sark_put_u32(frame + 8, id);

    rc = ngx_http_sark_sarkd_queue(sd, frame, len);
    if (rc != NGX_OK) {
        return rc;
    }

    call->node.key = id;
    ngx_rbtree_insert(&sd->calls, &call->node);
    call->pending = 1;

    if (timeout == 0) {
        return NGX_OK;
    }

    call->timer.handler = ngx_http_sark_call_timeout_handler;
    call->timer.data = call;
    if (call->timer.log == NULL) {
        call->timer.log = sd->log;
    }

    ngx_add_timer(&call->timer, timeout);

    return NGX_OK;
}


ngx_int_t
ngx_http_sark_sarkd_notify(u_char *frame, size_t len)
{
    ngx_http_sark_sarkd_t  *sd;

    sd = ngx_http_sark_sarkd;

    if (sd == NULL || sd->c == NULL || !sd->connected) {
        return NGX_DECLINED;
    }

    sark_put_u32(frame + 8, 0);

    return ngx_http_sark_sarkd_queue(sd, frame, len) == NGX_OK
           ? NGX_OK : NGX_DECLINED;
}


size_t
ngx_http_sark_sarkd_queued(void)
{
    ngx_http_sark_sarkd_t  *sd;

    sd = ngx_http_sark_sarkd;

    if (sd == NULL) {
        return 0;
    }

    return sd->out_last - sd->out_pos;
}


void
ngx_http_sark_sarkd_cancel(ngx_http_sark_call_t *call)
{
    if (!call->pending) {
        return;
    }

    call->pending = 0;

    if (ngx_http_sark_sarkd) {
        ngx_rbtree_delete(&ngx_http_sark_sarkd->calls, &call->node);
    }

    if (call->timer.timer_set) {
        ngx_del_timer(&call->timer);
    }
}


static ngx_int_t
ngx_http_sark_sarkd_connect(ngx_http_sark_sarkd_t *sd)
{
    ngx_int_t          rc;
    ngx_log_t         *log;
    ngx_connection_t  *c;

    /*
     * an exiting worker may still connect: requests it has not finished
     * need decisions, and unacknowledged audit batches need delivering
     * (only calls connect then; no reconnect timer is scheduled)
     */

    if (ngx_terminate) {
        return NGX_DECLINED;
    }

    sd->last_attempt = ngx_current_msec;

    log = sd->down ? &sd->quiet_log : sd->log;

    ngx_memzero(&sd->pc, sizeof(ngx_peer_connection_t));

    sd->pc.sockaddr = sd->conf.addr->sockaddr;
    sd->pc.socklen = sd->conf.addr->socklen;
    sd->pc.name = &sd->conf.addr->name;
    sd->pc.get = ngx_event_get_peer;
    sd->pc.log = log;
    sd->pc.log_error = NGX_ERROR_ERR;

    rc = ngx_event_connect_peer(&sd->pc);

    if (rc == NGX_ERROR || rc == NGX_BUSY || rc == NGX_DECLINED) {
        ngx_http_sark_sarkd_fail(sd, "connect failed");
        return NGX_DECLINED;
    }

    c = sd->pc.connection;
    c->data = sd;
    c->log = sd->log;
    c->read->log = sd->log;
    c->write->log = sd->log;
    c->read->handler = ngx_http_sark_sarkd_read_handler;
    c->write->handler = ngx_http_sark_sarkd_write_handler;

    /*
     * "idle" so that ngx_close_idle_connections() tells the read handler
     * (c->close) when a graceful exit begins; it does not close it
     */
    c->idle = 1;

    sd->c = c;

    if (rc == NGX_AGAIN) {
        sd->connected = 0;
        ngx_add_timer(c->write, sd->conf.connect_timeout);
        return NGX_OK;
    }

    ngx_http_sark_sarkd_connected(sd);

    return NGX_OK;
}


static void
ngx_http_sark_sarkd_connected(ngx_http_sark_sarkd_t *sd)
{
    sd->connected = 1;
    sd->backoff = NGX_HTTP_SARK_BACKOFF_MIN;
    sd->heard = ngx_current_msec;

    if (!sd->probe.timer_set) {
        ngx_add_timer(&sd->probe, NGX_HTTP_SARK_PROBE);
    }

    if (sd->down) {
        sd->down = 0;
        ngx_log_error(NGX_LOG_NOTICE, sd->log, 0,
                      "sark: connected to sarkd at %V", sd->pc.name);

    } else {
        ngx_log_error(NGX_LOG_INFO, sd->log, 0,
                      "sark: connected to sarkd at %V", sd->pc.name);
    }

    if (sd->out_last > sd->out_pos) {
        ngx_post_event(sd->c->write, &ngx_posted_events);
    }
}


static void
ngx_http_sark_sarkd_fail(ngx_http_sark_sarkd_t *sd, const char *why)
{
    ngx_rbtree_node_t     *node;
    ngx_http_sark_call_t  *call;

    if (!sd->down) {
        ngx_log_error(NGX_LOG_ERR, sd->log, 0,
                      "sark: sarkd at %V unavailable: %s; "
                      "decisions not in cache answer 503 until it is back",
                      &sd->conf.addr->name, why);
        sd->down = 1;
    }

    if (sd->c) {
        ngx_close_connection(sd->c);
        sd->c = NULL;
    }

    sd->connected = 0;
    sd->in_last = 0;
    sd->out_pos = 0;
    sd->out_last = 0;

    if (sd->probe.timer_set) {
        ngx_del_timer(&sd->probe);
    }

    if (sd->conf.on_lost) {
        sd->conf.on_lost();
    }

    while (sd->calls.root != sd->calls.sentinel) {
        node = ngx_rbtree_min(sd->calls.root, sd->calls.sentinel);
        call = (ngx_http_sark_call_t *) node;
        ngx_http_sark_sarkd_finish(call, NGX_HTTP_SARK_CALL_LOST, NULL, 0);
    }

    ngx_http_sark_sarkd_schedule(sd);
}


static void
ngx_http_sark_sarkd_schedule(ngx_http_sark_sarkd_t *sd)
{
    if (ngx_exiting || ngx_terminate || ngx_quit || sd->reconnect.timer_set) {
        return;
    }

    ngx_add_timer(&sd->reconnect, sd->backoff);

    sd->backoff *= 2;
    if (sd->backoff > NGX_HTTP_SARK_BACKOFF_MAX) {
        sd->backoff = NGX_HTTP_SARK_BACKOFF_MAX;
    }
}


static void
ngx_http_sark_sarkd_reconnect_handler(ngx_event_t *ev)
{
    ngx_http_sark_sarkd_t  *sd;

    sd = ev->data;

    if (sd->c == NULL) {
        (void) ngx_http_sark_sarkd_connect(sd);
    }
}


/*
 * Liveness: sarkd connected but silent for NGX_HTTP_SARK_PROBE ms gets a
 * PING; its PONG (as any bytes from it) is heard.  What depends on sarkd
 * telling this worker in time (a key revocation) asks
 * ngx_http_sark_sarkd_silence().
 */

static void
ngx_http_sark_sarkd_probe_handler(ngx_event_t *ev)
{
    u_char                  ping[SARK_PROTO_HDR_LEN];
    sark_frame_hdr_t        h;
    ngx_http_sark_sarkd_t  *sd;

    sd = ev->data;

    /*
     * (an exiting worker probes on: the requests it still finishes check
     * gateway keys; the timer is cancelable, so it holds no exit up)
     */

    if (!sd->connected) {
        return;
    }

    if (ngx_current_msec - sd->heard >= NGX_HTTP_SARK_PROBE) {
        ngx_memzero(&h, sizeof(sark_frame_hdr_t));
        h.type = SARK_MSG_PING;
        sark_frame_hdr_encode(ping, &h);

        (void) ngx_http_sark_sarkd_queue(sd, ping, SARK_PROTO_HDR_LEN);
    }

    ngx_add_timer(&sd->probe, NGX_HTTP_SARK_PROBE);
}


ngx_msec_t
ngx_http_sark_sarkd_silence(void)
{
    ngx_http_sark_sarkd_t  *sd;

    sd = ngx_http_sark_sarkd;

    if (sd == NULL || !sd->connected) {
        return NGX_MAX_INT32_VALUE;
    }

    return ngx_current_msec - sd->heard;
}


static void
ngx_http_sark_sarkd_write_handler(ngx_event_t *wev)
{
    int                     err;
    socklen_t               len;
    ngx_connection_t       *c;
    ngx_http_sark_sarkd_t  *sd;

    c = wev->data;
    sd = c->data;

    if (!sd->connected) {
        if (wev->timedout) {
            ngx_http_sark_sarkd_fail(sd, "connect timed out");
            return;
        }

        err = 0;
        len = sizeof(int);

        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, (void *) &err, &len)
            == -1)
        {
            err = ngx_socket_errno;
        }

        if (err) {
            ngx_log_error(NGX_LOG_ERR, sd->log, err,
                          "sark: connect() to sarkd at %V failed",
                          sd->pc.name);
            ngx_http_sark_sarkd_fail(sd, "connect failed");
            return;
        }

        if (wev->timer_set) {
            ngx_del_timer(wev);
        }

        ngx_http_sark_sarkd_connected(sd);
    }

    if (ngx_http_sark_sarkd_flush(sd) != NGX_OK) {
        ngx_http_sark_sarkd_fail(sd, "send failed");
    }
}


static ngx_int_t
ngx_http_sark_sarkd_flush(ngx_http_sark_sarkd_t *sd)
{
    ssize_t            n;
    ngx_connection_t  *c;

    c = sd->c;

    while (sd->out_pos < sd->out_last) {
        n = c->send(c, sd->out + sd->out_pos, sd->out_last - sd->out_pos);

        if (n == NGX_AGAIN) {
            break;
        }

        if (n == NGX_ERROR) {
            return NGX_ERROR;
        }

        sd->out_pos += n;
    }

    if (sd->out_pos == sd->out_last) {
        sd->out_pos = 0;
        sd->out_last = 0;
    }

    if (ngx_handle_write_event(c->write, 0) != NGX_OK) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_sark_sarkd_queue(ngx_http_sark_sarkd_t *sd, u_char *data, size_t len)
{
    ssize_t  n;

    /*
     * a large frame (an audit batch) with nothing else waiting is sent at
     * once rather than copied: only what the socket does not take is
     * queued, and there is room for all of it before anything is sent
     */

    if (len >= NGX_HTTP_SARK_SEND_DIRECT && sd->connected
        && sd->out_pos == sd->out_last)
    {
        sd->out_pos = 0;
        sd->out_last = 0;

        if (ngx_http_sark_sarkd_reserve(&sd->out, &sd->out_cap, 0, len,
                                        sd->conf.buffer_max)
            != NGX_OK)
        {
            return NGX_BUSY;
        }

        n = sd->c->send(sd->c, data, len);

        if (n > 0) {
            data += n;
            len -= n;

            if (len == 0) {
                return NGX_OK;
            }
        }

        /* NGX_AGAIN, a partial send, or an error the next flush reports */
    }

    if (sd->out_pos > 0 && sd->out_cap - sd->out_last < len) {
        ngx_memmove(sd->out, sd->out + sd->out_pos,
                    sd->out_last - sd->out_pos);
        sd->out_last -= sd->out_pos;
        sd->out_pos = 0;
    }

    if (ngx_http_sark_sarkd_reserve(&sd->out, &sd->out_cap, sd->out_last,
                                    sd->out_last + len, sd->conf.buffer_max)
        != NGX_OK)
    {
        ngx_log_error(NGX_LOG_WARN, sd->log, 0,
                      "sark: output buffer to sarkd is full (%uz bytes)",
                      sd->out_last);
        return NGX_BUSY;
    }

    ngx_memcpy(sd->out + sd->out_last, data, len);
    sd->out_last += len;

    /* one send() per event loop iteration for all calls made in it */
    if (sd->connected && !sd->c->write->posted) {
        ngx_post_event(sd->c->write, &ngx_posted_events);
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_sark_sarkd_reserve(u_char **buf, size_t *cap, size_t used,
    size_t need, size_t max)
{
    u_char  *p;
    size_t   size;

    if (need <= *cap) {
        return NGX_OK;
    }

    if (need > max) {
        return NGX_BUSY;
    }

    size = *cap ? *cap : NGX_HTTP_SARK_SARKD_BUF;

    while (size < need) {
        size *= 2;
    }

    if (size > max) {
        size = max;
    }

    p = ngx_alloc(size, ngx_cycle->log);
    if (p == NULL) {
        return NGX_ERROR;
    }

    if (*buf) {
        ngx_memcpy(p, *buf, used);
        ngx_free(*buf);
    }

    *buf = p;
    *cap = size;

    return NGX_OK;
}


static void
ngx_http_sark_sarkd_read_handler(ngx_event_t *rev)
{
    ssize_t                 n;
    ngx_connection_t       *c;
    ngx_http_sark_sarkd_t  *sd;

    c = rev->data;
    sd = c->data;

    if (c->close) {
        c->close = 0;
        c->idle = 0;

        if (c->error) {
            /* worker_shutdown_timeout: every connection is being closed */
            ngx_http_sark_sarkd_fail(sd, "worker shutdown timeout");

            if (sd->conf.on_exiting) {
                sd->conf.on_exiting(1);
            }

            return;
        }

        if (sd->conf.on_exiting) {
            sd->conf.on_exiting(0);
        }

        if (sd->c != c || !sd->connected) {
            return;
        }
    }

    for ( ;; ) {

        if (ngx_http_sark_sarkd_reserve(&sd->in, &sd->in_cap, sd->in_last,
                                        sd->in_last + 1, sd->conf.buffer_max)
            != NGX_OK)
        {
            ngx_http_sark_sarkd_fail(sd, "input buffer exhausted");
            return;
        }

        n = c->recv(c, sd->in + sd->in_last, sd->in_cap - sd->in_last);

        if (n == NGX_AGAIN) {
            break;
        }

        if (n == 0) {
            ngx_http_sark_sarkd_fail(sd, "sarkd closed the connection");
            return;
        }

        if (n == NGX_ERROR) {
            ngx_http_sark_sarkd_fail(sd, "recv failed");
            return;
        }

        sd->in_last += n;
        sd->heard = ngx_current_msec;

        if (ngx_http_sark_sarkd_process(sd) != NGX_OK) {
            ngx_http_sark_sarkd_fail(sd, "protocol error");
            return;
        }
    }

    if (ngx_handle_read_event(rev, 0) != NGX_OK) {
        ngx_http_sark_sarkd_fail(sd, "event error");
    }
}


static ngx_int_t
ngx_http_sark_sarkd_process(ngx_http_sark_sarkd_t *sd)
{
    int               rc;
    size_t            pos, need;
    sark_frame_hdr_t  h;

    pos = 0;

    for ( ;; ) {
        rc = sark_frame_hdr_decode(sd->in + pos, sd->in_last - pos, &h);

        if (rc == SARK_PROTO_AGAIN) {
            break;
        }

        if (rc != SARK_PROTO_OK) {
            ngx_log_error(NGX_LOG_ERR, sd->log, 0,
                          "sark: invalid frame from sarkd: %s",
                          sark_proto_strerror(rc));
            return NGX_ERROR;
        }

        need = SARK_PROTO_HDR_LEN + (size_t) h.length;

        if (sd->in_last - pos < need) {
            break;
        }

        if (ngx_http_sark_sarkd_dispatch(sd, &h,
                                         sd->in + pos + SARK_PROTO_HDR_LEN)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        pos += need;
    }

    if (pos > 0) {
        ngx_memmove(sd->in, sd->in + pos, sd->in_last - pos);
        sd->in_last -= pos;
    }

    if (sd->in_last >= SARK_PROTO_HDR_LEN
        && sark_frame_hdr_decode(sd->in, sd->in_last, &h) == SARK_PROTO_OK)
    {
        need = SARK_PROTO_HDR_LEN + (size_t) h.length;

        if (ngx_http_sark_sarkd_reserve(&sd->in, &sd->in_cap, sd->in_last,
                                        need, sd->conf.buffer_max)
            != NGX_OK)
        {
            ngx_log_error(NGX_LOG_ERR, sd->log, 0,
                          "sark: frame of %uz bytes from sarkd exceeds "
                          "the buffer limit", need);
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_sark_sarkd_dispatch(ngx_http_sark_sarkd_t *sd, sark_frame_hdr_t *h,
    u_char *payload)
{
    size_t                 off;
    sark_tlv_t             t;
    ngx_http_sark_call_t  *call;

    switch (h->type) {

    case SARK_MSG_AUTHZ_RESP:
    case SARK_MSG_INVALIDATE_RESP:
    case SARK_MSG_AUDIT_ACK:
    case SARK_MSG_STATUS_RESP:
    case SARK_MSG_AUDIT_QUERY_RESP:
        call = ngx_http_sark_sarkd_lookup(sd, h->id);

        if (call == NULL) {
            ngx_log_debug1(NGX_LOG_DEBUG_HTTP, sd->log, 0,
                           "sark: late answer %uD dropped", h->id);
            return NGX_OK;
        }

        ngx_http_sark_sarkd_finish(call, NGX_HTTP_SARK_CALL_OK, payload,
                                   h->length);
        return NGX_OK;

    case SARK_MSG_REVISION:
    case SARK_MSG_INVALIDATE:
        return ngx_http_sark_sarkd_notice(sd, h, payload);

    case SARK_MSG_PONG:
        return NGX_OK;              /* heard: see the probe */

    case SARK_MSG_KEYS:
        if (sd->conf.on_keys) {
            sd->conf.on_keys(payload, h->length);
        }

        return NGX_OK;

    case SARK_MSG_REGISTRY:
        if (sd->conf.on_registry) {
            sd->conf.on_registry(payload, h->length);
        }

        return NGX_OK;

    case SARK_MSG_ERROR:
        off = 0;

        while (sark_tlv_next(payload, h->length, &off, &t) == SARK_PROTO_OK) {
            if (t.tag == SARK_ERR_MESSAGE) {
                ngx_log_error(NGX_LOG_ERR, sd->log, 0,
                              "sark: sarkd reported an error: \"%*s\"",
                              (size_t) ngx_min(t.len, 512), t.value);
            }
        }

        return NGX_ERROR;

    default:
        ngx_log_error(NGX_LOG_ERR, sd->log, 0,
                      "sark: unexpected frame type %d from sarkd",
                      (int) h->type);
        return NGX_ERROR;
    }
}


/* REVISION and INVALIDATE: sarkd telling this worker, not answering it */

static ngx_int_t
ngx_http_sark_sarkd_notice(ngx_http_sark_sarkd_t *sd, sark_frame_hdr_t *h,
    u_char *payload)
{
    int               rc;
    size_t            off;
    u_char            ack[SARK_PROTO_HDR_LEN];
    uint64_t          issued_at;
    ngx_str_t         text;
    sark_tlv_t        t;
    sark_frame_hdr_t  ah;

    ngx_str_null(&text);
    issued_at = 0;
    off = 0;

    while ((rc = sark_tlv_next(payload, h->length, &off, &t))
           == SARK_PROTO_OK)
    {
        if ((h->type == SARK_MSG_REVISION && t.tag == SARK_REV_REVISION)
            || (h->type == SARK_MSG_INVALIDATE && t.tag == SARK_INV_PATTERN))
        {
            text.data = (u_char *) t.value;
            text.len = t.len;

        } else if (h->type == SARK_MSG_INVALIDATE
                   && t.tag == SARK_INV_ISSUED_AT
                   && !sark_tlv_u64(&t, &issued_at))
        {
            return NGX_ERROR;
        }
    }

    if (rc != SARK_PROTO_END || text.data == NULL) {
        ngx_log_error(NGX_LOG_ERR, sd->log, 0,
                      "sark: malformed notice (type %d) from sarkd",
                      (int) h->type);
        return NGX_ERROR;
    }

    if (h->type == SARK_MSG_REVISION) {
        if (sd->conf.on_revision) {
            sd->conf.on_revision(&text);
        }

        return NGX_OK;
    }

    if (sd->conf.on_invalidate) {
        sd->conf.on_invalidate(&text, issued_at);
    }

    ngx_memzero(&ah, sizeof(sark_frame_hdr_t));
    ah.type = SARK_MSG_INVALIDATE_ACK;
    ah.id = h->id;
    sark_frame_hdr_encode(ack, &ah);

    return ngx_http_sark_sarkd_queue(sd, ack, SARK_PROTO_HDR_LEN);
}


static ngx_http_sark_call_t *
ngx_http_sark_sarkd_lookup(ngx_http_sark_sarkd_t *sd, uint32_t id)
{
    ngx_rbtree_node_t  *node, *sentinel;

    node = sd->calls.root;
    sentinel = sd->calls.sentinel;

    while (node != sentinel) {

        if (id < node->key) {
            node = node->left;
            continue;
        }

        if (id > node->key) {
            node = node->right;
            continue;
        }

        return (ngx_http_sark_call_t *) node;
    }

    return NULL;
}


static void
ngx_http_sark_sarkd_finish(ngx_http_sark_call_t *call, ngx_uint_t status,
    u_char *payload, size_t len)
{
    ngx_http_sark_sarkd_cancel(call);

    call->handler(call, status, payload, len);
}


static void
ngx_http_sark_call_timeout_handler(ngx_event_t *ev)
{
    ngx_http_sark_call_t  *call;

    call = ev->data;

    ngx_log_error(NGX_LOG_WARN, ev->log, 0,
                  "sark: no answer from sarkd in time for call %ui",
                  call->node.key);

    ngx_http_sark_sarkd_finish(call, NGX_HTTP_SARK_CALL_TIMEOUT, NULL, 0);
}
