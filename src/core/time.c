/* time.c - see time.h. */
#define _GNU_SOURCE /* timegm */
#include "core/time.h"

#include <stdbool.h>
#include <string.h>
#include <time.h>

int64_t sp_time_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t sp_time_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static char *put_digits(char *o, unsigned v, int width)
{
    for (int i = width - 1; i >= 0; i--) {
        o[i] = (char)('0' + v % 10);
        v /= 10;
    }
    return o + width;
}

size_t sp_time_http_date(int64_t sec, char *out)
{
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char mons[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t t = (time_t)sec;
    struct tm tm;
    gmtime_r(&t, &tm);
    char *o = out;
    memcpy(o, days[tm.tm_wday], 3);
    o += 3;
    *o++ = ',';
    *o++ = ' ';
    o = put_digits(o, (unsigned)tm.tm_mday, 2);
    *o++ = ' ';
    memcpy(o, mons[tm.tm_mon], 3);
    o += 3;
    *o++ = ' ';
    o = put_digits(o, (unsigned)(tm.tm_year + 1900) % 10000, 4);
    *o++ = ' ';
    o = put_digits(o, (unsigned)tm.tm_hour, 2);
    *o++ = ':';
    o = put_digits(o, (unsigned)tm.tm_min, 2);
    *o++ = ':';
    o = put_digits(o, (unsigned)tm.tm_sec, 2);
    memcpy(o, " GMT", 5);
    return 29;
}

size_t sp_time_iso8601_ms(int64_t ms, char *out)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char *o = out;
    o = put_digits(o, (unsigned)(tm.tm_year + 1900) % 10000, 4);
    *o++ = '-';
    o = put_digits(o, (unsigned)tm.tm_mon + 1, 2);
    *o++ = '-';
    o = put_digits(o, (unsigned)tm.tm_mday, 2);
    *o++ = 'T';
    o = put_digits(o, (unsigned)tm.tm_hour, 2);
    *o++ = ':';
    o = put_digits(o, (unsigned)tm.tm_min, 2);
    *o++ = ':';
    o = put_digits(o, (unsigned)tm.tm_sec, 2);
    *o++ = '.';
    o = put_digits(o, (unsigned)(ms % 1000), 3);
    memcpy(o, "Z", 2);
    return 24;
}

/* Reads exactly n digits at *p; -1 when they are not all digits. */
static int take_digits(const char **p, const char *end, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (*p >= end || **p < '0' || **p > '9')
            return -1;
        v = v * 10 + (*(*p)++ - '0');
    }
    return v;
}

static bool take(const char **p, const char *end, char c)
{
    if (*p < end && **p == c) {
        (*p)++;
        return true;
    }
    return false;
}

/* Zone suffix in seconds east of UTC; false on bad syntax. */
static bool parse_zone(const char **p, const char *end, long *offset)
{
    *offset = 0;
    if (*p == end || take(p, end, 'Z') || take(p, end, 'z'))
        return *p == end;
    int sign = take(p, end, '+') ? 1 : take(p, end, '-') ? -1 : 0;
    int hh = sign ? take_digits(p, end, 2) : -1;
    take(p, end, ':');
    int mm = take_digits(p, end, 2);
    if (hh < 0 || hh > 23 || mm < 0 || mm > 59 || *p != end)
        return false;
    *offset = sign * (hh * 3600L + mm * 60L);
    return true;
}

int sp_time_parse_iso8601(sp_slice s, int64_t *ms)
{
    const char *p = s.base, *end = s.base + s.len;
    struct tm tm = {0};
    int y = take_digits(&p, end, 4), mo = -1, d = -1, h = 0, mi = 0, sec = 0, frac_ms = 0;
    if (y >= 0 && take(&p, end, '-'))
        mo = take_digits(&p, end, 2);
    if (mo >= 0 && take(&p, end, '-'))
        d = take_digits(&p, end, 2);
    if (y < 0 || mo < 1 || mo > 12 || d < 1 || d > 31)
        return -1;
    if (take(&p, end, 'T') || take(&p, end, 't') || take(&p, end, ' ')) {
        h = take_digits(&p, end, 2);
        mi = take(&p, end, ':') ? take_digits(&p, end, 2) : -1;
        if (take(&p, end, ':'))
            sec = take_digits(&p, end, 2);
        if (h < 0 || h > 23 || mi < 0 || mi > 59 || sec < 0 || sec > 60)
            return -1;
        if (take(&p, end, '.') || take(&p, end, ',')) {
            int digits = 0;
            while (p < end && *p >= '0' && *p <= '9') {
                if (digits++ < 3)
                    frac_ms = frac_ms * 10 + (*p - '0');
                p++;
            }
            if (digits == 0)
                return -1;
            for (; digits < 3; digits++)
                frac_ms *= 10;
        }
    }
    long offset;
    if (!parse_zone(&p, end, &offset))
        return -1;
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    time_t t = timegm(&tm);
    if (tm.tm_mday != d) /* timegm normalised an impossible date (Feb 30) */
        return -1;
    *ms = ((int64_t)t - offset) * 1000 + frac_ms;
    return 0;
}
