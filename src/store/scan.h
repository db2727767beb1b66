/* scan.h - offline tools over a data directory: verify and dump.
 *
 * They never write: files are opened read-only, nothing is truncated or
 * rebuilt, and a shared flock is taken so that they refuse to run while a
 * server holds the directory (its active segments would be moving). */
#ifndef SP_STORE_SCAN_H
#define SP_STORE_SCAN_H

#include <stdint.h>
#include <stdio.h>

typedef struct sp_store_verify_report {
    uint64_t topics, partitions, segments, batches, records;
    uint64_t problems; /* torn tails, corrupt batches, gaps, missing or stale indexes */
} sp_store_verify_report;

/* Checks every batch CRC, offset continuity and every index file under
 * `dir`, printing one line per problem (and a summary) to `out`. Returns 0
 * when clean, 1 when problems were found, or a negative errno (-EBUSY: a
 * server holds the directory; -ENOENT: no such data directory). */
int sp_store_verify(const char *dir, FILE *out, sp_store_verify_report *rep);

/* Prints the records of `topic` (partition < 0: every partition) from
 * offset `from` as JSON lines: {"partition","offset","timestamp","key",
 * "value","headers"}. Stops at the first bad batch with a message on
 * `err`. Returns 0, 1 (a bad batch was met) or a negative errno. */
int sp_store_dump(const char *dir, const char *topic, int32_t partition, uint64_t from, FILE *out,
                  FILE *err);

#endif
