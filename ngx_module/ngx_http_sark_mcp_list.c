
/*
 * Copyright (C) sark-gateway authors
 */


/*
 * tools/list answers filtered for the caller.  The upstream answers a
 * tools/list request with application/json (the JSON-RPC response is the
 * body) or text/event-stream (one SSE event carries it, among other events:
 * notifications, progress).  The filter finds that response (same id, a
 * result.tools array), asks one gateway:tool:discover decision for the
 * tool names it lists (cached and audited like any decision: the same list
 * for the same caller is an L1 hit) and replaces the tools array by the
 * tools the policy shows, every other byte of the body as it came.
 *
 * Every other SSE event goes on as soon as it is whole, flushed; once the
 * response has gone, the rest of the stream passes untouched.  While sarkd
 * is asked the output waits (the connection is marked buffered, so nginx
 * does not finish the request), and resumes when the answer comes.
 *
 * Failing closed: an answer the filter cannot read (larger than
 * NGX_HTTP_SARK_LIST_MAX, in a temporary file, not JSON) or a decision
 * that cannot be had is replaced by a JSON-RPC error; a tool list never
 * goes out unfiltered.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_sark_mcp.h"


#define NGX_HTTP_SARK_LIST_MAX       (1024 * 1024)
#define NGX_HTTP_SARK_LIST_BUFFERED  0x80     /* in c->buffered */

#define NGX_HTTP_SARK_LIST_JSON      0
#define NGX_HTTP_SARK_LIST_SSE       1


typedef struct {
    ngx_uint_t                   mode;
    u_char                      *data;          /* what is read and not yet
                                                   sent: the body (JSON), or
                                                   the events (SSE) */
    size_t                       len;
    size_t                       cap;
    ngx_chain_t                 *out;           /* ready to be sent */
    ngx_chain_t                **last_out;

    /* the response found, while its decision is asked */
    sark_json_t                 *answer;
    const sark_json_t           *tools;
    ngx_str_t                    before;        /* bytes up to the JSON (the
                                                   event's other lines) */
    size_t                       consumed;      /* bytes of data it used */

    unsigned                     deciding:1;
    unsigned                     done:1;        /* the response has gone */
    unsigned                     last:1;        /* the upstream is done */
    unsigned                     failed:1;
    unsigned                     sent_last:1;
} ngx_http_sark_mcp_list_t;


static ngx_int_t ngx_http_sark_list_header_filter(ngx_http_request_t *r);
static ngx_int_t ngx_http_sark_list_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);
static ngx_int_t ngx_http_sark_list_read(ngx_http_request_t *r,
    ngx_http_sark_mcp_list_t *l, ngx_chain_t *in);
static ngx_int_t ngx_http_sark_list_scan(ngx_http_request_t *r,
    ngx_http_sark_ctx_t *ctx, ngx_http_sark_mcp_list_t *l);
static ngx_int_t ngx_http_sark_list_event(ngx_http_request_t *r,
    ngx_http_sark_ctx_t *ctx, ngx_http_sark_mcp_list_t *l, u_char *start,
    u_char *end);
static ngx_int_t ngx_http_sark_list_answer(ngx_http_request_t *r,
    ngx_http_sark_ctx_t *ctx, ngx_http_sark_mcp_list_t *l, u_char *json,
    size_t len);
static void ngx_http_sark_list_decided(ngx_http_request_t *r,
    ngx_http_sark_ctx_t *ctx);
static ngx_int_t ngx_http_sark_list_rewrite(ngx_http_request_t *r,
    ngx_http_sark_ctx_t *ctx, ngx_http_sark_mcp_list_t *l);
static ngx_int_t ngx_http_sark_list_output(ngx_http_request_t *r,
    ngx_http_sark_mcp_list_t *l, u_char *data, size_t len, ngx_uint_t copy);
static ngx_int_t ngx_http_sark_list_finish(ngx_http_request_t *r,
    ngx_http_sark_mcp_list_t *l);
static ngx_int_t ngx_http_sark_list_fail(ngx_http_request_t *r,
    ngx_http_sark_ctx_t *ctx, ngx_http_sark_mcp_list_t *l,
    const char *why);


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;
static ngx_http_output_body_filter_pt    ngx_http_next_body_filter;

static ngx_str_t  ngx_http_sark_list_discover =
    ngx_string("gateway:tool:discover");
static ngx_str_t  ngx_http_sark_list_meta =
    ngx_string("{\"mcp_method\":\"tools/list\"}");


ngx_int_t
ngx_http_sark_mcp_list_init(ngx_conf_t *cf)
{
    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_sark_list_header_filter;

    ngx_http_next_body_filter = ngx_http_top_body_filter;
    ngx_http_top_body_filter = ngx_http_sark_list_body_filter;

    return NGX_OK;
}


static ngx_int_t
ngx_http_sark_list_header_filter(ngx_http_request_t *r)
{
    ngx_http_sark_ctx_t       *ctx;
    ngx_http_sark_mcp_t       *m;
    ngx_http_sark_mcp_list_t  *l;

    ctx = ngx_http_get_module_ctx(r, ngx_http_sark_module);

    if (ctx == NULL
        || ctx->mcp == NULL
        || !ctx->allowed
        || r != r->main
        || r->headers_out.status != NGX_HTTP_OK
        || r->header_only)
    {
        return ngx_http_next_header_filter(r);
    }

    m = ctx->mcp;

    if (m->nmsgs != 1 || !m->msgs[0].list) {
        return ngx_http_next_header_filter(r);
    }

    l = ngx_pcalloc(r->pool, sizeof(ngx_http_sark_mcp_list_t));
    if (l == NULL) {
        return NGX_ERROR;
    }

    l->last_out = &l->out;

    if (r->headers_out.content_type.len >= sizeof("text/event-stream") - 1
        && ngx_strncasecmp(r->headers_out.content_type.data,
                           (u_char *) "text/event-stream",
                           sizeof("text/event-stream") - 1)
           == 0)
    {
        l->mode = NGX_HTTP_SARK_LIST_SSE;
    }

    m->list = l;

    /* a compressed answer cannot be read: it never goes out */

    if (r->headers_out.content_encoding
        && r->headers_out.content_encoding->value.len
        && !(r->headers_out.content_encoding->value.len == 8
             && ngx_strncasecmp(r->headers_out.content_encoding->value.data,
                                (u_char *) "identity", 8)
                == 0))
    {
        if (ngx_http_sark_list_fail(r, ctx, l, "it is compressed") != NGX_OK)
        {
            return NGX_ERROR;
        }

        r->headers_out.content_encoding->hash = 0;
        r->headers_out.content_encoding = NULL;
    }

    /* the length changes; ranges and validators of the upstream's body
     * do not hold for this one */

    ngx_http_clear_content_length(r);
    ngx_http_clear_accept_ranges(r);
    ngx_http_clear_etag(r);

    r->filter_need_in_memory = 1;

    return ngx_http_next_header_filter(r);
}


static ngx_int_t
ngx_http_sark_list_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    ngx_chain_t               *out, *cl;
    ngx_http_sark_ctx_t       *ctx;
    ngx_http_sark_mcp_list_t  *l;

    ctx = ngx_http_get_module_ctx(r, ngx_http_sark_module);

    if (ctx == NULL || ctx->mcp == NULL || ctx->mcp->list == NULL) {
        return ngx_http_next_body_filter(r, in);
    }

    l = ctx->mcp->list;

    /* after the response, the rest of a stream as it comes */

    if (l->done && !l->failed && !l->deciding && l->out == NULL
        && l->len == 0)
    {
        return ngx_http_next_body_filter(r, in);
    }

    if (l->failed) {
        for (cl = in; cl; cl = cl->next) {
            if (cl->buf->last_buf) {
                l->last = 1;
            }

            cl->buf->pos = cl->buf->last;

            if (cl->buf->in_file) {
                cl->buf->file_pos = cl->buf->file_last;
            }
        }

    } else if (in && ngx_http_sark_list_read(r, l, in) != NGX_OK) {
        if (ngx_http_sark_list_fail(r, ctx, l, "it is too large or not in "
                                    "memory")
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        for (cl = in; cl; cl = cl->next) {
            if (cl->buf->last_buf) {
                l->last = 1;
            }

            cl->buf->pos = cl->buf->last;
        }
    }

    if (!l->deciding && !l->failed
        && ngx_http_sark_list_scan(r, ctx, l) == NGX_ERROR)
    {
        return NGX_ERROR;
    }

    if (l->failed && ngx_http_sark_list_finish(r, l) != NGX_OK) {
        return NGX_ERROR;
    }

    if (l->deciding) {
        r->connection->buffered |= NGX_HTTP_SARK_LIST_BUFFERED;

    } else {
        r->connection->buffered &= ~NGX_HTTP_SARK_LIST_BUFFERED;
    }

    if (l->out == NULL) {
        return (in == NULL) ? ngx_http_next_body_filter(r, NULL) : NGX_OK;
    }

    out = l->out;
    l->out = NULL;
    l->last_out = &l->out;

    return ngx_http_next_body_filter(r, out);
}


/* the upstream's bytes, copied and marked as sent */

static ngx_int_t
ngx_http_sark_list_read(ngx_http_request_t *r, ngx_http_sark_mcp_list_t *l,
    ngx_chain_t *in)
{
    u_char     *p;
    size_t      n, cap;
    ngx_buf_t  *b;

    for ( /* void */ ; in; in = in->next) {
        b = in->buf;

        if (b->last_buf) {
            l->last = 1;
        }

        if (ngx_buf_special(b)) {
            continue;
        }

        if (!ngx_buf_in_memory(b)) {
            return NGX_ERROR;
        }

        n = b->last - b->pos;

        if (n > NGX_HTTP_SARK_LIST_MAX - l->len) {
            return NGX_ERROR;
        }

        if (n > l->cap - l->len) {
            cap = ngx_max(l->cap * 2, 4096);

            while (cap - l->len < n) {
                cap *= 2;
            }

            p = ngx_pnalloc(r->pool, cap);
            if (p == NULL) {
                return NGX_ERROR;
            }

            if (l->len) {
                ngx_memcpy(p, l->data, l->len);
            }

            l->data = p;
            l->cap = cap;
        }

        ngx_memcpy(l->data + l->len, b->pos, n);
        l->len += n;

        b->pos = b->last;

        if (b->in_file) {
            b->file_pos = b->file_last;
        }
    }

    return NGX_OK;
}


/*
 * What is read becomes output: whole events (SSE) or, at the end, the
 * body (JSON); the response found starts its decision, and nothing after
 * it goes before it.
 */

static ngx_int_t
ngx_http_sark_list_scan(ngx_http_request_t *r, ngx_http_sark_ctx_t *ctx,
    ngx_http_sark_mcp_list_t *l)
{
    u_char     *p, *start, *end;
    ngx_int_t   rc;

    if (l->mode == NGX_HTTP_SARK_LIST_JSON) {
        if (!l->last) {
            return NGX_OK;
        }

        if (!l->done) {
            rc = ngx_http_sark_list_answer(r, ctx, l, l->data, l->len);

            if (rc == NGX_AGAIN || rc == NGX_ERROR) {
                return rc;
            }

            if (rc == NGX_DECLINED) {

                /* not the tools/list response: as it came */

                l->done = 1;

                if (ngx_http_sark_list_output(r, l, l->data, l->len, 0)
                    != NGX_OK)
                {
                    return NGX_ERROR;
                }
            }
        }

        l->len = 0;

        return ngx_http_sark_list_finish(r, l);
    }

    start = l->data;
    end = l->data + l->len;

    /* events end with a blank line: "\n\n", "\r\n\r\n" or "\r\r" */

    for (p = start; p < end; p++) {

        if (l->deciding) {
            break;
        }

        if (*p != '\n' && *p != '\r') {
            continue;
        }

        if (p + 1 < end && *p == '\r' && p[1] == '\n') {
            if (p + 3 < end && p[2] == '\r' && p[3] == '\n') {
                p += 3;

            } else {
                p++;
                continue;
            }

        } else if (p + 1 < end && p[1] == *p) {
            p++;

        } else {
            continue;
        }

        /* start..p is one whole event */

        if (l->done) {
            rc = NGX_DECLINED;

        } else {
            rc = ngx_http_sark_list_event(r, ctx, l, start, p + 1);
        }

        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }

        if (l->failed) {

            /* the error went in the response's place; nothing more */

            l->len = 0;
            return ngx_http_sark_list_finish(r, l);
        }

        if (rc == NGX_DECLINED
            && ngx_http_sark_list_output(r, l, start, p + 1 - start, 1)
               != NGX_OK)
        {
            return NGX_ERROR;
        }

        start = p + 1;
    }

    if (l->deciding) {

        /* the event being decided stays until its answer is made */

        return NGX_OK;
    }

    /* keep the part of an event not yet whole */

    l->len = end - start;
    ngx_memmove(l->data, start, l->len);

    if (l->last && l->len) {
        if (ngx_http_sark_list_output(r, l, l->data, l->len, 1) != NGX_OK) {
            return NGX_ERROR;
        }

        l->len = 0;
    }

    return ngx_http_sark_list_finish(r, l);
}


/*
 * One SSE event: its data is the tools/list response (NGX_OK or
 * NGX_AGAIN, as ngx_http_sark_list_answer()) or not (NGX_DECLINED).
 */

static ngx_int_t
ngx_http_sark_list_event(ngx_http_request_t *r, ngx_http_sark_ctx_t *ctx,
    ngx_http_sark_mcp_list_t *l, u_char *start, u_char *end)
{
    u_char     *p, *line, *eol, *data, *d;
    size_t      len;
    ngx_int_t   rc;

    /* the data lines, joined by "\n" (the SSE rules) */

    ngx_str_null(&l->before);
    len = 0;
    data = NULL;

    for (line = start; line < end; line = eol + 1) {
        for (eol = line; eol < end && *eol != '\n' && *eol != '\r'; eol++) {
            /* void */
        }

        if (eol - line >= 5 && ngx_strncmp(line, "data:", 5) == 0) {
            len += (eol - line) + 1;
        }

        if (eol + 1 < end && *eol == '\r' && eol[1] == '\n') {
            eol++;
        }
    }

    if (len == 0) {
        return NGX_DECLINED;
    }

    data = ngx_pnalloc(r->pool, len);
    if (data == NULL) {
        return NGX_ERROR;
    }

    d = data;

    for (line = start; line < end; line = eol + 1) {
        for (eol = line; eol < end && *eol != '\n' && *eol != '\r'; eol++) {
            /* void */
        }

        if (eol - line >= 5 && ngx_strncmp(line, "data:", 5) == 0) {
            p = line + 5;

            if (p < eol && *p == ' ') {
                p++;
            }

            if (d != data) {
                *d++ = '\n';
            }

            d = ngx_cpymem(d, p, eol - p);

            if (l->before.data == NULL) {
                l->before.data = start;
                l->before.len = line - start;
            }
        }

        if (eol + 1 < end && *eol == '\r' && eol[1] == '\n') {
            eol++;
        }
    }

    rc = ngx_http_sark_list_answer(r, ctx, l, data, d - data);

    if (rc == NGX_DECLINED) {
        return NGX_DECLINED;
    }

    /* the event is answered by the rewritten one, or an error */

    l->consumed = end - l->data;

    return rc;
}


/*
 * json[0..len) as the response to the tools/list request: NGX_DECLINED
 * when it is not (another message, an error response); else its
 * decision is asked: NGX_AGAIN while sarkd answers, NGX_OK when the
 * rewritten response is output.
 */

static ngx_int_t
ngx_http_sark_list_answer(ngx_http_request_t *r, ngx_http_sark_ctx_t *ctx,
    ngx_http_sark_mcp_list_t *l, u_char *json, size_t len)
{
    u_char                    *p;
    size_t                     size;
    ngx_int_t                  rc;
    ngx_str_t                  params, none;
    sark_json_t               *root;
    const sark_json_t         *id, *result, *tools, *t, *name, *want;
    ngx_http_sark_mcp_t       *m;
    ngx_http_sark_loc_conf_t  *slcf;

    m = ctx->mcp;
    slcf = ngx_http_get_module_loc_conf(r, ngx_http_sark_module);

    if (sark_json_parse(json, len, slcf->json_max_depth + 8,
                        ngx_http_sark_json_alloc, r->pool, &root, NULL, 0)
        != 0)
    {
        if (l->mode == NGX_HTTP_SARK_LIST_SSE) {
            return NGX_DECLINED;
        }

        return ngx_http_sark_list_fail(r, ctx, l, "it is not JSON");
    }

    want = sark_json_get(m->msgs[0].msg, "id");
    id = sark_json_get(root, "id");
    result = sark_json_get(root, "result");

    if (id == NULL || want == NULL || !sark_json_equal(id, want, 64)) {
        return NGX_DECLINED;
    }

    if (result == NULL) {
        return NGX_DECLINED;    /* an error response: nothing to filter */
    }

    tools = sark_json_get(result, "tools");

    if (tools == NULL || tools->type != SARK_JSON_ARRAY) {
        return ngx_http_sark_list_fail(r, ctx, l,
                                       "it has no result.tools array");
    }

    /* {"tools":["name",...]} of the names as they came */

    size = sizeof("{\"tools\":[]}");

    for (t = tools->child; t; t = t->next) {
        name = sark_json_get(t, "name");

        if (name == NULL || name->type != SARK_JSON_STRING) {
            return ngx_http_sark_list_fail(r, ctx, l,
                                           "a tool in it has no name");
        }

        size += name->raw_len + 1;
    }

    p = ngx_pnalloc(r->pool, size);
    if (p == NULL) {
        return NGX_ERROR;
    }

    params.data = p;
    p = ngx_http_sark_cpylit(p, "{\"tools\":[");

    for (t = tools->child; t; t = t->next) {
        name = sark_json_get(t, "name");

        if (t != tools->child) {
            *p++ = ',';
        }

        p = ngx_cpymem(p, name->raw, name->raw_len);
    }

    p = ngx_http_sark_cpylit(p, "]}");
    params.len = p - params.data;

    l->answer = root;
    l->tools = tools;
    l->deciding = 1;

    ngx_str_null(&none);

    ctx->done = ngx_http_sark_list_decided;

    rc = ngx_http_sark_mcp_ask(r, ctx, &ngx_http_sark_list_discover, &none,
                               &params, &ngx_http_sark_list_meta);

    if (rc == NGX_AGAIN) {
        return NGX_AGAIN;
    }

    l->deciding = 0;

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    return ngx_http_sark_list_rewrite(r, ctx, l);
}


/* sarkd's answer to the discover question */

static void
ngx_http_sark_list_decided(ngx_http_request_t *r, ngx_http_sark_ctx_t *ctx)
{
    ngx_int_t                  rc;
    ngx_connection_t          *c;
    ngx_http_sark_mcp_list_t  *l;

    c = r->connection;
    l = ctx->mcp->list;

    l->deciding = 0;

    rc = ngx_http_sark_list_rewrite(r, ctx, l);

    if (rc == NGX_OK && !l->failed) {

        /* the events read while it was asked */

        if (l->mode == NGX_HTTP_SARK_LIST_SSE) {
            l->len -= l->consumed;
            ngx_memmove(l->data, l->data + l->consumed, l->len);
            l->consumed = 0;
        }

        rc = ngx_http_sark_list_scan(r, ctx, l);
    }

    if (rc == NGX_OK && l->failed) {
        rc = ngx_http_sark_list_finish(r, l);
    }

    if (rc == NGX_ERROR) {
        c->error = 1;
    }

    c->buffered &= ~NGX_HTTP_SARK_LIST_BUFFERED;

    /*
     * the output goes now; a request the upstream has finished waits in
     * nginx's writer, which the write event runs to end it
     */

    rc = ngx_http_output_filter(r, NULL);

    if (rc == NGX_ERROR) {
        c->error = 1;
    }

    if (l->last || c->error) {
        ngx_post_event(c->write, &ngx_posted_events);
    }

    ngx_http_run_posted_requests(c);
}


/*
 * The response with only the tools the policy shows, as output: for SSE,
 * the event's lines before its data, then one data line.  A deny shows
 * none; an outage or a decision that cannot be read is an error.
 */

static ngx_int_t
ngx_http_sark_list_rewrite(ngx_http_request_t *r, ngx_http_sark_ctx_t *ctx,
    ngx_http_sark_mcp_list_t *l)
{
    u_char                    *p, *json, *start;
    size_t                     size;
    ngx_uint_t                 kept;
    sark_json_t               *fp;
    const sark_json_t         *t, *name, *v, *shown;
    ngx_http_sark_decision_t  *d;

    d = &ctx->decision;
    shown = NULL;

    if (ctx->error.status) {
        return ngx_http_sark_list_fail(r, ctx, l,
                                       "no decision could be had for it");
    }

    if (d->decision == SARK_DECISION_ALLOW) {
        if (d->filtered_parameters.len == 0
            || sark_json_parse(d->filtered_parameters.data,
                               d->filtered_parameters.len, 8,
                               ngx_http_sark_json_alloc, r->pool, &fp,
                               NULL, 0)
               != 0
            || (shown = sark_json_get(fp, "tools")) == NULL
            || shown->type != SARK_JSON_ARRAY)
        {
            return ngx_http_sark_list_fail(r, ctx, l,
                                           "the policy did not say which "
                                           "tools it shows");
        }
    }

    json = (u_char *) l->answer->raw;

    size = l->before.len + sizeof("data: \n\n") - 1 + l->answer->raw_len;

    start = ngx_pnalloc(r->pool, size);
    if (start == NULL) {
        return NGX_ERROR;
    }

    p = start;

    if (l->mode == NGX_HTTP_SARK_LIST_SSE) {
        p = ngx_cpymem(p, l->before.data, l->before.len);
        p = ngx_http_sark_cpylit(p, "data: ");
    }

    /* up to the tools array, the kept tools as they were, the rest */

    p = ngx_cpymem(p, json, (u_char *) l->tools->raw - json);
    *p++ = '[';

    kept = 0;

    for (t = l->tools->child; t; t = t->next) {
        name = sark_json_get(t, "name");

        for (v = shown ? shown->child : NULL; v; v = v->next) {
            if (v->type == SARK_JSON_STRING && v->len == name->len
                && ngx_memcmp(v->str, name->str, v->len) == 0)
            {
                break;
            }
        }

        if (v == NULL) {
            continue;
        }

        if (kept++) {
            *p++ = ',';
        }

        p = ngx_cpymem(p, t->raw, t->raw_len);
    }

    *p++ = ']';
    p = ngx_cpymem(p, l->tools->raw + l->tools->raw_len,
                   json + l->answer->raw_len
                   - (l->tools->raw + l->tools->raw_len));

    if (l->mode == NGX_HTTP_SARK_LIST_SSE) {
        p = ngx_http_sark_cpylit(p, "\n\n");
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "sark mcp: tools/list shows %ui of %ui tools", kept,
                   l->tools->n);

    l->done = 1;

    return ngx_http_sark_list_output(r, l, start, p - start, 0);
}


/* data[0..len) (copied when `copy`) goes out next, flushed */

static ngx_int_t
ngx_http_sark_list_output(ngx_http_request_t *r, ngx_http_sark_mcp_list_t *l,
    u_char *data, size_t len, ngx_uint_t copy)
{
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    if (len == 0) {
        return NGX_OK;
    }

    if (copy) {
        b = ngx_create_temp_buf(r->pool, len);
        if (b == NULL) {
            return NGX_ERROR;
        }

        b->last = ngx_cpymem(b->pos, data, len);

    } else {
        b = ngx_calloc_buf(r->pool);
        if (b == NULL) {
            return NGX_ERROR;
        }

        b->pos = data;
        b->last = data + len;
        b->memory = 1;
    }

    b->flush = 1;

    cl = ngx_alloc_chain_link(r->pool);
    if (cl == NULL) {
        return NGX_ERROR;
    }

    cl->buf = b;
    cl->next = NULL;

    *l->last_out = cl;
    l->last_out = &cl->next;

    return NGX_OK;
}


/* the end of the body, once the upstream's has come */

static ngx_int_t
ngx_http_sark_list_finish(ngx_http_request_t *r, ngx_http_sark_mcp_list_t *l)
{
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    if (!l->last || l->sent_last) {
        return NGX_OK;
    }

    b = ngx_calloc_buf(r->pool);
    cl = ngx_alloc_chain_link(r->pool);

    if (b == NULL || cl == NULL) {
        return NGX_ERROR;
    }

    b->last_buf = 1;

    cl->buf = b;
    cl->next = NULL;

    *l->last_out = cl;
    l->last_out = &cl->next;

    l->sent_last = 1;

    return NGX_OK;
}


/*
 * The answer cannot be filtered: the client gets a JSON-RPC error for its
 * request in its place (an SSE event of its own on a stream), and nothing
 * more of the upstream's body.
 */

static ngx_int_t
ngx_http_sark_list_fail(ngx_http_request_t *r, ngx_http_sark_ctx_t *ctx,
    ngx_http_sark_mcp_list_t *l, const char *why)
{
    u_char     *p, *start;
    size_t      size;
    ngx_str_t  *id;

    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "sark: refused to pass the upstream's tools/list answer: "
                  "%s", why);

    id = &ctx->mcp->msgs[0].id;

    size = sizeof("event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":,"
                  "\"error\":{\"code\":-32603,\"message\":\"the tools/list "
                  "answer could not be filtered for the caller: \"}}\n\n")
           + id->len + ngx_strlen(why);

    start = ngx_pnalloc(r->pool, size);
    if (start == NULL) {
        return NGX_ERROR;
    }

    p = start;

    if (l->mode == NGX_HTTP_SARK_LIST_SSE) {
        p = ngx_http_sark_cpylit(p, "event: message\ndata: ");
    }

    p = ngx_http_sark_cpylit(p, "{\"jsonrpc\":\"2.0\",\"id\":");
    p = ngx_cpymem(p, id->data, id->len);
    p = ngx_sprintf(p, ",\"error\":{\"code\":%i,\"message\":\"the tools/list "
                    "answer could not be filtered for the caller: %s\"}}",
                    (ngx_int_t) NGX_HTTP_SARK_RPC_INTERNAL, why);

    if (l->mode == NGX_HTTP_SARK_LIST_SSE) {
        p = ngx_http_sark_cpylit(p, "\n\n");

    } else {
        *p++ = '\n';
    }

    l->failed = 1;
    l->done = 1;
    l->deciding = 0;
    l->len = 0;

    return ngx_http_sark_list_output(r, l, start, p - start, 0);
}
