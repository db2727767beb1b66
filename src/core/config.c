/* config.c - the settings table and everything it drives.
 *
 * `settings[]` holds one row per key: its type, where it lives in
 * sp_config, its default as text, its bounds and a help line. Every way in
 * (defaults, YAML file, SPATE_* environment, flags) ends in
 * sp_config_set(), which looks the key up, parses the text for the row's
 * type, checks the bounds and only then stores, so a failed set leaves cfg
 * as it was. The loaders go one step further: they work on a copy and swap
 * it in when the whole source was good.
 *
 * The YAML loader walks libfyaml's event stream (no document tree): a stack
 * of open mappings gives the dotted key, each scalar value is applied at
 * once, and anything that is not a mapping of scalars is reported with its
 * line. Keys under "kafka." bypass the table into an ordered list. The one
 * sequence, `routes:`, switches the walk into a small state machine of its
 * own (a list of flat mappings of fields; see "routes" below) that checks
 * each route when its mapping closes.
 *
 * sp_config_print() writes canonical values ("64MiB", "10s") and quotes
 * every string in YAML's double-quoted style, escaping whatever YAML would
 * fold or reject, so printing and loading back gives the same config. */
#include "core/config.h"

#include <errno.h>
#include <fcntl.h>
#include <libfyaml.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/buf.h"

/* ---- the table ------------------------------------------------------------ */

typedef enum setting_type { T_STRING, T_INT, T_SIZE, T_DURATION, T_BOOL, T_ENUM } setting_type;

typedef struct setting {
    const char *key;
    setting_type type;
    size_t offset;     /* of the field in sp_config */
    const char *def;   /* default, in canonical form (what print writes) */
    int64_t min, max;  /* numbers: the value; strings: the length in bytes */
    const char *words; /* enum: "a|b|c", the first match is stored */
    const char *help;
} setting;

#define KIB    ((int64_t)1024)
#define MIB    (1024 * KIB)
#define GIB    (1024 * MIB)
#define PIB    (1024 * 1024 * GIB)
#define SEC    ((int64_t)1000)
#define MINUTE (60 * SEC)
#define HOUR   (60 * MINUTE)
#define DAY    (24 * HOUR)

#define ROW(k, t, field, d, lo, hi, w, h)                                                          \
    {                                                                                              \
        k, t, offsetof(sp_config, field), d, lo, hi, w, h                                          \
    }

/* Rows of one section stay together: sp_config_print relies on it. */
static const setting settings[] = {
    ROW("server.threads", T_INT, threads, "0", 0, 256, NULL,
        "worker threads; 0 means one per CPU core"),
    ROW("server.data_dir", T_STRING, data_dir, "./data", 1, 4096, NULL,
        "directory that holds the embedded log"),
    ROW("server.shutdown_timeout", T_DURATION, shutdown_timeout_ms, "10s", 1, HOUR, NULL,
        "how long a graceful shutdown waits for open connections"),
    ROW("log.level", T_ENUM, log_level, "info", 0, 0, "debug|info|warn|error",
        "lowest level of the log lines written to stderr"),
    ROW("log.access", T_BOOL, access_log, "false", 0, 1, NULL,
        "write one log line per HTTP request"),
    ROW("http.host", T_STRING, host, "127.0.0.1", 1, 255, NULL, "address to listen on"),
    ROW("http.port", T_INT, port, "8000", 0, 65535, NULL,
        "TCP port to listen on; 0 picks any free port"),
    ROW("http.max_request_line", T_SIZE, max_request_line, "8KiB", 256, MIB, NULL,
        "longest request line; a longer one gets 414"),
    ROW("http.max_header_bytes", T_SIZE, max_header_bytes, "16KiB", KIB, MIB, NULL,
        "total size of the request headers; more gets 431"),
    ROW("http.max_headers", T_INT, max_headers, "100", 8, 10000, NULL,
        "most header fields in one request; more gets 431"),
    ROW("http.max_body_bytes", T_SIZE, max_body_bytes, "1MiB", KIB, GIB, NULL,
        "largest request body; a larger one gets 413"),
    ROW("http.header_timeout", T_DURATION, header_timeout_ms, "10s", 1, HOUR, NULL,
        "time allowed to receive the request headers, then 408"),
    ROW("http.body_timeout", T_DURATION, body_timeout_ms, "10s", 1, HOUR, NULL,
        "longest pause while a request body arrives, then 408"),
    ROW("http.keepalive_timeout", T_DURATION, keepalive_timeout_ms, "30s", 1, HOUR, NULL,
        "how long an idle keep-alive connection stays open"),
    ROW("http.max_requests_per_connection", T_INT, max_requests_per_conn, "10000", 1, 1000000000,
        NULL, "requests served on one connection before it is closed"),
    ROW("http.max_pipelined", T_INT, max_pipelined, "32", 1, 1024, NULL,
        "requests in flight on one connection before reading pauses"),
    ROW("http.max_connections", T_INT, max_connections, "10000", 1, 1000000, NULL,
        "open connections per process; more get 503"),
    ROW("http.max_output_bytes", T_SIZE, max_output_bytes, "4MiB", 4 * KIB, GIB, NULL,
        "bytes queued for one client before the slow-client policy applies"),
    ROW("monitor.loop_lag_interval", T_DURATION, loop_lag_interval_ms, "100ms", 1, MINUTE, NULL,
        "how often the event loop's lag is measured"),
    ROW("monitor.slow_handler", T_DURATION, slow_handler_ms, "50ms", 1, MINUTE, NULL,
        "a handler that runs longer than this is logged as slow"),
    ROW("store.fsync", T_ENUM, fsync, "always", 0, 0, "always|interval|never",
        "flush the log before every acknowledgement, on a timer, or never"),
    ROW("store.fsync_interval", T_DURATION, fsync_interval_ms, "1s", 1, MINUTE, NULL,
        "the timer of store.fsync: interval"),
    ROW("store.segment_bytes", T_SIZE, segment_bytes, "64MiB", 64 * KIB, GIB, NULL,
        "size at which a log segment is closed and a new one begun"),
    ROW("store.retention_bytes", T_SIZE, retention_bytes, "0", 0, PIB, NULL,
        "log size kept, oldest segments deleted first; 0 = unlimited"),
    ROW("store.retention", T_DURATION, retention_ms, "7d", 0, 3650 * DAY, NULL,
        "segments older than this are deleted; 0 keeps them forever"),
    ROW("store.max_record_bytes", T_SIZE, max_record_bytes, "1MiB", 64, 256 * MIB, NULL,
        "largest single record"),
    ROW("store.max_append_records", T_INT, max_append_records, "65536", 1, 1 << 24, NULL,
        "records in one append (one produce request)"),
    ROW("store.queue_max_bytes", T_SIZE, queue_max_bytes, "64MiB", 4 * KIB, 16 * GIB, NULL,
        "encoded bytes waiting for the store thread; past it producers get 503"),
    ROW("store.queue_max_appends", T_INT, queue_max_appends, "65536", 1, 1 << 24, NULL,
        "appends waiting for the store thread; past it producers get 503"),
    ROW("store.max_topics", T_INT, max_topics, "10000", 1, 1000000, NULL, "topics in one data dir"),
    ROW("store.max_partitions", T_INT, max_partitions, "1024", 1, 65536, NULL,
        "partitions per topic"),
    ROW("store.on_corruption", T_ENUM, on_corruption, "fence", 0, 0, "fence|truncate",
        "damage found mid-segment at start-up: fence the partition, or truncate it there"),
    ROW("api.ack_timeout", T_DURATION, ack_timeout_ms, "10s", 1, HOUR, NULL,
        "longest wait for a durable acknowledgement before 504"),
    ROW("api.max_batch_records", T_INT, max_batch_records, "10000", 1, 1000000, NULL,
        "records in one produce request (array or NDJSON)"),
    ROW("api.max_read_records", T_INT, max_read_records, "10000", 1, 1000000, NULL,
        "largest ?limit= of a history read"),
    ROW("api.max_pending_reads", T_INT, max_pending_reads, "64", 1, 100000, NULL,
        "history reads waiting on the backend at once (Kafka fetches; 503 past it)"),
    ROW("api.max_json_depth", T_INT, max_json_depth, "64", 1, 1024, NULL,
        "deepest nesting accepted in a produced JSON value"),
    ROW("api.sse_keepalive", T_DURATION, sse_keepalive_ms, "15s", 10, HOUR, NULL,
        "interval of the keep-alive comment on idle Server-Sent Event streams"),
    ROW("api.sse_retry", T_DURATION, sse_retry_ms, "3s", 1, HOUR, NULL,
        "reconnect delay sent to Server-Sent Event clients (retry:)"),
    ROW("ws.max_message_bytes", T_SIZE, ws_max_message_bytes, "1MiB", 125, GIB, NULL,
        "largest WebSocket message a client may send; a longer one is closed with 1009"),
    ROW("ws.ping_interval", T_DURATION, ws_ping_interval_ms, "30s", 10, HOUR, NULL,
        "silence on a WebSocket before the server pings it"),
    ROW("ws.pong_timeout", T_DURATION, ws_pong_timeout_ms, "10s", 10, HOUR, NULL,
        "wait for the answer to a ping before closing the WebSocket (1011)"),
    ROW("ws.origins", T_STRING, ws_origins, "", 0, 4096, NULL,
        "allowed WebSocket Origin values, comma-separated; empty allows any (else 403)"),
    ROW("hub.latest_n", T_INT, latest_n, "100", 1, 100000, NULL,
        "newest records kept in memory per topic (GET .../latest, /latest-news)"),
    ROW("hub.subscriber_queue_records", T_INT, sub_queue_records, "8192", 16, 1 << 24, NULL,
        "records queued for one live subscriber before its slow-consumer policy applies"),
    ROW("hub.subscriber_queue_bytes", T_SIZE, sub_queue_bytes, "2MiB", 4 * KIB, GIB, NULL,
        "bytes queued for one live subscriber before its slow-consumer policy applies"),
    ROW("demo.news_topic", T_STRING, news_topic, "latest-news", 0, 249, NULL,
        "topic behind GET /latest-news, created at start; empty disables the route"),
    ROW("demo.items_topic", T_STRING, items_topic, "items", 0, 249, NULL,
        "topic behind POST /items (the Item schema), created at start; empty disables it"),
    ROW("demo.chat_topic", T_STRING, chat_topic, "", 0, 249, NULL,
        "topic of the GET /chat demo page (try \"chat\"), created at start; empty disables it"),
    ROW("debug.routes", T_BOOL, debug_routes, "false", 0, 1, NULL,
        "serve GET /debug/sleep?ms=N (blocks its loop: for testing the slow-handler monitor)"),
};

#define N_SETTINGS SP_ARRAY_LEN(settings)

static const char *const type_names[] = {"string", "int", "size", "duration", "bool", "enum"};

static const setting *find_setting(const char *key)
{
    for (size_t i = 0; i < N_SETTINGS; i++)
        if (strcmp(settings[i].key, key) == 0)
            return &settings[i];
    return NULL;
}

static void *field(sp_config *cfg, const setting *s)
{
    return (char *)cfg + s->offset;
}

static const void *cfield(const sp_config *cfg, const setting *s)
{
    return (const char *)cfg + s->offset;
}

/* ---- value syntaxes ------------------------------------------------------- */

typedef struct unit {
    const char *name;
    int64_t mult;
} unit;

static const unit size_units[] = {
    {"", 1},      {"b", 1},          {"k", KIB},         {"kb", KIB},         {"kib", KIB},
    {"m", MIB},   {"mb", MIB},       {"mib", MIB},       {"g", GIB},          {"gb", GIB},
    {"gib", GIB}, {"t", 1024 * GIB}, {"tb", 1024 * GIB}, {"tib", 1024 * GIB}, {"p", PIB},
    {"pb", PIB},  {"pib", PIB},
};

static const unit duration_units[] = {
    {"", 1}, {"ms", 1}, {"s", SEC}, {"m", MINUTE}, {"h", HOUR}, {"d", DAY},
};

/* What print writes, largest first. */
static const unit size_out[] = {
    {"PiB", PIB}, {"TiB", 1024 * GIB}, {"GiB", GIB}, {"MiB", MIB}, {"KiB", KIB}};
static const unit duration_out[] = {{"d", DAY}, {"h", HOUR}, {"m", MINUTE}, {"s", SEC}, {"ms", 1}};

/* Reads decimal digits at *p into *out and advances *p. Returns -EINVAL
 * when there is no digit, -ERANGE when the number passes INT64_MAX (the
 * digits are consumed all the same, so the caller can still tell a bad
 * suffix from a big number). */
static int scan_digits(const char **p, int64_t *out)
{
    const char *s = *p;
    int64_t v = 0;
    bool big = false;
    if (*s < '0' || *s > '9')
        return -EINVAL;
    for (; *s >= '0' && *s <= '9'; s++) {
        int d = *s - '0';
        if (v > (INT64_MAX - d) / 10)
            big = true;
        else
            v = v * 10 + d;
    }
    *p = s;
    *out = v;
    return big ? -ERANGE : 0;
}

/* A whole number with an optional unit from `units` (case-insensitive, a
 * space allowed before it). Returns 0, -EINVAL or -ERANGE. */
static int parse_with_units(const char *text, const unit *units, size_t n_units, int64_t *out)
{
    const char *p = text;
    int64_t v;
    int rc = scan_digits(&p, &v);
    if (rc == -EINVAL)
        return rc;
    if (*p == ' ' && p[1] != '\0')
        p++;
    for (size_t i = 0; i < n_units; i++) {
        if (strcasecmp(p, units[i].name) != 0)
            continue;
        if (rc < 0 || v > INT64_MAX / units[i].mult)
            return -ERANGE;
        *out = v * units[i].mult;
        return 0;
    }
    return -EINVAL;
}

static int parse_size(const char *text, int64_t *out)
{
    return parse_with_units(text, size_units, SP_ARRAY_LEN(size_units), out);
}

static int parse_duration(const char *text, int64_t *out)
{
    return parse_with_units(text, duration_units, SP_ARRAY_LEN(duration_units), out);
}

/* A whole number with an optional '-'. Returns 0, -EINVAL or -ERANGE. */
static int parse_int(const char *text, int64_t *out)
{
    const char *p = text;
    bool neg = *p == '-';
    int64_t v;
    if (neg)
        p++;
    int rc = scan_digits(&p, &v);
    if (rc == -EINVAL || *p != '\0')
        return -EINVAL;
    if (rc < 0)
        return rc;
    *out = neg ? -v : v;
    return 0;
}

int sp_config_parse_size(const char *text, int64_t *out)
{
    return parse_size(text, out) == 0 ? 0 : -EINVAL;
}

int sp_config_parse_duration_ms(const char *text, int64_t *out)
{
    return parse_duration(text, out) == 0 ? 0 : -EINVAL;
}

int sp_config_parse_bool(const char *text, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < SP_ARRAY_LEN(yes); i++) {
        if (strcasecmp(text, yes[i]) == 0 || strcasecmp(text, no[i]) == 0) {
            *out = strcasecmp(text, yes[i]) == 0;
            return 0;
        }
    }
    return -EINVAL;
}

/* Finds `text` (case-insensitive) among "a|b|c"; returns the listed word
 * (its length in *len), or NULL. */
static const char *enum_find(const char *words, const char *text, size_t *len)
{
    size_t tlen = strlen(text);
    while (*words) {
        size_t n = strcspn(words, "|");
        if (n == tlen && strncasecmp(words, text, n) == 0) {
            *len = n;
            return words;
        }
        words += n + (words[n] == '|');
    }
    return NULL;
}

/* Length of the UTF-8 sequence at p (at most `len` bytes) with its code
 * point, or 0 when it is malformed, overlong, a surrogate or past U+10FFFF. */
static size_t utf8_next(const unsigned char *p, size_t len, uint32_t *cp)
{
    static const uint32_t min_cp[] = {0, 0, 0x80, 0x800, 0x10000};
    size_t n = 0;
    if (p[0] < 0x80)
        n = 1;
    else if ((p[0] & 0xe0) == 0xc0)
        n = 2;
    else if ((p[0] & 0xf0) == 0xe0)
        n = 3;
    else if ((p[0] & 0xf8) == 0xf0)
        n = 4;
    if (n == 0 || n > len)
        return 0;
    uint32_t c = n == 1 ? p[0] : (uint32_t)(p[0] & (0x7f >> n));
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        c = (c << 6) | (uint32_t)(p[i] & 0x3f);
    }
    if (c < min_cp[n] || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
        return 0;
    *cp = c;
    return n;
}

static bool utf8_valid(const char *s)
{
    size_t len = strlen(s);
    uint32_t cp;
    for (size_t i = 0; i < len;) {
        size_t n = utf8_next((const unsigned char *)s + i, len - i, &cp);
        if (n == 0)
            return false;
        i += n;
    }
    return true;
}

/* Canonical text of a number of the given type ("64MiB", "10s", "8000"). */
static void format_number(setting_type t, int64_t v, char *out, size_t n)
{
    const unit *units = t == T_SIZE ? size_out : duration_out;
    size_t n_units = t == T_SIZE ? SP_ARRAY_LEN(size_out) : SP_ARRAY_LEN(duration_out);
    if ((t == T_SIZE || t == T_DURATION) && v > 0) {
        for (size_t i = 0; i < n_units; i++) {
            if (v % units[i].mult == 0) {
                snprintf(out, n, "%lld%s", (long long)(v / units[i].mult), units[i].name);
                return;
            }
        }
    }
    snprintf(out, n, "%lld", (long long)v);
}

/* ---- error messages ------------------------------------------------------- */

/* Where a value came from, for the start of an error message. */
typedef struct origin {
    sp_config_source source;
    const char *file; /* file name, variable or flag; see sp_config_set */
    int line;
    const char *key;
} origin;

/* "SPATE_" + key upper-cased with '.' as '_'. */
static void env_name(const char *key, char *out, size_t n)
{
    size_t i;
    int w = snprintf(out, n, "SPATE_");
    for (i = (size_t)w; *key && i + 1 < n; key++, i++) {
        char c = *key == '.' ? '_' : *key;
        out[i] = (c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : c;
    }
    out[i] = '\0';
}

/* Writes the prefix of a message about o->key. A file line alone does not
 * name the key, so with `name_key` the key follows it ("f.yaml:3: k"). */
static void where(const origin *o, bool name_key, char *out, size_t n)
{
    switch (o->source) {
    case SP_CONFIG_FILE:
        if (name_key)
            snprintf(out, n, "%s:%d: %s", o->file ? o->file : "config", o->line, o->key);
        else
            snprintf(out, n, "%s:%d", o->file ? o->file : "config", o->line);
        break;
    case SP_CONFIG_ENV:
        if (o->file)
            snprintf(out, n, "%s", o->file);
        else
            env_name(o->key, out, n);
        break;
    case SP_CONFIG_FLAG:
        if (o->file)
            snprintf(out, n, "%s", o->file);
        else
            snprintf(out, n, name_key ? "--set %s" : "--set", o->key);
        break;
    default: snprintf(out, n, "%s", o->key); break;
    }
}

static void fail(sp_config_error *err, const origin *o, bool name_key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Fills err with where(o) + ": " + the formatted detail. */
static void fail(sp_config_error *err, const origin *o, bool name_key, const char *fmt, ...)
{
    if (!err)
        return;
    char head[320];
    where(o, name_key, head, sizeof head);
    int n = snprintf(err->msg, sizeof err->msg, "%s: ", head);
    if (n < 0 || (size_t)n >= sizeof err->msg)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg + n, sizeof err->msg - (size_t)n, fmt, ap);
    va_end(ap);
}

/* Copies a user's text for a message: at most ~60 bytes, control bytes as
 * '?', cut on a character boundary. */
static const char *show(const char *text, char out[72])
{
    size_t len = strlen(text), n = len > 60 ? 60 : len;
    while (n < len && n > 0 && ((unsigned char)text[n] & 0xc0) == 0x80)
        n--;
    for (size_t i = 0; i < n; i++)
        out[i] = ((unsigned char)text[i] < 0x20 || text[i] == 0x7f) ? '?' : text[i];
    strcpy(out + n, n < len ? "..." : "");
    return out;
}

/* Edit distance with transpositions, for "did you mean"; both strings are
 * short (the caller bounds them). */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t prev2[SP_CONFIG_KEY_MAX + 1], prev[SP_CONFIG_KEY_MAX + 1], cur[SP_CONFIG_KEY_MAX + 1];
    for (size_t j = 0; j <= lb; j++)
        prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = a[i - 1] != b[j - 1];
            size_t best = prev[j - 1] + cost;
            if (prev[j] + 1 < best)
                best = prev[j] + 1;
            if (cur[j - 1] + 1 < best)
                best = cur[j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                prev2[j - 2] + 1 < best)
                best = prev2[j - 2] + 1;
            cur[j] = best;
        }
        memcpy(prev2, prev, (lb + 1) * sizeof prev[0]);
        memcpy(prev, cur, (lb + 1) * sizeof cur[0]);
    }
    return prev[lb];
}

static const char *last_part(const char *key)
{
    const char *dot = strrchr(key, '.');
    return dot ? dot + 1 : key;
}

/* The known key a typo most likely meant, or NULL: a close spelling, else
 * the same last part in another section ("server.port" -> "http.port"). */
static const char *suggest(const char *key)
{
    const char *best = NULL;
    size_t best_d = strlen(key) >= 12 ? 4 : 3;
    if (strlen(key) > SP_CONFIG_KEY_MAX)
        return NULL;
    for (size_t i = 0; i < N_SETTINGS; i++) {
        size_t d = edit_distance(key, settings[i].key);
        if (d < best_d) {
            best_d = d;
            best = settings[i].key;
        }
    }
    for (size_t i = 0; !best && i < N_SETTINGS; i++)
        if (strcmp(last_part(key), last_part(settings[i].key)) == 0)
            best = settings[i].key;
    return best;
}

static int fail_unknown(sp_config_error *err, const origin *o)
{
    char shown[72];
    const char *near = suggest(o->key);
    if (near)
        fail(err, o, false, "unknown setting '%s' (did you mean '%s'?)", show(o->key, shown), near);
    else
        fail(err, o, false, "unknown setting '%s'", show(o->key, shown));
    return -EINVAL;
}

/* ---- setting one value ---------------------------------------------------- */

/* A parsed value, ready to store: `num` for numbers, enums' index and
 * bools, `str` (owned) for strings and enums. */
typedef struct parsed {
    int64_t num;
    char *str;
} parsed;

static int check_bounds(const setting *s, const char *text, int64_t v, const origin *o,
                        sp_config_error *err)
{
    char shown[72], lim[32];
    if (v < s->min) {
        format_number(s->type, s->min, lim, sizeof lim);
        fail(err, o, true, "%s is below the minimum %s", show(text, shown), lim);
        return -EINVAL;
    }
    if (v > s->max) {
        format_number(s->type, s->max, lim, sizeof lim);
        fail(err, o, true, "%s is above the maximum %s", show(text, shown), lim);
        return -EINVAL;
    }
    return 0;
}

static const char *syntax_hint(setting_type t)
{
    switch (t) {
    case T_INT: return "is not a whole number";
    case T_SIZE:
        return "is not a size (write bytes, or a whole number with k, m, g, t or p "
               "for powers of 1024, e.g. 64k or 1MiB)";
    case T_DURATION:
        return "is not a duration (write a whole number with ms, s, m, h or d, "
               "e.g. 250ms or 10s; a bare number means ms)";
    default: return "is not true or false (yes/no, on/off and 1/0 work too)";
    }
}

static int parse_number(const setting *s, const char *text, parsed *out, const origin *o,
                        sp_config_error *err)
{
    char shown[72], lim[32];
    int rc;
    if (s->type == T_BOOL) {
        bool b = false;
        rc = sp_config_parse_bool(text, &b);
        out->num = b;
    } else {
        rc = s->type == T_INT    ? parse_int(text, &out->num)
             : s->type == T_SIZE ? parse_size(text, &out->num)
                                 : parse_duration(text, &out->num);
    }
    if (rc == -ERANGE) {
        bool below = text[0] == '-';
        format_number(s->type, below ? s->min : s->max, lim, sizeof lim);
        fail(err, o, true, "%s is %s %s", show(text, shown),
             below ? "below the minimum" : "above the maximum", lim);
        return -EINVAL;
    }
    if (rc < 0) {
        fail(err, o, true, "'%s' %s", show(text, shown), syntax_hint(s->type));
        return -EINVAL;
    }
    return check_bounds(s, text, out->num, o, err);
}

static int check_string(const char *text, int64_t min, int64_t max, const origin *o,
                        sp_config_error *err)
{
    size_t len = strlen(text);
    if ((int64_t)len < min) {
        fail(err, o, true, "the value must not be empty");
        return -EINVAL;
    }
    if ((int64_t)len > max) {
        fail(err, o, true, "the value is longer than %lld bytes", (long long)max);
        return -EINVAL;
    }
    if (!utf8_valid(text)) {
        fail(err, o, true, "the value is not valid UTF-8");
        return -EINVAL;
    }
    return 0;
}

static int parse_value(const setting *s, const char *text, parsed *out, const origin *o,
                       sp_config_error *err)
{
    char shown[72];
    size_t len;
    out->str = NULL;
    switch (s->type) {
    case T_STRING:
        if (check_string(text, s->min, s->max, o, err) < 0)
            return -EINVAL;
        out->str = sp_xstrdup(text);
        return 0;
    case T_ENUM: {
        const char *word = enum_find(s->words, text, &len);
        if (!word) {
            fail(err, o, true, "'%s' is not one of %s", show(text, shown), s->words);
            return -EINVAL;
        }
        out->str = sp_xstrndup(word, len);
        return 0;
    }
    default: return parse_number(s, text, out, o, err);
    }
}

static void store_value(sp_config *cfg, const setting *s, parsed *v)
{
    switch (s->type) {
    case T_STRING:
    case T_ENUM: {
        char **p = field(cfg, s);
        free(*p);
        *p = v->str;
        break;
    }
    case T_BOOL: *(bool *)field(cfg, s) = v->num != 0; break;
    default: *(int64_t *)field(cfg, s) = v->num; break;
    }
}

/* ---- kafka pass-through --------------------------------------------------- */

static bool kafka_key_ok(const char *k)
{
    if (*k == '\0' || strlen(k) > SP_CONFIG_KEY_MAX)
        return false;
    for (; *k; k++) {
        char c = *k;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* Sets kafka key `k` (without "kafka."), replacing an earlier value in its
 * place or appending. */
static int kafka_set(sp_config *cfg, const char *k, const char *v, const origin *o,
                     sp_config_error *err)
{
    if (!kafka_key_ok(k)) {
        fail(err, o, true, "a kafka key is 1 to %d letters, digits, '.', '_' or '-'",
             SP_CONFIG_KEY_MAX);
        return -EINVAL;
    }
    if (check_string(v, 0, SP_CONFIG_VALUE_MAX, o, err) < 0)
        return -EINVAL;
    for (size_t i = 0; i < cfg->kafka_len; i++) {
        if (strcmp(cfg->kafka[i].key, k) == 0) {
            free(cfg->kafka[i].value);
            cfg->kafka[i].value = sp_xstrdup(v);
            return 0;
        }
    }
    if (cfg->kafka_len == SP_CONFIG_KAFKA_MAX) {
        fail(err, o, true, "more than %d kafka settings", SP_CONFIG_KAFKA_MAX);
        return -EINVAL;
    }
    cfg->kafka = sp_xrealloc(cfg->kafka, (cfg->kafka_len + 1) * sizeof *cfg->kafka);
    cfg->kafka[cfg->kafka_len].key = sp_xstrdup(k);
    cfg->kafka[cfg->kafka_len].value = sp_xstrdup(v);
    cfg->kafka_len++;
    return 0;
}

/* ---- routes: the basics --------------------------------------------------- */

/* Frees a route's strings (method is static). */
static void route_clear(sp_config_route *r)
{
    free((char *)r->path);
    free((char *)r->topic);
    free((char *)r->schema);
    free((char *)r->schema_file);
    memset(r, 0, sizeof *r);
}

static char *dup_or_null(const char *s)
{
    return s ? sp_xstrdup(s) : NULL;
}

static void route_copy(sp_config_route *dst, const sp_config_route *src)
{
    *dst = *src;
    dst->path = dup_or_null(src->path);
    dst->topic = dup_or_null(src->topic);
    dst->schema = dup_or_null(src->schema);
    dst->schema_file = dup_or_null(src->schema_file);
}

size_t sp_config_routes(const sp_config *cfg, sp_config_route *out)
{
    size_t n = 0;
    if (cfg->routes_declared) {
        for (; n < cfg->routes_len && n < SP_CONFIG_ROUTES_MAX; n++)
            out[n] = cfg->routes[n];
        return n;
    }
    if (cfg->news_topic && cfg->news_topic[0])
        out[n++] = (sp_config_route){.method = "GET",
                                     .path = "/latest-news",
                                     .topic = cfg->news_topic,
                                     .action = SP_CONFIG_ACTION_LATEST,
                                     .limit = 10};
    if (cfg->items_topic && cfg->items_topic[0])
        out[n++] = (sp_config_route){.method = "POST",
                                     .path = "/items",
                                     .topic = cfg->items_topic,
                                     .action = SP_CONFIG_ACTION_PRODUCE,
                                     .schema = "builtin:item"};
    return n;
}

static bool str_eq(const char *a, const char *b);

/* The routes in effect are compared, so a config without `routes:` equals
 * one that declares the same routes (what --print-config writes). */
static bool routes_equal(const sp_config *a, const sp_config *b)
{
    sp_config_route ra[SP_CONFIG_ROUTES_MAX], rb[SP_CONFIG_ROUTES_MAX];
    size_t na = sp_config_routes(a, ra), nb = sp_config_routes(b, rb);
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++)
        if (!str_eq(ra[i].method, rb[i].method) || !str_eq(ra[i].path, rb[i].path) ||
            !str_eq(ra[i].topic, rb[i].topic) || ra[i].action != rb[i].action ||
            ra[i].limit != rb[i].limit || !str_eq(ra[i].schema, rb[i].schema) ||
            !str_eq(ra[i].schema_file, rb[i].schema_file))
            return false;
    return true;
}

/* ---- the public basics ---------------------------------------------------- */

static int set_from(sp_config *cfg, const origin *o, const char *text, sp_config_error *err)
{
    if (strcmp(o->key, "routes") == 0) {
        fail(err, o, true, "routes are declared in the configuration file only, as a list");
        return -EINVAL;
    }
    if (strncmp(o->key, "kafka.", 6) == 0)
        return kafka_set(cfg, o->key + 6, text, o, err);
    const setting *s = find_setting(o->key);
    if (!s)
        return fail_unknown(err, o);
    parsed v;
    if (parse_value(s, text, &v, o, err) < 0)
        return -EINVAL;
    store_value(cfg, s, &v);
    return 0;
}

int sp_config_set(sp_config *cfg, const char *key, const char *value, sp_config_source source,
                  const char *file, int line, sp_config_error *err)
{
    origin o = {source, file, line, key ? key : ""};
    if (!value) {
        fail(err, &o, true, "no value given");
        return -EINVAL;
    }
    return set_from(cfg, &o, value, err);
}

void sp_config_init(sp_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < N_SETTINGS; i++) {
        int rc =
            sp_config_set(cfg, settings[i].key, settings[i].def, SP_CONFIG_DEFAULT, NULL, 0, NULL);
        if (rc < 0)
            abort(); /* a default that does not parse is a bug in the table */
    }
}

void sp_config_free(sp_config *cfg)
{
    for (size_t i = 0; i < N_SETTINGS; i++)
        if (settings[i].type == T_STRING || settings[i].type == T_ENUM)
            free(*(char **)field(cfg, &settings[i]));
    for (size_t i = 0; i < cfg->kafka_len; i++) {
        free(cfg->kafka[i].key);
        free(cfg->kafka[i].value);
    }
    free(cfg->kafka);
    for (size_t i = 0; i < cfg->routes_len; i++)
        route_clear(&cfg->routes[i]);
    free(cfg->routes);
    memset(cfg, 0, sizeof *cfg);
}

/* Makes dst a deep copy of src (dst holds nothing yet). */
static void config_copy(sp_config *dst, const sp_config *src)
{
    *dst = *src;
    for (size_t i = 0; i < N_SETTINGS; i++) {
        if (settings[i].type == T_STRING || settings[i].type == T_ENUM) {
            char **p = field(dst, &settings[i]);
            *p = *p ? sp_xstrdup(*p) : NULL;
        }
    }
    dst->kafka = NULL;
    if (src->kafka_len) {
        dst->kafka = sp_xmalloc(src->kafka_len * sizeof *dst->kafka);
        for (size_t i = 0; i < src->kafka_len; i++) {
            dst->kafka[i].key = sp_xstrdup(src->kafka[i].key);
            dst->kafka[i].value = sp_xstrdup(src->kafka[i].value);
        }
    }
    dst->routes = NULL;
    if (src->routes_len) {
        dst->routes = sp_xmalloc(src->routes_len * sizeof *dst->routes);
        for (size_t i = 0; i < src->routes_len; i++)
            route_copy(&dst->routes[i], &src->routes[i]);
    }
}

/* Replaces cfg with next (a copy made by config_copy and then changed). */
static void config_swap_in(sp_config *cfg, sp_config *next)
{
    sp_config_free(cfg);
    *cfg = *next;
}

static bool str_eq(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

bool sp_config_equal(const sp_config *a, const sp_config *b)
{
    for (size_t i = 0; i < N_SETTINGS; i++) {
        const setting *s = &settings[i];
        bool same = s->type == T_STRING || s->type == T_ENUM
                        ? str_eq(*(char *const *)cfield(a, s), *(char *const *)cfield(b, s))
                    : s->type == T_BOOL
                        ? *(const bool *)cfield(a, s) == *(const bool *)cfield(b, s)
                        : *(const int64_t *)cfield(a, s) == *(const int64_t *)cfield(b, s);
        if (!same)
            return false;
    }
    if (a->kafka_len != b->kafka_len)
        return false;
    for (size_t i = 0; i < a->kafka_len; i++)
        if (!str_eq(a->kafka[i].key, b->kafka[i].key) ||
            !str_eq(a->kafka[i].value, b->kafka[i].value))
            return false;
    return routes_equal(a, b);
}

void sp_config_each(void (*fn)(const char *key, const char *type, const char *def, const char *help,
                               void *udata),
                    void *udata)
{
    for (size_t i = 0; i < N_SETTINGS; i++) {
        const setting *s = &settings[i];
        fn(s->key, s->type == T_ENUM ? s->words : type_names[s->type], s->def, s->help, udata);
    }
}

/* ---- printing ------------------------------------------------------------- */

/* YAML printable characters pass through; the rest, and the ones a
 * double-quoted scalar would fold (NEL, LS, PS) or a reader could take for
 * a byte-order mark, are escaped. */
static bool needs_escape(uint32_t c)
{
    return c < 0x20 || c == 0x7f || (c >= 0x80 && c <= 0x9f) || c == 0x2028 || c == 0x2029 ||
           c == 0xfeff || c == 0xfffe || c == 0xffff;
}

static void print_quoted(const char *s, FILE *out)
{
    size_t len = strlen(s);
    fputc('"', out);
    for (size_t i = 0; i < len;) {
        uint32_t c;
        size_t n = utf8_next((const unsigned char *)s + i, len - i, &c);
        if (n == 0) { /* cannot happen: values are checked at set time */
            fprintf(out, "\\x%02x", (unsigned char)s[i]);
            i++;
            continue;
        }
        if (c == '"' || c == '\\')
            fprintf(out, "\\%c", (char)c);
        else if (needs_escape(c) && c < 0x80)
            fprintf(out, "\\x%02x", (unsigned)c);
        else if (needs_escape(c))
            fprintf(out, "\\u%04x", (unsigned)c);
        else
            fwrite(s + i, 1, n, out);
        i += n;
    }
    fputc('"', out);
}

static void print_value(const sp_config *cfg, const setting *s, FILE *out)
{
    char num[32];
    switch (s->type) {
    case T_STRING: print_quoted(*(char *const *)cfield(cfg, s), out); break;
    case T_ENUM: fputs(*(char *const *)cfield(cfg, s), out); break;
    case T_BOOL: fputs(*(const bool *)cfield(cfg, s) ? "true" : "false", out); break;
    default:
        format_number(s->type, *(const int64_t *)cfield(cfg, s), num, sizeof num);
        fputs(num, out);
        break;
    }
}

/* One route per line as a flow mapping, every string double-quoted. */
static void print_route(const sp_config_route *r, FILE *out)
{
    bool latest = r->action == SP_CONFIG_ACTION_LATEST;
    fprintf(out, "  - {method: %s, path: ", r->method);
    print_quoted(r->path, out);
    fputs(", topic: ", out);
    print_quoted(r->topic, out);
    fprintf(out, ", action: %s", latest ? "latest" : "produce");
    if (latest)
        fprintf(out, ", limit: %lld", (long long)r->limit);
    if (r->schema) {
        fputs(", schema: ", out);
        print_quoted(r->schema, out);
    }
    if (r->schema_file) {
        fputs(", schema_file: ", out);
        print_quoted(r->schema_file, out);
    }
    fputs("}\n", out);
}

/* The routes in effect, the defaults included: printed, they load back as
 * declared routes, which sp_config_equal finds the same. */
static void print_routes(const sp_config *cfg, FILE *out)
{
    sp_config_route r[SP_CONFIG_ROUTES_MAX];
    size_t n = sp_config_routes(cfg, r);
    fputs("# routes are declared here only; without this key: GET /latest-news and\n"
          "# POST /items on demo.news_topic and demo.items_topic\n",
          out);
    fputs(n ? "routes:\n" : "routes: []\n", out);
    for (size_t i = 0; i < n; i++)
        print_route(&r[i], out);
}

void sp_config_print(const sp_config *cfg, FILE *out)
{
    const char *section = "";
    size_t section_len = 0;
    fputs("# spate configuration\n", out);
    for (size_t i = 0; i < N_SETTINGS; i++) {
        const char *key = settings[i].key, *dot = strchr(key, '.');
        size_t len = (size_t)(dot - key);
        if (len != section_len || strncmp(key, section, len) != 0) {
            fprintf(out, "%.*s:\n", (int)len, key);
            section = key;
            section_len = len;
        }
        fprintf(out, "  %s: ", dot + 1);
        print_value(cfg, &settings[i], out);
        fputc('\n', out);
    }
    if (cfg->kafka_len)
        fputs("kafka:\n", out);
    for (size_t i = 0; i < cfg->kafka_len; i++) {
        fprintf(out, "  \"%s\": ", cfg->kafka[i].key);
        print_quoted(cfg->kafka[i].value, out);
        fputc('\n', out);
    }
    print_routes(cfg, out);
}

/* ---- environment ---------------------------------------------------------- */

/* The key SPATE_KAFKA_<REST> stands for: bootstrap.servers for BOOTSTRAP,
 * else REST lower-cased with '_' as '.'. Returns false when too long. */
static bool kafka_env_key(const char *rest, size_t len, char *out, size_t n)
{
    if (len == 9 && strncmp(rest, "BOOTSTRAP", 9) == 0) {
        snprintf(out, n, "kafka.bootstrap.servers");
        return true;
    }
    if (len + 7 > n)
        return false;
    memcpy(out, "kafka.", 6);
    for (size_t i = 0; i < len; i++) {
        char c = rest[i] == '_' ? '.' : rest[i];
        out[6 + i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    out[6 + len] = '\0';
    return true;
}

/* Applies one "NAME=VALUE" entry if NAME is one of ours. */
static int env_apply(sp_config *cfg, const char *entry, sp_config_error *err)
{
    const char *eq = strchr(entry, '=');
    char name[SP_CONFIG_KEY_MAX + 16], key[SP_CONFIG_KEY_MAX + 16], expect[SP_CONFIG_KEY_MAX + 16];
    size_t len = eq ? (size_t)(eq - entry) : 0;
    if (!eq || strncmp(entry, "SPATE_", 6) != 0)
        return 0;
    if (len >= sizeof name) {
        if (strncmp(entry, "SPATE_KAFKA_", 12) != 0)
            return 0;
        origin o = {SP_CONFIG_ENV, "SPATE_KAFKA_...", 0, "kafka"};
        fail(err, &o, true, "the variable name is too long");
        return -EINVAL;
    }
    memcpy(name, entry, len);
    name[len] = '\0';
    origin o = {SP_CONFIG_ENV, name, 0, key};
    if (len > 12 && strncmp(name, "SPATE_KAFKA_", 12) == 0) {
        kafka_env_key(name + 12, len - 12, key, sizeof key);
        return set_from(cfg, &o, eq + 1, err);
    }
    for (size_t i = 0; i < N_SETTINGS; i++) {
        env_name(settings[i].key, expect, sizeof expect);
        if (strcmp(expect, name) == 0) {
            snprintf(key, sizeof key, "%s", settings[i].key);
            return set_from(cfg, &o, eq + 1, err);
        }
    }
    return 0;
}

int sp_config_load_env(sp_config *cfg, char *const *envp, sp_config_error *err)
{
    sp_config next;
    config_copy(&next, cfg);
    for (; envp && *envp; envp++) {
        if (env_apply(&next, *envp, err) < 0) {
            sp_config_free(&next);
            return -EINVAL;
        }
    }
    config_swap_in(cfg, &next);
    return 0;
}

/* ---- YAML ----------------------------------------------------------------- */

typedef struct seen_key {
    char *key;
    int line;
} seen_key;

/* The walk over one document's events. */
typedef struct loader {
    sp_config *cfg;
    const char *name;
    const char *text; /* the whole input, for raw scalar bytes */
    size_t text_len;
    sp_config_error *err;
    char key[SP_CONFIG_KEY_MAX + 1];  /* the dotted key being built */
    size_t base[SP_CONFIG_DEPTH_MAX]; /* key length inside each open mapping */
    int depth;                        /* open mappings; 0 before/after the root */
    bool have_key;                    /* a key waits for its value */
    int key_line;                     /* where that key is */
    int line;                         /* for messages: the event's, or its key's */
    int docs;
    seen_key *seen; /* keys set so far, to catch one given twice */
    size_t seen_len;
    /* inside `routes:` (see "YAML: routes") */
    int routes_state;      /* ROUTES_OFF, ROUTES_LIST or ROUTES_ENTRY */
    sp_config_route route; /* the entry being read; its strings are owned */
    unsigned route_given;  /* one bit per route_field given */
    int route_field;       /* the field whose value comes next, or -1 */
    int route_line;        /* where the entry starts */
    int field_line;        /* where route_field's name is */
} loader;

static int load_fail(loader *ld, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Fills the error as "NAME:LINE: [key: ]message" and returns -EINVAL. */
static int load_fail(loader *ld, const char *key, const char *fmt, ...)
{
    if (!ld->err)
        return -EINVAL;
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    origin o = {SP_CONFIG_FILE, ld->name, ld->line, key ? key : ""};
    fail(ld->err, &o, key != NULL, "%s", msg);
    return -EINVAL;
}

/* True for "kafka", "kafka.*" and the first parts of known keys ("http"):
 * names that may hold a mapping. */
static bool is_section(const char *key)
{
    size_t len = strlen(key);
    if (strcmp(key, "kafka") == 0 || strncmp(key, "kafka.", 6) == 0)
        return true;
    for (size_t i = 0; i < N_SETTINGS; i++)
        if (strncmp(settings[i].key, key, len) == 0 && settings[i].key[len] == '.')
            return true;
    return false;
}

static int note_seen(loader *ld)
{
    for (size_t i = 0; i < ld->seen_len; i++)
        if (strcmp(ld->seen[i].key, ld->key) == 0)
            return load_fail(ld, ld->key, "set twice (first on line %d)", ld->seen[i].line);
    /* Bounded: each entry is a table key, a distinct kafka key or routes. */
    if (ld->seen_len < N_SETTINGS + SP_CONFIG_KAFKA_MAX + 1) {
        ld->seen = sp_xrealloc(ld->seen, (ld->seen_len + 1) * sizeof *ld->seen);
        ld->seen[ld->seen_len++] = (seen_key){sp_xstrdup(ld->key), ld->line};
    }
    return 0;
}

/* Decodes the bytes between the quotes of a single-quoted scalar into out
 * (room for len bytes): '' is one quote; at a line break the blanks around
 * it go, a single break becomes a space and every further one a newline.
 * Returns the decoded length. */
static size_t decode_single_quoted(const char *raw, size_t len, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (raw[i] != '\n' && raw[i] != '\r') {
            out[o++] = raw[i];
            i += raw[i] == '\'' && i + 1 < len && raw[i + 1] == '\'';
            continue;
        }
        while (o > 0 && (out[o - 1] == ' ' || out[o - 1] == '\t'))
            o--;
        size_t breaks = 0;
        for (; i < len && (raw[i] == ' ' || raw[i] == '\t' || raw[i] == '\r' || raw[i] == '\n');
             i++)
            breaks += raw[i] == '\n' || (raw[i] == '\r' && (i + 1 == len || raw[i + 1] != '\n'));
        i--;
        if (breaks == 1)
            out[o++] = ' ';
        for (size_t b = 1; b < breaks; b++)
            out[o++] = '\n';
    }
    return o;
}

/* The raw bytes of a scalar event inside ld->text (for a quoted scalar,
 * those between the quotes). Returns false if the marks do not fit. */
static bool raw_scalar(loader *ld, struct fy_event *e, sp_slice *raw)
{
    const struct fy_mark *a = fy_event_start_mark(e), *b = fy_event_end_mark(e);
    if (!a || !b || a->input_pos > b->input_pos || b->input_pos > ld->text_len)
        return false;
    *raw = sp_slice_make(ld->text + a->input_pos, b->input_pos - a->input_pos);
    return true;
}

/* libfyaml 0.7.12 leaks a buffer in fy_token_get_text() for a single-quoted
 * scalar with a run of escaped quotes ('''' or longer; upstream issue
 * #233). Such scalars are decoded here from the raw input and checked
 * against the length libfyaml computes, a call that does not leak. */
static bool has_quote_run(loader *ld, struct fy_event *e)
{
    sp_slice raw;
    if (fy_token_scalar_style(e->scalar.value) != FYSS_SINGLE_QUOTED)
        return false;
    if (!raw_scalar(ld, e, &raw))
        return true; /* decode_own() reports it */
    for (size_t i = 0; i + 4 <= raw.len; i++)
        if (memcmp(raw.base + i, "''''", 4) == 0)
            return true;
    return false;
}

static char *decode_own(loader *ld, struct fy_event *e, size_t len, const char *key)
{
    sp_slice raw;
    char *out = NULL;
    if (raw_scalar(ld, e, &raw)) {
        out = sp_xmalloc(raw.len + 1);
        size_t n = decode_single_quoted(raw.base, raw.len, out);
        out[n] = '\0';
        if (n == len)
            return out;
    }
    free(out);
    load_fail(ld, key, "cannot read this single-quoted value; write it in double quotes");
    return NULL;
}

/* Text of a scalar event as a new C string, or NULL with the error set.
 * The length is checked before the text is made. */
static char *scalar_text(loader *ld, struct fy_event *e, const char *key)
{
    size_t len = fy_token_get_text_length(e->scalar.value);
    char *text;
    if (len > SP_CONFIG_VALUE_MAX) {
        load_fail(ld, key, "longer than %d bytes", SP_CONFIG_VALUE_MAX);
        return NULL;
    }
    if (has_quote_run(ld, e)) {
        text = decode_own(ld, e, len, key);
    } else {
        const char *t = fy_token_get_text(e->scalar.value, &len);
        len = t ? len : 0;
        text = sp_xstrndup(t ? t : "", len);
    }
    if (text && memchr(text, '\0', len)) {
        load_fail(ld, key, "contains a NUL character");
        free(text);
        return NULL;
    }
    return text;
}

static bool is_null(struct fy_event *e)
{
    return fy_token_scalar_style(e->scalar.value) == FYSS_PLAIN &&
           fy_token_get_text_length(e->scalar.value) == 0;
}

static int on_key(loader *ld, struct fy_event *e)
{
    size_t base = ld->base[ld->depth - 1];
    char *k = scalar_text(ld, e, NULL);
    if (!k)
        return -EINVAL;
    size_t len = strlen(k), need = base + (base > 0) + len;
    int rc = 0;
    if (len == 0)
        rc = load_fail(ld, NULL, "empty key");
    else if (need > SP_CONFIG_KEY_MAX)
        rc = load_fail(ld, NULL, "key longer than %d bytes", SP_CONFIG_KEY_MAX);
    if (rc == 0) {
        snprintf(ld->key + base, sizeof ld->key - base, "%s%s", base > 0 ? "." : "", k);
        ld->have_key = true;
        ld->key_line = ld->line;
    }
    free(k);
    return rc;
}

static int on_value(loader *ld, struct fy_event *e)
{
    if (strcmp(ld->key, "routes") == 0 && ld->depth == 1)
        return load_fail(ld, ld->key,
                         "expected a list of routes (write routes: [] to declare none)");
    if (is_null(e)) {
        if (is_section(ld->key) && strncmp(ld->key, "kafka.", 6) != 0)
            return 0; /* an empty section: "kafka:" with its lines commented out */
        return load_fail(ld, ld->key, "no value given");
    }
    if (strcmp(ld->key, "kafka") == 0 ||
        (is_section(ld->key) && !find_setting(ld->key) && strncmp(ld->key, "kafka.", 6) != 0))
        return load_fail(ld, ld->key, "this is a group of settings, not a setting");
    char *text = scalar_text(ld, e, ld->key);
    if (!text)
        return -EINVAL;
    origin o = {SP_CONFIG_FILE, ld->name, ld->line, ld->key};
    int rc = set_from(ld->cfg, &o, text, ld->err);
    free(text);
    return rc < 0 ? rc : note_seen(ld);
}

static int on_scalar(loader *ld, struct fy_event *e)
{
    if (ld->depth == 0) {
        if (is_null(e))
            return 0; /* "---" and nothing else */
        return load_fail(ld, NULL, "the document must be a mapping of settings (key: value)");
    }
    if (!ld->have_key)
        return on_key(ld, e);
    int rc = on_value(ld, e);
    ld->key[ld->base[ld->depth - 1]] = '\0';
    ld->have_key = false;
    return rc;
}

static int on_mapping_start(loader *ld)
{
    if (ld->depth == 0) {
        ld->base[0] = 0;
        ld->key[0] = '\0';
        ld->depth = 1;
        return 0;
    }
    if (!ld->have_key)
        return load_fail(ld, NULL, "a key must be a single word, not a mapping");
    if (find_setting(ld->key))
        return load_fail(ld, ld->key, "expected a single value, found a mapping");
    if (!is_section(ld->key)) {
        origin o = {SP_CONFIG_FILE, ld->name, ld->line, ld->key};
        return fail_unknown(ld->err, &o);
    }
    if (ld->depth == SP_CONFIG_DEPTH_MAX)
        return load_fail(ld, ld->key, "nested more than %d deep", SP_CONFIG_DEPTH_MAX);
    ld->base[ld->depth++] = strlen(ld->key);
    ld->have_key = false;
    return 0;
}

static void on_mapping_end(loader *ld)
{
    ld->depth--;
    if (ld->depth > 0)
        ld->key[ld->base[ld->depth - 1]] = '\0';
}

/* Sequences and aliases: never right here, say which key wanted a value. */
static int on_unexpected(loader *ld, const char *what)
{
    if (ld->depth == 0)
        return load_fail(ld, NULL, "the document must be a mapping of settings (key: value)");
    if (!ld->have_key)
        return load_fail(ld, NULL, "a key must be a single word, not %s", what);
    if (!find_setting(ld->key) && strncmp(ld->key, "kafka.", 6) != 0) {
        origin o = {SP_CONFIG_FILE, ld->name, ld->line, ld->key};
        return fail_unknown(ld->err, &o);
    }
    return load_fail(ld, ld->key, "expected a single value, found %s", what);
}

/* ---- YAML: routes ----------------------------------------------------------
 *
 * `routes:` is a list of flat mappings. A field's value is checked when it
 * arrives, the entry as a whole (required fields, method against action,
 * duplicates) when its mapping closes; only then is it appended. */

enum { ROUTES_OFF, ROUTES_LIST, ROUTES_ENTRY };

typedef enum route_field {
    F_METHOD,
    F_PATH,
    F_TOPIC,
    F_ACTION,
    F_LIMIT,
    F_SCHEMA,
    F_SCHEMA_FILE,
    F_COUNT
} route_field;

static const char *const route_field_names[F_COUNT] = {
    "method", "path", "topic", "action", "limit", "schema", "schema_file",
};

#define ROUTE_FIELD_LIST "method, path, topic, action, limit, schema, schema_file"
#define REQUIRED_FIELDS  ((1u << F_METHOD) | (1u << F_PATH) | (1u << F_TOPIC) | (1u << F_ACTION))

/* "routes[2]" or "routes[2].path": the index is that of the entry read. */
static const char *route_key(loader *ld, int f, char out[48])
{
    size_t i = ld->cfg->routes_len;
    if (f < 0)
        snprintf(out, 48, "routes[%zu]", i);
    else
        snprintf(out, 48, "routes[%zu].%s", i, route_field_names[f]);
    return out;
}

/* The topic name rule, kept in step with sp_store_topic_name_valid()
 * (src/store/topic.c; core cannot call up into the store): 1 to 249 of
 * [A-Za-z0-9._-], not "." or "..". The API checks again with the store's
 * own function when it creates the topic. */
static bool topic_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 249 || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
        return false;
    return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
}

/* Why a declared path is not acceptable, or NULL: "/" then segments of
 * [A-Za-z0-9._~-] (no parameters, no query), at most 16 of them (the
 * router's limit), none "." or ".."; "/v1" and "/debug" are spate's. */
static const char *path_problem(const char *p)
{
    static const char seg_chars[] =
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._~-";
    size_t len = strlen(p), segs = 0;
    if (p[0] != '/')
        return "does not start with '/'";
    if (len > SP_CONFIG_ROUTE_PATH_MAX)
        return "is longer than 256 bytes";
    for (const char *s = p + 1; *s; segs++) {
        size_t n = strspn(s, seg_chars);
        if (n == 0 || (s[n] != '/' && s[n] != '\0'))
            return "must be literal segments of letters, digits and ._~- between single '/'";
        if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
            return "has a '.' or '..' segment";
        s += n + (s[n] == '/');
        if (s[-1] == '/' && *s == '\0')
            return "ends in '/'";
    }
    if (segs > 16)
        return "has more than 16 segments";
    if (strncmp(p, "/v1", 3) == 0 && (p[3] == '\0' || p[3] == '/'))
        return "is under /v1, which is reserved for spate's own API";
    if (strncmp(p, "/debug", 6) == 0 && (p[6] == '\0' || p[6] == '/'))
        return "is under /debug, which is reserved for spate's own routes";
    return NULL;
}

/* Checks a schema: "builtin:item", or JSON Schema text of an object (the
 * schema compiler reads it at start-up). */
static const char *schema_problem(const char *s)
{
    if (strncmp(s, "builtin:", 8) == 0)
        return strcmp(s, "builtin:item") == 0 ? NULL : "the only builtin schema is builtin:item";
    s += strspn(s, " \t\r\n");
    return *s == '{' ? NULL
                     : "must be JSON Schema text of an object ('{...}'), builtin:item, or use "
                       "schema_file";
}

static int route_text_field(loader *ld, route_field f, const char *text, const char **slot)
{
    char key[48], shown[72];
    const char *why = NULL;
    route_key(ld, f, key);
    if (text[0] == '\0')
        return load_fail(ld, key, "the value must not be empty");
    if (!utf8_valid(text))
        return load_fail(ld, key, "the value is not valid UTF-8");
    if (f == F_PATH && (why = path_problem(text)) != NULL)
        return load_fail(ld, key, "'%s' %s", show(text, shown), why);
    if (f == F_TOPIC && !topic_name_ok(text))
        return load_fail(ld, key,
                         "'%s' is not a topic name (1 to 249 letters, digits, '.', '_' or '-')",
                         show(text, shown));
    if (f == F_SCHEMA && (why = schema_problem(text)) != NULL)
        return load_fail(ld, key, "%s", why);
    if (f == F_SCHEMA_FILE && strlen(text) > 4096)
        return load_fail(ld, key, "longer than 4096 bytes");
    *slot = sp_xstrdup(text);
    return 0;
}

static int route_word_field(loader *ld, route_field f, const char *text)
{
    static const char *const methods[] = {"GET", "POST", "PUT"};
    char key[48], shown[72];
    if (f == F_METHOD) {
        for (size_t i = 0; i < SP_ARRAY_LEN(methods); i++)
            if (strcasecmp(text, methods[i]) == 0) {
                ld->route.method = methods[i];
                return 0;
            }
        return load_fail(ld, route_key(ld, f, key), "'%s' is not one of GET, POST, PUT",
                         show(text, shown));
    }
    if (f == F_ACTION) {
        if (strcasecmp(text, "latest") == 0 || strcasecmp(text, "produce") == 0) {
            ld->route.action = strcasecmp(text, "latest") == 0 ? SP_CONFIG_ACTION_LATEST
                                                               : SP_CONFIG_ACTION_PRODUCE;
            return 0;
        }
        return load_fail(ld, route_key(ld, f, key), "'%s' is not one of latest, produce",
                         show(text, shown));
    }
    int64_t v;
    if (parse_int(text, &v) < 0 || v < 1 || v > SP_CONFIG_ROUTE_LIMIT_MAX)
        return load_fail(ld, route_key(ld, f, key), "'%s' is not a whole number from 1 to %d",
                         show(text, shown), SP_CONFIG_ROUTE_LIMIT_MAX);
    ld->route.limit = v;
    return 0;
}

static int route_value(loader *ld, struct fy_event *e)
{
    char key[48];
    route_field f = (route_field)ld->route_field;
    ld->line = ld->field_line;
    if (is_null(e))
        return load_fail(ld, route_key(ld, f, key), "no value given");
    char *text = scalar_text(ld, e, route_key(ld, f, key));
    if (!text)
        return -EINVAL;
    const char **slot = f == F_PATH          ? &ld->route.path
                        : f == F_TOPIC       ? &ld->route.topic
                        : f == F_SCHEMA      ? &ld->route.schema
                        : f == F_SCHEMA_FILE ? &ld->route.schema_file
                                             : NULL;
    int rc = slot ? route_text_field(ld, f, text, slot) : route_word_field(ld, f, text);
    free(text);
    ld->route_given |= rc == 0 ? 1u << f : 0;
    ld->route_field = -1;
    return rc;
}

static int route_name(loader *ld, struct fy_event *e)
{
    char key[48], shown[72];
    char *name = scalar_text(ld, e, route_key(ld, -1, key));
    if (!name)
        return -EINVAL;
    int f = 0;
    while (f < F_COUNT && strcmp(name, route_field_names[f]) != 0)
        f++;
    int rc = 0;
    if (f == F_COUNT)
        rc = load_fail(ld, route_key(ld, -1, key), "unknown field '%s' (the fields are %s)",
                       show(name, shown), ROUTE_FIELD_LIST);
    else if (ld->route_given & (1u << f))
        rc = load_fail(ld, route_key(ld, f, key), "given twice");
    free(name);
    ld->route_field = rc == 0 ? f : -1;
    ld->field_line = ld->line;
    return rc;
}

/* The first route declared before this one with the same method and
 * path, or -1. */
static long route_duplicate(const loader *ld)
{
    for (size_t i = 0; i < ld->cfg->routes_len; i++) {
        const sp_config_route *r = &ld->cfg->routes[i];
        if (strcmp(r->method, ld->route.method) == 0 && strcmp(r->path, ld->route.path) == 0)
            return (long)i;
    }
    return -1;
}

static int route_check(loader *ld)
{
    char key[48];
    sp_config_route *r = &ld->route;
    bool latest = r->action == SP_CONFIG_ACTION_LATEST;
    ld->line = ld->route_line;
    for (int f = 0; f < F_COUNT; f++)
        if ((REQUIRED_FIELDS & (1u << f)) && !(ld->route_given & (1u << f)))
            return load_fail(ld, route_key(ld, -1, key), "missing field '%s'",
                             route_field_names[f]);
    if (latest != (strcmp(r->method, "GET") == 0))
        return load_fail(ld, route_key(ld, F_METHOD, key), "action %s takes %s, not %s",
                         latest ? "latest" : "produce", latest ? "GET" : "POST or PUT", r->method);
    if (!latest && (ld->route_given & (1u << F_LIMIT)))
        return load_fail(ld, route_key(ld, F_LIMIT, key), "only a latest route has a limit");
    if (r->schema && r->schema_file)
        return load_fail(ld, route_key(ld, -1, key), "give schema or schema_file, not both");
    long dup = route_duplicate(ld);
    if (dup >= 0)
        return load_fail(ld, route_key(ld, -1, key),
                         "%s %s is already declared by routes[%ld] (line %d)", r->method, r->path,
                         dup, ld->cfg->routes[dup].line);
    if (latest && r->limit == 0)
        r->limit = 10;
    return 0;
}

static int route_end(loader *ld)
{
    int rc = route_check(ld);
    if (rc < 0)
        return rc;
    sp_config *cfg = ld->cfg;
    cfg->routes = sp_xrealloc(cfg->routes, (cfg->routes_len + 1) * sizeof *cfg->routes);
    ld->route.line = ld->route_line;
    cfg->routes[cfg->routes_len++] = ld->route;
    memset(&ld->route, 0, sizeof ld->route);
    ld->routes_state = ROUTES_LIST;
    return 0;
}

static int route_begin(loader *ld)
{
    char key[48];
    if (ld->cfg->routes_len == SP_CONFIG_ROUTES_MAX)
        return load_fail(ld, route_key(ld, -1, key), "more than %d routes", SP_CONFIG_ROUTES_MAX);
    memset(&ld->route, 0, sizeof ld->route);
    ld->route_given = 0;
    ld->route_field = -1;
    ld->route_line = ld->line;
    ld->routes_state = ROUTES_ENTRY;
    return 0;
}

/* `routes:` opens: what the file declares replaces any earlier routes. */
static int routes_begin(loader *ld)
{
    int rc = note_seen(ld);
    if (rc < 0)
        return rc;
    sp_config *cfg = ld->cfg;
    for (size_t i = 0; i < cfg->routes_len; i++)
        route_clear(&cfg->routes[i]);
    free(cfg->routes);
    cfg->routes = NULL;
    cfg->routes_len = 0;
    cfg->routes_declared = true;
    ld->routes_state = ROUTES_LIST;
    return 0;
}

static void routes_end(loader *ld)
{
    ld->routes_state = ROUTES_OFF;
    ld->key[0] = '\0';
    ld->have_key = false;
}

/* A list, a mapping or an alias where a route or a field value belongs. */
static int route_misplaced(loader *ld, const char *what)
{
    char key[48];
    if (ld->routes_state == ROUTES_LIST)
        return load_fail(ld, route_key(ld, -1, key), "a route is a mapping of fields (%s), not %s",
                         ROUTE_FIELD_LIST, what);
    if (ld->route_field < 0)
        return load_fail(ld, route_key(ld, -1, key), "a field name must be a single word, not %s",
                         what);
    ld->line = ld->field_line;
    return load_fail(ld, route_key(ld, ld->route_field, key), "expected a single value, found %s%s",
                     what,
                     ld->route_field == F_SCHEMA
                         ? " (write the JSON Schema as a quoted string, or use schema_file)"
                         : "");
}

static int on_route_event(loader *ld, struct fy_event *e)
{
    bool entry = ld->routes_state == ROUTES_ENTRY;
    switch (e->type) {
    case FYET_SEQUENCE_END: routes_end(ld); return 0;
    case FYET_MAPPING_START: return entry ? route_misplaced(ld, "a mapping") : route_begin(ld);
    case FYET_MAPPING_END: return route_end(ld);
    case FYET_SCALAR:
        if (!entry)
            return route_misplaced(ld, "a single value");
        return ld->route_field < 0 ? route_name(ld, e) : route_value(ld, e);
    case FYET_SEQUENCE_START: return route_misplaced(ld, "a list");
    case FYET_ALIAS: return route_misplaced(ld, "an alias (write the value itself)");
    default: return 0;
    }
}

static int on_event(loader *ld, struct fy_event *e)
{
    const struct fy_mark *m = fy_event_start_mark(e);
    if (m && m->line >= 0)
        ld->line = m->line + 1;
    if (ld->routes_state != ROUTES_OFF)
        return on_route_event(ld, e);
    if (ld->have_key) /* a message about a value points at its key */
        ld->line = ld->key_line;
    if (e->type == FYET_SEQUENCE_START && ld->have_key && ld->depth == 1 &&
        strcmp(ld->key, "routes") == 0)
        return routes_begin(ld);
    switch (e->type) {
    case FYET_DOCUMENT_START:
        if (++ld->docs > 1)
            return load_fail(ld, NULL, "only one YAML document is allowed");
        return 0;
    case FYET_MAPPING_START: return on_mapping_start(ld);
    case FYET_MAPPING_END: on_mapping_end(ld); return 0;
    case FYET_SCALAR: return on_scalar(ld, e);
    case FYET_SEQUENCE_START: return on_unexpected(ld, "a list");
    case FYET_ALIAS: return on_unexpected(ld, "an alias (write the value itself)");
    default: return 0;
    }
}

static void diag_discard(struct fy_diag *diag, void *user, const char *buf, size_t len)
{
    (void)diag, (void)user, (void)buf, (void)len;
}

/* The first error libfyaml collected, as "NAME:LINE: invalid YAML: ...". */
static int yaml_fail(loader *ld, struct fy_diag *diag)
{
    void *iter = NULL;
    struct fy_diag_error *de = fy_diag_errors_iterate(diag, &iter);
    if (de && de->line > 0)
        ld->line = de->line;
    return load_fail(ld, NULL, "invalid YAML: %s", de && de->msg ? de->msg : "syntax error");
}

/* YAML's printable set: tab, LF, CR, 0x20-0x7e, NEL and the rest of
 * Unicode past the C1 controls, less surrogates and U+FFFE/U+FFFF. */
static bool yaml_printable(uint32_t c)
{
    return c == 0x09 || c == 0x0a || c == 0x0d || (c >= 0x20 && c <= 0x7e) || c == 0x85 ||
           (c >= 0xa0 && c <= 0xfffd) || c >= 0x10000;
}

/* Checks that text is YAML text (UTF-8, printable) before libfyaml sees
 * it: the text is then always well-formed for the parser, and Debian's
 * libfyaml 0.7.12 loops forever on some invalid UTF-8 ("%\x86", upstream
 * issue #101). Returns 0 or -EINVAL naming the line. */
static int check_text(loader *ld, const char *text, size_t len)
{
    uint32_t c = 0;
    ld->line = 1;
    for (size_t i = 0, n; i < len; i += n) {
        n = utf8_next((const unsigned char *)text + i, len - i, &c);
        if (n == 0)
            return load_fail(ld, NULL, "not UTF-8 text (byte 0x%02x)", (unsigned char)text[i]);
        if (!yaml_printable(c))
            return load_fail(ld, NULL, "character U+%04X is not allowed in YAML", (unsigned)c);
        ld->line += c == '\n';
    }
    return 0;
}

/* Runs the parser over text, feeding ld. Returns 0 or -EINVAL/-ENOMEM. */
static int walk_yaml(loader *ld, const char *text, size_t len)
{
    struct fy_diag_cfg dcfg;
    fy_diag_cfg_default(&dcfg);
    dcfg.fp = NULL;
    dcfg.output_fn = diag_discard;
    dcfg.colorize = false;
    struct fy_diag *diag = fy_diag_create(&dcfg);
    if (!diag)
        return -ENOMEM;
    fy_diag_set_collect_errors(diag, true);
    struct fy_parse_cfg pcfg = {.flags = FYPCF_QUIET | FYPCF_JSON_NONE, .diag = diag};
    struct fy_parser *fyp = fy_parser_create(&pcfg);
    int rc = fyp && fy_parser_set_string(fyp, text, len) == 0 ? 0 : -ENOMEM;
    struct fy_event *e;
    while (rc == 0 && (e = fy_parser_parse(fyp)) != NULL) {
        rc = on_event(ld, e);
        fy_parser_event_free(fyp, e);
    }
    if (rc == 0 && fy_parser_get_stream_error(fyp))
        rc = yaml_fail(ld, diag);
    if (rc == -ENOMEM)
        load_fail(ld, NULL, "out of memory in the YAML parser");
    if (fyp)
        fy_parser_destroy(fyp);
    fy_diag_destroy(diag);
    return rc;
}

/* Fills err with "PATH: reason" for a file that could not be read. */
static int read_fail(const char *path, int rc, sp_config_error *err)
{
    if (err) {
        if (rc == -EFBIG)
            snprintf(err->msg, sizeof err->msg, "%s: larger than the limit of %d bytes (1MiB)",
                     path, SP_CONFIG_FILE_MAX);
        else
            snprintf(err->msg, sizeof err->msg, "%s: %s", path, strerror(-rc));
    }
    return rc;
}

int sp_config_load_string(sp_config *cfg, const char *name, const char *text, size_t len,
                          sp_config_error *err)
{
    sp_config next;
    loader ld = {.cfg = &next,
                 .name = name ? name : "config",
                 .text = text,
                 .text_len = len,
                 .err = err,
                 .line = 1};
    if (len > SP_CONFIG_FILE_MAX)
        return read_fail(ld.name, -EFBIG, err);
    if (len == 0)
        return 0;
    if (check_text(&ld, text, len) < 0)
        return -EINVAL;
    config_copy(&next, cfg);
    int rc = walk_yaml(&ld, text, len);
    route_clear(&ld.route); /* an entry left half read by an error */
    for (size_t i = 0; i < ld.seen_len; i++)
        free(ld.seen[i].key);
    free(ld.seen);
    if (rc < 0) {
        sp_config_free(&next);
        return rc;
    }
    config_swap_in(cfg, &next);
    return 0;
}

/* ---- files ---------------------------------------------------------------- */

/* Reads at most SP_CONFIG_FILE_MAX bytes of fd into b; -EFBIG past that. */
static int read_all(int fd, sp_buf *b)
{
    char chunk[16384];
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return 0;
        if (sp_buf_append(b, chunk, (size_t)n) < 0)
            return -EFBIG;
    }
}

int sp_config_load_file(sp_config *cfg, const char *path, sp_config_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return read_fail(path, -errno, err);
    struct stat st;
    int rc = fstat(fd, &st) < 0 ? -errno : 0;
    if (rc == 0 && S_ISDIR(st.st_mode))
        rc = -EISDIR;
    if (rc == 0 && st.st_size > SP_CONFIG_FILE_MAX) /* before reading any of it */
        rc = -EFBIG;
    sp_buf b;
    sp_buf_init(&b, SP_CONFIG_FILE_MAX);
    if (rc == 0)
        rc = read_all(fd, &b);
    close(fd);
    if (rc == 0)
        rc = sp_config_load_string(cfg, path, b.base, b.len, err);
    else
        read_fail(path, rc, err);
    sp_buf_free(&b);
    return rc;
}
