/* cli.h - the spate binary's subcommands. Each takes argv with argv[0] set
 * to the subcommand's name and returns the process exit code: 0 success,
 * 1 runtime failure, 2 bad usage (one clear line on stderr). */
#ifndef SP_CLI_CLI_H
#define SP_CLI_CLI_H

int sp_cli_serve(int argc, char **argv);
void sp_cli_serve_help(void);
/* `spate dev kafka`: an in-memory Kafka for development (cmd_dev.c). */
int sp_cli_dev(int argc, char **argv);
void sp_cli_dev_help(void);

#endif
