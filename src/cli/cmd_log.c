/* cmd_log.c - `spate log verify DIR` and `spate log dump DIR --topic T
 * [--partition P] [--from OFFSET]`, thin argument parsing around the
 * read-only tools in src/store/scan.c. */
#include "cli/cmd_log.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "core/config.h"
#include "core/slice.h"
#include "store/scan.h"
#include "store/store.h"

#define EXIT_USAGE      2
#define EXIT_UNREADABLE 3

static const char usage_text[] =
    "usage: spate log verify DIR\n"
    "       spate log dump DIR --topic T [--partition P] [--from OFFSET]\n"
    "\n"
    "verify  checks every batch CRC, offset continuity and index of the data\n"
    "        directory DIR; exit 0 when clean, 1 when not, 3 when unreadable.\n"
    "dump    prints the records of topic T as JSON lines (all partitions, or P),\n"
    "        from OFFSET (default 0); exit 1 if a bad batch stops it.\n"
    "Both refuse to run while a server holds DIR, and never modify it.\n";

static int usage_error(const char *msg, const char *arg)
{
    fprintf(stderr, "spate log: %s%s%s (see spate log --help)\n", msg, arg ? ": " : "",
            arg ? arg : "");
    return EXIT_USAGE;
}

static int report_errno(const char *what, const char *dir, int err)
{
    if (err == -EBUSY)
        fprintf(stderr, "spate log %s: %s is in use by a running spate server; stop it first\n",
                what, dir);
    else
        fprintf(stderr, "spate log %s: %s: %s\n", what, dir, strerror(-err));
    return EXIT_UNREADABLE;
}

static int cmd_verify(int argc, char **argv)
{
    static const struct option opts[] = {{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        if (c == 'h') {
            fputs(usage_text, stdout);
            return 0;
        }
        return usage_error("unknown option", argv[optind - 1]);
    }
    if (argc - optind != 1)
        return usage_error("verify takes exactly one DIR", NULL);
    sp_store_verify_report rep;
    int r = sp_store_verify(argv[optind], stdout, &rep);
    if (r < 0)
        return report_errno("verify", argv[optind], r);
    return r;
}

static int parse_u64(const char *s, unsigned long long max, unsigned long long *out)
{
    return sp_slice_to_u64(sp_slice_cstr(s), max, out);
}

static int cmd_dump(int argc, char **argv)
{
    static const struct option opts[] = {{"topic", required_argument, NULL, 't'},
                                         {"partition", required_argument, NULL, 'p'},
                                         {"from", required_argument, NULL, 'f'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *topic = NULL;
    unsigned long long partition = 0, from = 0;
    bool one_partition = false;
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, ":t:p:f:h", opts, NULL)) != -1) {
        switch (c) {
        case 't': topic = optarg; break;
        case 'p':
            if (parse_u64(optarg, 0x7fffffff, &partition) < 0)
                return usage_error("--partition needs a number", optarg);
            one_partition = true;
            break;
        case 'f':
            if (parse_u64(optarg, (unsigned long long)-1, &from) < 0)
                return usage_error("--from needs an offset", optarg);
            break;
        case 'h': fputs(usage_text, stdout); return 0;
        case ':': return usage_error("option needs a value", argv[optind - 1]);
        default: return usage_error("unknown option", argv[optind - 1]);
        }
    }
    if (argc - optind != 1)
        return usage_error("dump takes exactly one DIR", NULL);
    if (!topic || !sp_store_topic_name_valid(topic))
        return usage_error("dump needs --topic with a valid topic name", topic);
    int r = sp_store_dump(argv[optind], topic, one_partition ? (int32_t)partition : -1, from,
                          stdout, stderr);
    if (r < 0)
        return report_errno("dump", argv[optind], r);
    return r;
}

int sp_cli_log(int argc, char **argv)
{
    if (argc < 2)
        return usage_error("missing subcommand (verify or dump)", NULL);
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        fputs(usage_text, stdout);
        return 0;
    }
    if (!strcmp(argv[1], "verify"))
        return cmd_verify(argc - 1, argv + 1);
    if (!strcmp(argv[1], "dump"))
        return cmd_dump(argc - 1, argv + 1);
    return usage_error("unknown subcommand", argv[1]);
}

int sp_cli_store_options(const struct sp_config *cfg, struct sp_store_options *o, char *err,
                         size_t errlen)
{
    sp_store_options_default(o);
    const char *mode = cfg->fsync ? cfg->fsync : "always";
    if (!strcmp(mode, "always"))
        o->fsync = SP_STORE_FSYNC_ALWAYS;
    else if (!strcmp(mode, "interval"))
        o->fsync = SP_STORE_FSYNC_INTERVAL;
    else if (!strcmp(mode, "never"))
        o->fsync = SP_STORE_FSYNC_NEVER;
    else {
        snprintf(err, errlen, "store.fsync must be always, interval or never, not \"%s\"", mode);
        return -EINVAL;
    }
    if (cfg->fsync_interval_ms < 1 || cfg->segment_bytes < 1024 ||
        cfg->segment_bytes > (1LL << 30) || cfg->retention_bytes < 0 || cfg->retention_ms < 0 ||
        cfg->max_record_bytes < 1 || cfg->max_record_bytes > (1LL << 30)) {
        snprintf(err, errlen,
                 "store.*: fsync_interval >= 1ms, 1 KiB <= segment_bytes <= 1 GiB, retention >= 0, "
                 "1 <= max_record_bytes <= 1 GiB");
        return -EINVAL;
    }
    o->fsync_interval_ms = cfg->fsync_interval_ms;
    o->segment_bytes = (uint64_t)cfg->segment_bytes;
    o->retention_bytes = (uint64_t)cfg->retention_bytes;
    o->retention_ms = cfg->retention_ms;
    o->max_record_bytes = (uint32_t)cfg->max_record_bytes;
    if (cfg->queue_max_bytes > 0)
        o->queue_max_bytes = (uint64_t)cfg->queue_max_bytes;
    if (cfg->queue_max_appends > 0)
        o->queue_max_appends = (uint32_t)cfg->queue_max_appends;
    if (cfg->max_append_records > 0)
        o->max_append_records = (uint32_t)cfg->max_append_records;
    if (cfg->max_topics > 0)
        o->max_topics = (uint32_t)cfg->max_topics;
    if (cfg->max_partitions > 0)
        o->max_partitions = (uint32_t)cfg->max_partitions;
    if (cfg->on_corruption && strcmp(cfg->on_corruption, "truncate") == 0)
        o->on_corruption = SP_STORE_CORRUPTION_TRUNCATE;
    /* a batch of max-size records must still fit the queue */
    if (o->queue_max_bytes < 4 * (uint64_t)o->max_record_bytes)
        o->queue_max_bytes = 4 * (uint64_t)o->max_record_bytes;
    return 0;
}
