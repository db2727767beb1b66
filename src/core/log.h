/* log.h - JSON structured logs, one object per line on stderr.
 *
 *   SP_LOG_WARN("slow handler", SP_LF_STR("route", r) SP_LF_INT("ms", ms));
 *
 * prints {"time":"...","level":"warn","msg":"slow handler","route":"/x","ms":12}.
 * Each line is written with a single write(2), so lines from different
 * threads never interleave. Messages below the global level cost one
 * comparison. */
#ifndef SP_CORE_LOG_H
#define SP_CORE_LOG_H

#include <stdbool.h>
#include <stddef.h>

#include "core/slice.h"

typedef enum sp_log_level {
    SP_LOG_LEVEL_DEBUG = 0,
    SP_LOG_LEVEL_INFO,
    SP_LOG_LEVEL_WARN,
    SP_LOG_LEVEL_ERROR,
    SP_LOG_LEVEL_OFF,
} sp_log_level;

typedef enum sp_log_ftype {
    SP_LF_END_ = 0,
    SP_LF_STR_,
    SP_LF_SLICE_,
    SP_LF_INT_,
    SP_LF_DBL_,
    SP_LF_BOOL_
} sp_log_ftype;

typedef struct sp_log_field {
    const char *key;
    sp_log_ftype type;
    union {
        const char *s;
        sp_slice sl;
        long long i;
        double d;
    } v;
} sp_log_field;

#define SP_LF_STR(k, val)   {(k), SP_LF_STR_, {.s = (val)}},
#define SP_LF_SLICE(k, val) {(k), SP_LF_SLICE_, {.sl = (val)}},
#define SP_LF_INT(k, val)   {(k), SP_LF_INT_, {.i = (long long)(val)}},
#define SP_LF_DBL(k, val)   {(k), SP_LF_DBL_, {.d = (double)(val)}},
#define SP_LF_BOOL(k, val)  {(k), SP_LF_BOOL_, {.i = (val) ? 1 : 0}},

extern sp_log_level sp__log_level;

void sp__log(sp_log_level level, const char *msg, const sp_log_field *fields);

#define SP_LOG_(lvl, msg, ...)                                                                     \
    do {                                                                                           \
        if ((lvl) >= sp__log_level)                                                                \
            sp__log((lvl), (msg), (const sp_log_field[]){__VA_ARGS__{NULL, SP_LF_END_, {0}}});     \
    } while (0)
#define SP_LOG_DEBUG(msg, ...) SP_LOG_(SP_LOG_LEVEL_DEBUG, msg, __VA_ARGS__)
#define SP_LOG_INFO(msg, ...)  SP_LOG_(SP_LOG_LEVEL_INFO, msg, __VA_ARGS__)
#define SP_LOG_WARN(msg, ...)  SP_LOG_(SP_LOG_LEVEL_WARN, msg, __VA_ARGS__)
#define SP_LOG_ERROR(msg, ...) SP_LOG_(SP_LOG_LEVEL_ERROR, msg, __VA_ARGS__)

/* Sets the level from "debug", "info", "warn", "error" or "off".
 * Returns 0, or -EINVAL for another name. */
int sp_log_set_level_name(const char *name);
void sp_log_set_level(sp_log_level level);
/* Redirects output to fd (default 2). For tests. */
void sp_log_set_fd(int fd);

#endif
