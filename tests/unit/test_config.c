/* Unit tests for src/core/config: defaults, value syntaxes and bounds, the
 * YAML loader and its messages, the environment, precedence, kafka
 * pass-through, declared routes, and the print -> load round trip. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/config.h"

/* ---- helpers -------------------------------------------------------------- */

static int load(sp_config *cfg, const char *yaml, sp_config_error *err)
{
    memset(err->msg, 0, sizeof err->msg);
    return sp_config_load_string(cfg, "spate.yaml", yaml, strlen(yaml), err);
}

/* Loads yaml into a fresh config and expects it to fail with `want` in the
 * message; also checks that the config was left at its defaults. */
static void expect_load_error(const char *yaml, const char *want)
{
    sp_config cfg, def;
    sp_config_error err;
    sp_config_init(&cfg);
    sp_config_init(&def);
    assert_int_equal(load(&cfg, yaml, &err), -EINVAL);
    if (!strstr(err.msg, want))
        fail_msg("message '%s' lacks '%s'", err.msg, want);
    assert_true(sp_config_equal(&cfg, &def));
    sp_config_free(&cfg);
    sp_config_free(&def);
}

/* Sets key=value as a --set flag and expects `want` in the message. */
static void expect_set_error(const char *key, const char *value, const char *want)
{
    sp_config cfg, def;
    sp_config_error err = {{0}};
    sp_config_init(&cfg);
    sp_config_init(&def);
    assert_int_equal(sp_config_set(&cfg, key, value, SP_CONFIG_FLAG, NULL, 0, &err), -EINVAL);
    if (!strstr(err.msg, want))
        fail_msg("message '%s' lacks '%s'", err.msg, want);
    assert_true(sp_config_equal(&cfg, &def));
    sp_config_free(&cfg);
    sp_config_free(&def);
}

static char *print_to_string(const sp_config *cfg)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    sp_config_print(cfg, f);
    fclose(f);
    return text;
}

static const char *kafka_get(const sp_config *cfg, const char *key)
{
    for (size_t i = 0; i < cfg->kafka_len; i++)
        if (strcmp(cfg->kafka[i].key, key) == 0)
            return cfg->kafka[i].value;
    return NULL;
}

/* Writes text to a new temporary file; returns its path (caller frees and
 * unlinks). */
static char *write_temp(const char *text, size_t len)
{
    char *path = strdup("/tmp/spate-test-config-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
    return path;
}

/* ---- defaults and the table ----------------------------------------------- */

static void test_defaults(void **state)
{
    (void)state;
    sp_config c;
    sp_config_init(&c);
    assert_string_equal(c.host, "127.0.0.1");
    assert_int_equal(c.port, 8000);
    assert_int_equal(c.threads, 0);
    assert_string_equal(c.data_dir, "./data");
    assert_int_equal(c.shutdown_timeout_ms, 10000);
    assert_string_equal(c.log_level, "info");
    assert_false(c.access_log);
    assert_int_equal(c.max_request_line, 8 * 1024);
    assert_int_equal(c.max_header_bytes, 16 * 1024);
    assert_int_equal(c.max_headers, 100);
    assert_int_equal(c.max_body_bytes, 1024 * 1024);
    assert_int_equal(c.header_timeout_ms, 10000);
    assert_int_equal(c.body_timeout_ms, 10000);
    assert_int_equal(c.keepalive_timeout_ms, 30000);
    assert_int_equal(c.max_requests_per_conn, 10000);
    assert_int_equal(c.max_pipelined, 32);
    assert_int_equal(c.max_connections, 10000);
    assert_int_equal(c.max_output_bytes, 4 * 1024 * 1024);
    assert_int_equal(c.loop_lag_interval_ms, 100);
    assert_int_equal(c.slow_handler_ms, 50);
    assert_string_equal(c.fsync, "always");
    assert_int_equal(c.fsync_interval_ms, 1000);
    assert_int_equal(c.segment_bytes, 64 * 1024 * 1024);
    assert_int_equal(c.retention_bytes, 0);
    assert_int_equal(c.retention_ms, 7LL * 24 * 3600 * 1000);
    assert_int_equal(c.max_record_bytes, 1024 * 1024);
    assert_null(c.kafka);
    assert_int_equal(c.kafka_len, 0);
    sp_config_free(&c);
    sp_config_free(&c); /* freeing twice is harmless: free zeroes */
}

typedef struct each_state {
    int count;
    char last_section[32];
    char sections[32][32];
    int n_sections;
} each_state;

static void each_cb(const char *key, const char *type, const char *def, const char *help,
                    void *udata)
{
    each_state *st = udata;
    sp_config a, b;
    sp_config_error err;
    st->count++;
    assert_non_null(type);
    assert_true(strlen(help) > 10);
    /* The default text is what print writes: setting it changes nothing. */
    sp_config_init(&a);
    sp_config_init(&b);
    assert_int_equal(sp_config_set(&a, key, def, SP_CONFIG_FLAG, NULL, 0, &err), 0);
    assert_true(sp_config_equal(&a, &b));
    char *text = print_to_string(&a);
    const char *leaf = strchr(key, '.') + 1;
    char line[256];
    snprintf(line, sizeof line, "  %s: %s%s%s\n", leaf, strcmp(type, "string") ? "" : "\"", def,
             strcmp(type, "string") ? "" : "\"");
    if (!strstr(text, line))
        fail_msg("print lacks '%s'", line);
    free(text);
    sp_config_free(&a);
    sp_config_free(&b);
    /* Sections are contiguous (print groups by them). */
    size_t n = (size_t)(strchr(key, '.') - key);
    if (strlen(st->last_section) != n || strncmp(st->last_section, key, n) != 0) {
        for (int i = 0; i < st->n_sections; i++)
            assert_false(strlen(st->sections[i]) == n && strncmp(st->sections[i], key, n) == 0);
        snprintf(st->last_section, sizeof st->last_section, "%.*s", (int)n, key);
        assert_true(st->n_sections < (int)(sizeof st->sections / sizeof st->sections[0]));
        snprintf(st->sections[st->n_sections++], 32, "%.*s", (int)n, key);
    }
}

static void test_each(void **state)
{
    (void)state;
    each_state st = {0};
    sp_config_each(each_cb, &st);
    assert_int_equal(st.count, 50); /* update deliberately when adding a setting */
}

/* ---- value syntaxes ------------------------------------------------------- */

static void test_parse_size(void **state)
{
    (void)state;
    int64_t v;
    static const struct {
        const char *text;
        int64_t want;
    } ok[] = {
        {"0", 0},
        {"1048576", 1048576},
        {"64k", 65536},
        {"64K", 65536},
        {"64KiB", 65536},
        {"64kb", 65536},
        {"1m", 1048576},
        {"1MiB", 1048576},
        {"2g", 2147483648LL},
        {"1 GiB", 1073741824LL},
        {"3t", 3LL << 40},
        {"1p", 1LL << 50},
        {"7b", 7},
        {"9223372036854775807", INT64_MAX},
        {"8191p", 8191LL << 50},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        assert_int_equal(sp_config_parse_size(ok[i].text, &v), 0);
        assert_int_equal(v, ok[i].want);
    }
    static const char *const bad[] = {
        "",
        "k",
        "-1",
        "+1",
        "1.5m",
        "1x",
        "1 ",
        " 1",
        "1  k",
        "1kk",
        "0x10",
        "1e3",
        "9223372036854775808", /* INT64_MAX + 1 */
        "8192p",
        "9007199254740992k",
        "99999999999999999999999999g",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(sp_config_parse_size(bad[i], &v), -EINVAL);
}

static void test_parse_duration(void **state)
{
    (void)state;
    int64_t v;
    static const struct {
        const char *text;
        int64_t want;
    } ok[] = {
        {"0", 0},          {"250", 250},
        {"250ms", 250},    {"10s", 10000},
        {"5m", 300000},    {"1h", 3600000},
        {"7d", 604800000}, {"10S", 10000},
        {"2 h", 7200000},  {"106751991167d", 106751991167LL * 86400000},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        assert_int_equal(sp_config_parse_duration_ms(ok[i].text, &v), 0);
        assert_int_equal(v, ok[i].want);
    }
    static const char *const bad[] = {"",
                                      "s",
                                      "-1s",
                                      "1.5s",
                                      "10y",
                                      "1h30m",
                                      "10 ",
                                      "10sec",
                                      "106751991168d",
                                      "9223372036854775807s",
                                      "99999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(sp_config_parse_duration_ms(bad[i], &v), -EINVAL);
}

static void test_parse_bool(void **state)
{
    (void)state;
    bool b;
    static const char *const yes[] = {"true", "TRUE", "yes", "on", "1", "True"};
    static const char *const no[] = {"false", "no", "off", "0", "OFF"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        b = false;
        assert_int_equal(sp_config_parse_bool(yes[i], &b), 0);
        assert_true(b);
    }
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
        b = true;
        assert_int_equal(sp_config_parse_bool(no[i], &b), 0);
        assert_false(b);
    }
    assert_int_equal(sp_config_parse_bool("", &b), -EINVAL);
    assert_int_equal(sp_config_parse_bool("y", &b), -EINVAL);
    assert_int_equal(sp_config_parse_bool("2", &b), -EINVAL);
    assert_int_equal(sp_config_parse_bool("true ", &b), -EINVAL);
}

/* ---- sp_config_set -------------------------------------------------------- */

static void test_set_int(void **state)
{
    (void)state;
    sp_config c;
    sp_config_error err;
    sp_config_init(&c);
    assert_int_equal(sp_config_set(&c, "http.port", "0", SP_CONFIG_FLAG, NULL, 0, &err), 0);
    assert_int_equal(c.port, 0);
    assert_int_equal(sp_config_set(&c, "http.port", "65535", SP_CONFIG_FLAG, NULL, 0, &err), 0);
    assert_int_equal(c.port, 65535);
    assert_int_equal(sp_config_set(&c, "server.threads", "256", SP_CONFIG_FLAG, NULL, 0, &err), 0);
    assert_int_equal(c.threads, 256);
    sp_config_free(&c);

    sp_config_init(&c);
    assert_int_equal(sp_config_set(&c, "http.port", "abc", SP_CONFIG_FLAG, NULL, 0, &err), -EINVAL);
    assert_string_equal(err.msg, "--set http.port: 'abc' is not a whole number");
    assert_int_equal(c.port, 8000);
    assert_int_equal(sp_config_set(&c, "http.port", "70000", SP_CONFIG_FLAG, "--port", 0, &err),
                     -EINVAL);
    assert_string_equal(err.msg, "--port: 70000 is above the maximum 65535");
    assert_int_equal(sp_config_set(&c, "http.port", "70000", SP_CONFIG_DEFAULT, NULL, 0, &err),
                     -EINVAL);
    assert_string_equal(err.msg, "http.port: 70000 is above the maximum 65535");
    assert_int_equal(
        sp_config_set(&c, "http.port", "70000", SP_CONFIG_FILE, "spate.yaml", 12, &err), -EINVAL);
    assert_string_equal(err.msg, "spate.yaml:12: http.port: 70000 is above the maximum 65535");
    assert_int_equal(sp_config_set(&c, "http.port", "abc", SP_CONFIG_ENV, NULL, 0, &err), -EINVAL);
    assert_string_equal(err.msg, "SPATE_HTTP_PORT: 'abc' is not a whole number");
    assert_int_equal(c.port, 8000);
    assert_int_equal(sp_config_set(&c, "http.port", "1", SP_CONFIG_FLAG, NULL, 0, NULL), 0);
    assert_int_equal(sp_config_set(&c, "http.port", "x", SP_CONFIG_FLAG, NULL, 0, NULL), -EINVAL);
    assert_int_equal(sp_config_set(&c, "http.port", NULL, SP_CONFIG_FLAG, NULL, 0, &err), -EINVAL);
    assert_int_equal(c.port, 1);
    sp_config_free(&c);

    expect_set_error("http.port", "-1", "-1 is below the minimum 0");
    expect_set_error("http.port", "99999999999999999999",
                     "99999999999999999999 is above the maximum 65535");
    expect_set_error("http.port", "-99999999999999999999", "is below the minimum 0");
    expect_set_error("http.port", " 80", "is not a whole number");
    expect_set_error("http.port", "80 ", "is not a whole number");
    expect_set_error("http.port", "", "'' is not a whole number");
    expect_set_error("http.port", "8e3", "is not a whole number");
    expect_set_error("server.threads", "257", "above the maximum 256");
    expect_set_error("http.max_headers", "7", "below the minimum 8");
    expect_set_error("http.max_connections", "0", "below the minimum 1");
}

static void test_set_size_duration(void **state)
{
    (void)state;
    sp_config c;
    sp_config_error err;
    sp_config_init(&c);
    assert_int_equal(sp_config_set(&c, "http.max_body_bytes", "64k", SP_CONFIG_FLAG, NULL, 0, &err),
                     0);
    assert_int_equal(c.max_body_bytes, 65536);
    assert_int_equal(
        sp_config_set(&c, "store.retention_bytes", "1PiB", SP_CONFIG_FLAG, NULL, 0, &err), 0);
    assert_int_equal(c.retention_bytes, 1LL << 50);
    assert_int_equal(sp_config_set(&c, "store.retention", "0", SP_CONFIG_FLAG, NULL, 0, &err), 0);
    assert_int_equal(c.retention_ms, 0);
    assert_int_equal(sp_config_set(&c, "http.header_timeout", "1", SP_CONFIG_FLAG, NULL, 0, &err),
                     0);
    assert_int_equal(c.header_timeout_ms, 1);
    assert_int_equal(
        sp_config_set(&c, "http.keepalive_timeout", "1h", SP_CONFIG_FLAG, NULL, 0, &err), 0);
    assert_int_equal(c.keepalive_timeout_ms, 3600000);
    sp_config_free(&c);

    expect_set_error("http.max_body_bytes", "12x",
                     "'12x' is not a size (write bytes, or a whole number with k, m");
    expect_set_error("http.max_body_bytes", "2g",
                     "http.max_body_bytes: 2g is above the maximum 1GiB");
    expect_set_error("http.max_body_bytes", "1023", "1023 is below the minimum 1KiB");
    expect_set_error("http.max_body_bytes", "99999999999999999999k", "is above the maximum 1GiB");
    expect_set_error("store.retention_bytes", "1025t", "above the maximum 1PiB");
    expect_set_error("http.max_request_line", "255", "below the minimum 256");
    expect_set_error("http.header_timeout", "0", "0 is below the minimum 1ms");
    expect_set_error("http.header_timeout", "2h", "2h is above the maximum 1h");
    expect_set_error("http.header_timeout", "10y",
                     "'10y' is not a duration (write a whole number with ms, s, m, h or d");
    expect_set_error("http.header_timeout", "-1s", "is not a duration");
    expect_set_error("store.retention", "3651d", "above the maximum 3650d");
    expect_set_error("monitor.slow_handler", "999999999999999999999d", "above the maximum 1m");
}

static void test_set_bool_enum_string(void **state)
{
    (void)state;
    sp_config c;
    sp_config_error err;
    sp_config_init(&c);
    assert_int_equal(sp_config_set(&c, "log.access", "yes", SP_CONFIG_FLAG, NULL, 0, &err), 0);
    assert_true(c.access_log);
    assert_int_equal(sp_config_set(&c, "log.access", "OFF", SP_CONFIG_FLAG, NULL, 0, &err), 0);
    assert_false(c.access_log);
    assert_int_equal(sp_config_set(&c, "log.level", "WARN", SP_CONFIG_FLAG, NULL, 0, &err), 0);
    assert_string_equal(c.log_level, "warn");
    assert_int_equal(sp_config_set(&c, "store.fsync", "Never", SP_CONFIG_FLAG, NULL, 0, &err), 0);
    assert_string_equal(c.fsync, "never");
    assert_int_equal(sp_config_set(&c, "http.host", "::1", SP_CONFIG_FLAG, NULL, 0, &err), 0);
    assert_string_equal(c.host, "::1");
    assert_int_equal(sp_config_set(&c, "server.data_dir", "/var/lib/spate données", SP_CONFIG_FLAG,
                                   NULL, 0, &err),
                     0);
    assert_string_equal(c.data_dir, "/var/lib/spate données");
    sp_config_free(&c);

    expect_set_error("log.access", "maybe", "--set log.access: 'maybe' is not true or false");
    expect_set_error("log.level", "verbose", "'verbose' is not one of debug|info|warn|error");
    expect_set_error("log.level", "inf", "is not one of");
    expect_set_error("log.level", "info|warn", "is not one of");
    expect_set_error("log.level", "", "is not one of");
    expect_set_error("store.fsync", "sometimes", "is not one of always|interval|never");
    expect_set_error("http.host", "", "http.host: the value must not be empty");
    expect_set_error("http.host", "\xff\xfe", "not valid UTF-8");
    expect_set_error("http.host", "\xc0\x80", "not valid UTF-8");     /* overlong NUL */
    expect_set_error("http.host", "\xed\xa0\x80", "not valid UTF-8"); /* surrogate */
    char long_host[300];
    memset(long_host, 'a', sizeof long_host - 1);
    long_host[sizeof long_host - 1] = '\0';
    expect_set_error("http.host", long_host, "longer than 255 bytes");
}

static void test_set_unknown(void **state)
{
    (void)state;
    expect_set_error("http.prot", "80",
                     "--set: unknown setting 'http.prot' (did you mean 'http.port'?)");
    expect_set_error("server.port", "80", "(did you mean 'http.port'?)");
    expect_set_error("max_body_bytes", "1", "did you mean 'http.max_body_bytes'?");
    expect_set_error("nothing.like.it", "1", "unknown setting 'nothing.like.it'");
    expect_set_error("", "1", "unknown setting ''");
    expect_set_error("http", "1", "unknown setting 'http'");
    expect_set_error("kafka", "1", "unknown setting 'kafka'");
    /* A long key is shown cut short and gets no suggestion. */
    char key[400];
    memset(key, 'k', sizeof key - 1);
    key[sizeof key - 1] = '\0';
    expect_set_error(key, "1", "unknown setting 'kkkk");
}

/* ---- the YAML loader ------------------------------------------------------ */

static void test_load_basic(void **state)
{
    (void)state;
    sp_config c;
    sp_config_error err;
    sp_config_init(&c);
    const char *yaml = "# a comment\n"
                       "server:\n"
                       "  threads: 4\n"
                       "  data_dir: '/srv/spate'\n"
                       "http:\n"
                       "  port: 8080\n"
                       "  max_body_bytes: 2MiB\n"
                       "http.host: \"0.0.0.0\"\n"
                       "log: {level: debug, access: on}\n"
                       "store:\n"
                       "  retention: 1d\n"
                       "  fsync: !!str interval\n"
                       "monitor:\n"
                       "  slow_handler: &slow 20ms\n";
    assert_int_equal(load(&c, yaml, &err), 0);
    assert_int_equal(c.threads, 4);
    assert_string_equal(c.data_dir, "/srv/spate");
    assert_int_equal(c.port, 8080);
    assert_int_equal(c.max_body_bytes, 2 * 1024 * 1024);
    assert_string_equal(c.host, "0.0.0.0");
    assert_string_equal(c.log_level, "debug");
    assert_true(c.access_log);
    assert_int_equal(c.retention_ms, 86400000);
    assert_string_equal(c.fsync, "interval");
    assert_int_equal(c.slow_handler_ms, 20);
    sp_config_free(&c);
}

static void test_load_empty(void **state)
{
    (void)state;
    static const char *const empties[] = {
        "",           "# only a comment\n",
        "---\n",      "---\n...\n",
        "{}\n",       "\n\n\n",
        "http:\n",    "kafka:\n  # bootstrap.servers: x\n",
        "http: {}\n", "\xef\xbb\xbfhttp: {port: 1}\n",
    };
    for (size_t i = 0; i < sizeof empties / sizeof empties[0]; i++) {
        sp_config c;
        sp_config_error err;
        sp_config_init(&c);
        if (load(&c, empties[i], &err) != 0)
            fail_msg("'%s' failed: %s", empties[i], err.msg);
        sp_config_free(&c);
    }
    sp_config c;
    sp_config_error err;
    sp_config_init(&c);
    assert_int_equal(sp_config_load_string(&c, "x", NULL, 0, &err), 0);
    sp_config_free(&c);
}

static void test_load_errors(void **state)
{
    (void)state;
    expect_load_error("http:\n  prot: 80\n",
                      "spate.yaml:2: unknown setting 'http.prot' (did you mean 'http.port'?)");
    expect_load_error("http:\n  port: 1\n\n  port: abc\n",
                      "spate.yaml:4: http.port: 'abc' is not a whole number");
    expect_load_error("log:\n  level: loud\n", "spate.yaml:2: log.level: 'loud' is not one of");
    expect_load_error("store:\n  retention: 1y\n",
                      "spate.yaml:2: store.retention: '1y' is not a duration");
    expect_load_error("http:\n  port: 1\n  port: 2\n",
                      "spate.yaml:3: http.port: set twice (first on line 2)");
    expect_load_error("http:\n  port: 1\nhttp.port: 2\n",
                      "spate.yaml:3: http.port: set twice (first on line 2)");
    expect_load_error("kafka:\n  a: 1\n  a: 2\n", "spate.yaml:3: kafka.a: set twice");
    expect_load_error("htp:\n  port: 80\n", "spate.yaml:1: unknown setting 'htp'");
    expect_load_error("- 1\n- 2\n", "spate.yaml:1: the document must be a mapping");
    expect_load_error("just words\n", "the document must be a mapping");
    expect_load_error("http: 80\n",
                      "spate.yaml:1: http: this is a group of settings, not a setting");
    expect_load_error("kafka: x\n", "kafka: this is a group of settings");
    expect_load_error("http:\n  port:\n", "spate.yaml:2: http.port: no value given");
    expect_load_error("http:\n  port: {a: 1}\n",
                      "spate.yaml:2: http.port: expected a single value, found a mapping");
    expect_load_error("http: {port: 1}\n---\nlog: {access: on}\n",
                      "spate.yaml:2: only one YAML document");
    expect_load_error("? [a, b]\n: 1\n", "a key must be a single word");
    expect_load_error("? {a: b}\n: 1\n", "a key must be a single word");
    expect_load_error("\"\": 1\n", "spate.yaml:1: empty key");
    expect_load_error("http:\n  host: \"a\\0b\"\n",
                      "spate.yaml:2: http.host: contains a NUL character");
    /* A raw NUL byte: stopped before the parser. */
    sp_config c;
    sp_config_error err;
    sp_config_init(&c);
    assert_int_equal(sp_config_load_string(&c, "n.yaml", "http:\n  port: 1\0\n", 17, &err),
                     -EINVAL);
    assert_string_equal(err.msg, "n.yaml:2: character U+0000 is not allowed in YAML");
    sp_config_free(&c);
    expect_load_error("http:\n  host: a\xc3\n", "spate.yaml:2: not UTF-8 text (byte 0xc3)");
    expect_load_error("http:\n  host: \xff\xfe\n", "spate.yaml:2: not UTF-8 text (byte 0xff)");
    expect_load_error("%\x86",
                      "spate.yaml:1: not UTF-8 text (byte 0x86)"); /* hangs libfyaml 0.7.12 */
    expect_load_error("%\"\xa6", "spate.yaml:1: not UTF-8");       /* libfyaml issue #101 */
    expect_load_error("http:\n\n  host: a\x01"
                      "b\n",
                      "spate.yaml:3: character U+0001 is not allowed");
    expect_load_error("http:\n  host: a\xc2\x80\n",
                      "spate.yaml:2: character U+0080 is not allowed");
    expect_load_error("http:\n  host: \xef\xbf\xbf\n", "character U+FFFF is not allowed");
    expect_load_error("http:\n  host: \"\\ud800\"\n", "spate.yaml:2: ");
    expect_load_error("http:\n  port: 1\n  bogus: [1]\n",
                      "spate.yaml:3: unknown setting 'http.bogus'");
}

static void test_load_sequence_alias(void **state)
{
    (void)state;
    expect_load_error("http:\n  port: [8000, 8001]\n",
                      "spate.yaml:2: http.port: expected a single value, found a list");
    expect_load_error("http:\n  host:\n    - a\n    - b\n",
                      "spate.yaml:2: http.host: expected a single value, found a list");
    expect_load_error("kafka:\n  a: &p 1\nhttp:\n  port: *p\n",
                      "spate.yaml:4: http.port: expected a single value, found an alias");
    expect_load_error("kafka:\n  a: [1]\n",
                      "spate.yaml:2: kafka.a: expected a single value, found a list");
    expect_load_error("base: &b {port: 1}\nhttp:\n  <<: *b\n",
                      "spate.yaml:1: unknown setting 'base'");
    expect_load_error("http:\n  <<: {port: 1}\n", "unknown setting 'http.<<'");
}

static void test_load_syntax_error(void **state)
{
    (void)state;
    expect_load_error("http:\n  port: 1\n  host: \"unterminated\n", "spate.yaml:3: invalid YAML: ");
    expect_load_error("http:\n  port: [1\n", "spate.yaml:");
    expect_load_error("http: {port: 1\n", "invalid YAML");
    expect_load_error("http:\n\tport: 1\n", "spate.yaml:2: invalid YAML");
    expect_load_error("http:\n  port: 1\n  host: x: y\n", "spate.yaml:3: invalid YAML");
    expect_load_error("http:\n  port: 1\n port: 2\n", "invalid YAML");
}

static void test_load_deep_and_long(void **state)
{
    (void)state;
    /* Nesting deeper than the limit under kafka. */
    char yaml[2048] = "kafka:\n";
    size_t len = strlen(yaml);
    for (int d = 1; d <= SP_CONFIG_DEPTH_MAX + 1; d++) {
        len += (size_t)snprintf(yaml + len, sizeof yaml - len, "%*sk%d:\n", 2 * d, "", d);
    }
    snprintf(yaml + len, sizeof yaml - len, "%*sv: 1\n", 2 * (SP_CONFIG_DEPTH_MAX + 2), "");
    expect_load_error(yaml, "nested more than 16 deep");
    /* A key longer than the limit. */
    char key[SP_CONFIG_KEY_MAX + 2];
    memset(key, 'x', sizeof key - 1);
    key[sizeof key - 1] = '\0';
    snprintf(yaml, sizeof yaml, "kafka:\n  %s: 1\n", key);
    expect_load_error(yaml, "spate.yaml:2: key longer than 128 bytes");
}

static void test_load_atomic(void **state)
{
    (void)state;
    sp_config c, before;
    sp_config_error err;
    sp_config_init(&c);
    assert_int_equal(load(&c, "http: {port: 1}\nkafka: {a: x}\n", &err), 0);
    sp_config_init(&before);
    assert_int_equal(load(&before, "http: {port: 1}\nkafka: {a: x}\n", &err), 0);
    assert_int_equal(
        load(&c, "http:\n  port: 2\n  host: h\nkafka: {a: y, b: z}\nlog: {level: x}\n", &err),
        -EINVAL);
    assert_true(sp_config_equal(&c, &before));
    assert_int_equal(c.port, 1);
    assert_string_equal(kafka_get(&c, "a"), "x");
    sp_config_free(&c);
    sp_config_free(&before);
}

/* ---- kafka ---------------------------------------------------------------- */

static void test_kafka_passthrough(void **state)
{
    (void)state;
    sp_config c;
    sp_config_error err;
    sp_config_init(&c);
    const char *yaml = "kafka:\n"
                       "  bootstrap.servers: \"k1:9092,k2:9092\"\n"
                       "  linger.ms: 5\n"
                       "  ssl:\n"
                       "    ca.location: /etc/ca.pem\n"
                       "  acks: all\n"
                       "kafka.client.id: spate\n";
    assert_int_equal(load(&c, yaml, &err), 0);
    assert_int_equal(c.kafka_len, 5);
    assert_string_equal(c.kafka[0].key, "bootstrap.servers");
    assert_string_equal(c.kafka[0].value, "k1:9092,k2:9092");
    assert_string_equal(c.kafka[1].key, "linger.ms");
    assert_string_equal(c.kafka[1].value, "5");
    assert_string_equal(c.kafka[2].key, "ssl.ca.location");
    assert_string_equal(c.kafka[2].value, "/etc/ca.pem");
    assert_string_equal(c.kafka[3].key, "acks");
    assert_string_equal(c.kafka[4].key, "client.id");

    /* Later sources replace a value in place and append new keys. */
    char *env[] = {"SPATE_KAFKA_LINGER_MS=20", "SPATE_KAFKA_BOOTSTRAP=env:9092",
                   "SPATE_KAFKA_COMPRESSION_TYPE=lz4", NULL};
    assert_int_equal(sp_config_load_env(&c, env, &err), 0);
    assert_int_equal(sp_config_set(&c, "kafka.linger.ms", "50", SP_CONFIG_FLAG, NULL, 0, &err), 0);
    assert_int_equal(
        sp_config_set(&c, "kafka.queue.buffering.max.ms", "7", SP_CONFIG_FLAG, NULL, 0, &err), 0);
    assert_int_equal(c.kafka_len, 7);
    static const char *const keys[] = {
        "bootstrap.servers", "linger.ms",        "ssl.ca.location",       "acks",
        "client.id",         "compression.type", "queue.buffering.max.ms"};
    static const char *const values[] = {"env:9092", "50", "/etc/ca.pem", "all", "spate",
                                         "lz4",      "7"};
    for (size_t i = 0; i < 7; i++) {
        assert_string_equal(c.kafka[i].key, keys[i]);
        assert_string_equal(c.kafka[i].value, values[i]);
    }
    sp_config_free(&c);
}

static void test_kafka_limits(void **state)
{
    (void)state;
    sp_config c;
    sp_config_error err;
    sp_config_init(&c);
    assert_int_equal(sp_config_set(&c, "kafka.", "x", SP_CONFIG_FLAG, NULL, 0, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "a kafka key is 1 to 128 letters"));
    assert_int_equal(sp_config_set(&c, "kafka.a b", "x", SP_CONFIG_FLAG, NULL, 0, &err), -EINVAL);
    assert_int_equal(sp_config_set(&c, "kafka.a", "\xff", SP_CONFIG_FLAG, NULL, 0, &err), -EINVAL);
    assert_int_equal(sp_config_set(&c, "kafka.empty", "", SP_CONFIG_FLAG, NULL, 0, &err), 0);
    for (int i = 1; i < SP_CONFIG_KAFKA_MAX; i++) {
        char key[32];
        snprintf(key, sizeof key, "kafka.k%d", i);
        assert_int_equal(sp_config_set(&c, key, "v", SP_CONFIG_FLAG, NULL, 0, &err), 0);
    }
    assert_int_equal(c.kafka_len, SP_CONFIG_KAFKA_MAX);
    assert_int_equal(sp_config_set(&c, "kafka.one.more", "v", SP_CONFIG_FLAG, NULL, 0, &err),
                     -EINVAL);
    assert_non_null(strstr(err.msg, "more than 256 kafka settings"));
    assert_int_equal(sp_config_set(&c, "kafka.k1", "replaced", SP_CONFIG_FLAG, NULL, 0, &err), 0);
    assert_string_equal(kafka_get(&c, "k1"), "replaced");
    sp_config_free(&c);
}

/* ---- environment and precedence ------------------------------------------- */

static void test_env(void **state)
{
    (void)state;
    sp_config c;
    sp_config_error err;
    sp_config_init(&c);
    char *env[] = {"PATH=/usr/bin",
                   "SPATE_HTTP_PORT=9000",
                   "SPATE_HTTP_MAX_BODY_BYTES=8m",
                   "SPATE_LOG_ACCESS=true",
                   "SPATE_CONFIG=/etc/spate.yaml",
                   "SPATE_NOT_A_KEY=1",
                   "SPATE_KAFKA_BOOTSTRAP=b:9092",
                   "SPATE_KAFKA_=x",
                   "SPATE_",
                   "SPATE_HTTP_HOST",
                   "spate_http_port=1",
                   "SPATE_STORE_FSYNC=interval",
                   NULL};
    assert_int_equal(sp_config_load_env(&c, env, &err), 0);
    assert_int_equal(c.port, 9000);
    assert_int_equal(c.max_body_bytes, 8 * 1024 * 1024);
    assert_true(c.access_log);
    assert_string_equal(c.fsync, "interval");
    assert_int_equal(c.kafka_len, 1);
    assert_string_equal(kafka_get(&c, "bootstrap.servers"), "b:9092");
    assert_int_equal(sp_config_load_env(&c, NULL, &err), 0);
    sp_config_free(&c);
}

static void test_env_errors(void **state)
{
    (void)state;
    sp_config c, def;
    sp_config_error err;
    sp_config_init(&c);
    sp_config_init(&def);
    char *env1[] = {"SPATE_HTTP_HOST=h", "SPATE_HTTP_PORT=abc", NULL};
    assert_int_equal(sp_config_load_env(&c, env1, &err), -EINVAL);
    assert_string_equal(err.msg, "SPATE_HTTP_PORT: 'abc' is not a whole number");
    assert_true(sp_config_equal(&c, &def)); /* the host was not kept either */
    char *env2[] = {"SPATE_STORE_RETENTION=forever", NULL};
    assert_int_equal(sp_config_load_env(&c, env2, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "SPATE_STORE_RETENTION: 'forever' is not a duration"));
    char *env3[] = {"SPATE_KAFKA_A B=1", NULL};
    assert_int_equal(sp_config_load_env(&c, env3, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "SPATE_KAFKA_A B: a kafka key"));
    char name[400];
    snprintf(name, sizeof name, "SPATE_KAFKA_%0300d=1", 0);
    char *env4[] = {name, NULL};
    assert_int_equal(sp_config_load_env(&c, env4, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "too long"));
    assert_true(sp_config_equal(&c, &def));
    sp_config_free(&c);
    sp_config_free(&def);
}

static void test_precedence(void **state)
{
    (void)state;
    sp_config c;
    sp_config_error err;
    sp_config_init(&c);
    /* file < env < flag, each source applied in that order by the CLI. */
    assert_int_equal(load(&c,
                          "http: {port: 1111, host: file-host, max_headers: 50}\n"
                          "log: {level: debug}\nkafka: {acks: \"1\"}\n",
                          &err),
                     0);
    char *env[] = {"SPATE_HTTP_PORT=2222", "SPATE_HTTP_HOST=env-host", "SPATE_KAFKA_ACKS=all",
                   NULL};
    assert_int_equal(sp_config_load_env(&c, env, &err), 0);
    assert_int_equal(sp_config_set(&c, "http.port", "3333", SP_CONFIG_FLAG, "--port", 0, &err), 0);
    assert_int_equal(c.port, 3333);          /* flag wins */
    assert_string_equal(c.host, "env-host"); /* env beats file */
    assert_int_equal(c.max_headers, 50);     /* file beats default */
    assert_string_equal(c.log_level, "debug");
    assert_int_equal(c.max_body_bytes, 1024 * 1024); /* default */
    assert_string_equal(kafka_get(&c, "acks"), "all");
    sp_config_free(&c);
}

/* ---- print and round trip ------------------------------------------------- */

static void round_trip(const sp_config *c)
{
    sp_config back;
    sp_config_error err;
    char *text = print_to_string(c);
    sp_config_init(&back);
    if (load(&back, text, &err) != 0)
        fail_msg("printed config does not load: %s\n%s", err.msg, text);
    if (!sp_config_equal(c, &back))
        fail_msg("round trip changed the config:\n%s", text);
    char *again = print_to_string(&back);
    assert_string_equal(text, again);
    free(again);
    free(text);
    sp_config_free(&back);
}

static void test_print_round_trip(void **state)
{
    (void)state;
    sp_config c;
    sp_config_error err;
    sp_config_init(&c);
    round_trip(&c);
    static const char *const sets[][2] = {
        {"http.host", "a \"quoted\" \\ host: #not-a-comment\n\ttab"},
        {"server.data_dir",
         "/srv/d\xc3\xa9j\xc3\xa0 \xe2\x80\xa8ls \xc2\x85nel \xef\xbb\xbf bom \xf0\x9f\x8c\x8a"},
        {"http.port", "0"},
        {"server.threads", "3"},
        {"http.max_body_bytes", "1025"},
        {"store.retention_bytes", "3t"},
        {"store.retention", "90m"},
        {"http.body_timeout", "1500"},
        {"log.access", "on"},
        {"log.level", "ERROR"},
        {"kafka.bootstrap.servers", "k:9092"},
        {"kafka.sasl.password", "p'a\"s: s\x01\x7f - [x] {y} *z &w !v %u @t `s"},
        {"kafka.empty", ""},
        {"kafka.weird-key_1", "null"},
        {"kafka.yes", "no"},
    };
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++)
        assert_int_equal(sp_config_set(&c, sets[i][0], sets[i][1], SP_CONFIG_FLAG, NULL, 0, &err),
                         0);
    round_trip(&c);
    char *text = print_to_string(&c);
    assert_non_null(strstr(text, "  max_body_bytes: 1025\n"));
    assert_non_null(strstr(text, "  retention_bytes: 3TiB\n"));
    assert_non_null(strstr(text, "  retention: 90m\n"));
    assert_non_null(strstr(text, "  body_timeout: 1500ms\n"));
    assert_non_null(strstr(text, "  level: error\n"));
    assert_non_null(strstr(text, "kafka:\n  \"bootstrap.servers\": \"k:9092\"\n"));
    assert_non_null(strstr(text, "\\u2028"));
    assert_non_null(strstr(text, "\\u0085"));
    assert_non_null(strstr(text, "\\ufeff"));
    assert_non_null(strstr(text, "\\x01\\x7f"));
    free(text);
    sp_config_free(&c);
}

/* ---- routes ---------------------------------------------------------------- */

static void test_routes_default(void **state)
{
    (void)state;
    sp_config c;
    sp_config_route r[SP_CONFIG_ROUTES_MAX];
    sp_config_init(&c);
    assert_false(c.routes_declared);
    assert_int_equal(sp_config_routes(&c, r), 2);
    assert_string_equal(r[0].method, "GET");
    assert_string_equal(r[0].path, "/latest-news");
    assert_string_equal(r[0].topic, "latest-news");
    assert_int_equal(r[0].action, SP_CONFIG_ACTION_LATEST);
    assert_int_equal(r[0].limit, 10);
    assert_null(r[0].schema);
    assert_string_equal(r[1].method, "POST");
    assert_string_equal(r[1].path, "/items");
    assert_string_equal(r[1].topic, "items");
    assert_int_equal(r[1].action, SP_CONFIG_ACTION_PRODUCE);
    assert_string_equal(r[1].schema, "builtin:item");
    /* the demo.* keys still name the default routes' topics, "" turns one off */
    assert_int_equal(sp_config_set(&c, "demo.news_topic", "news", SP_CONFIG_FLAG, NULL, 0, NULL),
                     0);
    assert_int_equal(sp_config_set(&c, "demo.items_topic", "", SP_CONFIG_FLAG, NULL, 0, NULL), 0);
    assert_int_equal(sp_config_routes(&c, r), 1);
    assert_string_equal(r[0].topic, "news");
    sp_config_free(&c);
}

static void test_routes_load(void **state)
{
    (void)state;
    sp_config c;
    sp_config_error err;
    sp_config_route r[SP_CONFIG_ROUTES_MAX];
    sp_config_init(&c);
    assert_int_equal(load(&c,
                          "http: {port: 9}\n"
                          "routes:\n"
                          "  - {method: get, path: /news, topic: news, action: latest, limit: 3}\n"
                          "  - method: POST\n"
                          "    path: /orders/new\n"
                          "    topic: orders\n"
                          "    action: produce\n"
                          "    schema: '{\"type\": \"object\"}'\n"
                          "  - {method: PUT, path: /o, topic: orders, action: PRODUCE,\n"
                          "     schema_file: ./order.json}\n"
                          "  - {method: GET, path: /o, topic: orders, action: latest}\n",
                          &err),
                     0);
    assert_true(c.routes_declared);
    assert_int_equal(sp_config_routes(&c, r), 4);
    assert_string_equal(r[0].method, "GET");
    assert_int_equal(r[0].limit, 3);
    assert_int_equal(r[0].line, 3);
    assert_string_equal(r[1].path, "/orders/new");
    assert_string_equal(r[1].schema, "{\"type\": \"object\"}");
    assert_int_equal(r[1].limit, 0);
    assert_int_equal(r[1].line, 4);
    assert_string_equal(r[2].method, "PUT");
    assert_int_equal(r[2].action, SP_CONFIG_ACTION_PRODUCE);
    assert_string_equal(r[2].schema_file, "./order.json");
    assert_int_equal(r[3].limit, 10); /* the default */
    assert_int_equal(c.port, 9);
    /* a second file replaces the routes; [] declares none */
    assert_int_equal(load(&c, "routes: []\n", &err), 0);
    assert_true(c.routes_declared);
    assert_int_equal(sp_config_routes(&c, r), 0);
    sp_config_free(&c);
}

static void test_routes_errors(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"routes:\n  - {method: GETT, path: /a, topic: t, action: latest}\n",
         "spate.yaml:2: routes[0].method: 'GETT' is not one of GET, POST, PUT"},
        {"routes:\n  - {method: GET, path: /a, topic: t, action: latest}\n"
         "  - method: GET\n    path: b\n",
         "spate.yaml:4: routes[1].path: 'b' does not start with '/'"},
        {"routes:\n  - {method: GET, path: /a, action: latest}\n",
         "spate.yaml:2: routes[0]: missing field 'topic'"},
        {"routes:\n  - {method: GET, path: /a, topic: t, action: latest}\n"
         "  - method: GET\n    path: /b\n    topic: t\n    acton: latest\n",
         "spate.yaml:6: routes[1]: unknown field 'acton' (the fields are method, path"},
        {"routes:\n  - {method: GET, path: /a, topic: t, action: latest, path: /b}\n",
         "routes[0].path: given twice"},
        {"routes:\n  - {method: GET, path: /a, topic: t, action: lately}\n",
         "routes[0].action: 'lately' is not one of latest, produce"},
        {"routes:\n  - {method: POST, path: /a, topic: t, action: latest}\n",
         "routes[0].method: action latest takes GET, not POST"},
        {"routes:\n  - {method: GET, path: /a, topic: t, action: produce}\n",
         "routes[0].method: action produce takes POST or PUT, not GET"},
        {"routes:\n  - {method: GET, path: /v1/topics, topic: t, action: latest}\n",
         "routes[0].path: '/v1/topics' is under /v1, which is reserved"},
        {"routes:\n  - {method: GET, path: /v1, topic: t, action: latest}\n", "reserved"},
        {"routes:\n  - {method: GET, path: /debug/x, topic: t, action: latest}\n", "reserved"},
        {"routes:\n  - {method: GET, path: '/a/{t}', topic: t, action: latest}\n",
         "routes[0].path: '/a/{t}' must be literal segments"},
        {"routes:\n  - {method: GET, path: '/a?b', topic: t, action: latest}\n",
         "must be literal segments"},
        {"routes:\n  - {method: GET, path: /a//b, topic: t, action: latest}\n",
         "must be literal segments"},
        {"routes:\n  - {method: GET, path: /a/, topic: t, action: latest}\n", "ends in '/'"},
        {"routes:\n  - {method: GET, path: /a/../b, topic: t, action: latest}\n",
         "has a '.' or '..' segment"},
        {"routes:\n  - {method: GET, path: /1/2/3/4/5/6/7/8/9/10/11/12/13/14/15/16/17, topic: t, "
         "action: latest}\n",
         "more than 16 segments"},
        {"routes:\n  - {method: GET, path: /a, topic: 'a b', action: latest}\n",
         "routes[0].topic: 'a b' is not a topic name"},
        {"routes:\n  - {method: GET, path: /a, topic: '..', action: latest}\n",
         "is not a topic name"},
        {"routes:\n  - {method: GET, path: /a, topic: t, action: latest, limit: 0}\n",
         "routes[0].limit: '0' is not a whole number from 1 to 1024"},
        {"routes:\n  - {method: GET, path: /a, topic: t, action: latest, limit: 1025}\n",
         "from 1 to 1024"},
        {"routes:\n  - {method: GET, path: /a, topic: t, action: latest, limit: ten}\n",
         "from 1 to 1024"},
        {"routes:\n  - {method: POST, path: /a, topic: t, action: produce, limit: 5}\n",
         "routes[0].limit: only a latest route has a limit"},
        {"routes:\n  - {method: POST, path: /a, topic: t, action: produce, schema: x}\n",
         "routes[0].schema: must be JSON Schema text of an object"},
        {"routes:\n  - {method: POST, path: /a, topic: t, action: produce, schema: builtin:it}\n",
         "the only builtin schema is builtin:item"},
        {"routes:\n  - {method: POST, path: /a, topic: t, action: produce, schema: {type: x}}\n",
         "routes[0].schema: expected a single value, found a mapping (write the JSON Schema"},
        {"routes:\n  - {method: POST, path: /a, topic: t, action: produce, schema: builtin:item,\n"
         "     schema_file: f.json}\n",
         "routes[0]: give schema or schema_file, not both"},
        {"routes:\n  - {method: GET, path: /a, topic: t, action: latest}\n"
         "  - {method: GET, path: /a, topic: u, action: latest}\n",
         "spate.yaml:3: routes[1]: GET /a is already declared by routes[0] (line 2)"},
        {"routes:\n  - {method: GET, path: /a, topic: t, action: latest}\nroutes: []\n",
         "spate.yaml:3: routes: set twice (first on line 1)"},
        {"routes:\n  - {method: GET, path:, topic: t, action: latest}\n",
         "routes[0].path: no value given"},
        {"routes:\n  - {method: GET, path: '', topic: t, action: latest}\n",
         "routes[0].path: the value must not be empty"},
        {"routes:\n  - {method: [GET], path: /a, topic: t, action: latest}\n",
         "routes[0].method: expected a single value, found a list"},
        {"routes:\n  - {method: &m GET, path: /a, topic: t, action: latest}\n"
         "  - {method: *m, path: /b, topic: t, action: latest}\n",
         "routes[1].method: expected a single value, found an alias"},
        {"routes:\n  - {? [a]: 1}\n", "routes[0]: a field name must be a single word, not a list"},
        {"routes:\n  - /a\n", "spate.yaml:2: routes[0]: a route is a mapping of fields"},
        {"routes:\n  - [GET, /a]\n", "routes[0]: a route is a mapping of fields"},
        {"routes:\n", "spate.yaml:1: routes: expected a list of routes (write routes: [] to"},
        {"routes: /a\n", "routes: expected a list of routes"},
        {"routes: {a: 1}\n", "unknown setting 'routes'"},
        {"demo:\n  routes: []\n", "unknown setting 'demo.routes'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_load_error(cases[i][0], cases[i][1]);
}

static void test_routes_limit_and_atomic(void **state)
{
    (void)state;
    char yaml[8192];
    size_t n = (size_t)snprintf(yaml, sizeof yaml, "routes:\n");
    for (int i = 0; i <= SP_CONFIG_ROUTES_MAX; i++)
        n += (size_t)snprintf(yaml + n, sizeof yaml - n,
                              "  - {method: GET, path: /r%d, topic: t, action: latest}\n", i);
    expect_load_error(yaml, "routes[32]: more than 32 routes");
    /* 32 load; a bad field later in the file leaves cfg as it was */
    char *last = strstr(yaml, "  - {method: GET, path: /r32,");
    *last = '\0';
    sp_config c;
    sp_config_error err;
    sp_config_route r[SP_CONFIG_ROUTES_MAX];
    sp_config_init(&c);
    assert_int_equal(load(&c, yaml, &err), 0);
    assert_int_equal(sp_config_routes(&c, r), SP_CONFIG_ROUTES_MAX);
    sp_config before;
    sp_config_init(&before);
    assert_int_equal(load(&before, yaml, &err), 0);
    assert_int_equal(load(&c,
                          "routes:\n  - {method: GET, path: /x, topic: x, action: latest}\n"
                          "http: {port: -1}\n",
                          &err),
                     -EINVAL);
    assert_true(sp_config_equal(&c, &before));
    assert_int_equal(load(&c, "routes:\n  - {method: GET, path: /x, topic: x", &err), -EINVAL);
    assert_true(sp_config_equal(&c, &before));
    sp_config_free(&before);
    sp_config_free(&c);
}

static void test_routes_env_flags(void **state)
{
    (void)state;
    expect_set_error("routes", "[]", "--set routes: routes are declared in the configuration file");
    sp_config c, def;
    sp_config_error err;
    sp_config_init(&c);
    sp_config_init(&def);
    char *envp[] = {"SPATE_ROUTES=[]", NULL};
    assert_int_equal(sp_config_load_env(&c, envp, &err), 0); /* not a setting: ignored */
    assert_true(sp_config_equal(&c, &def));
    sp_config_free(&c);
    sp_config_free(&def);
}

static void test_routes_print_round_trip(void **state)
{
    (void)state;
    sp_config c, d;
    sp_config_error err;
    sp_config_init(&c);
    sp_config_init(&d);
    /* without routes: the defaults print, and load back equal */
    char *text = print_to_string(&c);
    assert_non_null(strstr(text, "routes:\n  - {method: GET, path: \"/latest-news\", topic: "
                                 "\"latest-news\", action: latest, limit: 10}\n  - {method: POST, "
                                 "path: \"/items\", topic: \"items\", action: produce, schema: "
                                 "\"builtin:item\"}\n"));
    free(text);
    round_trip(&c);
    /* declared ones equal to the defaults are equal; a change is not */
    assert_int_equal(
        load(&d,
             "routes:\n"
             "  - {method: GET, path: /latest-news, topic: latest-news, action: latest}\n"
             "  - {method: POST, path: /items, topic: items, action: produce,\n"
             "     schema: builtin:item}\n",
             &err),
        0);
    assert_true(sp_config_equal(&c, &d));
    assert_int_equal(load(&d,
                          "routes:\n"
                          "  - {method: GET, path: /latest-news, topic: latest-news, action: "
                          "latest, limit: 11}\n"
                          "  - {method: POST, path: /items, topic: items, action: produce,\n"
                          "     schema: builtin:item}\n",
                          &err),
                     0);
    assert_false(sp_config_equal(&c, &d));
    /* awkward strings survive */
    assert_int_equal(
        load(&c,
             "routes:\n"
             "  - {method: PUT, path: /a.b/c_d~e-f, topic: t.1_x-y, action: produce,\n"
             "     schema: \"{\\\"type\\\": \\\"object\\\", \\\"description\\\": \\\"a "
             "\\\\\\\"q\\\\\\\" "
             "\\u2028 # \\\\n\\\"}\\n\\t\"}\n"
             "  - {method: POST, path: /f, topic: f, action: produce, schema_file: \"d i r/\\u00e9 "
             "'s\\\"\"}\n"
             "  - {method: GET, path: /, topic: g, action: latest, limit: 1024}\n",
             &err),
        0);
    round_trip(&c);
    text = print_to_string(&c);
    assert_non_null(strstr(text, "  - {method: GET, path: \"/\", topic: \"g\", action: latest, "
                                 "limit: 1024}\n"));
    free(text);
    assert_int_equal(load(&c, "routes: []\n", &err), 0);
    text = print_to_string(&c);
    assert_non_null(strstr(text, "\nroutes: []\n"));
    free(text);
    round_trip(&c);
    assert_false(sp_config_equal(&c, &d));
    sp_config_free(&c);
    sp_config_free(&d);
}

/* libfyaml 0.7.12 leaks on runs of '' in single-quoted scalars (upstream
 * #233); the loader decodes those itself. LSan checks the leak is gone,
 * and the same text without runs (decoded by libfyaml) checks the folding. */
static void test_single_quoted_runs(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"kafka: {a: 'x''''y'}\n", "x''y"},
        {"kafka: {a: 'x''''''''''''''''''''y'}\n", "x''''''''''y"},
        {"kafka: {a: ''''''''}\n", "'''"},
        {"kafka:\n  a: 'one''''  \n    two\n\n    three '\n", "one'' two\nthree "},
        {"kafka:\n  a: 'one''  \n    two\n\n    three '\n", "one' two\nthree "},
        {"kafka:\n  a: 'x''''\n\n\n   y'\n", "x''\n\ny"},
        {"kafka:\n  a: 'x''\n\n\n   y'\n", "x'\n\ny"},
        {"kafka:\r\n  a: 'x''''\r\n   y'\r\n", "x'' y"},
        {"kafka:\r\n  a: 'x''\r\n   y'\r\n", "x' y"},
        {"kafka:\n  a: 'x''''\t\n   \ty'\n", "x'' y"},
        {"kafka:\n  a: 'x''\t\n   \ty'\n", "x' y"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sp_config c;
        sp_config_error err;
        sp_config_init(&c);
        if (load(&c, cases[i][0], &err) != 0)
            fail_msg("case %zu: %s", i, err.msg);
        assert_string_equal(kafka_get(&c, "a"), cases[i][1]);
        round_trip(&c);
        sp_config_free(&c);
    }
    expect_load_error("''''''''''''''''''''''''''''''''''''''''''''''''''''\t",
                      "must be a mapping");
    expect_load_error("'''''''''': 1\n", "unknown setting");
}

/* ---- files ---------------------------------------------------------------- */

static void test_load_file(void **state)
{
    (void)state;
    sp_config c;
    sp_config_error err;
    sp_config_init(&c);
    const char *yaml = "http:\n  port: 7000\n  max_headers: five\n";
    char *path = write_temp(yaml, strlen(yaml));
    assert_int_equal(sp_config_load_file(&c, path, &err), -EINVAL);
    char want[256];
    snprintf(want, sizeof want, "%s:3: http.max_headers: 'five' is not a whole number", path);
    assert_string_equal(err.msg, want);
    assert_int_equal(c.port, 8000);
    unlink(path);
    free(path);

    yaml = "http:\n  port: 7000\n";
    path = write_temp(yaml, strlen(yaml));
    assert_int_equal(sp_config_load_file(&c, path, &err), 0);
    assert_int_equal(c.port, 7000);
    unlink(path);
    free(path);

    path = write_temp("", 0);
    assert_int_equal(sp_config_load_file(&c, path, &err), 0);
    unlink(path);
    free(path);

    assert_int_equal(sp_config_load_file(&c, "/nonexistent/spate.yaml", &err), -ENOENT);
    assert_non_null(strstr(err.msg, "/nonexistent/spate.yaml: "));
    assert_int_equal(sp_config_load_file(&c, "/tmp", &err), -EISDIR);
    assert_int_equal(c.port, 7000);
    sp_config_free(&c);
}

static void test_load_file_too_big(void **state)
{
    (void)state;
    sp_config c;
    sp_config_error err;
    size_t len = SP_CONFIG_FILE_MAX + 1;
    char *text = malloc(len);
    assert_non_null(text);
    memset(text, '#', len);
    for (size_t i = 80; i < len; i += 80)
        text[i] = '\n';
    char *path = write_temp(text, len);
    sp_config_init(&c);
    assert_int_equal(sp_config_load_file(&c, path, &err), -EFBIG);
    assert_non_null(strstr(err.msg, "larger than the limit"));
    assert_non_null(strstr(err.msg, path));
    assert_int_equal(sp_config_load_string(&c, "big", text, len, &err), -EFBIG);
    assert_non_null(strstr(err.msg, "big: larger than the limit"));
    /* Exactly at the limit is fine (all comments). */
    assert_int_equal(sp_config_load_string(&c, "big", text, len - 1, &err), 0);
    unlink(path);
    free(path);
    free(text);
    sp_config_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_each),
        cmocka_unit_test(test_parse_size),
        cmocka_unit_test(test_parse_duration),
        cmocka_unit_test(test_parse_bool),
        cmocka_unit_test(test_set_int),
        cmocka_unit_test(test_set_size_duration),
        cmocka_unit_test(test_set_bool_enum_string),
        cmocka_unit_test(test_set_unknown),
        cmocka_unit_test(test_load_basic),
        cmocka_unit_test(test_load_empty),
        cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_load_sequence_alias),
        cmocka_unit_test(test_load_syntax_error),
        cmocka_unit_test(test_load_deep_and_long),
        cmocka_unit_test(test_load_atomic),
        cmocka_unit_test(test_kafka_passthrough),
        cmocka_unit_test(test_kafka_limits),
        cmocka_unit_test(test_env),
        cmocka_unit_test(test_env_errors),
        cmocka_unit_test(test_precedence),
        cmocka_unit_test(test_print_round_trip),
        cmocka_unit_test(test_single_quoted_runs),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_load_file_too_big),
        cmocka_unit_test(test_routes_default),
        cmocka_unit_test(test_routes_load),
        cmocka_unit_test(test_routes_errors),
        cmocka_unit_test(test_routes_limit_and_atomic),
        cmocka_unit_test(test_routes_env_flags),
        cmocka_unit_test(test_routes_print_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
