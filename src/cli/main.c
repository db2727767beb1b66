/* main.c - `spate`: dispatch to subcommands, --help, --version. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cmd_produce.h"
#if __has_include("cmd_log.h")
#include "cmd_log.h"
#define HAVE_CMD_LOG 1
#endif

static void usage(FILE *out)
{
    fputs("usage: spate [--version] [--help] <command> [<args>]\n"
          "\n"
          "spate is a real-time event streaming server: durable topics served over\n"
          "a REST API, WebSocket and Server-Sent Events, in one binary.\n"
          "\n"
          "commands:\n"
          "  serve     run the server (default: the news demo on 127.0.0.1:8000)\n"
          "  produce   stream records into a topic (NDJSON or --demo news|ticks|logs)\n"
          "  consume   print a topic's records as NDJSON\n"
          "  topics    list, create, describe and delete topics\n"
          "  dev       development helpers: `dev kafka` (an in-memory Kafka, not durable)\n"
#ifdef HAVE_CMD_LOG
          "  log       inspect an embedded log offline (verify, dump)\n"
#endif
          "  help CMD  show help for a command\n"
          "\n"
          "See README.md and docs/ for configuration and the API.\n",
          out);
}

static int help(const char *cmd)
{
    if (cmd == NULL) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "serve") == 0) {
        sp_cli_serve_help();
        return 0;
    }
    if (strcmp(cmd, "dev") == 0) {
        sp_cli_dev_help();
        return 0;
    }
    if (strcmp(cmd, "topics") == 0) {
        char *argv[] = {"topics", "--help", NULL};
        return sp_cli_topics(2, argv);
    }
    if (strcmp(cmd, "produce") == 0 || strcmp(cmd, "consume") == 0) {
        char *argv[] = {(char *)cmd, "--help", NULL};
        return strcmp(cmd, "produce") == 0 ? sp_cli_produce(2, argv) : sp_cli_consume(2, argv);
    }
#ifdef HAVE_CMD_LOG
    if (strcmp(cmd, "log") == 0) {
        char *argv[] = {"log", "--help", NULL};
        return sp_cli_log(2, argv);
    }
#endif
    fprintf(stderr, "spate: no help for unknown command '%s' (see spate --help)\n", cmd);
    return 2;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("spate %s\n", SPATE_VERSION);
        return 0;
    }
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0)
        return help(NULL);
    if (strcmp(cmd, "help") == 0)
        return help(argc > 2 ? argv[2] : NULL);
    if (strcmp(cmd, "serve") == 0)
        return sp_cli_serve(argc - 1, argv + 1);
    if (strcmp(cmd, "produce") == 0)
        return sp_cli_produce(argc - 1, argv + 1);
    if (strcmp(cmd, "consume") == 0)
        return sp_cli_consume(argc - 1, argv + 1);
    if (strcmp(cmd, "dev") == 0)
        return sp_cli_dev(argc - 1, argv + 1);
    if (strcmp(cmd, "topics") == 0)
        return sp_cli_topics(argc - 1, argv + 1);
#ifdef HAVE_CMD_LOG
    if (strcmp(cmd, "log") == 0)
        return sp_cli_log(argc - 1, argv + 1);
#endif
    fprintf(stderr, "spate: unknown command '%s' (see spate --help)\n", cmd);
    return 2;
}
