/* cmd_produce.h - `spate produce` and `spate consume` (see their .c files). */
#ifndef SP_CLI_CMD_PRODUCE_H
#define SP_CLI_CMD_PRODUCE_H

int sp_cli_produce(int argc, char **argv);
int sp_cli_consume(int argc, char **argv);
int sp_cli_topics(int argc, char **argv);

#endif
