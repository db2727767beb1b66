/* codec.c - batch encoding, validation and decoding (see codec.h for the
 * layout). Validation is two-step: the CRC first (cheap with SSE4.2), then
 * a walk over the records that proves every length stays inside its
 * record, so that decoding afterwards can trust the bytes. */
#include "store/codec.h"

#include "store/crc32c.h"

size_t sp__record_payload(const sp_store_record *r)
{
    size_t n = (r->key.base ? r->key.len : 0) + r->value.len;
    for (uint32_t i = 0; i < r->header_count; i++)
        n += r->headers[i].name.len + r->headers[i].value.len;
    return n;
}

size_t sp__record_size(const sp_store_record *r)
{
    if (r->value.len >= SP__NO_KEY || (r->key.base && r->key.len >= SP__NO_KEY) ||
        r->header_count > 0xffff)
        return 0;
    size_t n = SP__REC_FIXED + (r->key.base ? r->key.len : 0) + r->value.len;
    for (uint32_t i = 0; i < r->header_count; i++) {
        if (r->headers[i].name.len > 0xffff || r->headers[i].value.len >= SP__NO_KEY)
            return 0;
        n += 6 + r->headers[i].name.len + r->headers[i].value.len;
    }
    return n - 4 > 0xfffffff0u ? 0 : n;
}

static char *put_bytes(char *p, sp_slice s)
{
    if (s.len)
        memcpy(p, s.base, s.len);
    return p + s.len;
}

static char *encode_one(char *p, const sp_store_record *r, uint32_t delta, int64_t ts)
{
    char *start = p;
    p += 4;
    sp__put_u32(p, delta), p += 4;
    sp__put_u64(p, (uint64_t)ts), p += 8;
    sp__put_u32(p, r->key.base ? (uint32_t)r->key.len : SP__NO_KEY), p += 4;
    if (r->key.base)
        p = put_bytes(p, r->key);
    sp__put_u32(p, (uint32_t)r->value.len), p += 4;
    p = put_bytes(p, r->value);
    sp__put_u16(p, (uint16_t)r->header_count), p += 2;
    for (uint32_t i = 0; i < r->header_count; i++) {
        sp__put_u16(p, (uint16_t)r->headers[i].name.len), p += 2;
        p = put_bytes(p, r->headers[i].name);
        sp__put_u32(p, (uint32_t)r->headers[i].value.len), p += 4;
        p = put_bytes(p, r->headers[i].value);
    }
    sp__put_u32(start, (uint32_t)(p - start - 4));
    return p;
}

int64_t sp__batch_encode_records(char *batch, const sp_store_record *recs, size_t n, int64_t now_ms)
{
    char *p = batch + SP__BATCH_HDR;
    int64_t max_ts = INT64_MIN;
    for (size_t i = 0; i < n; i++) {
        int64_t ts = recs[i].timestamp < 0 ? now_ms : recs[i].timestamp;
        if (ts > max_ts)
            max_ts = ts;
        p = encode_one(p, &recs[i], (uint32_t)i, ts);
    }
    return max_ts;
}

void sp__batch_seal(char *batch, uint32_t length, uint32_t count, uint64_t base_offset,
                    int64_t max_ts)
{
    sp__put_u32(batch, length);
    batch[8] = (char)SP__BATCH_MAGIC;
    batch[9] = (char)SP__BATCH_VERSION;
    sp__put_u16(batch + 10, 0);
    sp__put_u32(batch + 12, count);
    sp__put_u64(batch + 16, base_offset);
    sp__put_u64(batch + 24, (uint64_t)max_ts);
    sp__put_u32(batch + 4, sp__crc32c(0, batch + 8, length - 8));
}

int sp__batch_peek(const char *p, size_t avail, sp__batch_hdr *h)
{
    if (avail < SP__BATCH_HDR)
        return SP__BATCH_SHORT;
    h->length = sp__get_u32(p);
    h->count = sp__get_u32(p + 12);
    h->base_offset = sp__get_u64(p + 16);
    h->max_ts = (int64_t)sp__get_u64(p + 24);
    h->header_total = 0;
    if (h->length < SP__BATCH_HDR + SP__REC_FIXED || (unsigned char)p[8] != SP__BATCH_MAGIC ||
        (unsigned char)p[9] != SP__BATCH_VERSION || h->count == 0 ||
        h->count > (h->length - SP__BATCH_HDR) / SP__REC_FIXED)
        return SP__BATCH_BAD;
    if (avail < h->length)
        return SP__BATCH_SHORT;
    return SP__BATCH_OK;
}

/* Walks one record at p (avail bytes left in the batch); returns its total
 * size or 0 when malformed, and adds its headers to *headers. */
static size_t check_record(const char *p, size_t avail, uint32_t want_delta, uint32_t *headers)
{
    if (avail < SP__REC_FIXED)
        return 0;
    size_t len = sp__get_u32(p);
    if (len > avail - 4 || len < SP__REC_FIXED - 4 || sp__get_u32(p + 4) != want_delta)
        return 0;
    const char *q = p + 16, *end = p + 4 + len;
    uint32_t klen = sp__get_u32(q);
    q += 4;
    if (klen != SP__NO_KEY) {
        if (klen > (size_t)(end - q))
            return 0;
        q += klen;
    }
    if ((size_t)(end - q) < 6 || sp__get_u32(q) > (size_t)(end - q) - 6)
        return 0;
    q += 4 + sp__get_u32(q);
    uint16_t nh = sp__get_u16(q);
    q += 2;
    for (uint16_t i = 0; i < nh; i++) {
        if ((size_t)(end - q) < 2 || sp__get_u16(q) > (size_t)(end - q) - 2)
            return 0;
        q += 2 + sp__get_u16(q);
        if ((size_t)(end - q) < 4 || sp__get_u32(q) > (size_t)(end - q) - 4)
            return 0;
        q += 4 + sp__get_u32(q);
    }
    if (q != end)
        return 0;
    *headers += nh;
    return 4 + len;
}

int sp__batch_check(const char *p, size_t avail, sp__batch_hdr *h)
{
    int r = sp__batch_peek(p, avail, h);
    if (r != SP__BATCH_OK)
        return r;
    if (sp__get_u32(p + 4) != sp__crc32c(0, p + 8, h->length - 8))
        return SP__BATCH_BAD;
    const char *q = p + SP__BATCH_HDR, *end = p + h->length;
    for (uint32_t i = 0; i < h->count; i++) {
        size_t n = check_record(q, (size_t)(end - q), i, &h->header_total);
        if (n == 0)
            return SP__BATCH_BAD;
        q += n;
    }
    return q == end ? SP__BATCH_OK : SP__BATCH_BAD;
}

static const char *take(const char *q, size_t n, sp_slice *out)
{
    *out = sp_slice_make(q, n);
    return q + n;
}

void sp__batch_decode(const char *p, const sp__batch_hdr *h, sp_store_record *recs,
                      sp_store_header *hdrs)
{
    const char *q = p + SP__BATCH_HDR;
    for (uint32_t i = 0; i < h->count; i++) {
        sp_store_record *r = &recs[i];
        r->offset = h->base_offset + i;
        r->timestamp = (int64_t)sp__get_u64(q + 8);
        uint32_t klen = sp__get_u32(q + 16);
        q += 20;
        if (klen == SP__NO_KEY)
            r->key = SP_SLICE_NULL;
        else
            q = take(q, klen, &r->key);
        uint32_t vlen = sp__get_u32(q);
        q = take(q + 4, vlen, &r->value);
        r->header_count = sp__get_u16(q);
        r->headers = r->header_count ? hdrs : NULL;
        q += 2;
        for (uint32_t k = 0; k < r->header_count; k++, hdrs++) {
            q = take(q + 2, sp__get_u16(q), &hdrs->name);
            uint32_t hv = sp__get_u32(q);
            q = take(q + 4, hv, &hdrs->value);
        }
    }
}
