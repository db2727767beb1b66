/* ws.c - WebSocket endpoints (docs/internals/STREAMS.md has the protocol):
 *
 *   GET /v1/topics/{t}/ws?from=   one topic: records out as JSON text
 *                                 frames, text frames in are published
 *   GET /v1/ws                    many topics over one socket: subscribe,
 *                                 unsubscribe and publish commands
 *
 * A client is an sp_ws plus hub subscriptions. Delivery follows sse.c:
 * events move from each subscription's queue (references to shared
 * records; the frame payload is the record's shared `json`, only the
 * frame header is per client) into the connection while it holds less
 * than WS_WINDOW bytes; the hub queue's bounds and policy decide what a
 * client that stops reading costs (disconnect: close 1008 "slow
 * consumer"; skip: a gap notice). The write happens once per loop turn
 * (sp_ws_flush_soon), so the records of every batch the turn delivered,
 * and the acks it produced, share one syscall; only a full window is
 * written at once.
 *
 * Publishing: each text message is queued in `pending` and handed to the
 * hub in order. While the backend queue is full (-EAGAIN) or too many
 * publishes await their acknowledgement, the socket's input is paused
 * (nothing more is read) and the head message is retried when an ack
 * returns or after RETRY_MS. Each published message is answered once,
 * with an ack (when durable) or an error frame (at once), carrying the
 * client's request id: acks come in publish order, errors may overtake.
 *
 * Lifetime: the client has references from its socket, its retry timer
 * and each publish in flight; it is freed when the last goes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "api/api_int.h"
#include "api/schema.h"
#include "core/alloc.h"
#include "ws/ws.h"

#define WS_WINDOW    (64u << 10)
#define REPLY_LIMIT  (1u << 20) /* acks queued for a client that does not read */
#define UNBOUNDED    ((size_t)-1 / 2)
#define MAX_INFLIGHT 64
#define MAX_SUBS     64
#define SUB_NAME_MAX 64
#define RETRY_MS     5
#define MAX_ERRORS   20

typedef struct ws_client ws_client;

typedef struct ws_sub {
    ws_client *c;
    sp_hub_sub *sub;
    struct ws_sub *next;
    char name[SUB_NAME_MAX + 1]; /* "" on the topic endpoint */
    sp_buf prefix;               /* {"sub":"<name>",  — spliced in front of record JSON */
} ws_sub;

typedef struct pending_msg {
    struct pending_msg *next;
    size_t len;
    char data[];
} pending_msg;

struct ws_client {
    sp_ws *ws; /* NULL once the socket is over */
    sp_api *api;
    sp_loop *loop;
    ws_sub *subs;
    unsigned nsubs;
    char topic[SP_API_TOPIC_MAX + 1]; /* the topic endpoint's; "" on /v1/ws */
    pending_msg *pend_head, *pend_tail;
    unsigned inflight;
    unsigned refs;
    uv_timer_t retry;
    bool paused;   /* socket input paused by us */
    bool busy;     /* inside pump */
    bool driving;  /* inside drive */
    bool done;     /* the socket is over */
    bool released; /* release() ran */
    sp_buf out;    /* replies under construction */
};

typedef struct publish_op {
    ws_client *c;
    size_t idlen;
    char id[]; /* the request id as JSON text ("" for none) */
} publish_op;

/* ---- lifetime ----------------------------------------------------------- */

static void client_unref(ws_client *c)
{
    if (--c->refs > 0)
        return;
    sp_buf_free(&c->out);
    free(c);
}

static void on_retry_closed(uv_handle_t *h)
{
    client_unref(h->data);
}

static void drop_sub(ws_client *c, ws_sub *s)
{
    for (ws_sub **pp = &c->subs; *pp; pp = &(*pp)->next)
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    c->nsubs--;
    sp_hub_unsubscribe(s->sub);
    sp_buf_free(&s->prefix);
    free(s);
}

/* The socket is over: let go of subscriptions, queued messages, timer. */
static void release(ws_client *c)
{
    if (c->released)
        return;
    c->released = true;
    while (c->subs)
        drop_sub(c, c->subs);
    while (c->pend_head) {
        pending_msg *m = c->pend_head;
        c->pend_head = m->next;
        free(m);
    }
    c->pend_tail = NULL;
    uv_close((uv_handle_t *)&c->retry, on_retry_closed);
    client_unref(c); /* the socket's reference */
}

/* Ends the socket with a close frame (we asked: no on_close follows). */
static void close_client(ws_client *c, int code, const char *reason)
{
    if (c->done)
        return;
    c->done = true;
    sp_ws *ws = c->ws;
    c->ws = NULL;
    sp_ws_close(ws, code, reason);
    if (!c->busy && !c->driving)
        release(c);
}

static void after_busy(ws_client *c)
{
    if (c->done && !c->busy && !c->driving)
        release(c);
}

/* ---- replies ----------------------------------------------------------------- */

/* Sends c->out as one frame; a client that lets replies pile up is slow. */
static void send_reply(ws_client *c)
{
    if (c->done)
        return;
    int rc = sp_ws_send_text(c->ws, sp_buf_slice(&c->out), REPLY_LIMIT);
    if (rc == -EAGAIN)
        close_client(c, SP_WS_POLICY, "slow consumer");
}

static void reply_error(ws_client *c, sp_slice id, sp_slice sub, int status, const char *detail)
{
    sp_buf_reset(&c->out);
    sp_buf_append_cstr(&c->out, "{\"type\":\"error\"");
    if (id.len) {
        sp_buf_append_cstr(&c->out, ",\"id\":");
        sp_buf_append_slice(&c->out, id);
    }
    if (sub.len) {
        sp_buf_append_cstr(&c->out, ",\"sub\":");
        sp_json_str(&c->out, sub);
    }
    sp_buf_printf(&c->out, ",\"status\":%d,\"detail\":", status);
    if (detail[0] == '[')
        sp_buf_append_cstr(&c->out, detail); /* a FastAPI list, already JSON */
    else
        sp_json_cstr(&c->out, detail);
    sp_buf_putc(&c->out, '}');
    send_reply(c);
}

/* ---- delivery ------------------------------------------------------------------ */

static int write_event(ws_client *c, ws_sub *s, const sp_hub_event *ev)
{
    bool named = s->name[0] != '\0';
    if (ev->type == SP_HUB_EV_RECORD) {
        if (!named)
            return sp_ws_send_text(c->ws, ev->rec->json, UNBOUNDED);
        /* {"sub":"s1", + the shared envelope without its opening brace */
        sp_slice parts[2] = {sp_buf_slice(&s->prefix),
                             sp_slice_make(ev->rec->json.base + 1, ev->rec->json.len - 1)};
        return sp_ws_send_textv(c->ws, parts, 2, UNBOUNDED);
    }
    sp_buf_reset(&c->out);
    if (named)
        sp_buf_append_slice(&c->out, sp_buf_slice(&s->prefix));
    else
        sp_buf_putc(&c->out, '{');
    sp_buf_printf(&c->out, "\"type\":\"gap\",\"partition\":%u,\"from\":%llu,\"to\":%llu}",
                  ev->partition, (unsigned long long)ev->from, (unsigned long long)ev->to);
    return sp_ws_send_text(c->ws, sp_buf_slice(&c->out), UNBOUNDED);
}

/* A subscription ended: slow consumers are closed (1008), a deleted topic
 * ends the socket (topic endpoint) or just that subscription (/v1/ws). */
static void sub_ended(ws_client *c, ws_sub *s, int reason)
{
    if (reason == SP_HUB_END_SLOW) {
        close_client(c, SP_WS_POLICY, "slow consumer");
        return;
    }
    const char *detail = reason == SP_HUB_END_DELETED ? "topic deleted" : "read failed";
    if (!s->name[0]) {
        reply_error(c, SP_SLICE_NULL, SP_SLICE_NULL, reason == SP_HUB_END_DELETED ? 410 : 500,
                    detail);
        close_client(c, reason == SP_HUB_END_DELETED ? SP_WS_NORMAL : SP_WS_INTERNAL, detail);
        return;
    }
    reply_error(c, SP_SLICE_NULL, sp_slice_cstr(s->name), reason == SP_HUB_END_DELETED ? 410 : 500,
                detail);
    drop_sub(c, s);
}

/* Moves one subscription's events into the connection until the window
 * is full. Returns true when the window filled with events still queued. */
static bool fill_sub(ws_client *c, ws_sub *s)
{
    sp_hub_event ev;
    while (!c->done && sp_hub_sub_peek(s->sub, &ev)) {
        if (ev.type == SP_HUB_EV_END) {
            sub_ended(c, s, ev.reason);
            return false;
        }
        if (sp_ws_queued(c->ws) >= WS_WINDOW)
            return true;
        if (write_event(c, s, &ev) != 0)
            return false;
        sp_hub_sub_pop(s->sub);
    }
    return false;
}

static bool fill(ws_client *c)
{
    bool more = false;
    for (ws_sub *s = c->subs, *next; s && !c->done; s = next) {
        next = s->next; /* s may be dropped */
        more |= fill_sub(c, s);
    }
    return more;
}

static void pump(ws_client *c)
{
    if (c->busy || c->done)
        return;
    c->busy = true;
    for (;;) {
        bool more = fill(c);
        if (c->done)
            break;
        if (!more) { /* all queued: one write for everything this loop turn brings */
            sp_ws_flush_soon(c->ws);
            break;
        }
        sp_ws_flush(c->ws); /* a full window goes now; may end the socket: on_close sets done */
        if (c->done || sp_ws_queued(c->ws) > 0)
            break; /* an unwritten window: on_drain resumes */
    }
    c->busy = false;
    after_busy(c);
}

static void on_ready(sp_hub_sub *sub, void *arg)
{
    (void)sub;
    ws_sub *s = arg;
    pump(s->c);
}

/* ---- publishing -------------------------------------------------------------- */

static void drive(ws_client *c);

static void on_ack(void *arg, const sp_store_ack *ack)
{
    publish_op *op = arg;
    ws_client *c = op->c;
    c->inflight--;
    if (!c->done) {
        sp_slice id = sp_slice_make(op->id, op->idlen);
        if (ack->status != 0) {
            char detail[400];
            int status = sp__api_append_error(ack->status, ack->detail, detail, sizeof detail);
            reply_error(c, id, SP_SLICE_NULL, status, detail);
        } else {
            sp_buf_reset(&c->out);
            sp_buf_append_cstr(&c->out, "{\"type\":\"ack\"");
            if (id.len) {
                sp_buf_append_cstr(&c->out, ",\"id\":");
                sp_buf_append_slice(&c->out, id);
            }
            sp_buf_printf(&c->out, ",\"partition\":%u,\"offset\":%llu,\"timestamp\":%lld}",
                          ack->partition, (unsigned long long)ack->base_offset,
                          (long long)ack->timestamp);
            send_reply(c);
        }
        if (!c->done)
            sp_ws_flush_soon(c->ws); /* the acks of one loop turn share a write */
        drive(c);
    }
    free(op);
    client_unref(c);
}

/* The raw bytes of member `name` of the JSON object `text` (already
 * parsed strictly, so only its structure needs following), or a NULL
 * slice when it is absent or its key is written with escapes. */
static sp_slice member_span(sp_slice text, const char *name)
{
    const char *p = text.base, *end = text.base + text.len;
    size_t nlen = strlen(name);
    while (p < end && *p != '{')
        p++;
    p++;
    while (p < end) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n' || *p == ','))
            p++;
        if (p >= end || *p != '"')
            return SP_SLICE_NULL;
        const char *k = ++p;
        while (p < end && *p != '"')
            p += *p == '\\' ? 2 : 1;
        bool match = (size_t)(p - k) == nlen && memcmp(k, name, nlen) == 0;
        p++;
        while (p < end && *p != ':')
            p++;
        p++;
        while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
            p++;
        const char *v = p;
        int depth = 0;
        bool in_str = false;
        for (; p < end; p++) {
            char ch = *p;
            if (in_str) {
                if (ch == '\\')
                    p++;
                else if (ch == '"')
                    in_str = false;
                continue;
            }
            if (ch == '"')
                in_str = true;
            else if (ch == '{' || ch == '[')
                depth++;
            else if ((ch == '}' || ch == ']') && depth-- == 0)
                break;
            else if (ch == ',' && depth == 0)
                break;
        }
        const char *ve = p;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t' || ve[-1] == '\r' || ve[-1] == '\n'))
            ve--;
        if (match)
            return sp_slice_make(v, (size_t)(ve - v));
    }
    return SP_SLICE_NULL;
}

/* What one publish carries, pointing into the message and its tree. */
typedef struct publish_req {
    const char *topic;
    sp_slice value;    /* raw bytes to store */
    json_t *value_doc; /* for the schema */
    sp_slice key;
    char id[160]; /* JSON text of the request id, "" for none */
    size_t idlen;
} publish_req;

static bool is_envelope(json_t *doc)
{
    if (!json_is_object(doc) || !json_object_get(doc, "value"))
        return false;
    const char *k;
    json_t *v;
    json_object_foreach(doc, k, v)
    {
        if (strcmp(k, "id") && strcmp(k, "value") && strcmp(k, "key") && strcmp(k, "op") &&
            strcmp(k, "topic"))
            return false;
    }
    return true;
}

/* Fills id, key, value from an envelope {"id","key","value"}; answers the
 * client and returns false when a field has the wrong type. */
static bool read_envelope(ws_client *c, json_t *doc, sp_slice msg, publish_req *p)
{
    json_t *id = json_object_get(doc, "id"), *key = json_object_get(doc, "key");
    if (id) {
        if (!json_is_string(id) && !json_is_integer(id)) {
            reply_error(c, SP_SLICE_NULL, SP_SLICE_NULL, 422,
                        "'id' must be a string or an integer");
            return false;
        }
        char *t = json_dumps(id, JSON_ENCODE_ANY | JSON_COMPACT);
        size_t n = t ? strlen(t) : 0;
        if (!t || n >= sizeof p->id) {
            free(t);
            reply_error(c, SP_SLICE_NULL, SP_SLICE_NULL, 422, "'id' is longer than 150 bytes");
            return false;
        }
        memcpy(p->id, t, n + 1);
        p->idlen = n;
        free(t);
    }
    sp_slice idj = sp_slice_make(p->id, p->idlen);
    if (key && !json_is_string(key)) {
        reply_error(c, idj, SP_SLICE_NULL, 422, "'key' must be a string");
        return false;
    }
    if (key)
        p->key = sp_slice_make(json_string_value(key), json_string_length(key));
    p->value_doc = json_object_get(doc, "value");
    p->value = member_span(msg, "value");
    if (!p->value.base) {
        reply_error(c, idj, SP_SLICE_NULL, 422, "write the 'value' key without escapes");
        return false;
    }
    return true;
}

static bool schema_ok(ws_client *c, const publish_req *p)
{
    sp_hub_schema *schema = sp_hub_schema_acquire(c->api->hub, p->topic);
    if (!schema)
        return true;
    sp_buf errs;
    sp_buf_init(&errs, 16 * 1024);
    sp_buf_putc(&errs, '[');
    int n = sp_schema_validate_at(schema->compiled, p->value_doc, "\"body\"", &errs, MAX_ERRORS);
    sp_hub_schema_release(schema);
    errs.limit += 2;
    sp_buf_putc(&errs, ']');
    if (n > 0)
        reply_error(c, sp_slice_make(p->id, p->idlen), SP_SLICE_NULL, 422, errs.base);
    sp_buf_free(&errs);
    return n == 0;
}

/* Hands one publish to the hub. Returns -EAGAIN when it must wait (the
 * message stays queued), else 0 (answered now or by on_ack). */
static int publish(ws_client *c, const publish_req *p)
{
    if (!schema_ok(c, p))
        return 0;
    sp_store_record rec = {.timestamp = -1, .key = p->key, .value = p->value};
    publish_op *op = sp_xmalloc(sizeof *op + p->idlen + 1);
    op->c = c;
    op->idlen = p->idlen;
    memcpy(op->id, p->id, p->idlen + 1);
    int rc =
        sp_hub_produce(c->api->hub, c->loop, p->topic, SP_STORE_PARTITION_ANY, &rec, 1, on_ack, op);
    if (rc == 0) {
        c->inflight++;
        c->refs++;
        return 0;
    }
    free(op);
    if (rc == -EAGAIN)
        return -EAGAIN;
    char detail[400];
    int status = sp__api_append_error(rc, NULL, detail, sizeof detail);
    reply_error(c, sp_slice_make(p->id, p->idlen), SP_SLICE_NULL, status, detail);
    return 0;
}

static json_t *parse_message(ws_client *c, sp_slice msg)
{
    sp_json_limits lim = {msg.len + 1, c->api->opts.max_json_depth, 1};
    json_t *doc = NULL;
    sp_json_error err;
    if (sp_json_parse_strict(msg.base, msg.len, &lim, &doc, &err) != 0) {
        sp_buf b;
        sp_buf_init(&b, 4096);
        sp_buf_putc(&b, '[');
        sp_json_error_render(&b, &err);
        sp_buf_putc(&b, ']');
        reply_error(c, SP_SLICE_NULL, SP_SLICE_NULL, 422, b.base);
        sp_buf_free(&b);
        return NULL;
    }
    return doc;
}

/* ---- the /v1/ws commands --------------------------------------------------------- */

static void cmd_subscribe(ws_client *c, json_t *doc);

static void cmd_unsubscribe(ws_client *c, json_t *doc)
{
    json_t *name = json_object_get(doc, "sub");
    const char *n = json_is_string(name) ? json_string_value(name) : "";
    for (ws_sub *s = c->subs; s; s = s->next)
        if (strcmp(s->name, n) == 0) {
            drop_sub(c, s);
            sp_buf_reset(&c->out);
            sp_buf_append_cstr(&c->out, "{\"type\":\"unsubscribed\",\"sub\":");
            sp_json_cstr(&c->out, n);
            sp_buf_putc(&c->out, '}');
            send_reply(c);
            return;
        }
    reply_error(c, SP_SLICE_NULL, sp_slice_cstr(n), 404, "No such subscription");
}

/* Handles one message; returns -EAGAIN when it must be retried later. */
static int handle_message(ws_client *c, sp_slice msg)
{
    json_t *doc = parse_message(c, msg);
    if (!doc)
        return 0;
    publish_req p = {.topic = c->topic, .value = msg, .value_doc = doc};
    int rc = 0;
    if (c->topic[0]) { /* topic endpoint: an envelope, or the value itself */
        if (!is_envelope(doc) || read_envelope(c, doc, msg, &p))
            rc = publish(c, &p);
        json_decref(doc);
        return rc;
    }
    json_t *op = json_object_get(doc, "op");
    const char *o = json_is_string(op) ? json_string_value(op) : "";
    if (strcmp(o, "subscribe") == 0) {
        cmd_subscribe(c, doc);
    } else if (strcmp(o, "unsubscribe") == 0) {
        cmd_unsubscribe(c, doc);
    } else if (strcmp(o, "publish") == 0) {
        json_t *t = json_object_get(doc, "topic");
        if (!json_is_string(t) || !sp_hub_topic_exists(c->api->hub, json_string_value(t))) {
            reply_error(c, SP_SLICE_NULL, SP_SLICE_NULL, 404,
                        "'topic' must name an existing topic");
        } else if (!json_object_get(doc, "value")) {
            reply_error(c, SP_SLICE_NULL, SP_SLICE_NULL, 422, "'value' is required");
        } else if (is_envelope(doc) && read_envelope(c, doc, msg, &p)) {
            p.topic = json_string_value(t);
            rc = publish(c, &p);
        }
    } else {
        reply_error(c, SP_SLICE_NULL, SP_SLICE_NULL, 422,
                    "'op' must be 'subscribe', 'unsubscribe' or 'publish'");
    }
    json_decref(doc);
    return rc;
}

static void on_retry(uv_timer_t *t)
{
    drive(t->data);
}

/* Publishes queued messages in order until one has to wait. */
static void drive(ws_client *c)
{
    if (c->driving || c->done)
        return;
    c->driving = true;
    bool wait = false;
    while (c->pend_head && !c->done) {
        if (c->inflight >= MAX_INFLIGHT) {
            wait = true; /* an ack calls drive again */
            break;
        }
        pending_msg *m = c->pend_head;
        if (handle_message(c, sp_slice_make(m->data, m->len)) == -EAGAIN) {
            wait = true;
            uv_timer_start(&c->retry, on_retry, RETRY_MS, 0);
            break;
        }
        c->pend_head = m->next;
        if (!c->pend_head)
            c->pend_tail = NULL;
        free(m);
    }
    c->driving = false;
    if (!c->done) {
        sp_ws_flush_soon(c->ws);
        if (!c->done && wait != c->paused) {
            c->paused = wait;
            sp_ws_pause_input(c->ws, wait); /* resuming may deliver messages: drive again */
        }
    }
    after_busy(c);
}

/* ---- socket callbacks ------------------------------------------------------------- */

static void on_text(sp_ws *ws, sp_slice msg, void *arg)
{
    (void)ws;
    ws_client *c = arg;
    pending_msg *m = sp_xmalloc(sizeof *m + msg.len);
    m->next = NULL;
    m->len = msg.len;
    memcpy(m->data, msg.base, msg.len);
    if (c->pend_tail)
        c->pend_tail->next = m;
    else
        c->pend_head = m;
    c->pend_tail = m;
    drive(c);
}

static void on_drain(sp_ws *ws, void *arg)
{
    (void)ws;
    pump(arg);
}

static void on_close(sp_ws *ws, int code, void *arg)
{
    (void)ws;
    (void)code;
    ws_client *c = arg;
    c->ws = NULL;
    c->done = true;
    after_busy(c);
}

static const sp_ws_callbacks client_callbacks = {on_text, on_drain, on_close};

/* ---- subscriptions ----------------------------------------------------------------- */

static const char *subscribe_error(int rc, int *status)
{
    *status = rc == -ENOENT ? 404 : rc == -EINVAL ? 422 : 500;
    return rc == -ENOENT   ? "Topic not found"
           : rc == -EINVAL ? "No such partition"
                           : "Cannot subscribe";
}

/* Adds a subscription; returns 0 or the hub's error. */
static int add_sub(ws_client *c, const char *topic, const char *name, const sp_hub_sub_options *o)
{
    ws_sub *s = sp_xcalloc(1, sizeof *s);
    s->c = c;
    snprintf(s->name, sizeof s->name, "%s", name);
    sp_buf_init(&s->prefix, SP_BUF_UNLIMITED);
    if (name[0]) {
        sp_buf_append_cstr(&s->prefix, "{\"sub\":");
        sp_json_cstr(&s->prefix, name);
        sp_buf_putc(&s->prefix, ',');
    }
    int rc = sp_hub_subscribe(c->api->hub, c->loop, topic, o, on_ready, s, &s->sub);
    if (rc != 0) {
        sp_buf_free(&s->prefix);
        free(s);
        return rc;
    }
    s->next = c->subs;
    c->subs = s;
    c->nsubs++;
    return 0;
}

static bool sub_options(json_t *doc, sp_hub_sub_options *o, sp_hub_pos **pos)
{
    json_t *from = json_object_get(doc, "from"), *pol = json_object_get(doc, "policy");
    json_t *part = json_object_get(doc, "partition");
    *o = (sp_hub_sub_options){.partition = SP_STORE_PARTITION_ANY};
    if (json_is_integer(from) && json_integer_value(from) >= 0) {
        o->start = (sp_hub_start){.kind = SP_HUB_FROM_OFFSET,
                                  .offset = (uint64_t)json_integer_value(from)};
    } else if (json_is_string(from)) {
        sp_slice text = sp_slice_make(json_string_value(from), json_string_length(from));
        if (sp_hub_start_parse(text, &o->start, pos) != 0)
            return false;
    } else if (from) {
        return false;
    }
    if (pol && !(json_is_string(pol) && (strcmp(json_string_value(pol), "skip") == 0 ||
                                         strcmp(json_string_value(pol), "disconnect") == 0)))
        return false;
    if (pol && strcmp(json_string_value(pol), "skip") == 0)
        o->policy = SP_HUB_POLICY_SKIP;
    if (part) {
        if (!json_is_integer(part) || json_integer_value(part) < 0 ||
            json_integer_value(part) > 1023)
            return false;
        o->partition = (int32_t)json_integer_value(part);
    }
    return true;
}

static void cmd_subscribe(ws_client *c, json_t *doc)
{
    json_t *t = json_object_get(doc, "topic"), *name = json_object_get(doc, "sub");
    const char *n = json_is_string(name) ? json_string_value(name) : "";
    sp_slice ns = sp_slice_cstr(n);
    if (!n[0] || strlen(n) > SUB_NAME_MAX) {
        reply_error(c, SP_SLICE_NULL, SP_SLICE_NULL, 422, "'sub' must be a name of 1 to 64 bytes");
        return;
    }
    for (ws_sub *s = c->subs; s; s = s->next)
        if (strcmp(s->name, n) == 0) {
            reply_error(c, SP_SLICE_NULL, ns, 409, "A subscription with this name exists");
            return;
        }
    if (c->nsubs >= MAX_SUBS) {
        reply_error(c, SP_SLICE_NULL, ns, 429, "Too many subscriptions on this socket (64)");
        return;
    }
    if (!json_is_string(t) || !sp_store_topic_name_valid(json_string_value(t))) {
        reply_error(c, SP_SLICE_NULL, ns, 422, "'topic' must be a topic name");
        return;
    }
    sp_hub_sub_options o;
    sp_hub_pos *pos = NULL;
    if (!sub_options(doc, &o, &pos)) {
        free(pos);
        reply_error(c, SP_SLICE_NULL, ns, 422,
                    "'from' must be 'earliest', 'latest', an offset, 'time:<ms>' or a record id; "
                    "'policy' 'disconnect' or 'skip'; 'partition' 0 to 1023");
        return;
    }
    int rc = add_sub(c, json_string_value(t), n, &o);
    free(pos);
    if (rc != 0) {
        int status;
        const char *detail = subscribe_error(rc, &status);
        reply_error(c, SP_SLICE_NULL, ns, status, detail);
        return;
    }
    sp_buf_reset(&c->out);
    sp_buf_append_cstr(&c->out, "{\"type\":\"subscribed\",\"sub\":");
    sp_json_str(&c->out, ns);
    sp_buf_append_cstr(&c->out, ",\"topic\":");
    sp_json_str(&c->out, sp_slice_cstr(json_string_value(t)));
    sp_buf_putc(&c->out, '}');
    send_reply(c);
    pump(c);
}

/* ---- the requests -------------------------------------------------------------------- */

static sp_ws_options ws_options(const sp_api *api)
{
    return (sp_ws_options){.max_message_bytes = api->opts.ws_max_message_bytes,
                           .ping_interval_ms = api->opts.ws_ping_interval_ms,
                           .pong_timeout_ms = api->opts.ws_pong_timeout_ms,
                           .origins = api->opts.ws_origins};
}

static ws_client *client_new(sp_api *api, sp_loop *loop)
{
    ws_client *c = sp_xcalloc(1, sizeof *c);
    c->api = api;
    c->loop = loop;
    c->refs = 2; /* the socket and the retry timer */
    sp_buf_init(&c->out, SP_BUF_UNLIMITED);
    uv_timer_init(&loop->uv, &c->retry);
    c->retry.data = c;
    return c;
}

static void client_discard(ws_client *c)
{
    c->done = true;
    release(c);
}

/* Reads ?from=, ?from_time=, ?partition= and ?policy= of the topic
 * endpoint; answers 422 itself and returns false on a bad value. */
static void handle_topic_ws(sp_http_req *req, void *udata)
{
    sp_api *api = udata;
    char topic[SP_API_TOPIC_MAX + 1], accept[SP_WS_ACCEPT_LEN + 1];
    sp_ws_options wo = ws_options(api);
    sp_hub_sub_options o;
    sp_hub_pos *pos = NULL;
    if (!sp_ws_handshake(req, &wo, accept) || !sp__api_topic_param(req, api, topic, true) ||
        !sp__api_sub_query(req, &o, &pos, "a record id")) {
        free(pos);
        return;
    }
    ws_client *c = client_new(api, sp_http_req_loop(req));
    memcpy(c->topic, topic, sizeof topic);
    int rc = add_sub(c, topic, "", &o);
    free(pos);
    if (rc != 0) {
        int status;
        const char *detail = subscribe_error(rc, &status);
        sp__api_errorf(req, status, "%s", detail);
        client_discard(c);
        return;
    }
    c->ws = sp_ws_accept(req, &wo, accept, &client_callbacks, c);
    pump(c);
}

static void handle_multi_ws(sp_http_req *req, void *udata)
{
    sp_api *api = udata;
    char accept[SP_WS_ACCEPT_LEN + 1];
    sp_ws_options wo = ws_options(api);
    if (!sp_ws_handshake(req, &wo, accept))
        return;
    ws_client *c = client_new(api, sp_http_req_loop(req));
    c->ws = sp_ws_accept(req, &wo, accept, &client_callbacks, c);
}

int sp__api_register_ws(sp_router *r, sp_api *api)
{
    int rc = sp_router_add(r, SP_HTTP_GET, "/v1/topics/{t}/ws", handle_topic_ws, api);
    rc = rc ? rc : sp_router_add(r, SP_HTTP_GET, "/v1/ws", handle_multi_ws, api);
    rc = rc ? rc : sp__api_register_chat(r, api);
    return rc;
}
