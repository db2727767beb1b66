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

static const char *const level_names[] = { "debug", "info", "warn", "error", "off" };

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

static void put_field(sp_buf *b, const sp_log_field *f)
{
    sp_buf_putc(b, ',');
    sp_json_cstr(b, f->key);
    sp_buf_putc(b, ':');
    switch (f->type) {
    case SP_LF_STR_: f->v.s ? sp_json_cstr(b, f->v.s) : sp_buf_append(b, "null", 4); break;
    case SP_LF_SLICE_: sp_json_str(b, f->v.sl); break;
    case SP_LF_INT_: sp_buf_append_i64(b, f->v.i); break;
    case SP_LF_DBL_: sp_buf_printf(b, "%.6g", f->v.d); break;
    case SP_LF_BOOL_: sp_buf_append_cstr(b, f->v.i ? "true" : "false"); break;
    case SP_LF_END_: break;
    }
}

void sp__log(sp_log_level level, const char *msg, const sp_log_field *fields)
{
    char storage[4096];
    char date[32];
    /* A fixed buffer on the stack: logging never allocates. */
    sp_buf b = { storage, 0, sizeof storage - 64, sizeof storage - 64 };
    sp_time_iso8601_ms(sp_time_now_ms(), date);
    sp_buf_printf(&b, "{\"time\":\"%s\",\"level\":\"%s\",\"msg\":", date, level_names[level]);
    sp_json_cstr(&b, msg);
    for (const sp_log_field *f = fields; f && f->key; f++)
        put_field(&b, f);
    size_t len = b.len;
    if (len >= b.limit - 2) { /* cut: keep the line valid JSON-ish and say so */
        len = b.limit - 2;
    }
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
