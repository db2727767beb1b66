/* time.c - see time.h. */
#include "core/time.h"

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
    static const char days[7][4] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
    static const char mons[12][4] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
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
