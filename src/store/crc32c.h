/* crc32c.h - CRC-32C (Castagnoli), the checksum of every record batch.
 *
 * sp__crc32c() picks the SSE4.2 instruction when the CPU has it (checked
 * once) and a slicing-by-8 table otherwise. Both are exposed so the tests
 * can check each against the published vectors (RFC 3720 B.4). */
#ifndef SP_STORE_CRC32C_H
#define SP_STORE_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Extends `crc` (0 for a fresh checksum) over n bytes and returns it. */
uint32_t sp__crc32c(uint32_t crc, const void *p, size_t n);
uint32_t sp__crc32c_sw(uint32_t crc, const void *p, size_t n);
/* Returns 0 and the checksum, or -ENOTSUP when the CPU lacks SSE4.2. */
int sp__crc32c_hw(uint32_t crc, const void *p, size_t n, uint32_t *out);

#endif
