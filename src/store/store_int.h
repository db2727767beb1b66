/* store_int.h - structures shared by the files of the store module.
 *
 *   sp_store ─ topics[] ─ sp__topic ─ parts[] ─ sp__partition ─ segs[] ─ sp__segment
 *
 * Locks, in the order they may nest: topics_lock (rwlock: the topic table)
 * → partition mu (segment list, visibility) ; qmu (the append queue) and
 * wmu (watches) are leaves. The store thread is the only writer of segment
 * files and of the fields marked "store thread". Topics and segments are
 * refcounted so readers and queued appends keep them alive across delete
 * and retention. */
#ifndef SP_STORE_STORE_INT_H
#define SP_STORE_STORE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"
#include "store/io.h"
#include "store/segment.h"
#include "store/store.h"

struct sp__append;
struct sp__topic;

typedef struct sp__partition {
    struct sp__topic *topic;
    uint32_t id;
    int dirfd;
    pthread_mutex_t mu;
    /* mu: readers take it to find segments and the visible end */
    sp__segment **segs;
    size_t nsegs, segs_cap;
    uint64_t visible_offset; /* offsets below are acknowledged and readable */
    int state;      /* 0, -EUCLEAN (fenced), or -errno: needs recovery before the next write */
    uint64_t bytes; /* sum of pub_size over segments */
    /* store thread */
    uint64_t next_offset;   /* the next offset to assign */
    uint64_t synced_size;   /* active segment bytes covered by the last successful fdatasync */
    uint64_t synced_offset; /* offset after the last synced record */
    bool dirty;             /* written since the last fdatasync */
    struct sp__append *grp_head, *grp_tail; /* this round's appends */
    bool in_round, rolled;
} sp__partition;

typedef struct sp__topic {
    char *name;
    sp_store_topic_config cfg; /* resolved */
    int64_t created_ms;
    int dirfd;
    uint32_t nparts;
    sp__partition *parts;
    atomic_uint refs;
    atomic_bool deleted;
    atomic_uint rr; /* round-robin cursor for unkeyed appends */
    struct sp_store *store;
} sp__topic;

typedef struct sp__append {
    struct sp__append *next, *grp_next;
    sp__topic *topic; /* holds a ref */
    sp__partition *part;
    sp_store_append_cb cb;
    void *arg;
    uint32_t count;
    int status;
    int64_t ts, max_ts;
    uint64_t base_offset;
    uint64_t pos;     /* file position in seg */
    sp__segment *seg; /* the segment it was written to (valid during its round) */
    size_t len;       /* encoded batch bytes */
    char batch[];
} sp__append;

struct sp_store_watch {
    struct sp_store_watch *next;
    sp__topic *topic; /* holds a ref */
    int32_t partition;
    sp_store_tail_cb cb;
    void *arg;
    bool dead;
};

struct sp_store {
    sp_store_options opt;
    const struct sp_store_io *io;
    int dirfd, lockfd, topics_dirfd, staging_dirfd;
    unsigned long staging_seq;

    pthread_rwlock_t topics_lock;
    sp__topic **topics;
    size_t ntopics, topics_cap;

    pthread_mutex_t qmu;
    pthread_cond_t qcond, flush_cond;
    sp__append *qhead, *qtail;
    size_t q_appends, q_bytes;
    bool stopping, writer_idle;
    uint64_t flush_req, flush_done;
    int flush_err;
    pthread_t writer;
    bool writer_started;

    pthread_mutex_t wmu;
    sp_store_watch *watches;
    bool notifying;

    /* store thread */
    sp_buf wbuf;
    sp__partition **round;
    size_t nround, round_cap;
    int64_t next_sync_ms, next_retention_ms;

    _Atomic uint64_t st_appends, st_records, st_bytes, st_fsyncs, st_fsync_errors, st_write_errors,
        st_groups, st_rolls, st_deleted;
};

/* topic.c */
int sp__topics_load(sp_store *s);
void sp__topic_unref(sp__topic *t);
/* Finds a live topic and takes a reference, or returns NULL. */
sp__topic *sp__topic_get(sp_store *s, const char *name);
void sp__topics_free(sp_store *s);
int sp__partition_recover_error(sp_store *s, sp__partition *p);

/* writer.c */
void *sp__writer_main(void *arg);
int sp__partition_roll(sp_store *s, sp__partition *p);
void sp__partition_retention(sp_store *s, sp__partition *p, int64_t now_ms);
static inline sp__segment *sp__active(const sp__partition *p)
{
    return p->segs[p->nsegs - 1];
}

/* watch.c (in store.c) */
void sp__notify(sp_store *s, sp__partition *p, uint64_t end);

/* remove a directory tree relative to dirfd (no symlinks followed) */
int sp__rmtree(int dirfd, const char *name);

#endif
