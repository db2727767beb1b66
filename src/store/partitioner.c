/* partitioner.c - Kafka's murmur2 (Utils.murmur2), written from the
 * algorithm's description: 32-bit MurmurHash2 with seed 0x9747b28c, little
 * endian 4-byte blocks, tail bytes folded in from the highest down. All
 * arithmetic is on uint32_t so overflow is defined; the result is
 * reinterpreted as the signed int Java would hold. */
#include "store/partitioner.h"

int32_t sp__murmur2(const void *key, size_t n)
{
    const unsigned char *d = key;
    const uint32_t m = 0x5bd1e995u;
    uint32_t h = 0x9747b28cu ^ (uint32_t)n;
    size_t blocks = n / 4;
    for (size_t i = 0; i < blocks; i++) {
        const unsigned char *b = d + 4 * i;
        uint32_t k =
            (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
        k *= m;
        k ^= k >> 24;
        k *= m;
        h *= m;
        h ^= k;
    }
    const unsigned char *tail = d + (n & ~(size_t)3);
    switch (n & 3) {
    case 3:
        h ^= (uint32_t)tail[2] << 16;
        /* fall through */
    case 2:
        h ^= (uint32_t)tail[1] << 8;
        /* fall through */
    case 1:
        h ^= tail[0];
        h *= m;
        break;
    default: break;
    }
    h ^= h >> 13;
    h *= m;
    h ^= h >> 15;
    return (int32_t)h;
}

uint32_t sp__partition_for_key(const void *key, size_t n, uint32_t partitions)
{
    uint32_t positive = (uint32_t)sp__murmur2(key, n) & 0x7fffffffu;
    return positive % partitions;
}
