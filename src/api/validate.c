/* validate.c - from a produce request's body to checked records.
 *
 * Content-Type picks the framing: application/json (or any +json type, or
 * none) is one JSON value, and a top-level array is a batch; NDJSON
 * (application/x-ndjson) is one record per non-blank line. Parsing is
 * strict (schema.h). Each record is stored exactly as its bytes arrived:
 * the raw span of the value, array element or line, never a re-encoding,
 * so a consumer reads back what the producer sent. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "api/schema.h"
#include "core/alloc.h"
#include "core/json.h"

#define MAX_ERROR_BYTES (64 * 1024)
#define MAX_ERRORS      100

/* ---- the hub's schema compiler ------------------------------------------- */

static void *schema_compile(const char *text, size_t len, char *err, size_t errlen)
{
    json_t *doc = NULL;
    sp_json_error jerr;
    if (sp_json_parse_strict(text, len, NULL, &doc, &jerr) != 0) {
        snprintf(err, errlen, "schema is not valid JSON: %s at character %zu", jerr.reason,
                 jerr.position);
        return NULL;
    }
    sp_schema *s = NULL;
    int rc = sp_schema_compile(doc, &s, err, errlen);
    json_decref(doc);
    return rc == 0 ? s : NULL;
}

static void schema_free(void *s)
{
    sp_schema_free(s);
}

const sp_hub_schema_ops sp_api_schema_ops = {schema_compile, schema_free};

/* ---- framing --------------------------------------------------------------- */

enum framing { F_JSON, F_NDJSON, F_UNSUPPORTED };

static enum framing framing_of(sp_slice ct)
{
    if (ct.base == NULL)
        return F_JSON;
    size_t n = 0;
    while (n < ct.len && ct.base[n] != ';' && ct.base[n] != ' ')
        n++;
    sp_slice mt = sp_slice_make(ct.base, n);
    if (sp_slice_case_eq(mt, SP_SLICE_LIT("application/json")))
        return F_JSON;
    if (sp_slice_case_eq(mt, SP_SLICE_LIT("application/x-ndjson")) ||
        sp_slice_case_eq(mt, SP_SLICE_LIT("application/ndjson")) ||
        sp_slice_case_eq(mt, SP_SLICE_LIT("application/jsonl")))
        return F_NDJSON;
    if (n > 5 && strncasecmp(mt.base + n - 5, "+json", 5) == 0)
        return F_JSON;
    return F_UNSUPPORTED;
}

static void respond_json_error(sp_http_req *req, int rc, const sp_json_error *err)
{
    if (rc == -EMSGSIZE) {
        sp__api_errorf(req, 413, "Body too large: %s", err->reason);
        return;
    }
    sp_buf *b = sp_http_req_scratch(req);
    sp_buf_append_cstr(b, "{\"detail\":[");
    sp_json_error_render(b, err);
    sp_buf_append_cstr(b, "]}");
    sp_http_respond_json(req, 422, sp_buf_slice(b));
}

static sp_slice trim(sp_slice s)
{
    while (s.len &&
           (s.base[0] == ' ' || s.base[0] == '\t' || s.base[0] == '\r' || s.base[0] == '\n')) {
        s.base++;
        s.len--;
    }
    while (s.len && (s.base[s.len - 1] == ' ' || s.base[s.len - 1] == '\t' ||
                     s.base[s.len - 1] == '\r' || s.base[s.len - 1] == '\n'))
        s.len--;
    return s;
}

/* Room for n records; docs only with a tree (root). */
static void batch_alloc(sp__api_batch *out, json_t *root, size_t n)
{
    out->root = root;
    out->n = n;
    if (n <= 1) {
        out->raw = &out->raw1;
        out->doc = root ? &out->doc1 : NULL;
        return;
    }
    out->raw = sp_xcalloc(n, sizeof *out->raw);
    out->doc = root ? sp_xcalloc(n, sizeof *out->doc) : NULL;
}

/* Without docs: the records' spans when every one passes the plain check,
 * so no tree is built; false leaves `out` empty for the full parse. */
static bool split_plain_json(sp_api *api, sp_slice body, bool single, sp__api_batch *out)
{
    unsigned depth = api->opts.max_json_depth;
    sp_slice t = trim(body);
    if (single || !t.len || t.base[0] != '[') {
        if (!sp_json_valid_plain(body, depth))
            return false;
        batch_alloc(out, NULL, 1);
        out->raw[0] = t;
        return true;
    }
    /* an array: each element is a record (a batch); checked while split */
    size_t max = api->opts.max_batch_records;
    sp_slice small[64], *raw = small;
    long n = sp_json_split_array_plain(body, depth, small, max < 64 ? max : 64);
    if (n == -2 && max > 64) { /* a big batch: room for the most there may be */
        raw = sp_xcalloc(max, sizeof *raw);
        n = sp_json_split_array_plain(body, depth, raw, max);
    }
    if (n > 0) { /* else empty, or too many records: the full path answers */
        batch_alloc(out, NULL, (size_t)n);
        memcpy(out->raw, raw, (size_t)n * sizeof *raw);
        out->is_batch = true;
    }
    if (raw != small)
        free(raw);
    return n > 0;
}

static bool parse_json(sp_http_req *req, sp_api *api, sp_slice body, bool single, bool need_docs,
                       sp__api_batch *out)
{
    if (!need_docs && split_plain_json(api, body, single, out))
        return true;
    sp_json_limits lim = {body.len + 1, api->opts.max_json_depth, api->opts.max_batch_records};
    json_t *root;
    sp_json_error err;
    int rc = sp_json_parse_strict(body.base, body.len, &lim, &root, &err);
    if (rc != 0) {
        respond_json_error(req, rc, &err);
        return false;
    }
    if (single || !json_is_array(root)) {
        batch_alloc(out, root, 1);
        out->raw[0] = trim(body);
        out->doc[0] = root;
        return true;
    }
    size_t n = json_array_size(root);
    if (n == 0 || n > api->opts.max_batch_records) {
        json_decref(root);
        sp__api_errorf(req, n ? 413 : 422,
                       n ? "A batch holds at most %zu records"
                         : "A batch must hold at least one record",
                       api->opts.max_batch_records);
        return false;
    }
    batch_alloc(out, root, n);
    out->is_batch = true;
    long got = sp_json_split_array(body, (unsigned)api->opts.max_json_depth + 1, out->raw, n);
    for (size_t i = 0; i < n; i++)
        out->doc[i] = json_array_get(root, i);
    if (got != (long)n) { /* cannot happen after a strict parse; refuse rather than guess */
        sp__api_batch_free(out);
        sp_http_respond_error(req, 500, "Internal error splitting the batch");
        return false;
    }
    return true;
}

static bool blank(sp_slice s)
{
    return trim(s).len == 0;
}

/* Without docs: every non-blank line passes the plain check and there are
 * 1..max_batch_records of them; false: the full parse decides. */
static bool split_plain_ndjson(sp_api *api, sp_slice body, sp__api_batch *out)
{
    unsigned depth = (unsigned)api->opts.max_json_depth;
    sp_slice rest = body, line;
    size_t n = 0;
    while (sp_json_next_line(&rest, &line))
        if (!blank(line)) {
            if (++n > api->opts.max_batch_records || !sp_json_valid_plain(line, depth))
                return false;
        }
    if (n == 0)
        return false;
    batch_alloc(out, NULL, n);
    out->is_batch = true;
    rest = body;
    size_t i = 0;
    while (i < n && sp_json_next_line(&rest, &line))
        if (!blank(line))
            out->raw[i++] = trim(line);
    return true;
}

static bool parse_ndjson(sp_http_req *req, sp_api *api, sp_slice body, bool need_docs,
                         sp__api_batch *out)
{
    if (!need_docs && split_plain_ndjson(api, body, out))
        return true;
    sp_json_limits lim = {body.len + 1, api->opts.max_json_depth, api->opts.max_batch_records};
    json_t *root;
    sp_json_error err;
    int rc = sp_json_parse_ndjson(body.base, body.len, &lim, &root, &err);
    if (rc != 0) {
        respond_json_error(req, rc, &err);
        return false;
    }
    size_t n = json_array_size(root);
    if (n == 0) {
        json_decref(root);
        sp_http_respond_error(req, 422, "An NDJSON body must hold at least one record");
        return false;
    }
    batch_alloc(out, root, n);
    out->is_batch = true;
    sp_slice rest = body, line;
    size_t i = 0;
    while (i < n && sp_json_next_line(&rest, &line))
        if (!blank(line)) {
            out->raw[i] = trim(line);
            out->doc[i] = json_array_get(root, i);
            i++;
        }
    if (i != n) { /* cannot happen after a strict parse; refuse rather than store empty records */
        sp__api_batch_free(out);
        sp_http_respond_error(req, 500, "Internal error splitting the NDJSON body");
        return false;
    }
    return true;
}

bool sp__api_parse_records(sp_http_req *req, sp_api *api, bool single, bool need_docs,
                           sp__api_batch *out)
{
    memset(out, 0, sizeof *out);
    enum framing f = framing_of(sp_http_req_header(req, SP_SLICE_LIT("content-type")));
    if (single && f == F_NDJSON) {
        sp_http_respond_error(req, 415,
                              "Unsupported Content-Type: this route takes one JSON value "
                              "(application/json)");
        return false;
    }
    if (f == F_UNSUPPORTED) {
        sp_http_respond_error(req, 415,
                              "Unsupported Content-Type: send application/json "
                              "(a value or an array of values) or application/x-ndjson");
        return false;
    }
    sp_slice body = sp_http_req_body(req);
    if (body.len == 0) {
        sp_http_respond_json(req, 422,
                             SP_SLICE_LIT("{\"detail\":[{\"type\":\"missing\",\"loc\":[\"body\"],"
                                          "\"msg\":\"Field required\",\"input\":null}]}"));
        return false;
    }
    return f == F_JSON ? parse_json(req, api, body, single, need_docs, out)
                       : parse_ndjson(req, api, body, need_docs, out);
}

void sp__api_batch_free(sp__api_batch *b)
{
    json_decref(b->root);
    if (b->raw != &b->raw1)
        free(b->raw);
    if (b->doc != &b->doc1)
        free(b->doc); /* NULL without docs */
    memset(b, 0, sizeof *b);
}

/* Appends every record's violations to errs (at most MAX_ERRORS in all);
 * returns how many were found. */
static int collect_errors(const sp_hub_schema *schema, const sp__api_batch *b, sp_buf *errs)
{
    int total = 0;
    char loc[48];
    for (size_t i = 0; i < b->n && total < MAX_ERRORS; i++) {
        if (b->is_batch)
            snprintf(loc, sizeof loc, "\"body\",%zu", i);
        else
            snprintf(loc, sizeof loc, "\"body\"");
        total += sp_schema_validate_at(schema->compiled, b->doc[i], loc, errs,
                                       (size_t)(MAX_ERRORS - total));
    }
    return total;
}

bool sp__api_validate(sp_http_req *req, sp_api *api, const sp_hub_schema *schema,
                      const sp__api_batch *b)
{
    (void)api;
    if (!schema)
        return true;
    /* The common case first: valid records, checked without rendering
     * (max_errors 0 stops at the first violation and writes nothing). */
    bool valid = true;
    for (size_t i = 0; i < b->n && valid; i++)
        valid = sp_schema_validate_at(schema->compiled, b->doc[i], "\"body\"", NULL, 0) == 0;
    if (valid)
        return true;
    sp_buf *out = sp_http_req_scratch(req);
    sp_buf_reset(out);
    sp_buf errs;
    sp_buf_init(&errs, MAX_ERROR_BYTES);
    sp_buf_append_cstr(&errs, "{\"detail\":[");
    int total = collect_errors(schema, b, &errs);
    if (total > 0) {
        errs.limit += 2; /* entries that did not fit were dropped whole; the close always fits */
        sp_buf_append_cstr(&errs, "]}");
        sp_http_respond_json(req, 422, sp_buf_slice(&errs));
    }
    sp_buf_free(&errs);
    return total == 0;
}
