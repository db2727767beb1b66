/* cmd_log.h - `spate log verify|dump`: offline tools for the embedded log. */
#ifndef SP_CLI_CMD_LOG_H
#define SP_CLI_CMD_LOG_H

/* Runs `spate log ...`; argv[0] is "log". Returns the process exit code:
 * 0 success (verify: clean), 1 verify found problems or dump met a bad
 * batch, 2 bad usage (one line on stderr), 3 the directory could not be
 * read (missing, locked by a running server, I/O error). */
int sp_cli_log(int argc, char **argv);

#endif
