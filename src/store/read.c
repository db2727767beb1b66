/* read.c - reads by offset and by timestamp, concurrent with appends.
 *
 * Under the partition mutex a read only picks the segment, pins it, and
 * notes how far it may read (the published size and end offset); the file
 * I/O happens outside the lock with pread. The batches covering the request
 * are read into one buffer with a single pread, CRC-checked, and decoded
 * into records whose slices point into that buffer: one copy from the page
 * cache, none after. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "store/codec.h"
#include "store/store_int.h"

typedef struct read_plan {
    sp__segment *seg;  /* pinned */
    uint64_t pos;      /* a batch start at or before `from` */
    uint64_t limit;    /* published bytes of the segment */
    uint64_t vis_next; /* records at or past this offset are not returned */
} read_plan;

static size_t find_segment(const sp__partition *p, uint64_t offset)
{
    size_t lo = 0, hi = p->nsegs; /* last segment with base <= offset */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (p->segs[mid]->base <= offset)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

/* Under p->mu: clamps `from`, fills out's bounds and the plan. Returns 1
 * when there is something to read, 0 when not, or a negative errno. */
static int plan_read(sp__partition *p, uint64_t *from, sp_store_records *out, read_plan *rp)
{
    out->start_offset = p->segs[0]->base;
    out->end_offset = p->visible_offset;
    if (*from > out->end_offset)
        return -ERANGE;
    if (*from < out->start_offset)
        *from = out->start_offset;
    out->next_offset = *from;
    if (*from == out->end_offset)
        return p->state == -EUCLEAN ? -EUCLEAN : 0; /* nothing will come after the damage */
    sp__segment *seg = p->segs[find_segment(p, *from)];
    if (*from >= seg->pub_next)
        return -EBADMSG; /* a fenced gap left by mid-segment corruption */
    rp->seg = seg;
    rp->pos = sp__segment_lookup(seg, *from);
    rp->limit = seg->pub_size;
    rp->vis_next = seg->pub_next < p->visible_offset ? seg->pub_next : p->visible_offset;
    sp__segment_ref(seg);
    return 1;
}

/* Advances rp->pos past batches that end before `from`, reading headers. */
static int skip_to(const read_plan *rp, uint64_t from, uint64_t *pos, uint32_t *first_len)
{
    const struct sp_store_io *io = rp->seg->io;
    while (*pos < rp->limit) {
        char hdr[SP__BATCH_HDR];
        sp__batch_hdr h;
        ssize_t n = io->pread(io->ctx, rp->seg->fd, hdr, sizeof hdr, (off_t)*pos);
        if (n < 0)
            return (int)n;
        if (sp__batch_peek(hdr, (size_t)n, &h) == SP__BATCH_BAD || *pos + h.length > rp->limit)
            return -EBADMSG;
        if (h.base_offset + h.count > from) {
            *first_len = h.length;
            return 0;
        }
        *pos += h.length;
    }
    return -EBADMSG; /* the index promised a batch holding `from` */
}

typedef struct batch_ref {
    size_t at;
    sp__batch_hdr h;
} batch_ref;

/* Validates the whole batches in buf, stopping at limits; returns how many
 * were accepted in *nb, with totals for allocation. */
static int check_batches(const char *buf, size_t len, uint64_t vis_next, uint64_t from,
                         size_t max_records, batch_ref **refs, size_t *nb, size_t *nrec,
                         size_t *nhdr)
{
    size_t at = 0, cap = 0;
    *nb = *nrec = *nhdr = 0;
    *refs = NULL;
    while (at < len &&
           (*nb == 0 || *nrec - (size_t)(from - (*refs)[0].h.base_offset) < max_records)) {
        sp__batch_hdr h;
        int r = sp__batch_check(buf + at, len - at, &h);
        if (r == SP__BATCH_SHORT && *nb > 0)
            break;
        if (r != SP__BATCH_OK)
            return -EBADMSG;
        if (h.base_offset >= vis_next)
            break;
        if (*nb == cap) {
            cap = cap ? cap * 2 : 16;
            *refs = sp_xrealloc(*refs, cap * sizeof **refs);
        }
        (*refs)[(*nb)++] = (batch_ref){at, h};
        *nrec += h.count;
        *nhdr += h.header_total;
        at += h.length;
    }
    return 0;
}

static void decode_window(sp_store_records *out, const char *buf, const batch_ref *refs, size_t nb,
                          size_t nrec, size_t nhdr, uint64_t from, size_t max_records)
{
    out->records_ = sp_xmalloc((nrec ? nrec : 1) * sizeof *out->records_);
    out->headers_ = nhdr ? sp_xmalloc(nhdr * sizeof *out->headers_) : NULL;
    size_t r = 0, hd = 0;
    for (size_t i = 0; i < nb; i++) {
        sp__batch_decode(buf + refs[i].at, &refs[i].h, out->records_ + r, out->headers_ + hd);
        r += refs[i].h.count;
        hd += refs[i].h.header_total;
    }
    size_t skip = (size_t)(from - refs[0].h.base_offset);
    size_t count = nrec - skip;
    if (count > max_records)
        count = max_records;
    out->records = out->records_ + skip;
    out->count = count;
    out->next_offset = from + count;
}

static int read_segment(const read_plan *rp, uint64_t from, size_t max_records, size_t max_bytes,
                        sp_store_records *out)
{
    uint64_t pos = rp->pos;
    uint32_t first_len = 0;
    int err = skip_to(rp, from, &pos, &first_len);
    if (err < 0)
        return err;
    size_t want = max_bytes > first_len ? max_bytes : first_len; /* whole batches up to max_bytes */
    if (want > rp->limit - pos)
        want = (size_t)(rp->limit - pos);
    out->data_ = sp_xmalloc(want);
    ssize_t n = rp->seg->io->pread(rp->seg->io->ctx, rp->seg->fd, out->data_, want, (off_t)pos);
    if (n < 0)
        return (int)n;
    if ((size_t)n < first_len)
        return -EBADMSG;
    batch_ref *refs;
    size_t nb, nrec, nhdr;
    if ((err = check_batches(out->data_, (size_t)n, rp->vis_next, from, max_records, &refs, &nb,
                             &nrec, &nhdr)) < 0) {
        free(refs);
        return err;
    }
    if (nb > 0 && refs[0].h.base_offset <= from)
        decode_window(out, out->data_, refs, nb, nrec, nhdr, from, max_records);
    else if (nb > 0)
        err = -EBADMSG;
    free(refs);
    return err;
}

int sp_store_read(sp_store *s, const char *topic, uint32_t partition, uint64_t from,
                  size_t max_records, size_t max_bytes, sp_store_records *out)
{
    memset(out, 0, sizeof *out);
    if (max_records == 0)
        max_records = 1;
    sp__topic *t = sp__topic_get(s, topic);
    if (!t)
        return -ENOENT;
    if (partition >= t->nparts) {
        sp__topic_unref(t);
        return -EINVAL;
    }
    sp__partition *p = &t->parts[partition];
    read_plan rp;
    pthread_mutex_lock(&p->mu);
    int r = plan_read(p, &from, out, &rp);
    pthread_mutex_unlock(&p->mu);
    if (r == 1) {
        r = read_segment(&rp, from, max_records, max_bytes, out);
        sp__segment_unref(rp.seg);
    }
    sp__topic_unref(t);
    if (r < 0) {
        sp_store_records_free(out);
        out->next_offset = from;
    }
    return r < 0 ? r : 0;
}

void sp_store_records_free(sp_store_records *r)
{
    free(r->data_);
    free(r->records_);
    free(r->headers_);
    r->data_ = NULL;
    r->records_ = NULL;
    r->headers_ = NULL;
    r->records = NULL;
    r->count = 0;
}

/* Finds the segment whose records may reach ts_ms and an offset to scan
 * from; returns 0 (and *from) or 1 when no record is that recent. */
static int time_start(sp__partition *p, int64_t ts_ms, uint64_t *from, uint64_t *end)
{
    pthread_mutex_lock(&p->mu);
    *end = p->visible_offset;
    int r = 1;
    for (size_t i = 0; i < p->nsegs; i++) {
        if (p->segs[i]->max_ts >= ts_ms) {
            *from = sp__segment_time_lookup(p->segs[i], ts_ms);
            r = 0;
            break;
        }
    }
    pthread_mutex_unlock(&p->mu);
    return r;
}

int sp_store_offset_for_time(sp_store *s, const char *topic, uint32_t partition, int64_t ts_ms,
                             uint64_t *offset)
{
    sp__topic *t = sp__topic_get(s, topic);
    if (!t)
        return -ENOENT;
    if (partition >= t->nparts) {
        sp__topic_unref(t);
        return -EINVAL;
    }
    uint64_t from = 0, end;
    int r = time_start(&t->parts[partition], ts_ms, &from, &end);
    sp__topic_unref(t);
    *offset = end;
    if (r == 1)
        return 0;
    while (from < end) {
        sp_store_records recs;
        int err = sp_store_read(s, topic, partition, from, 4096, 1u << 20, &recs);
        if (err < 0)
            return err;
        for (size_t i = 0; i < recs.count; i++) {
            if (recs.records[i].timestamp >= ts_ms) {
                *offset = recs.records[i].offset;
                sp_store_records_free(&recs);
                return 0;
            }
        }
        from = recs.next_offset;
        end = recs.end_offset;
        bool stuck = recs.count == 0;
        sp_store_records_free(&recs);
        if (stuck)
            break;
    }
    *offset = end;
    return 0;
}
