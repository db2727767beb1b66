/* fuzz_store_batch.c - libFuzzer target for the log's batch decoder.
 *
 * Every byte read back from a segment passes sp__batch_check before
 * anything trusts it. Random bytes almost never carry a valid CRC, so half
 * the inputs are first "repaired": their length field is set to the input
 * size and a correct CRC32C is written, which sends the fuzzer into the
 * record-structure checks and the decoder behind them. A batch that passes
 * must decode with every slice inside the input. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/codec.h"
#include "store/crc32c.h"

static void put_u32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

static void check_inside(const char *base, size_t len, sp_slice s)
{
    if (s.base && (s.base < base || s.base + s.len > base + len))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > (1u << 20))
        return 0;
    bool repair = data[0] & 1;
    data++;
    size--;
    unsigned char *buf = malloc(size ? size : 1);
    memcpy(buf, data, size);
    if (repair && size >= SP__BATCH_HDR) {
        put_u32(buf, (uint32_t)size - 4); /* the length field counts what follows it */
        sp__batch_hdr probe;
        if (sp__batch_peek((const char *)buf, size, &probe) == SP__BATCH_OK && probe.length >= 8 &&
            probe.length <= size)
            put_u32(buf + 4, sp__crc32c(0, buf + 8, probe.length - 8));
    }
    sp__batch_hdr h;
    if (sp__batch_check((const char *)buf, size, &h) == SP__BATCH_OK) {
        sp_store_record *recs = calloc(h.count ? h.count : 1, sizeof *recs);
        sp_store_header *hdrs = calloc(h.header_total ? h.header_total : 1, sizeof *hdrs);
        sp__batch_decode((const char *)buf, &h, recs, hdrs);
        for (uint32_t i = 0; i < h.count; i++) {
            check_inside((const char *)buf, size, recs[i].key);
            check_inside((const char *)buf, size, recs[i].value);
            for (uint32_t j = 0; j < recs[i].header_count; j++) {
                check_inside((const char *)buf, size, recs[i].headers[j].name);
                check_inside((const char *)buf, size, recs[i].headers[j].value);
            }
        }
        free(recs);
        free(hdrs);
    }
    free(buf);
    return 0;
}
