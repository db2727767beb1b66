/* fuzz_config.c - libFuzzer entry for the YAML config loader.
 *
 * Loads the input with sp_config_load_string. On success it also checks
 * the round trip the CLI relies on: what sp_config_print writes must load
 * back to an equal config. On failure the message must be a non-empty,
 * terminated line. Sanitizers catch the rest (leaks included). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_round_trip(const sp_config *cfg)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        abort();
    sp_config_print(cfg, f);
    fclose(f);
    sp_config back;
    sp_config_error err;
    sp_config_init(&back);
    if (sp_config_load_string(&back, "printed", text, len, &err) != 0) {
        fprintf(stderr, "printed config does not load: %s\n%s", err.msg, text);
        abort();
    }
    if (!sp_config_equal(cfg, &back)) {
        fprintf(stderr, "round trip changed the config:\n%s", text);
        abort();
    }
    sp_config_free(&back);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sp_config cfg;
    sp_config_error err;
    memset(&err, 0xa5, sizeof err);
    sp_config_init(&cfg);
    int rc = sp_config_load_string(&cfg, "fuzz.yaml", (const char *)data, size, &err);
    if (rc == 0) {
        check_round_trip(&cfg);
    } else if (memchr(err.msg, '\0', sizeof err.msg) == NULL || err.msg[0] == '\0') {
        abort(); /* an error must come with a message */
    }
    sp_config_free(&cfg);
    return 0;
}
