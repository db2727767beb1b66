/* cmd_log.h - `spate log verify|dump`: offline tools for the embedded log. */
#ifndef SP_CLI_CMD_LOG_H
#define SP_CLI_CMD_LOG_H

#include <stddef.h>

/* Runs `spate log ...`; argv[0] is "log". Returns the process exit code:
 * 0 success (verify: clean), 1 verify found problems or dump met a bad
 * batch, 2 bad usage (one line on stderr), 3 the directory could not be
 * read (missing, locked by a running server, I/O error). */
int sp_cli_log(int argc, char **argv);

struct sp_config;
struct sp_store_options;
/* Maps the store.* settings of a loaded config (fsync, fsync_interval_ms,
 * segment_bytes, retention_bytes, retention_ms, max_record_bytes) onto
 * store options, the rest staying at sp_store_options_default(). Returns 0,
 * or -EINVAL with a message in err (errlen bytes) for an out-of-range value
 * or an unknown fsync mode. */
int sp_cli_store_options(const struct sp_config *cfg, struct sp_store_options *out, char *err,
                         size_t errlen);

#endif
