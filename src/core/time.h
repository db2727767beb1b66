/* time.h - clocks and HTTP/ISO dates. */
#ifndef SP_CORE_TIME_H
#define SP_CORE_TIME_H

#include <stddef.h>
#include <stdint.h>

/* Wall-clock milliseconds since the Unix epoch. */
int64_t sp_time_now_ms(void);
/* Monotonic nanoseconds (CLOCK_MONOTONIC); never goes backwards. */
uint64_t sp_time_mono_ns(void);
/* Formats `sec` as an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") into
 * out, which must hold 30 bytes; returns 29. */
size_t sp_time_http_date(int64_t sec, char *out);
/* Formats ms since the epoch as ISO 8601 UTC with milliseconds
 * ("2026-11-23T19:30:38.123Z") into out (>= 25 bytes); returns 24. */
size_t sp_time_iso8601_ms(int64_t ms, char *out);

#endif

#include "core/slice.h"

/* Parses an ISO 8601 / RFC 3339 time: "2026-11-23", "2026-11-23T19:30",
 * "2026-11-23T19:30:38", with optional fraction ".123456" (kept to ms) and
 * optional zone "Z", "+01:00" or "-0530" (none means UTC). Returns 0 and
 * stores ms since the epoch, or -1 for anything else. */
int sp_time_parse_iso8601(sp_slice s, int64_t *ms);
