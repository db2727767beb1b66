/* router.c - method + path pattern -> handler, with "{name}" parameters.
 *
 * The table is small (tens of routes) and read-only once serving starts, so
 * a linear scan over pre-split patterns is both simplest and fast: a match
 * costs one pass over the path per candidate with no allocation. */
#include <errno.h>
#include <stdlib.h>

#include "core/alloc.h"
#include "http/http_int.h"

#define MAX_SEGS 16

static const char *const method_names[SP_HTTP_METHOD_COUNT] = {
    "OTHER", "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS",
};

const char *sp__http_method_str(sp_http_method m)
{
    return (unsigned)m < SP_HTTP_METHOD_COUNT ? method_names[m] : "OTHER";
}

sp_router *sp_router_new(void)
{
    return sp_xcalloc(1, sizeof(sp_router));
}

void sp_router_free(sp_router *r)
{
    if (!r)
        return;
    for (unsigned i = 0; i < r->n; i++)
        free(r->routes[i].pattern);
    free(r);
}

/* Splits "/a/{b}/c" into segments; returns the count or -1. */
static int split_pattern(char *pat, sp_slice *segs, bool *is_param)
{
    if (pat[0] != '/')
        return -1;
    if (pat[1] == '\0')
        return 0;
    int n = 0;
    char *p = pat + 1;
    while (*p) {
        if (n == MAX_SEGS)
            return -1;
        char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (len == 0)
            return -1;
        bool param = p[0] == '{' && p[len - 1] == '}';
        if (param && len < 3)
            return -1;
        segs[n] = param ? sp_slice_make(p + 1, len - 2) : sp_slice_make(p, len);
        is_param[n] = param;
        n++;
        p += len;
        if (*p == '/')
            p++;
        else
            break;
    }
    return n;
}

int sp_router_add(sp_router *r, sp_http_method method, const char *pattern, sp_http_handler_fn fn,
                  void *udata)
{
    return sp_router_add_flags(r, method, pattern, fn, udata, 0);
}

int sp_router_add_flags(sp_router *r, sp_http_method method, const char *pattern,
                        sp_http_handler_fn fn, void *udata, unsigned flags)
{
    if (r->n + 1 >= SP_HTTP_MAX_ROUTES)
        return -ENOSPC;
    for (unsigned i = 0; i < r->n; i++)
        if (r->routes[i].method == method && strcmp(r->routes[i].pattern, pattern) == 0)
            return -EEXIST;
    sp__route *rt = &r->routes[r->n];
    memset(rt, 0, sizeof *rt);
    rt->pattern = sp_xstrdup(pattern);
    int n = split_pattern(rt->pattern, rt->segs, rt->is_param);
    if (n < 0) {
        free(rt->pattern);
        return -EINVAL;
    }
    rt->nsegs = (unsigned)n;
    rt->method = method;
    rt->fn = fn;
    rt->udata = udata;
    rt->flags = flags;
    rt->idx = r->n + 1;
    r->n++;
    return 0;
}

const char *sp__router_label(const sp_router *r, unsigned idx)
{
    if (idx == 0 || idx > r->n)
        return "unmatched";
    return r->routes[idx - 1].pattern;
}

/* Splits the request path into at most MAX_SEGS segments. "/" has none;
 * an empty segment ("//", trailing "/") makes the path unroutable. */
static int split_path(sp_slice path, sp_slice *segs)
{
    if (path.len == 0 || path.base[0] != '/')
        return -1;
    if (path.len == 1)
        return 0;
    int n = 0;
    const char *p = path.base + 1, *end = path.base + path.len;
    while (p <= end) {
        const char *slash = memchr(p, '/', (size_t)(end - p));
        const char *stop = slash ? slash : end;
        if (stop == p || n == MAX_SEGS)
            return -1;
        segs[n++] = sp_slice_make(p, (size_t)(stop - p));
        if (!slash)
            break;
        p = slash + 1;
    }
    return n;
}

static bool path_matches(const sp__route *rt, const sp_slice *segs, unsigned n, sp_http_req *req)
{
    if (rt->nsegs != n)
        return false;
    for (unsigned i = 0; i < n; i++)
        if (!rt->is_param[i] && !sp_slice_eq(rt->segs[i], segs[i]))
            return false;
    if (req) {
        req->nparams = 0;
        for (unsigned i = 0; i < n && req->nparams < SP_HTTP_MAX_PARAMS; i++) {
            if (rt->is_param[i]) {
                req->params[req->nparams].name = rt->segs[i];
                req->params[req->nparams].value = segs[i];
                req->nparams++;
            }
        }
    }
    return true;
}

const sp__route *sp__router_match(const sp_router *r, sp_http_req *req, unsigned *allow)
{
    sp_slice segs[MAX_SEGS];
    *allow = 0;
    int n = split_path(req->path, segs);
    if (n < 0)
        return NULL;
    sp_http_method m = req->method == SP_HTTP_HEAD ? SP_HTTP_GET : req->method;
    const sp__route *head_fallback = NULL;
    for (unsigned i = 0; i < r->n; i++) {
        const sp__route *rt = &r->routes[i];
        if (!path_matches(rt, segs, (unsigned)n, NULL))
            continue;
        if (rt->method == req->method)
            return path_matches(rt, segs, (unsigned)n, req) ? rt : NULL;
        if (rt->method == m)
            head_fallback = rt;
        *allow |= 1u << rt->method;
        if (rt->method == SP_HTTP_GET)
            *allow |= 1u << SP_HTTP_HEAD;
    }
    if (head_fallback) {
        path_matches(head_fallback, segs, (unsigned)n, req);
        return head_fallback;
    }
    return NULL;
}

void sp_router_each(const sp_router *r,
                    void (*fn)(sp_http_method method, const char *pattern, void *udata),
                    void *udata)
{
    for (unsigned i = 0; i < r->n; i++)
        fn(r->routes[i].method, r->routes[i].pattern, udata);
}

const char *sp_http_method_name(sp_http_method m)
{
    return sp__http_method_str(m);
}
