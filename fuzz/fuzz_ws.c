/* fuzz_ws.c - libFuzzer target for WebSocket frame parsing: the bytes a
 * client sends after its handshake, fed through the same path as a live
 * socket (spate's frame guard, then wslay's event-based receive with our
 * callbacks and a 64 KiB message limit). Whatever the input, parsing must
 * end without a crash or leak, and a close code it picks must be one the
 * server is allowed to send. */
#include <stdint.h>
#include <stdlib.h>

#include "ws/ws.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t messages = 0;
    int code = sp_ws_parse_for_test((const char *)data, size, 64 * 1024, &messages);
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
