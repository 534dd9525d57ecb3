
/*
 * Copyright (C) sark-gateway authors
 */


/*
 * Audit queries (docs/design.md, Audit queries):
 * GET /api/v1/audit/events?user_id=&server_name=&tool_name=&decision=
 * &since=&until=&limit=&cursor=, for a token with the role admin or
 * auditor.  The arguments are checked here and sent to sarkd
 * (AUDIT_QUERY_REQ), which reads the page from the database (a replica
 * when DATABASE_READ_URL is set) and answers its JSON: {"events": [...],
 * "next_cursor"}.  The worker never waits on the database: a page that
 * does not come within sark_decision_timeout is a 503.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_sark_module.h"


#define NGX_HTTP_SARK_AQ_CURSOR_MAX  128


static ngx_int_t ngx_http_sark_aq_args(ngx_http_request_t *r,
    u_char *frame, size_t cap, size_t *off, ngx_http_sark_error_t *err);
static ngx_int_t ngx_http_sark_aq_time(ngx_str_t *s, uint64_t *us);
static void ngx_http_sark_aq_answer(ngx_http_sark_call_t *call,
    ngx_uint_t status, u_char *payload, size_t len);


ngx_int_t
ngx_http_sark_audit_query_handler(ngx_http_request_t *r)
{
    u_char                    *frame;
    size_t                     cap, off;
    ngx_int_t                  rc;
    ngx_uint_t                 i, ok;
    sark_frame_hdr_t           h;
    ngx_http_sark_ctx_t       *ctx;
    ngx_http_sark_error_t     *err;
    ngx_http_sark_loc_conf_t  *slcf;

    slcf = ngx_http_get_module_loc_conf(r, ngx_http_sark_module);

    rc = ngx_http_sark_get_start(r, &ctx, 1);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    err = &ctx->error;

    /* the trail is for those who keep it: admins and auditors */

    for (i = 0, ok = 0; i < ctx->identity.nroles; i++) {
        if ((ctx->identity.roles[i].len == 5
             && ngx_strncmp(ctx->identity.roles[i].data, "admin", 5) == 0)
            || (ctx->identity.roles[i].len == 7
                && ngx_strncmp(ctx->identity.roles[i].data, "auditor", 7)
                   == 0))
        {
            ok = 1;
        }
    }

    if (!ok) {
        ngx_http_sark_error_set(err, NGX_HTTP_FORBIDDEN, "AZ-002",
                                "audit events are for the roles admin and "
                                "auditor");
        return ngx_http_sark_send_error(r, err);
    }

    cap = SARK_PROTO_HDR_LEN + 10 * SARK_PROTO_TLV_HDR_LEN
          + SARK_AQ_MAX_USER_ID + 3 * NGX_HTTP_SARK_MAX_NAME
          + NGX_HTTP_SARK_AQ_CURSOR_MAX + 32;

    frame = ngx_pnalloc(r->pool, cap);
    if (frame == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    off = SARK_PROTO_HDR_LEN;

    rc = ngx_http_sark_aq_args(r, frame, cap, &off, err);

    if (rc == NGX_DECLINED) {
        return ngx_http_sark_send_error(r, err);
    }

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memzero(&h, sizeof(sark_frame_hdr_t));
    h.type = SARK_MSG_AUDIT_QUERY_REQ;
    h.length = (uint32_t) (off - SARK_PROTO_HDR_LEN);
    sark_frame_hdr_encode(frame, &h);

    ctx->call.handler = ngx_http_sark_aq_answer;

    rc = ngx_http_sark_ctx_call(ctx, frame, off, slcf->decision_timeout);

    switch (rc) {

    case NGX_OK:
        r->main->count++;
        return NGX_DONE;

    case NGX_DECLINED:
    case NGX_BUSY:
        ngx_http_sark_call_refused(err, rc);
        return ngx_http_sark_send_error(r, err);

    default:
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
}


/* the arguments as TLVs after frame[*off]; NGX_DECLINED: err says why */

static ngx_int_t
ngx_http_sark_aq_args(ngx_http_request_t *r, u_char *frame, size_t cap,
    size_t *off, ngx_http_sark_error_t *err)
{
    uint8_t      one;
    uint64_t     us;
    ngx_int_t    n;
    ngx_str_t    v;
    ngx_uint_t   i;
    const char  *bad;

    static const struct {
        const char  *name;
        uint16_t     tag;
    } names[] = {
        { "user_id", SARK_AQ_USER_ID },
        { "server_name", SARK_AQ_SERVER_NAME },
        { "tool_name", SARK_AQ_TOOL_NAME },
        { "decision", SARK_AQ_DECISION },
        { "cursor", SARK_AQ_CURSOR },
    };

    static const char  *known[] = {
        "user_id", "server_name", "tool_name", "decision", "cursor",
        "since", "until", "limit", "explain", NULL
    };

    if (ngx_http_sark_query_check(r, known, err) != NGX_OK) {
        return NGX_DECLINED;
    }

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        bad = names[i].name;

        if (ngx_http_sark_query_arg(r, names[i].name, &v) != NGX_OK) {
            goto invalid;
        }

        if (v.data == NULL) {
            continue;
        }

        if (names[i].tag == SARK_AQ_DECISION
            && !(v.len == 5 && ngx_strncmp(v.data, "allow", 5) == 0)
            && !(v.len == 4 && ngx_strncmp(v.data, "deny", 4) == 0))
        {
            goto invalid;
        }

        /* a user id is a token's sub: as long as a token may be */

        if (v.len > (names[i].tag == SARK_AQ_CURSOR
                     ? NGX_HTTP_SARK_AQ_CURSOR_MAX
                     : names[i].tag == SARK_AQ_USER_ID
                     ? SARK_AQ_MAX_USER_ID : NGX_HTTP_SARK_MAX_NAME)
            || sark_tlv_put(frame, cap, off, names[i].tag, v.data, v.len)
               != SARK_PROTO_OK)
        {
            goto invalid;
        }
    }

    for (i = 0; i < 2; i++) {
        bad = i ? "until" : "since";

        if (ngx_http_sark_query_arg(r, bad, &v) != NGX_OK) {
            goto invalid;
        }

        if (v.data == NULL) {
            continue;
        }

        if (ngx_http_sark_aq_time(&v, &us) != NGX_OK) {
            ngx_http_sark_error_fmt(r->pool, err, NGX_HTTP_BAD_REQUEST,
                                    "GW-100", "parameter \"%s\" must be Unix "
                                    "seconds or an RFC 3339 UTC time "
                                    "(2026-12-01T00:00:00Z)",
                                    i ? "until" : "since");
            err->field = i ? "until" : "since";
            err->in_query = 1;
            return NGX_DECLINED;
        }

        if (sark_tlv_put_u64(frame, cap, off,
                             i ? SARK_AQ_UNTIL : SARK_AQ_SINCE, us)
            != SARK_PROTO_OK)
        {
            return NGX_ERROR;
        }
    }

    bad = "limit";

    if (ngx_http_sark_query_arg(r, bad, &v) != NGX_OK) {
        goto invalid;
    }

    if (v.data) {
        n = ngx_atoi(v.data, v.len);

        if (n < 1 || n > SARK_AQ_MAX_LIMIT) {
            ngx_http_sark_error_fmt(r->pool, err, NGX_HTTP_BAD_REQUEST,
                                    "GW-100", "parameter \"limit\" must be "
                                    "1 to %d", SARK_AQ_MAX_LIMIT);
            err->field = "limit";
            err->in_query = 1;
            return NGX_DECLINED;
        }

        if (sark_tlv_put_u32(frame, cap, off, SARK_AQ_LIMIT, (uint32_t) n)
            != SARK_PROTO_OK)
        {
            return NGX_ERROR;
        }
    }

    bad = "explain";

    if (ngx_http_sark_query_arg(r, bad, &v) != NGX_OK) {
        goto invalid;
    }

    if (v.data && !(v.len == 1 && (v.data[0] == '0' || v.data[0] == '1'))) {
        goto invalid;
    }

    if (v.data && v.data[0] == '1') {
        one = 1;

        if (sark_tlv_put(frame, cap, off, SARK_AQ_EXPLAIN, &one, 1)
            != SARK_PROTO_OK)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;

invalid:

    ngx_http_sark_error_fmt(r->pool, err, NGX_HTTP_BAD_REQUEST, "GW-100",
                            "parameter \"%s\" is invalid (UTF-8, not empty; "
                            "decision: allow or deny; names: at most %d "
                            "bytes)", bad, NGX_HTTP_SARK_MAX_NAME);
    err->field = bad;
    err->in_query = 1;

    return NGX_DECLINED;
}


/* Unix seconds, or YYYY-MM-DDTHH:MM:SS[.frac]Z, to Unix microseconds */

static ngx_int_t
ngx_http_sark_aq_time(ngx_str_t *s, uint64_t *us)
{
    u_char     *p, *last;
    int64_t     y, m, d, hh, mm, ss, frac, scale, days, era, yoe, doy, doe;
    ngx_int_t   n;

    p = s->data;
    last = p + s->len;

    n = ngx_atoi(p, s->len);

    if (n != NGX_ERROR) {
        if (n > 253402300799) {         /* 9999-12-31T23:59:59Z */
            return NGX_ERROR;
        }

        *us = (uint64_t) n * 1000000;
        return NGX_OK;
    }

    if (s->len < sizeof("YYYY-MM-DDTHH:MM:SSZ") - 1
        || p[4] != '-' || p[7] != '-' || (p[10] != 'T' && p[10] != 't')
        || p[13] != ':' || p[16] != ':')
    {
        return NGX_ERROR;
    }

    y = ngx_atoi(p, 4);
    m = ngx_atoi(p + 5, 2);
    d = ngx_atoi(p + 8, 2);
    hh = ngx_atoi(p + 11, 2);
    mm = ngx_atoi(p + 14, 2);
    ss = ngx_atoi(p + 17, 2);

    if (y < 1970 || m < 1 || m > 12 || d < 1 || hh < 0 || hh > 23
        || mm < 0 || mm > 59 || ss < 0 || ss > 59)
    {
        return NGX_ERROR;
    }

    /* the days of that month (February of a leap year has 29) */

    if (d > (m == 2 ? 28 + ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)
                    : 30 + ((m + (m > 7)) & 1)))
    {
        return NGX_ERROR;
    }

    p += 19;
    frac = 0;

    if (p < last && *p == '.') {
        for (p++, scale = 100000; p < last && *p >= '0' && *p <= '9'; p++) {
            frac += (*p - '0') * scale;
            scale /= 10;
        }
    }

    if (last - p != 1 || (*p != 'Z' && *p != 'z')) {
        return NGX_ERROR;
    }

    /* days from 1970-01-01 of a proleptic Gregorian date */

    y -= (m <= 2);
    era = y / 400;
    yoe = y - era * 400;
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    days = era * 146097 + doe - 719468;

    *us = (uint64_t) (((days * 24 + hh) * 60 + mm) * 60 + ss) * 1000000
          + (uint64_t) frac;

    return NGX_OK;
}


static void
ngx_http_sark_aq_answer(ngx_http_sark_call_t *call, ngx_uint_t status,
    u_char *payload, size_t len)
{
    size_t                  off;
    uint8_t                 st;
    ngx_int_t               rc;
    ngx_str_t               text;
    sark_tlv_t              t;
    ngx_connection_t       *c;
    ngx_http_request_t     *r;
    ngx_http_sark_ctx_t    *ctx;
    ngx_http_sark_error_t  *err;

    ctx = call->data;
    r = ctx->request;
    c = r->connection;
    err = &ctx->error;

    st = SARK_AQ_DOWN;
    ngx_str_null(&text);

    if (status == NGX_HTTP_SARK_CALL_OK) {
        off = 0;

        while (sark_tlv_next(payload, len, &off, &t) == SARK_PROTO_OK) {
            if (t.tag == SARK_AQ_STATUS && t.len == 1) {
                st = t.value[0];

            } else if (t.tag == SARK_AQ_JSON || t.tag == SARK_AQ_MESSAGE) {
                text.data = (u_char *) t.value;
                text.len = t.len;
            }
        }
    }

    if (status == NGX_HTTP_SARK_CALL_OK && st == SARK_AQ_OK && text.data) {

        /* the payload is the connection's buffer: the body is a copy */

        rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        payload = ngx_pnalloc(r->pool, text.len + 1);

        if (payload) {
            ngx_memcpy(payload, text.data, text.len);
            payload[text.len] = '\n';
            text.data = payload;
            text.len++;
            rc = ngx_http_sark_send_json(r, NGX_HTTP_OK, &text);
        }

        ngx_http_finalize_request(r, rc);
        ngx_http_run_posted_requests(c);
        return;
    }

    if (status == NGX_HTTP_SARK_CALL_TIMEOUT) {
        ngx_http_sark_error_set(err, NGX_HTTP_SERVICE_UNAVAILABLE, "CN-002",
                                "no answer from the authorization service "
                                "in time");

    } else if (status != NGX_HTTP_SARK_CALL_OK) {
        ngx_http_sark_error_set(err, NGX_HTTP_SERVICE_UNAVAILABLE, "CN-001",
                                "authorization service unavailable");

    } else if (st == SARK_AQ_INVALID) {
        ngx_http_sark_error_fmt(r->pool, err, NGX_HTTP_BAD_REQUEST, "GW-100",
                                "%*s", ngx_min(text.len, 200), text.data);
        err->in_query = 1;

    } else {
        ngx_http_sark_error_fmt(r->pool, err, NGX_HTTP_SERVICE_UNAVAILABLE,
                                "DB-001", "%*s", ngx_min(text.len, 200),
                                text.data);
    }

    if (err->status == NGX_HTTP_SERVICE_UNAVAILABLE) {
        err->retry_after = 1;
    }

    ngx_http_finalize_request(r, ngx_http_sark_send_error(r, err));
    ngx_http_run_posted_requests(c);
}
