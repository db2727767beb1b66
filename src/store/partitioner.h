/* partitioner.h - Kafka's default partitioner for keyed records.
 *
 * The same key lands on the same partition number as with Kafka's Java
 * client: toPositive(murmur2(key)) % partitions, where murmur2 is Kafka's
 * variant (seed 0x9747b28c) and toPositive clears the sign bit. */
#ifndef SP_STORE_PARTITIONER_H
#define SP_STORE_PARTITIONER_H

#include <stddef.h>
#include <stdint.h>

/* Kafka's Utils.murmur2 over n bytes, as the Java int it returns. */
int32_t sp__murmur2(const void *key, size_t n);
/* The partition Kafka's default partitioner picks for `key`; partitions > 0. */
uint32_t sp__partition_for_key(const void *key, size_t n, uint32_t partitions);

#endif
