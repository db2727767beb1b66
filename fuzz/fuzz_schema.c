/* fuzz_schema.c - libFuzzer target for strict JSON, NDJSON and schema validation.
 *
 * Input: SCHEMA '\0' DOCUMENT. Without a NUL the whole input is a document,
 * checked against the seed Item schema. Every body is also parsed alone
 * (strict and NDJSON). Besides crashes, leaks and UB, it checks two
 * properties: whatever validation or error rendering writes is valid JSON,
 * since it goes straight into 422 bodies; and the allocation-free check
 * that lets produce skip the tree (sp_json_valid_plain) never vouches for
 * a body the strict parser refuses. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/schema.h"
#include "core/json.h"

static void must_be_json(const sp_buf *b)
{
    json_t *v = NULL;
    if (sp_json_parse_strict(b->base, b->len, NULL, &v, NULL) != 0)
        abort();
    json_decref(v);
}

static void validate_into(const sp_schema *sc, const json_t *doc, size_t limit, size_t max_errors)
{
    sp_buf b;
    int n = sp_schema_validate(sc, doc, NULL, max_errors);
    if (n < 0 || (size_t)n > (max_errors ? max_errors : 1))
        abort();
    sp_buf_init(&b, limit);
    sp_buf_putc(&b, '[');
    if ((sp_schema_validate(sc, doc, &b, max_errors) > 0) != (n > 0))
        abort(); /* the answer must not depend on the buffer */
    b.limit++;
    if (sp_buf_putc(&b, ']') != 0)
        abort();
    must_be_json(&b);
    sp_buf_free(&b);
}

static void render_error(const sp_json_error *e)
{
    sp_buf b;
    sp_buf_init(&b, 4096);
    if (sp_json_error_render(&b, e) == 0)
        must_be_json(&b);
    sp_buf_free(&b);
}

static void check_document(const sp_schema *sc, const char *doc, size_t len)
{
    sp_json_limits lim = {.max_bytes = 1 << 16, .max_depth = 48, .max_records = 64};
    sp_json_error e;
    json_t *v = NULL;
    sp_slice parts[64];
    bool plain = sp_json_valid_plain(sp_slice_make(doc, len), 48) ||
                 sp_json_split_array_plain(sp_slice_make(doc, len), 48, parts, 64) > 0;
    if (plain && !sp_json_valid(sp_slice_make(doc, len), 48))
        abort();
    if (sp_json_parse_strict(doc, len, &lim, &v, &e) == 0) {
        validate_into(sc, v, 1 << 16, 64);
        validate_into(sc, v, 300, 8);
        validate_into(sc, v, 1 << 16, 0);
        json_decref(v);
    } else {
        if (plain && len <= lim.max_bytes)
            abort(); /* vouched for a body the parser refuses */
        render_error(&e);
    }
    if (sp_json_parse_ndjson(doc, len, &lim, &v, &e) == 0) {
        for (size_t i = 0; i < json_array_size(v); i++)
            validate_into(sc, json_array_get(v, i), 4096, 4);
        json_decref(v);
    } else {
        render_error(&e);
    }
}

static sp_schema *item_schema(void)
{
    static sp_schema *item;
    if (!item) {
        json_t *js = json_loads(sp_schema_item_json, 0, NULL);
        if (!js || sp_schema_compile(js, &item, NULL, 0) != 0)
            abort();
        json_decref(js);
    }
    return item;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data;
    const char *nul = memchr(p, '\0', size);
    if (!nul) {
        check_document(item_schema(), p, size);
        return 0;
    }
    size_t slen = (size_t)(nul - p);
    json_t *js = NULL;
    sp_schema *sc = NULL;
    char err[256];
    sp_json_limits lim = {.max_bytes = 1 << 16, .max_depth = 48, .max_records = 1};
    if (sp_json_parse_strict(p, slen, &lim, &js, NULL) != 0)
        return 0;
    int rc = sp_schema_compile(js, &sc, err, sizeof(err));
    json_decref(js);
    if (rc == 0) {
        check_document(sc, nul + 1, size - slen - 1);
        validate_into(sc, NULL, 1024, 4);
        sp_schema_free(sc);
    } else if (sc || strlen(err) == 0) {
        abort(); /* a refusal always says why and returns nothing */
    }
    return 0;
}
