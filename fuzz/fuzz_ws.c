/* fuzz_ws.c - libFuzzer target for WebSocket frame parsing: the bytes a
 * client sends after its handshake, fed through the same path as a live
 * socket (spate's frame guard, then wslay's event-based receive with our
 * callbacks and a 64 KiB message limit). Whatever the input, parsing must
 * end without a crash or leak, a close code it picks must be one the
 * server is allowed to send, and feeding the same bytes in small reads
 * (between which the socket drops and rebuilds its wslay context) must
 * reach the same verdict and deliver the same number of messages. */
#include <stdint.h>
#include <stdlib.h>

#include "ws/ws.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* True when some frame of the input is a close frame. wslay checks a
 * close frame's reason for UTF-8 per chunk it received (skipping two
 * bytes of every chunk), so a close frame cut across reads may be judged
 * 1002, 1007 or not yet where whole it is judged otherwise: such inputs
 * are left out of the comparison below. */
static int has_close_frame(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i + 2 <= n) {
        if ((p[i] & 0x0f) == 0x8)
            return 1;
        unsigned len7 = p[i + 1] & 0x7f;
        size_t h = 2 + ((p[i + 1] & 0x80) ? 4 : 0) + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0);
        if (i + h > n)
            return 0;
        uint64_t len = len7;
        if (len7 == 126)
            len = (uint64_t)p[i + 2] << 8 | p[i + 3];
        else if (len7 == 127)
            for (int k = 0; k < 8; k++)
                len = len << 8 | p[i + 2 + k];
        if (len > n - i - h)
            return 0;
        i += h + (size_t)len;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t messages = 0, messages_chunked = 0;
    int code = sp_ws_parse_for_test((const char *)data, size, 64 * 1024, 0, &messages);
    /* The same bytes in small reads (the socket's wslay state is dropped
     * and rebuilt between them) must get the same verdict. */
    size_t chunk = size ? 1 + data[0] % 16 : 1;
    int code_chunked =
        sp_ws_parse_for_test((const char *)data, size, 64 * 1024, chunk, &messages_chunked);
    if (messages_chunked != messages || (code_chunked != code && !has_close_frame(data, size)))
        abort();
    switch (code) {
    case 0:
    case 1005: /* the answer to a close without a code */
    case 1000:
    case 1001:
    case 1002:
    case 1003:
    case 1007:
    case 1008:
    case 1009:
    case 1010:
    case 1011: break;
    default:
        if (code < 3000 || code > 4999) /* echoed application codes are fine */
            abort();
    }
    return 0;
}
