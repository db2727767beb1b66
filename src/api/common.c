/* common.c - small helpers every endpoint uses. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "api/api_int.h"
#include "core/alloc.h"

void sp__api_errorf(sp_http_req *req, int status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    sp_http_respond_error(req, status, msg);
}

int sp__api_append_error(int err, const char *detail, char *out, size_t cap)
{
    int status = 500;
    const char *msg = "Append failed";
    switch (err) {
    case -EAGAIN: status = 503, msg = "Backend queue is full, retry later"; break;
    case -ESHUTDOWN: status = 503, msg = "Server is shutting down"; break;
    case -ENOTCONN: status = 503, msg = "The log is unreachable"; break;
    case -ETIMEDOUT: status = 504, msg = "The log did not acknowledge the append in time"; break;
    case -ENOENT: status = 404, msg = "Topic not found"; break;
    case -EMSGSIZE: status = 413, msg = "A record is larger than store.max_record_bytes"; break;
    case -ENOSPC: status = 507, msg = "No space left on the log's disk"; break;
    case -EUCLEAN: msg = "Partition is fenced after detected corruption; see the server log"; break;
    case -EINVAL: status = 422, msg = "Invalid partition or empty batch"; break;
    default: detail = detail && *detail ? detail : strerror(-err); break;
    }
    if (detail && *detail)
        snprintf(out, cap, "%s: %s", msg, detail);
    else
        snprintf(out, cap, "%s", msg);
    return status;
}

bool sp__api_topic_param(sp_http_req *req, sp_api *api, char out[SP_API_TOPIC_MAX + 1],
                         bool must_exist)
{
    sp_slice t = sp_http_req_param(req, "t");
    if (t.len == 0 || t.len > SP_API_TOPIC_MAX) {
        sp_http_respond_error(req, 400, "Topic names are 1 to 249 characters of [A-Za-z0-9._-]");
        return false;
    }
    memcpy(out, t.base, t.len);
    out[t.len] = '\0';
    if (!sp_store_topic_name_valid(out)) {
        sp_http_respond_error(
            req, 400, "Topic names are 1 to 249 characters of [A-Za-z0-9._-], not '.' or '..'");
        return false;
    }
    if (must_exist && !sp_hub_topic_exists(api->hub, out)) {
        sp__api_errorf(req, 404, "Topic '%s' not found", out);
        return false;
    }
    return true;
}

bool sp__api_query_u64(sp_http_req *req, const char *name, uint64_t def, uint64_t min, uint64_t max,
                       uint64_t *out)
{
    sp_slice v;
    if (!sp_http_req_query_param(req, name, &v)) {
        *out = def;
        return true;
    }
    unsigned long long n;
    if (sp_slice_to_u64(v, max, &n) != 0 || n < min) {
        sp__api_errorf(req, 422, "Query parameter '%s' must be a whole number from %llu to %llu",
                       name, (unsigned long long)min, (unsigned long long)max);
        return false;
    }
    *out = n;
    return true;
}

static int hexdig(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

long sp__api_unescape(sp_slice in, char *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < in.len; i++) {
        char c = in.base[i];
        if (c == '%') {
            if (i + 2 >= in.len) /* needs two hex digits after it */
                return -1;
            int hi = hexdig(in.base[i + 1]), lo = hexdig(in.base[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            c = (char)(hi << 4 | lo);
            i += 2;
        } else if (c == '+') {
            c = ' ';
        }
        if (n == cap)
            return -1;
        out[n++] = c;
    }
    return (long)n;
}

static bool sub_from(sp_http_req *req, sp_hub_sub_options *o, sp_hub_pos **pos, const char *what)
{
    sp_slice v;
    uint64_t ms;
    if (sp_http_req_query_param(req, "from_time", &v)) {
        if (!sp__api_query_u64(req, "from_time", 0, 0, 1ull << 52, &ms))
            return false;
        o->start = (sp_hub_start){.kind = SP_HUB_FROM_TIME, .time_ms = (int64_t)ms};
        return true;
    }
    if (!sp_http_req_query_param(req, "from", &v))
        return true;
    char *text = sp_xmalloc(v.len + 1);
    long n = sp__api_unescape(v, text, v.len);
    bool ok = n > 0 && sp_hub_start_parse(sp_slice_make(text, (size_t)n), &o->start, pos) == 0;
    free(text);
    if (!ok)
        sp__api_errorf(req, 422,
                       "Query parameter 'from' must be 'earliest', 'latest', an offset, "
                       "'time:<ms>' or %s ('<partition>-<offset>')",
                       what);
    return ok;
}

bool sp__api_sub_query(sp_http_req *req, sp_hub_sub_options *o, sp_hub_pos **pos, const char *what)
{
    sp_slice v;
    uint64_t partition;
    *o = (sp_hub_sub_options){.partition = SP_STORE_PARTITION_ANY};
    if (sp_http_req_query_param(req, "partition", &v)) {
        if (!sp__api_query_u64(req, "partition", 0, 0, 1023, &partition))
            return false;
        o->partition = (int32_t)partition;
    }
    if (sp_http_req_query_param(req, "policy", &v)) {
        if (sp_slice_eq_cstr(v, "skip")) {
            o->policy = SP_HUB_POLICY_SKIP;
        } else if (!sp_slice_eq_cstr(v, "disconnect")) {
            sp_http_respond_error(req, 422,
                                  "Query parameter 'policy' must be 'disconnect' or 'skip'");
            return false;
        }
    }
    return sub_from(req, o, pos, what);
}
