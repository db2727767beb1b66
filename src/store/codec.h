/* codec.h - the on-disk record batch: pure functions over bytes.
 *
 * A batch is what one sp_store_append becomes on disk (all little endian):
 *
 *   off size  field
 *    0   4    length       bytes of the whole batch, this field included
 *    4   4    crc          CRC32C of bytes [8, length)
 *    8   1    magic        0xB7
 *    9   1    version      1
 *   10   2    flags        0 (reserved)
 *   12   4    count        records in the batch, >= 1
 *   16   8    base_offset  offset of the first record
 *   24   8    max_ts       largest record timestamp in the batch
 *   32   ...  count records:
 *          u32 len (bytes after this field), u32 offset_delta (= index),
 *          i64 timestamp, u32 key_len (0xFFFFFFFF: no key), key,
 *          u32 value_len, value, u16 header_count,
 *          header_count x { u16 name_len, name, u32 value_len, value }
 *
 * Decoding never trusts a length: sp__batch_check validates the CRC and
 * then every record's structure before anything is handed out. It is the
 * fuzz entry point for log decoding. */
#ifndef SP_STORE_CODEC_H
#define SP_STORE_CODEC_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "store/store.h"

#define SP__BATCH_HDR     32u
#define SP__BATCH_MAGIC   0xB7u
#define SP__BATCH_VERSION 1u
#define SP__REC_FIXED     26u /* len + delta + ts + key_len + value_len + header_count */
#define SP__NO_KEY        0xFFFFFFFFu

typedef struct sp__batch_hdr {
    uint32_t length;
    uint32_t count;
    uint64_t base_offset;
    int64_t max_ts;
    uint32_t header_total; /* headers over all records (set by sp__batch_check) */
} sp__batch_hdr;

enum {
    SP__BATCH_OK = 0,
    SP__BATCH_SHORT = 1, /* fewer bytes than the header or its length: a torn tail at end of file */
    SP__BATCH_BAD = 2,   /* impossible length, CRC mismatch or malformed records */
};

static inline void sp__put_u16(char *p, uint16_t v)
{
    p[0] = (char)(v & 0xff), p[1] = (char)(v >> 8);
}
static inline void sp__put_u32(char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (char)((v >> (8 * i)) & 0xff);
}
static inline void sp__put_u64(char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (char)((v >> (8 * i)) & 0xff);
}
static inline uint16_t sp__get_u16(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    return (uint16_t)(u[0] | u[1] << 8);
}
static inline uint32_t sp__get_u32(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    return (uint32_t)u[0] | (uint32_t)u[1] << 8 | (uint32_t)u[2] << 16 | (uint32_t)u[3] << 24;
}
static inline uint64_t sp__get_u64(const char *p)
{
    return (uint64_t)sp__get_u32(p) | (uint64_t)sp__get_u32(p + 4) << 32;
}

/* Encoded size of one record, or 0 when a field is too long for the format
 * (key/value over 4 GiB - 1, header names over 64 KiB - 1, > 65535 headers). */
size_t sp__record_size(const sp_store_record *r);
/* Payload bytes counted against max_record_bytes: key + value + headers. */
size_t sp__record_payload(const sp_store_record *r);

/* Encodes n records after the batch header at `batch` (which must hold
 * SP__BATCH_HDR + the sum of sp__record_size). Records with timestamp < 0
 * get `now_ms`. Returns the largest timestamp. */
int64_t sp__batch_encode_records(char *batch, const sp_store_record *recs, size_t n,
                                 int64_t now_ms);

/* Fills the header of an encoded batch of `length` bytes and its CRC. */
void sp__batch_seal(char *batch, uint32_t length, uint32_t count, uint64_t base_offset,
                    int64_t max_ts);

/* Validates the batch starting at p with `avail` bytes available. Returns
 * SP__BATCH_OK and fills *h, SP__BATCH_SHORT or SP__BATCH_BAD. */
int sp__batch_check(const char *p, size_t avail, sp__batch_hdr *h);

/* Parses only the fixed header fields, with no CRC check (for scans that
 * check the CRC separately). Returns SP__BATCH_OK/SHORT/BAD on length. */
int sp__batch_peek(const char *p, size_t avail, sp__batch_hdr *h);

/* Decodes a batch that passed sp__batch_check into h->count records and
 * h->header_total headers (slices point into p). */
void sp__batch_decode(const char *p, const sp__batch_hdr *h, sp_store_record *recs,
                      sp_store_header *hdrs);

#endif
