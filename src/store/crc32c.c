/* crc32c.c - CRC-32C, reflected polynomial 0x82F63B78.
 *
 * The software path is slicing-by-8: eight 256-entry tables built once,
 * consuming 8 bytes per step. On x86-64 with SSE4.2 the crc32 instruction
 * does the same work several times faster; the choice is made on first use
 * with __builtin_cpu_supports and cached. */
#include "store/crc32c.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

#define POLY 0x82F63B78u

static uint32_t table[8][256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void table_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ POLY : c >> 1;
        table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            table[t][i] = (table[t - 1][i] >> 8) ^ table[0][table[t - 1][i] & 0xff];
}

uint32_t sp__crc32c_sw(uint32_t crc, const void *p, size_t n)
{
    const unsigned char *b = p;
    pthread_once(&table_once, table_init);
    crc = ~crc;
    while (n >= 8) {
        uint32_t lo = crc ^ ((uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
                             (uint32_t)b[3] << 24);
        crc = table[7][lo & 0xff] ^ table[6][(lo >> 8) & 0xff] ^ table[5][(lo >> 16) & 0xff] ^
              table[4][lo >> 24] ^ table[3][b[4]] ^ table[2][b[5]] ^ table[1][b[6]] ^
              table[0][b[7]];
        b += 8;
        n -= 8;
    }
    while (n--)
        crc = (crc >> 8) ^ table[0][(crc ^ *b++) & 0xff];
    return ~crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t crc, const unsigned char *b,
                                                         size_t n)
{
    uint64_t c = ~crc;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, b, 8);
        c = __builtin_ia32_crc32di(c, w);
        b += 8;
        n -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (n--)
        c32 = __builtin_ia32_crc32qi(c32, *b++);
    return ~c32;
}

static int have_hw(void)
{
    static int cached = -1; /* racy but idempotent: every thread computes the same value */
    if (cached < 0)
        cached = __builtin_cpu_supports("sse4.2") ? 1 : 0;
    return cached;
}

int sp__crc32c_hw(uint32_t crc, const void *p, size_t n, uint32_t *out)
{
    if (!have_hw())
        return -ENOTSUP;
    *out = crc_hw(crc, p, n);
    return 0;
}

uint32_t sp__crc32c(uint32_t crc, const void *p, size_t n)
{
    return have_hw() ? crc_hw(crc, p, n) : sp__crc32c_sw(crc, p, n);
}
#else
int sp__crc32c_hw(uint32_t crc, const void *p, size_t n, uint32_t *out)
{
    (void)crc, (void)p, (void)n, (void)out;
    return -ENOTSUP;
}

uint32_t sp__crc32c(uint32_t crc, const void *p, size_t n)
{
    return sp__crc32c_sw(crc, p, n);
}
#endif
