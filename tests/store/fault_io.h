/* fault_io.h - an sp_store_io that simulates a machine losing power.
 *
 * It forwards to POSIX but never really syncs: it records, per file, how
 * many bytes the last fdatasync covered and whether its directory entry was
 * fsync'ed. Writes and syncs are counted; at operation number `crash_at`
 * the machine "dies": that operation (a write may be torn first) and every
 * later one fail with -EIO and change nothing. fault_io_apply() then makes
 * the files look like what a disk could hold after the power came back:
 *   FAULT_DROP    every byte written after the file's last sync is lost, and
 *                 files whose directory entry was never synced disappear;
 *   FAULT_PREFIX  each file keeps its synced bytes plus a random prefix of
 *                 the unsynced ones;
 *   FAULT_TEAR    the crashing write lands only partly (a random prefix) and
 *                 everything else written stays (a process crash mid-write).
 */
#ifndef SP_TESTS_FAULT_IO_H
#define SP_TESTS_FAULT_IO_H

#include <stdbool.h>
#include <stdint.h>

#include "store/io.h"

typedef enum fault_kind { FAULT_DROP = 0, FAULT_PREFIX, FAULT_TEAR } fault_kind;

typedef struct fault_file {
    char *path;
    uint64_t len, synced_len;
    bool dir_synced, gone;
} fault_file;

typedef struct fault_io {
    struct sp_store_io io;
    fault_kind kind;
    long ops;      /* writes + syncs so far */
    long crash_at; /* -1: never */
    bool crashed;
    uint64_t rng;
    fault_file *files;
    size_t nfiles, cap;
    int fd_file[4096]; /* fd -> index+1 into files, 0: untracked */
} fault_io;

void fault_io_init(fault_io *f, fault_kind kind, long crash_at, uint64_t seed);
/* Truncates/removes files as the chosen kind says (after the store closed). */
void fault_io_apply(fault_io *f);
void fault_io_free(fault_io *f);

#endif
