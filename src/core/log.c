/* log.c - see log.h. Lines are formatted into a stack buffer and written
 * at once; a line longer than the buffer is cut and marked "truncated". */
#include "core/log.h"

#include <errno.h>
#include <stdio.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/json.h"
#include "core/time.h"

sp_log_level sp__log_level = SP_LOG_LEVEL_INFO;
static int log_fd = 2;

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

void sp_log_set_level(sp_log_level level)
{
    sp__log_level = level;
}

int sp_log_set_level_name(const char *name)
{
    for (size_t i = 0; i < sizeof level_names / sizeof level_names[0]; i++) {
        if (strcmp(name, level_names[i]) == 0) {
            sp__log_level = (sp_log_level)i;
            return 0;
        }
    }
    return -EINVAL;
}

void sp_log_set_fd(int fd)
{
    log_fd = fd;
}

/* Returns 0, or -ENOBUFS when the line's buffer is full. */
static int put_field(sp_buf *b, const sp_log_field *f)
{
    int rc = sp_buf_putc(b, ',');
    rc = rc ? rc : sp_json_cstr(b, f->key);
    rc = rc ? rc : sp_buf_putc(b, ':');
    if (rc)
        return rc;
    switch (f->type) {
    case SP_LF_STR_: return f->v.s ? sp_json_cstr(b, f->v.s) : sp_buf_append(b, "null", 4);
    case SP_LF_SLICE_: return sp_json_str(b, f->v.sl);
    case SP_LF_INT_: return sp_buf_append_i64(b, f->v.i);
    case SP_LF_DBL_: return sp_buf_printf(b, "%.6g", f->v.d);
    case SP_LF_BOOL_: return sp_buf_append_cstr(b, f->v.i ? "true" : "false");
    case SP_LF_END_: break;
    }
    return 0;
}

void sp__log(sp_log_level level, const char *msg, const sp_log_field *fields)
{
    char storage[4096];
    char date[32];
    /* A fixed buffer on the stack: logging never allocates. */
    sp_buf b = {storage, 0, sizeof storage - 64, sizeof storage - 64};
    sp_time_iso8601_ms(sp_time_now_ms(), date);
    sp_buf_printf(&b, "{\"time\":\"%s\",\"level\":\"%s\",\"msg\":", date, level_names[level]);
    sp_json_cstr(&b, msg);
    int rc = 0;
    for (const sp_log_field *f = fields; rc == 0 && f && f->key; f++)
        rc = put_field(&b, f);
    if (rc != 0 || b.len >= b.limit - 2) {
        /* Too long: a field may be cut mid-string. Say less, but say it as
         * valid JSON: the message (cut if it must be) and a marker. */
        b.len = 0;
        sp_buf_printf(&b, "{\"time\":\"%s\",\"level\":\"%s\",\"msg\":", date, level_names[level]);
        size_t mlen = strlen(msg);
        sp_json_str(&b, sp_slice_make(msg, mlen < 1024 ? mlen : 1024));
        sp_buf_append_cstr(&b, ",\"truncated\":true");
    }
    size_t len = b.len;
    memcpy(storage + len, "}\n", 2);
    len += 2;
    ssize_t off = 0;
    while ((size_t)off < len) {
        ssize_t n = write(log_fd, storage + off, len - (size_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        off += n;
    }
}
