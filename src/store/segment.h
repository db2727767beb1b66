/* segment.h - one segment: a .log file of batches plus its sparse offset
 * index (.idx) and time index (.tix).
 *
 * Files are named by the segment's base offset, zero-padded to 20 digits:
 * 00000000000000001234.log. The indexes live in memory while the segment
 * is active and are written to disk (tmp + fsync + rename) when it is
 * sealed by a roll; a missing or damaged index file is rebuilt from the log.
 *
 * Locking: the owning partition's mutex guards idx/tix/pub_size/max_ts;
 * the store thread alone writes size/next_offset and the file. Readers pin
 * a segment with sp__segment_ref so retention can unlink it underneath
 * them; the fd is closed at the last unref. */
#ifndef SP_STORE_SEGMENT_H
#define SP_STORE_SEGMENT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "store/io.h"

#define SP__INDEX_INTERVAL 4096u /* bytes of log between sparse index entries */
#define SP__SEG_NAME_MAX   32

typedef struct sp__idx_entry {
    uint32_t rel; /* offset - base */
    uint32_t pos; /* file position of the batch holding that offset */
} sp__idx_entry;

typedef struct sp__tix_entry {
    int64_t ts;   /* largest timestamp in the segment up to and including this batch */
    uint32_t rel; /* first offset of that batch - base */
} sp__tix_entry;

typedef struct sp__segment {
    uint64_t base;
    int fd;
    const struct sp_store_io *io;
    atomic_int refs;
    bool sealed;
    /* store thread only */
    uint64_t size;        /* bytes of whole batches written */
    uint64_t next_offset; /* offset after the last written record */
    uint64_t last_idx_pos;
    /* partition mutex */
    uint64_t pub_size; /* bytes of batches readers may see */
    uint64_t pub_next; /* offset after the last visible record */
    int64_t max_ts;    /* largest timestamp written (INT64_MIN when empty) */
    sp__idx_entry *idx;
    uint32_t nidx, idx_cap;
    sp__tix_entry *tix;
    uint32_t ntix, tix_cap;
} sp__segment;

/* Result of scanning a .log file from the start. */
typedef struct sp__scan {
    uint64_t valid_end;   /* bytes of valid, contiguous batches from offset 0 */
    uint64_t next_offset; /* offset after the last valid record */
    uint64_t file_size;
    uint64_t batches, records;
    int64_t max_ts;
    int damage;  /* 0 clean, 1 torn tail (nothing valid after), 2 mid-segment corruption */
    int indexed; /* 1: loaded from index files, not scanned */
} sp__scan;

void sp__segment_name(char out[SP__SEG_NAME_MAX], uint64_t base, const char *ext);
/* Parses "<20 digits>.<ext>"; returns 0 and the base or -EINVAL. */
int sp__segment_parse_name(const char *name, uint64_t *base, const char **ext);

/* Creates an empty segment file (O_EXCL). The caller fsyncs the directory. */
int sp__segment_create(const struct sp_store_io *io, int dirfd, uint64_t base, sp__segment **out);
/* Opens an existing segment's log file (no scan, no index). */
int sp__segment_open_file(const struct sp_store_io *io, int dirfd, uint64_t base, bool readonly,
                          sp__segment **out);

/* Scans the log from position 0 expecting offsets from seg->base, and when
 * `build` is set rebuilds the in-memory indexes from it. Read-only on the
 * file. Returns 0 and *res or an I/O error. */
int sp__segment_scan(sp__segment *seg, bool build, sp__scan *res);
/* Same, over a file descriptor, with no segment (for offline tools). */
int sp__scan_fd(int fd, uint64_t base, sp__scan *res, sp__segment *build_into);

/* Loads .idx/.tix. Returns 0 when both are present and consistent with the
 * log file (sets size/next_offset/max_ts), -ENOENT/-EBADMSG otherwise. */
int sp__segment_load_index(sp__segment *seg, int dirfd);
/* Writes .idx/.tix for a sealed segment (tmp file, fdatasync, rename). The
 * caller fsyncs the directory. */
int sp__segment_write_index(sp__segment *seg, int dirfd);

/* Records a batch written at `pos` in the in-memory indexes (partition
 * mutex held, or no readers yet). */
void sp__segment_index_batch(sp__segment *seg, uint64_t base_offset, uint64_t pos, int64_t max_ts);
/* Drops index entries at or past `pos` (after a truncation). */
void sp__segment_index_truncate(sp__segment *seg, uint64_t pos);
/* File position of a batch holding an offset <= `offset` (partition mutex). */
uint64_t sp__segment_lookup(const sp__segment *seg, uint64_t offset);
/* An offset from which to scan for the first record with ts >= ts_ms. */
uint64_t sp__segment_time_lookup(const sp__segment *seg, int64_t ts_ms);

void sp__segment_ref(sp__segment *seg);
/* Drops a reference; the last one closes the fd and frees the segment. */
void sp__segment_unref(sp__segment *seg);
/* Unlinks the segment's files (log first, so a crash leaves no log without
 * being noticed at start-up; stray indexes are removed then). */
int sp__segment_unlink(const struct sp_store_io *io, int dirfd, uint64_t base);

#endif
