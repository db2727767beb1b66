/* cmd_topics.c - `spate topics`: administer topics over the REST API.
 *
 *   spate topics list
 *   spate topics create NAME [--partitions N] [--retention-bytes SIZE]
 *                            [--retention-ms MS] [--schema FILE]
 *   spate topics describe NAME
 *   spate topics delete NAME
 *
 * Each prints the server's JSON answer on stdout; exit 0 on 2xx, 1 on any
 * other answer or connection failure (the answer goes to stderr), 2 on bad
 * usage. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "cmd_produce.h"
#include "core/json.h"
#include "store/store.h"

#define MAX_SCHEMA (64 * 1024)

static void usage(FILE *out)
{
    fputs("usage: spate topics [--url URL] list\n"
          "       spate topics [--url URL] create NAME [--partitions N] [--retention-bytes N]\n"
          "                                       [--retention-ms N] [--schema FILE]\n"
          "       spate topics [--url URL] describe NAME\n"
          "       spate topics [--url URL] delete NAME\n",
          out);
}

static int call(const sp_url *url, const char *method, const char *path, const sp_buf *body)
{
    sp_client *c;
    int rc = sp_client_open(url, &c);
    if (rc) {
        fprintf(stderr, "spate topics: cannot connect to %s:%d: %s\n", url->host, url->port,
                strerror(-rc));
        return 1;
    }
    sp_buf resp;
    sp_buf_init(&resp, 16 << 20);
    int status = sp_client_request(c, method, path, body ? "application/json" : NULL,
                                   body ? body->base : NULL, body ? body->len : 0, &resp);
    sp_client_close(c);
    FILE *out = status >= 200 && status < 300 ? stdout : stderr;
    if (status < 0)
        fprintf(stderr, "spate topics: %s\n", strerror(-status));
    else if (resp.len)
        fprintf(out, "%.*s\n", (int)resp.len, resp.base);
    else if (status >= 300)
        fprintf(stderr, "spate topics: HTTP %d\n", status);
    sp_buf_free(&resp);
    return status >= 200 && status < 300 ? 0 : 1;
}

static int read_schema(const char *path, sp_buf *out)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "spate topics: cannot open schema '%s': %s\n", path, strerror(errno));
        return 2;
    }
    char buf[4096];
    size_t n;
    int rc = 0;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        if (sp_buf_append(out, buf, n) != 0) {
            fprintf(stderr, "spate topics: schema '%s' is over 64 KiB\n", path);
            rc = 2;
            break;
        }
    fclose(f);
    return rc;
}

static int create(const sp_url *url, const char *name, int argc, char **argv)
{
    static const struct option opts[] = {
        {"partitions", required_argument, NULL, 'p'},
        {"retention-bytes", required_argument, NULL, 'b'},
        {"retention-ms", required_argument, NULL, 'm'},
        {"schema", required_argument, NULL, 's'},
        {NULL, 0, NULL, 0},
    };
    unsigned long long parts = 1, rbytes = 0, rms = 0;
    const char *schema = NULL;
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        char *end = NULL;
        if (ch == 'p')
            parts = strtoull(optarg, &end, 10);
        else if (ch == 'b')
            rbytes = strtoull(optarg, &end, 10);
        else if (ch == 'm')
            rms = strtoull(optarg, &end, 10);
        else if (ch == 's')
            schema = optarg;
        else {
            fprintf(stderr, "spate topics create: unknown option '%s'\n", argv[optind - 1]);
            return 2;
        }
        if (end && *end) {
            fprintf(stderr, "spate topics create: '%s' is not a whole number\n", optarg);
            return 2;
        }
    }
    sp_buf body, text;
    sp_buf_init(&body, SP_BUF_UNLIMITED);
    sp_buf_init(&text, MAX_SCHEMA);
    int rc = schema ? read_schema(schema, &text) : 0;
    if (rc == 0) {
        sp_buf_append_cstr(&body, "{\"name\":");
        sp_json_cstr(&body, name);
        sp_buf_printf(&body, ",\"partitions\":%llu,\"retention_bytes\":%llu,\"retention_ms\":%llu",
                      parts, rbytes, rms);
        if (schema) {
            sp_buf_append_cstr(&body, ",\"schema\":");
            sp_buf_append(&body, text.base, text.len);
        }
        sp_buf_putc(&body, '}');
        rc = call(url, "POST", "/v1/topics", &body);
    }
    sp_buf_free(&body);
    sp_buf_free(&text);
    return rc;
}

int sp_cli_topics(int argc, char **argv)
{
    const char *url_text = "http://127.0.0.1:8000";
    int first = 1;
    if (argc > 2 && strcmp(argv[1], "--url") == 0) {
        url_text = argv[2];
        first = 3;
    }
    if (argc <= first || strcmp(argv[first], "--help") == 0 || strcmp(argv[first], "-h") == 0) {
        usage(argc <= first ? stderr : stdout);
        return argc <= first ? 2 : 0;
    }
    sp_url url;
    if (sp_url_parse(url_text, &url) != 0) {
        fprintf(stderr, "spate topics: bad --url '%s'\n", url_text);
        return 2;
    }
    const char *cmd = argv[first];
    if (strcmp(cmd, "list") == 0)
        return call(&url, "GET", "/v1/topics", NULL);
    const char *name = argc > first + 1 ? argv[first + 1] : NULL;
    if (!name || !sp_store_topic_name_valid(name)) {
        fprintf(stderr, "spate topics %s: a topic NAME (1-249 of [A-Za-z0-9._-]) is required\n",
                cmd);
        return 2;
    }
    char path[300];
    snprintf(path, sizeof path, "/v1/topics/%s", name);
    if (strcmp(cmd, "describe") == 0)
        return call(&url, "GET", path, NULL);
    if (strcmp(cmd, "delete") == 0)
        return call(&url, "DELETE", path, NULL);
    if (strcmp(cmd, "create") == 0) {
        optind = 1;
        opterr = 0;
        return create(&url, name, argc - first - 1, argv + first + 1);
    }
    fprintf(stderr, "spate topics: unknown command '%s' (list, create, describe, delete)\n", cmd);
    return 2;
}
