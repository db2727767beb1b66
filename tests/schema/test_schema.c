/* test_schema.c - strict JSON, NDJSON and the JSON Schema subset (src/api/schema.c).
 *
 * The 422 bodies in golden.inc are FastAPI's own answers, captured from the
 * real FastAPI 0.141 + pydantic 2.13 by tests/schema/oracle/gen_golden.py
 * (its docstring says how). Every golden case is checked byte for byte:
 * parse the body strictly, validate against the equivalent JSON Schema,
 * wrap as {"detail":[...]} and compare. Where spate deliberately differs
 * from pydantic's lax mode, the case is in `divergences` below with
 * pydantic's answer quoted next to ours. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api/schema.h"
#include "core/json.h"

enum { ITEM, CONSTRAINED };

static const char constrained_schema[] =
    "{\"$schema\":\"https://json-schema.org/draft/2020-12/schema\",\"title\":\"Constrained\","
    "\"type\":\"object\",\"additionalProperties\":false,"
    "\"properties\":{"
    "\"name\":{\"type\":\"string\",\"minLength\":3,\"maxLength\":8,\"pattern\":\"^[a-z]+$\"},"
    "\"qty\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":100},"
    "\"price\":{\"type\":\"number\",\"exclusiveMinimum\":0,\"exclusiveMaximum\":1000},"
    "\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\"},\"minItems\":1,\"maxItems\":3},"
    "\"kind\":{\"enum\":[\"a\",\"b\",\"it's\"]},"
    "\"one\":{\"const\":1},"
    "\"flag\":{\"type\":\"boolean\"},"
    "\"meta\":{\"type\":\"object\",\"description\":\"anything\"},"
    "\"n\":{\"type\":\"null\"},"
    "\"u\":{\"type\":[\"string\",\"number\"]},"
    "\"u2\":{\"type\":[\"array\",\"object\",\"null\"]}},"
    "\"required\":[\"name\"]}";

typedef struct golden {
    int model;
    const char *body;
    int status;
    const char *fastapi;
} golden;

static const golden goldens[] = {
#include "golden.inc"
};

/* ---- helpers ------------------------------------------------------------ */

static json_t *parse_ok(const char *s)
{
    json_t *v = NULL;
    sp_json_error e;
    int rc = sp_json_parse_strict(s, strlen(s), NULL, &v, &e);
    if (rc)
        fail_msg("parse of %s failed: %s at %zu", s, e.reason, e.position);
    return v;
}

static sp_schema *compile_ok(const char *s)
{
    json_t *js = parse_ok(s);
    sp_schema *sc = NULL;
    char err[256];
    int rc = sp_schema_compile(js, &sc, err, sizeof(err));
    json_decref(js);
    if (rc)
        fail_msg("compile failed: %s", err);
    return sc;
}

/* Validates and wraps the way the API layer does; returns the count. */
static int detail(const sp_schema *sc, const json_t *v, sp_buf *b, size_t max_errors)
{
    sp_buf_init(b, 1 << 16);
    assert_int_equal(sp_buf_append_cstr(b, "{\"detail\":["), 0);
    int n = sp_schema_validate(sc, v, b, max_errors);
    assert_int_equal(sp_buf_append_cstr(b, "]}"), 0);
    return n;
}

static void expect_detail(const char *schema, const char *body, const char *want)
{
    sp_schema *sc = compile_ok(schema);
    json_t *v = parse_ok(body);
    sp_buf b;
    int n = detail(sc, v, &b, 100);
    if (!want) {
        assert_int_equal(n, 0);
    } else {
        assert_true(n > 0);
        assert_string_equal(b.base, want);
    }
    sp_buf_free(&b);
    json_decref(v);
    sp_schema_free(sc);
}

/* ---- golden vectors from FastAPI ------------------------------------------ */

static void test_golden_fastapi(void **state)
{
    (void)state;
    sp_schema *item = compile_ok(sp_schema_item_json);
    sp_schema *cons = compile_ok(constrained_schema);
    for (size_t i = 0; i < sizeof(goldens) / sizeof(goldens[0]); i++) {
        const golden *g = &goldens[i];
        json_t *v = parse_ok(g->body);
        sp_buf b;
        int n = detail(g->model == ITEM ? item : cons, v, &b, 100);
        if (g->status == 200) {
            if (n != 0)
                fail_msg("case %zu %s: expected valid, got %s", i, g->body, b.base);
        } else if (strcmp(b.base, g->fastapi) != 0) {
            fail_msg("case %zu %s:\n  want %s\n  got  %s", i, g->body, g->fastapi, b.base);
        }
        sp_buf_free(&b);
        json_decref(v);
    }
    sp_schema_free(item);
    sp_schema_free(cons);
}

/* Deliberate differences: a JSON Schema type is not pydantic's lax mode. */
static void test_divergences_no_coercion(void **state)
{
    (void)state;
    static const struct {
        const char *body, *pydantic, *spate;
    } cases[] = {
        /* pydantic: 200 (lax "12.5" -> 12.5). spate: a string is not a number;
         * the *_type message because the string would have parsed. */
        {"{\"name\":\"abc\",\"price\":\"12.5\"}", "200",
         "{\"detail\":[{\"type\":\"float_type\",\"loc\":[\"body\",\"price\"],"
         "\"msg\":\"Input should be a valid number\",\"input\":\"12.5\"}]}"},
        /* pydantic: 200 (lax "12" -> 12). */
        {"{\"name\":\"abc\",\"qty\":\" 12 \"}", "200",
         "{\"detail\":[{\"type\":\"int_type\",\"loc\":[\"body\",\"qty\"],"
         "\"msg\":\"Input should be a valid integer\",\"input\":\" 12 \"}]}"},
        /* pydantic: 200 (lax true -> 1 / 1.0). JSON booleans are not numbers. */
        {"{\"name\":\"abc\",\"qty\":true,\"price\":false}", "200",
         "{\"detail\":[{\"type\":\"int_type\",\"loc\":[\"body\",\"qty\"],"
         "\"msg\":\"Input should be a valid integer\",\"input\":true},"
         "{\"type\":\"float_type\",\"loc\":[\"body\",\"price\"],"
         "\"msg\":\"Input should be a valid number\",\"input\":false}]}"},
        /* pydantic: 200 (lax "true" -> True). */
        {"{\"name\":\"abc\",\"flag\":\"true\",\"u\":\"ok\"}", "200",
         "{\"detail\":[{\"type\":\"bool_type\",\"loc\":[\"body\",\"flag\"],"
         "\"msg\":\"Input should be a valid boolean\",\"input\":\"true\"}]}"},
        /* pydantic: 200 (lax 1 -> True). */
        {"{\"name\":\"abc\",\"flag\":1}", "200",
         "{\"detail\":[{\"type\":\"bool_type\",\"loc\":[\"body\",\"flag\"],"
         "\"msg\":\"Input should be a valid boolean\",\"input\":1}]}"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        expect_detail(constrained_schema, cases[i].body, cases[i].spate);
}

static void test_item_seed(void **state)
{
    (void)state;
    /* the seed article's example request */
    expect_detail(sp_schema_item_json,
                  "{\"name\":\"Foo\",\"description\":\"An optional description\",\"price\":45.2,"
                  "\"tax\":3.5}",
                  NULL);
    /* no body at all: FastAPI's missing body */
    sp_schema *sc = compile_ok(sp_schema_item_json);
    sp_buf b;
    assert_int_equal(detail(sc, NULL, &b, 10), 1);
    assert_string_equal(b.base, "{\"detail\":[{\"type\":\"missing\",\"loc\":[\"body\"],"
                                "\"msg\":\"Field required\",\"input\":null}]}");
    sp_buf_free(&b);
    sp_schema_free(sc);
}

static void test_more_keywords(void **state)
{
    (void)state;
    /* spec: 1.0 is an integer; enum compares 1 == 1.0; objects in enums */
    expect_detail("{\"type\":\"integer\",\"enum\":[1,2]}", "1.0", NULL);
    expect_detail("{\"const\":{\"a\":[1,null]}}", "{\"a\":[1.0,null]}", NULL);
    expect_detail("{\"enum\":[null,true,1.5,[1],{\"k\":\"v\"}]}", "false",
                  "{\"detail\":[{\"type\":\"literal_error\",\"loc\":[\"body\"],"
                  "\"msg\":\"Input should be None, True, 1.5, [1] or {'k': 'v'}\",\"input\":false,"
                  "\"ctx\":{\"expected\":\"None, True, 1.5, [1] or {'k': 'v'}\"}}]}");
    /* enum does not hide the other keywords once it matches */
    expect_detail("{\"enum\":[\"a\",\"abcd\"],\"maxLength\":3}", "\"abcd\"",
                  "{\"detail\":[{\"type\":\"string_too_long\",\"loc\":[\"body\"],"
                  "\"msg\":\"String should have at most 3 characters\",\"input\":\"abcd\","
                  "\"ctx\":{\"max_length\":3}}]}");
    /* singular wording, code points not bytes */
    expect_detail("{\"minLength\":1}", "\"\"",
                  "{\"detail\":[{\"type\":\"string_too_short\",\"loc\":[\"body\"],"
                  "\"msg\":\"String should have at least 1 character\",\"input\":\"\","
                  "\"ctx\":{\"min_length\":1}}]}");
    expect_detail("{\"maxLength\":1}", "\"\xf0\x9d\x84\x9e\"", NULL);
    expect_detail("{\"minItems\":2}", "[1]",
                  "{\"detail\":[{\"type\":\"too_short\",\"loc\":[\"body\"],"
                  "\"msg\":\"List should have at least 2 items after validation, not 1\","
                  "\"input\":[1],\"ctx\":{\"field_type\":\"List\",\"min_length\":2,"
                  "\"actual_length\":1}}]}");
    /* keywords for other types do not apply (no type keyword) */
    expect_detail("{\"minLength\":5,\"minimum\":3,\"minItems\":2}", "{\"a\":1}", NULL);
    /* additionalProperties as a schema, nested locs with indexes */
    expect_detail("{\"additionalProperties\":{\"type\":\"array\",\"items\":{\"maximum\":2.5}}}",
                  "{\"a\":[1,3],\"b\":[]}",
                  "{\"detail\":[{\"type\":\"less_than_equal\",\"loc\":[\"body\",\"a\",1],"
                  "\"msg\":\"Input should be less than or equal to 2.5\",\"input\":3,"
                  "\"ctx\":{\"le\":2.5}}]}");
    /* required without properties; a name that needs escaping in loc */
    expect_detail("{\"required\":[\"q\\\"x\"]}", "{}",
                  "{\"detail\":[{\"type\":\"missing\",\"loc\":[\"body\",\"q\\\"x\"],"
                  "\"msg\":\"Field required\",\"input\":{}}]}");
    /* boolean schemas */
    expect_detail("true", "[1]", NULL);
    expect_detail("{\"properties\":{\"x\":false}}", "{\"x\":1}",
                  "{\"detail\":[{\"type\":\"value_error\",\"loc\":[\"body\",\"x\"],"
                  "\"msg\":\"Value error, no value is allowed here\",\"input\":1}]}");
    /* a null body is fine for a schema that allows null */
    expect_detail("{\"type\":[\"object\",\"null\"]}", "null", NULL);
    /* integers are compared exactly beyond 2^53 */
    expect_detail("{\"maximum\":9007199254740992}", "9007199254740993",
                  "{\"detail\":[{\"type\":\"less_than_equal\",\"loc\":[\"body\"],"
                  "\"msg\":\"Input should be less than or equal to 9007199254740992\","
                  "\"input\":9007199254740993,\"ctx\":{\"le\":9007199254740992}}]}");
    /* ERE pattern, unanchored search as in ECMA-262; ordinary patterns pass the size check */
    expect_detail("{\"pattern\":\"b+\"}", "\"abbc\"", NULL);
    expect_detail("{\"pattern\":\"^[a-z0-9._%+-]+@[a-z0-9-]+(\\\\.[a-z0-9-]+)+$\"}",
                  "\"a.b@example.org\"", NULL);
    expect_detail("{\"pattern\":\"^[[:digit:]]{3}-[[:digit:]]{4}$\",\"maxLength\":8}",
                  "\"555-0100\"", NULL);
}

static void test_validate_at_and_commas(void **state)
{
    (void)state;
    sp_schema *sc = compile_ok("{\"type\":\"string\"}");
    json_t *a = parse_ok("1"), *b2 = parse_ok("\"ok\""), *c = parse_ok("[]");
    sp_buf b;
    sp_buf_init(&b, 4096);
    sp_buf_append_cstr(&b, "[");
    assert_int_equal(sp_schema_validate_at(sc, a, "\"body\",0", &b, 5), 1);
    assert_int_equal(sp_schema_validate_at(sc, b2, "\"body\",1", &b, 5), 0);
    assert_int_equal(sp_schema_validate_at(sc, c, "\"body\",2", &b, 5), 1);
    sp_buf_append_cstr(&b, "]");
    assert_string_equal(
        b.base, "[{\"type\":\"string_type\",\"loc\":[\"body\",0],\"msg\":\"Input should be "
                "a valid string\",\"input\":1},{\"type\":\"string_type\",\"loc\":[\"body\",2],"
                "\"msg\":\"Input should be a valid string\",\"input\":[]}]");
    /* counting only */
    assert_int_equal(sp_schema_validate(sc, a, NULL, 5), 1);
    assert_int_equal(sp_schema_validate(sc, b2, NULL, 5), 0);
    sp_buf_free(&b);
    json_decref(a);
    json_decref(b2);
    json_decref(c);
    sp_schema_free(sc);
}

/* ---- limits ---------------------------------------------------------------- */

static void test_error_limits(void **state)
{
    (void)state;
    sp_schema *sc = compile_ok("{\"items\":{\"type\":\"string\"}}");
    json_t *v = parse_ok("[1,2,3,4,5,6,7,8,9,10]");
    sp_buf b;
    /* max_errors stops the walk */
    assert_int_equal(detail(sc, v, &b, 3), 3);
    sp_buf_free(&b);
    assert_int_equal(sp_schema_validate(sc, v, NULL, 0), 1);
    /* a full buffer drops the entry that does not fit, whole, but counts it:
     * one entry (~90 bytes) fits in 100, the second is counted, then stop */
    sp_buf_init(&b, 100);
    int n = sp_schema_validate(sc, v, &b, 100);
    assert_int_equal(n, 2);
    assert_true(b.len <= 100);
    assert_int_equal(b.base[b.len - 1], '}');
    sp_buf_free(&b);
    /* even when not one entry fits, an invalid value is never reported valid */
    sp_buf_init(&b, 10);
    assert_int_equal(sp_schema_validate(sc, v, &b, 100), 1);
    assert_int_equal(b.len, 0);
    sp_buf_free(&b);
    json_t *check = NULL;
    sp_buf_init(&b, 200);
    sp_buf_putc(&b, '[');
    sp_schema_validate(sc, v, &b, 100);
    assert_int_equal(sp_buf_putc(&b, ']'), 0);
    assert_int_equal(sp_json_parse_strict(b.base, b.len, NULL, &check, NULL), 0);
    assert_int_equal(json_array_size(check), 2);
    json_decref(check);
    sp_buf_free(&b);
    json_decref(v);
    sp_schema_free(sc);
}

static void test_parse_limits(void **state)
{
    (void)state;
    sp_json_limits lim = {.max_bytes = 1 << 20, .max_depth = 64, .max_records = 3};
    size_t n = 1 << 20;
    char *deep = malloc(n);
    memset(deep, '[', n);
    json_t *v = NULL;
    sp_json_error e;
    assert_int_equal(sp_json_parse_strict(deep, n, &lim, &v, &e), -EINVAL);
    assert_null(v);
    assert_int_equal(e.position, 64);
    assert_string_equal(e.reason, "nesting deeper than 64");
    assert_int_equal(sp_json_parse_strict(deep, n + 0,
                                          &(sp_json_limits){.max_bytes = 1000, .max_depth = 64}, &v,
                                          &e),
                     -EMSGSIZE);
    free(deep);
    /* exactly max_depth is fine */
    char ok[129];
    for (int i = 0; i < 64; i++) {
        ok[i] = '[';
        ok[127 - i] = ']';
    }
    ok[128] = '\0';
    assert_int_equal(sp_json_parse_strict(ok, 128, &lim, &v, &e), 0);
    json_decref(v);
    /* NDJSON record limit */
    const char *nd = "1\n2\n3\n4\n";
    assert_int_equal(sp_json_parse_ndjson(nd, strlen(nd), &lim, &v, &e), -EMSGSIZE);
    assert_int_equal(e.line, 4);
}

static void test_compile_errors(void **state)
{
    (void)state;
    static const struct {
        const char *schema;
        int rc;
        const char *msg;
    } cases[] = {
        {"{\"properties\":{\"name\":{\"type\":\"string\",\"format\":\"email\"}}}", -EINVAL,
         "unknown keyword 'format' at /properties/name/format"},
        {"{\"properties\":{\"a/b~c\":{\"oneOf\":[]}}}", -EINVAL,
         "unknown keyword 'oneOf' at /properties/a~1b~0c/oneOf"},
        {"{\"type\":\"float\"}", -EINVAL, "'type' has an unknown or non-string type name at /type"},
        {"{\"type\":[\"string\",\"string\"]}", -EINVAL, "'type' names a type twice at /type"},
        {"{\"type\":[]}", -EINVAL,
         "'type' must be a type name or a non-empty array of them at /type"},
        {"{\"items\":[{}]}", -EINVAL,
         "'items' must be a schema (the array form is not supported) at /items"},
        {"{\"required\":[\"a\",\"a\"]}", -EINVAL, "'required' names a property twice at /required"},
        {"{\"required\":\"a\"}", -EINVAL, "'required' must be an array of strings at /required"},
        {"{\"minLength\":-1}", -EINVAL, "'minLength' must be a non-negative integer at /minLength"},
        {"{\"maxItems\":1.5}", -EINVAL, "'maxItems' must be a non-negative integer at /maxItems"},
        {"{\"minimum\":\"1\"}", -EINVAL, "'minimum' must be a number at /minimum"},
        {"{\"enum\":[]}", -EINVAL, "'enum' must be a non-empty array at /enum"},
        {"{\"enum\":[1],\"const\":1}", -EINVAL, "'enum' and 'const' cannot be combined at /const"},
        {"{\"pattern\":\"(a)\\\\1\"}", -EINVAL,
         "'pattern' back-references are not supported at /pattern"},
        {"{\"pattern\":\"a{1000}\"}", -E2BIG, "'pattern' repetition count above 100 at /pattern"},
        {"{\"pattern\":\"((a{50}){50}){50}\"}", -E2BIG,
         "'pattern' expands to more than 1000 regex nodes at /pattern"},
        /* found by fuzz_schema: glibc builds c+ as cc*, so stacked + doubles */
        {"{\"pattern\":\"a{2,3}{23,}(b|c++++++++++++++++++++++++++++++++++++++++++++)#\"}", -E2BIG,
         "'pattern' expands to more than 1000 regex nodes at /pattern"},
        {"{\"pattern\":\"((((((((((((c+)+)+)+)+)+)+)+)+)+)+)+)\"}", -E2BIG,
         "'pattern' expands to more than 1000 regex nodes at /pattern"},
        {"{\"pattern\":\"(unclosed\"}", -EINVAL, NULL},
        {"{\"pattern\":1}", -EINVAL, "'pattern' must be a string at /pattern"},
        {"{\"additionalProperties\":1}", -EINVAL,
         "a schema must be an object or a boolean at /additionalProperties"},
        {"[]", -EINVAL, "a schema must be an object or a boolean at the root"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *js = parse_ok(cases[i].schema);
        sp_schema *sc = (sp_schema *)1;
        char err[256];
        int rc = sp_schema_compile(js, &sc, err, sizeof(err));
        if (rc != cases[i].rc)
            fail_msg("case %zu: rc %d, want %d (%s)", i, rc, cases[i].rc, err);
        assert_null(sc);
        if (cases[i].msg)
            assert_string_equal(err, cases[i].msg);
        else
            assert_true(strncmp(err, "'pattern' is not a valid POSIX extended regex", 45) == 0);
        json_decref(js);
    }
    /* a pattern longer than the limit */
    char big[400];
    memset(big, 'a', sizeof(big));
    json_t *js = json_pack("{s:s#}", "pattern", big, (int)sizeof(big));
    sp_schema *sc;
    char err[256];
    assert_int_equal(sp_schema_compile(js, &sc, err, sizeof(err)), -E2BIG);
    json_decref(js);
    /* depth: 40 nested items */
    sp_buf b;
    sp_buf_init(&b, 4096);
    for (int i = 0; i < 40; i++)
        sp_buf_append_cstr(&b, "{\"items\":");
    sp_buf_append_cstr(&b, "{}");
    for (int i = 0; i < 40; i++)
        sp_buf_putc(&b, '}');
    js = parse_ok(b.base);
    assert_int_equal(sp_schema_compile(js, &sc, err, sizeof(err)), -E2BIG);
    assert_non_null(strstr(err, "schema nested deeper than 32"));
    json_decref(js);
    sp_buf_free(&b);
    /* too many properties */
    js = json_object();
    json_t *props = json_object();
    for (int i = 0; i < 300; i++) {
        char k[16];
        snprintf(k, sizeof(k), "p%d", i);
        json_object_set_new(props, k, json_object());
    }
    json_object_set_new(js, "properties", props);
    assert_int_equal(sp_schema_compile(js, &sc, err, sizeof(err)), -E2BIG);
    json_decref(js);
    /* annotations are accepted */
    sp_schema_free(compile_ok("{\"title\":\"t\",\"description\":\"d\",\"default\":1,"
                              "\"examples\":[1],\"$id\":\"x\",\"$comment\":\"c\"}"));
    sp_schema_free(NULL);
}

/* ---- strict JSON ----------------------------------------------------------- */

static void test_strict_rejections(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        size_t len; /* 0: strlen */
        size_t position;
        const char *reason; /* prefix */
    } cases[] = {
        {"{\"a\":1,\"a\":2}", 0, 7, "duplicate object key"},
        {"\"\\ud800\"", 0, 1, "lone surrogate \\ud800"},
        {"[\"x\\udc00\"]", 0, 3, "lone surrogate \\udc00"},
        {"\"\\ud800\\u0041\"", 0, 1, "lone surrogate \\ud800"},
        {"[NaN]", 0, 1, "NaN and Infinity are not valid JSON"},
        {"[1, Infinity]", 0, 4, "NaN and Infinity are not valid JSON"},
        {"{\"a\": -Infinity}", 0, 6, "NaN and Infinity are not valid JSON"},
        {"[1] x", 0, 4, "end of file expected"},
        {"{} {}", 0, 3, "end of file expected"},
        {"\"a\\u0000b\"", 0, 2, "\\u0000 (NUL) is not allowed"},
        {"[\"a\", \0]", 8, 6, "NUL byte"},
        {"\"\xc3\x28\"", 0, 1, "invalid UTF-8 byte 0xc3"},
        {"[\"\xc3\xa9\xc3\xa9\", \xff]", 0, 7, "invalid UTF-8 byte 0xff"},
        {"\"\xed\xa0\x80\"", 0, 1, "invalid UTF-8 byte 0xed"}, /* UTF-8-encoded surrogate */
        {"\"\xc0\xaf\"", 0, 1, "invalid UTF-8 byte 0xc0"},     /* overlong */
        {"{\"a\":", 0, 5, "unexpected token"},
        {"", 0, 0, ""},
        {"[1,]", 0, 3, "unexpected token"},
        {"123456789012345678901234567890", 0, 30, "too big integer"}, /* jansson: no token */
        {"1e400", 0, 0, "real number overflow"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *in = cases[i].in;
        size_t len = cases[i].len ? cases[i].len : strlen(in);
        json_t *v = (json_t *)1;
        sp_json_error e;
        int rc = sp_json_parse_strict(in, len, NULL, &v, &e);
        assert_int_equal(rc, -EINVAL);
        assert_null(v);
        sp_slice parts[8];
        if (sp_json_valid_plain(sp_slice_make(in, len), 64) ||
            sp_json_split_array_plain(sp_slice_make(in, len), 64, parts, 8) > 0)
            fail_msg("case %zu: the plain check vouched for a refused body", i);
        if (e.position != cases[i].position ||
            strncmp(e.reason, cases[i].reason, strlen(cases[i].reason)) != 0)
            fail_msg("case %zu: got position %zu reason '%s'", i, e.position, e.reason);
    }
    /* scalars and astral escapes are fine */
    json_t *v = parse_ok("\"\\ud834\\udd1e\"");
    assert_string_equal(json_string_value(v), "\xf0\x9d\x84\x9e");
    json_decref(v);
    v = parse_ok(" 42 ");
    assert_int_equal(json_integer_value(v), 42);
    json_decref(v);
}

/* sp_json_valid_plain (produce without a tree, for topics without a
 * schema): it vouches for ordinary records, says "not known" for whatever
 * only the full parser can judge, and whatever it vouches for the strict
 * parser accepts too (also over every one-byte mutation of the seeds). */
static void test_valid_plain(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        bool plain;
    } cases[] = {
        {"{\"id\":1,\"source\":\"wire\",\"headline\":\"Markets \\\"rally\\\"\\n\",\"price\":35.4}",
         true},
        {" [1, -2, 0.5, true, false, null, \"\xc3\xa9\\u00e9\\ud834\\udd1e\", {}] ", true},
        {"{\"a\":{\"a\":{\"b\":[{\"a\":1,\"b\":2}]}}}", true},
        {"\"a fairly long string, longer than eight bytes, with \\t escapes\"", true},
        {"123456789012345", true},
        {"-1234567890.12345", true},
        {"{\"a\":1,\"b\":2,\"a\":3}", false}, /* duplicate: the parser says where */
        {"{\"\\u0061\":1,\"a\":2}", false},   /* escaped key: compared decoded */
        {"\"x\\u0000\"", false},              /* NUL */
        {"1e5", false},                       /* exponent */
        {"1234567890123456", false},          /* 16 digits */
        {"0.1234567890123456", false},
        {"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]", false}, /* 33 */
        {"{\"k1\":1,\"k2\":1,\"k3\":1,\"k4\":1,\"k5\":1,\"k6\":1,\"k7\":1,\"k8\":1,\"k9\":1,"
         "\"k10\":1,\"k11\":1,\"k12\":1,\"k13\":1,\"k14\":1,\"k15\":1,\"k16\":1,\"k17\":1}",
         false}, /* more keys than it compares */
        {"[1,]", false},
        {"\"\xed\xa0\x80\"", false},
        {"", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        sp_slice in = sp_slice_cstr(cases[i].in);
        bool got = sp_json_valid_plain(in, 64);
        if (got != cases[i].plain)
            fail_msg("case %zu: plain %d, wanted %d: %s", i, got, cases[i].plain, cases[i].in);
        json_t *v = NULL;
        if (got && sp_json_parse_strict(in.base, in.len, NULL, &v, NULL) != 0)
            fail_msg("case %zu: vouched for, but the parser refuses it", i);
        json_decref(v);
    }
    assert_false(sp_json_valid_plain(sp_slice_cstr("[[1]]"), 1)); /* the caller's depth */
    assert_true(sp_json_valid_plain(sp_slice_cstr("[[1]]"), 2));
    sp_slice parts[4];
    assert_int_equal(sp_json_split_array_plain(sp_slice_cstr("[[1]]"), 1, parts, 4), -1);
    assert_int_equal(sp_json_split_array_plain(sp_slice_cstr(" [[1], {\"a\":2}] "), 2, parts, 4),
                     2);
    assert_int_equal(sp_json_split_array_plain(sp_slice_cstr("[{\"a\":1,\"a\":2}]"), 8, parts, 4),
                     -1);
    assert_int_equal(sp_json_split_array_plain(sp_slice_cstr("[1,2,3]"), 8, parts, 2), -2);
    /* every one-byte change of the vouched-for seeds */
    static const unsigned char bytes[] = {'"', '\\', '{', '}', '[', ']', ',',  ':',  'a',  '0',
                                          'e', '.',  '-', ' ', 'u', 0,   0x1f, 0x80, 0xc3, 0xff};
    size_t vouched = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (!cases[i].plain)
            continue;
        size_t len = strlen(cases[i].in);
        char *m = malloc(len + 1);
        for (size_t at = 0; at <= len; at++)
            for (size_t b = 0; b <= sizeof bytes; b++) {
                size_t n;
                if (b == sizeof bytes) { /* drop byte `at` */
                    if (at == len)
                        continue;
                    memcpy(m, cases[i].in, at);
                    memcpy(m + at, cases[i].in + at + 1, len - at - 1);
                    n = len - 1;
                } else { /* replace byte `at` (append at the end) */
                    memcpy(m, cases[i].in, len);
                    m[at] = (char)bytes[b];
                    n = at == len ? len + 1 : len;
                }
                sp_slice elems[64];
                if (!sp_json_valid_plain(sp_slice_make(m, n), 64) &&
                    sp_json_split_array_plain(sp_slice_make(m, n), 64, elems, 64) <= 0)
                    continue;
                vouched++;
                json_t *v = NULL;
                if (sp_json_parse_strict(m, n, NULL, &v, NULL) != 0)
                    fail_msg("mutation of case %zu at %zu vouched for but refused: %.*s", i, at,
                             (int)n, m);
                json_decref(v);
            }
        free(m);
    }
    assert_true(vouched > 100);
}

static void test_json_invalid_render(void **state)
{
    (void)state;
    /* FastAPI for `{"a":` answers (captured with the oracle):
     * {"detail":[{"type":"json_invalid","loc":["body",5],"msg":"JSON decode error",
     *             "input":{},"ctx":{"error":"Expecting value"}}]}
     * The shape and the position are the same; the reason is ours. */
    const char *body = "{\"\xc3\xa9\":";
    json_t *v;
    sp_json_error e;
    assert_int_equal(sp_json_parse_strict(body, strlen(body), NULL, &v, &e), -EINVAL);
    sp_buf b;
    sp_buf_init(&b, 1024);
    sp_buf_append_cstr(&b, "{\"detail\":[");
    assert_int_equal(sp_json_error_render(&b, &e), 0);
    sp_buf_append_cstr(&b, "]}");
    assert_string_equal(b.base, "{\"detail\":[{\"type\":\"json_invalid\",\"loc\":[\"body\",5],"
                                "\"msg\":\"JSON decode error\",\"input\":{},"
                                "\"ctx\":{\"error\":\"unexpected token near end of file\"}}]}");
    /* rendering into a full buffer leaves it untouched */
    sp_buf small;
    sp_buf_init(&small, 20);
    sp_buf_append_cstr(&small, "{\"detail\":[");
    assert_int_equal(sp_json_error_render(&small, &e), -ENOBUFS);
    assert_string_equal(small.base, "{\"detail\":[");
    sp_buf_free(&small);
    sp_buf_free(&b);
}

static void test_ndjson(void **state)
{
    (void)state;
    sp_slice rest = SP_SLICE_LIT("a\r\n\nb"), line;
    assert_int_equal(sp_json_next_line(&rest, &line), 1);
    assert_true(sp_slice_eq_cstr(line, "a"));
    assert_int_equal(sp_json_next_line(&rest, &line), 1);
    assert_int_equal(line.len, 0);
    assert_int_equal(sp_json_next_line(&rest, &line), 1);
    assert_true(sp_slice_eq_cstr(line, "b"));
    assert_int_equal(sp_json_next_line(&rest, &line), 0);

    const char *ok = "{\"a\":1}\r\n\n  \n[2]\n\"three\"";
    json_t *arr;
    sp_json_error e;
    assert_int_equal(sp_json_parse_ndjson(ok, strlen(ok), NULL, &arr, &e), 0);
    assert_int_equal(json_array_size(arr), 3);
    assert_string_equal(json_string_value(json_array_get(arr, 2)), "three");
    json_decref(arr);
    assert_int_equal(sp_json_parse_ndjson("", 0, NULL, &arr, &e), 0);
    assert_int_equal(json_array_size(arr), 0);
    json_decref(arr);

    /* the error on line 3, column 8, character 23 of the body */
    const char *bad = "{\"a\":1}\n{\"\xc3\xa9\":2}\n{\"b\":1,\"b\":2}\n";
    assert_int_equal(sp_json_parse_ndjson(bad, strlen(bad), NULL, &arr, &e), -EINVAL);
    assert_null(arr);
    assert_int_equal(e.line, 3);
    assert_int_equal(e.column, 8);
    assert_int_equal(e.position, 23);
    sp_buf b;
    sp_buf_init(&b, 1024);
    assert_int_equal(sp_json_error_render(&b, &e), 0);
    assert_string_equal(b.base,
                        "{\"type\":\"json_invalid\",\"loc\":[\"body\",23],"
                        "\"msg\":\"JSON decode error\",\"input\":{},\"ctx\":{\"error\":"
                        "\"duplicate object key near '\\\"b\\\"'\",\"line\":3,\"column\":8}}");
    sp_buf_free(&b);
    /* two values on one line is trailing garbage */
    assert_int_equal(sp_json_parse_ndjson("1 2\n", 4, NULL, &arr, &e), -EINVAL);
    assert_int_equal(e.line, 1);
    assert_int_equal(e.column, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_fastapi),
        cmocka_unit_test(test_divergences_no_coercion),
        cmocka_unit_test(test_item_seed),
        cmocka_unit_test(test_more_keywords),
        cmocka_unit_test(test_validate_at_and_commas),
        cmocka_unit_test(test_error_limits),
        cmocka_unit_test(test_parse_limits),
        cmocka_unit_test(test_compile_errors),
        cmocka_unit_test(test_strict_rejections),
        cmocka_unit_test(test_valid_plain),
        cmocka_unit_test(test_json_invalid_render),
        cmocka_unit_test(test_ndjson),
    };
    return cmocka_run_group_tests_name("schema", tests, NULL, NULL);
}
