
/*
 * Copyright (C) sark-gateway authors
 */


/*
 * Tool lists filtered for the caller.  A tools/list answer comes as the
 * application/json body of the POST, or as an SSE event of a
 * text/event-stream: the POST's own stream, or the GET stream (where a
 * server may send it again when a client resumes with Last-Event-ID; a
 * GET answered otherwise is read as JSON).
 * The filter reads those bodies and, in each JSON-RPC response with a
 * result.tools array, whatever its id, replaces the array by the tools the
 * policy shows: one gateway:tool:discover decision for the names listed,
 * cached and audited like any decision (the same list for the same caller
 * is an L1 hit).  Every other byte is as the upstream sent it.
 *
 * SSE is read as the spec says: lines end with CRLF, LF or CR, an empty
 * line ends an event, a leading BOM is skipped.  Each event goes on as
 * soon as it is whole, flushed; one whose data may hold a tool list (it
 * names "tools" or has an escape) is parsed first.  While sarkd is asked
 * the output waits (the connection is marked buffered, so nginx does not
 * finish the request) and resumes when the answer comes.
 *
 * Failing closed: a body or event the filter cannot read (over
 * NGX_HTTP_SARK_LIST_MAX, in a temporary file, compressed, not JSON) or a
 * list no decision can be had for is replaced by a JSON-RPC error and the
 * rest of the body dropped; an incomplete event at the end of a stream is
 * dropped (clients drop it too).  A tool list never goes out unfiltered.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_sark_mcp.h"


#define NGX_HTTP_SARK_LIST_MAX       (1024 * 1024)
#define NGX_HTTP_SARK_LIST_DEPTH     512
#define NGX_HTTP_SARK_LIST_BUFFERED  0x80     /* in c->buffered */

#define NGX_HTTP_SARK_LIST_JSON      0
#define NGX_HTTP_SARK_LIST_SSE       1


typedef struct {
    ngx_uint_t                   mode;
    u_char                      *data;          /* read, not yet sent: the
                                                   body (JSON), or the
                                                   current event on (SSE) */
    size_t                       len;
    size_t                       cap;
    ngx_chain_t                 *out;           /* ready to be sent */
    ngx_chain_t                **last_out;

    /* the response being decided */
    const sark_json_t           *answer;
    const sark_json_t           *tools;
    ngx_str_t                    fields;        /* the event's other lines */
    size_t                       consumed;      /* bytes of data it took */

    unsigned                     deciding:1;
    unsigned                     started:1;     /* past a leading BOM */
    unsigned                     last:1;        /* the upstream is done */
    unsigned                     end:1;         /* the body ends here */
    unsigned                     failed:1;
    unsigned                     sent_last:1;
} ngx_http_sark_mcp_list_t;


static ngx_int_t ngx_http_sark_list_header_filter(ngx_http_request_t *r);
static ngx_int_t ngx_http_sark_list_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);
static ngx_int_t ngx_http_sark_list_read(ngx_http_request_t *r,
    ngx_http_sark_mcp_list_t *l, ngx_chain_t *in);
static void ngx_http_sark_list_drop(ngx_http_sark_mcp_list_t *l,
    ngx_chain_t *in);
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
    ngx_uint_t                 sse, list;
    ngx_http_sark_ctx_t       *ctx;
    ngx_http_sark_mcp_t       *m;
    ngx_http_sark_mcp_list_t  *l;

    ctx = ngx_http_get_module_ctx(r, ngx_http_sark_module);

    if (ctx == NULL
        || ctx->mcp == NULL
        || !ctx->allowed
        || ((ngx_http_sark_loc_conf_t *)
            ngx_http_get_module_loc_conf(r, ngx_http_sark_module))->dry_run
        || r != r->main
        || r->headers_out.status != NGX_HTTP_OK
        || r->header_only)
    {
        return ngx_http_next_header_filter(r);
    }

    m = ctx->mcp;

    sse = r->headers_out.content_type.len >= sizeof("text/event-stream") - 1
          && ngx_strncasecmp(r->headers_out.content_type.data,
                             (u_char *) "text/event-stream",
                             sizeof("text/event-stream") - 1)
             == 0;

    list = (m->nmsgs == 1 && m->msgs[0].list);

    /*
     * the answer to tools/list, and every answer to a GET (an SSE stream
     * as the spec says, else read as JSON: a list never goes out unread)
     */

    if (!list && r->method != NGX_HTTP_GET) {
        return ngx_http_next_header_filter(r);
    }

    l = ngx_pcalloc(r->pool, sizeof(ngx_http_sark_mcp_list_t));
    if (l == NULL) {
        return NGX_ERROR;
    }

    l->last_out = &l->out;
    l->mode = sse ? NGX_HTTP_SARK_LIST_SSE : NGX_HTTP_SARK_LIST_JSON;

    m->list = l;

    /* a compressed body cannot be read: it never goes out */

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
    ngx_chain_t               *out;
    ngx_http_sark_ctx_t       *ctx;
    ngx_http_sark_mcp_list_t  *l;

    ctx = ngx_http_get_module_ctx(r, ngx_http_sark_module);

    if (ctx == NULL || ctx->mcp == NULL || ctx->mcp->list == NULL) {
        return ngx_http_next_body_filter(r, in);
    }

    l = ctx->mcp->list;

    if (l->failed) {
        ngx_http_sark_list_drop(l, in);

    } else if (in && ngx_http_sark_list_read(r, l, in) != NGX_OK) {
        ngx_http_sark_list_drop(l, in);

        if (ngx_http_sark_list_fail(r, ctx, l, "it is too large or not in "
                                    "memory")
            != NGX_OK)
        {
            return NGX_ERROR;
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

        /* a call to flush: only what the filters below hold */

        if (in == NULL
            && (r->out
                || (r->connection->buffered & ~NGX_HTTP_SARK_LIST_BUFFERED)))
        {
            return ngx_http_next_body_filter(r, NULL);
        }

        return NGX_OK;
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


/* the upstream's bytes after a failure: marked as sent, never sent */

static void
ngx_http_sark_list_drop(ngx_http_sark_mcp_list_t *l, ngx_chain_t *in)
{
    for ( /* void */ ; in; in = in->next) {
        if (in->buf->last_buf) {
            l->last = 1;
        }

        in->buf->pos = in->buf->last;

        if (in->buf->in_file) {
            in->buf->file_pos = in->buf->file_last;
        }
    }
}


/*
 * What is read becomes output: each whole event (SSE) or, at the end, the
 * body (JSON).  A response with tools starts its decision, and nothing
 * after it goes before it.
 */

static ngx_int_t
ngx_http_sark_list_scan(ngx_http_request_t *r, ngx_http_sark_ctx_t *ctx,
    ngx_http_sark_mcp_list_t *l)
{
    u_char     *p, *start, *end, *eol;
    ngx_int_t   rc;

    if (l->mode == NGX_HTTP_SARK_LIST_JSON) {
        if (!l->last || l->sent_last) {
            return NGX_OK;
        }

        if (l->len) {
            l->consumed = l->len;

            rc = ngx_http_sark_list_answer(r, ctx, l, l->data, l->len);

            if (rc == NGX_AGAIN || rc == NGX_ERROR) {
                return rc;
            }

            if (rc == NGX_DECLINED
                && ngx_http_sark_list_output(r, l, l->data, l->len, 0)
                   != NGX_OK)
            {
                return NGX_ERROR;
            }

            l->len = 0;
        }

        return ngx_http_sark_list_finish(r, l);
    }

    start = l->data;
    end = l->data + l->len;

    if (!l->started) {
        if (l->len < 3 && !l->last) {
            return NGX_OK;
        }

        l->started = 1;

        if (l->len >= 3 && start[0] == 0xef && start[1] == 0xbb
            && start[2] == 0xbf)
        {
            if (ngx_http_sark_list_output(r, l, start, 3, 1) != NGX_OK) {
                return NGX_ERROR;
            }

            start += 3;
        }
    }

    /* lines end with CRLF, LF or CR; an empty line ends the event */

    p = start;

    while (p < end && !l->deciding && !l->failed) {

        for (eol = p; eol < end && *eol != '\n' && *eol != '\r'; eol++) {
            /* void */
        }

        if (eol == end || (*eol == '\r' && eol + 1 == end && !l->last)) {
            break;      /* the line, or its CRLF, is not whole yet */
        }

        if (eol != p) {
            p = eol + ((*eol == '\r' && eol + 1 < end && eol[1] == '\n')
                       ? 2 : 1);
            continue;
        }

        /* an empty line: start..p + its ending is one whole event */

        p += (*p == '\r' && p + 1 < end && p[1] == '\n') ? 2 : 1;

        rc = ngx_http_sark_list_event(r, ctx, l, start, p);

        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }

        if (rc == NGX_DECLINED
            && ngx_http_sark_list_output(r, l, start, p - start, 1) != NGX_OK)
        {
            return NGX_ERROR;
        }

        start = p;
    }

    if (l->failed) {
        return ngx_http_sark_list_finish(r, l);
    }

    if (l->deciding) {
        return NGX_OK;      /* the event stays until its answer is made */
    }

    /* keep what is not a whole event yet; at the end, drop it */

    l->len = l->last ? 0 : (size_t) (end - start);
    ngx_memmove(l->data, start, l->len);

    return ngx_http_sark_list_finish(r, l);
}


/*
 * One SSE event: NGX_DECLINED when it goes on as it came, else (NGX_OK,
 * NGX_AGAIN) its data is a response with tools, being decided.
 */

static ngx_int_t
ngx_http_sark_list_event(ngx_http_request_t *r, ngx_http_sark_ctx_t *ctx,
    ngx_http_sark_mcp_list_t *l, u_char *start, u_char *end)
{
    u_char     *p, *line, *eol, *next, *data, *d, *f;
    size_t      len, flen;
    ngx_int_t   rc;
    ngx_uint_t  ndata;

    len = 0;
    flen = 0;
    ndata = 0;

    /* sizes: the data lines' values, the other lines */

    for (line = start; line < end; line = next) {
        for (eol = line; eol < end && *eol != '\n' && *eol != '\r'; eol++) {
            /* void */
        }

        next = eol + ((eol + 1 < end && *eol == '\r' && eol[1] == '\n')
                      ? 2 : 1);

        if (eol - line >= 4 && ngx_strncmp(line, "data", 4) == 0
            && (eol - line == 4 || line[4] == ':'))
        {
            len += (eol - line) + 1;
            ndata++;

        } else if (eol != line) {
            flen += (eol - line) + 1;
        }
    }

    if (ndata == 0) {
        return NGX_DECLINED;
    }

    data = ngx_pnalloc(r->pool, len + flen);
    if (data == NULL) {
        return NGX_ERROR;
    }

    d = data;
    f = data + len;

    l->fields.data = f;

    for (line = start; line < end; line = next) {
        for (eol = line; eol < end && *eol != '\n' && *eol != '\r'; eol++) {
            /* void */
        }

        next = eol + ((eol + 1 < end && *eol == '\r' && eol[1] == '\n')
                      ? 2 : 1);

        if (eol - line >= 4 && ngx_strncmp(line, "data", 4) == 0
            && (eol - line == 4 || line[4] == ':'))
        {
            p = line + 4;

            if (p < eol) {
                p++;                            /* ':' */

                if (p < eol && *p == ' ') {
                    p++;
                }
            }

            if (d != data) {
                *d++ = '\n';
            }

            d = ngx_cpymem(d, p, eol - p);

        } else if (eol != line) {
            f = ngx_cpymem(f, line, eol - line);
            *f++ = '\n';
        }
    }

    l->fields.len = f - l->fields.data;
    l->consumed = end - l->data;

    /* only data that names "tools", or hides names in escapes, may be one */

    if (ngx_strlcasestrn(data, d, (u_char *) "\"tools\"", 7 - 1) == NULL
        && ngx_strlcasestrn(data, d, (u_char *) "\\u", 2 - 1) == NULL)
    {
        return NGX_DECLINED;
    }

    rc = ngx_http_sark_list_answer(r, ctx, l, data, d - data);

    return rc;
}


/*
 * json[0..len) (the body, or an event's data): NGX_DECLINED when it holds
 * no tool list; else its decision is asked: NGX_AGAIN while sarkd
 * answers, NGX_OK when the rewritten response (or an error) is output.
 */

static ngx_int_t
ngx_http_sark_list_answer(ngx_http_request_t *r, ngx_http_sark_ctx_t *ctx,
    ngx_http_sark_mcp_list_t *l, u_char *json, size_t len)
{
    u_char               *p;
    size_t                size;
    ngx_int_t             rc;
    ngx_str_t             params, none;
    sark_json_t          *root;
    const sark_json_t    *result, *tools, *t, *name;

    if (sark_json_parse(json, len, NGX_HTTP_SARK_LIST_DEPTH,
                        ngx_http_sark_json_alloc, r->pool, &root, NULL, 0)
        != 0)
    {
        return ngx_http_sark_list_fail(r, ctx, l, "it is not JSON");
    }

    if (root->type == SARK_JSON_ARRAY) {
        for (t = root->child; t; t = t->next) {
            if (sark_json_get(sark_json_get(t, "result"), "tools")) {
                return ngx_http_sark_list_fail(r, ctx, l,
                                               "it is a batch with tools");
            }
        }

        return NGX_DECLINED;
    }

    result = sark_json_get(root, "result");
    tools = sark_json_get(result, "tools");

    if (tools == NULL) {
        return NGX_DECLINED;        /* no tool list: as it came */
    }

    if (tools->type != SARK_JSON_ARRAY) {
        return ngx_http_sark_list_fail(r, ctx, l,
                                       "its result.tools is not an array");
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

    if (!l->deciding) {
        return;         /* failed meanwhile; the error has gone instead */
    }

    l->deciding = 0;

    rc = ngx_http_sark_list_rewrite(r, ctx, l);

    if (rc == NGX_OK && !l->failed) {

        /* what was read while it was asked */

        l->len -= l->consumed;
        ngx_memmove(l->data, l->data + l->consumed, l->len);
        l->consumed = 0;

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
     * the output goes now: a request the upstream has finished waits in
     * nginx's writer, which its write event runs (it calls this filter and
     * ends the request); else the output is sent from here
     */

    if (l->last || c->error) {
        ngx_post_event(c->write, &ngx_posted_events);

    } else if (l->out && ngx_http_output_filter(r, NULL) == NGX_ERROR) {
        c->error = 1;
        ngx_post_event(c->write, &ngx_posted_events);
    }

    ngx_http_run_posted_requests(c);
}


/*
 * The response with only the tools the policy shows, as output: for SSE,
 * the event's other lines, then its data lines.  A deny shows none; an
 * outage or a decision that cannot be read is an error.
 */

static ngx_int_t
ngx_http_sark_list_rewrite(ngx_http_request_t *r, ngx_http_sark_ctx_t *ctx,
    ngx_http_sark_mcp_list_t *l)
{
    u_char                    *p, *q, *json, *text, *start;
    size_t                     size, nl;
    ngx_uint_t                 kept;
    sark_json_t               *fp;
    const sark_json_t         *t, *name, *v, *shown;
    ngx_http_sark_decision_t  *d;

    d = &ctx->decision;
    shown = NULL;

    if (ctx->error.status) {
        ngx_memzero(&ctx->error, sizeof(ngx_http_sark_error_t));
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

    /* the JSON: up to the tools array, the kept tools as they were, the
     * rest */

    json = (u_char *) l->answer->raw;

    text = ngx_pnalloc(r->pool, l->answer->raw_len);
    if (text == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(text, json, (u_char *) l->tools->raw - json);
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

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "sark mcp: a tool list shows %ui of %ui tools", kept,
                   l->tools->n);

    if (l->mode == NGX_HTTP_SARK_LIST_JSON) {
        return ngx_http_sark_list_output(r, l, text, p - text, 0);
    }

    /* SSE: each line of the JSON (it may span several) is a data line */

    nl = 1;

    for (q = text; q < p; q++) {
        nl += (*q == '\n');
    }

    size = l->fields.len + nl * (sizeof("data: \n") - 1) + (p - text) + 1;

    start = ngx_pnalloc(r->pool, size);
    if (start == NULL) {
        return NGX_ERROR;
    }

    q = ngx_cpymem(start, l->fields.data, l->fields.len);
    q = ngx_http_sark_cpylit(q, "data: ");

    for (json = text; json < p; json++) {
        *q++ = *json;

        if (*json == '\n') {
            q = ngx_http_sark_cpylit(q, "data: ");
        }
    }

    q = ngx_http_sark_cpylit(q, "\n\n");

    return ngx_http_sark_list_output(r, l, start, q - start, 0);
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

    if (!(l->last || l->end) || l->sent_last) {
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
 * The body cannot be filtered: the client gets a JSON-RPC error in the
 * place of the tool list (for the request's id; an SSE event of its own on
 * a stream), and nothing more of the upstream's body.  A decision being
 * asked is given up.
 */

static ngx_int_t
ngx_http_sark_list_fail(ngx_http_request_t *r, ngx_http_sark_ctx_t *ctx,
    ngx_http_sark_mcp_list_t *l, const char *why)
{
    u_char     *p, *start;
    size_t      size;
    ngx_str_t   id;

    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "sark: refused to pass the upstream's tool list: %s", why);

    if (l->deciding) {
        ngx_http_sark_sarkd_cancel(&ctx->call);
        ctx->waiting = 0;
        l->deciding = 0;
    }

    ngx_str_set(&id, "null");

    if (r->method == NGX_HTTP_POST && ctx->mcp->msgs[0].id.len) {
        id = ctx->mcp->msgs[0].id;
    }

    size = sizeof("event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":,"
                  "\"error\":{\"code\":-32603,\"message\":\"the tool list "
                  "could not be filtered for the caller: \"}}\n\n")
           + NGX_INT_T_LEN + id.len + ngx_strlen(why);

    start = ngx_pnalloc(r->pool, size);
    if (start == NULL) {
        return NGX_ERROR;
    }

    p = start;

    if (l->mode == NGX_HTTP_SARK_LIST_SSE) {
        p = ngx_http_sark_cpylit(p, "event: message\ndata: ");
    }

    p = ngx_http_sark_cpylit(p, "{\"jsonrpc\":\"2.0\",\"id\":");
    p = ngx_cpymem(p, id.data, id.len);
    p = ngx_sprintf(p, ",\"error\":{\"code\":%i,\"message\":\"the tool list "
                    "could not be filtered for the caller: %s\"}}",
                    (ngx_int_t) NGX_HTTP_SARK_RPC_INTERNAL, why);

    if (l->mode == NGX_HTTP_SARK_LIST_SSE) {
        p = ngx_http_sark_cpylit(p, "\n\n");

    } else {
        *p++ = '\n';
    }

    l->failed = 1;
    l->len = 0;

    /* a stream ends here for the client (it may start another) */

    if (l->mode == NGX_HTTP_SARK_LIST_SSE) {
        l->end = 1;
    }

    return ngx_http_sark_list_output(r, l, start, p - start, 0);
}
