/* handshake.c - the RFC 6455 opening handshake (section 4.2): what a
 * client must send, and the Sec-WebSocket-Accept the server answers with.
 * sp_ws_accept_key and sp_ws_origin_allowed are pure functions over bytes. */
#include <ctype.h>
#include <errno.h>
#include <string.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "ws/ws.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

static bool b64_char(char c)
{
    return isalnum((unsigned char)c) || c == '+' || c == '/';
}

/* A key is 16 random bytes in base64: 22 characters and "==". */
static bool key_valid(sp_slice key)
{
    if (key.len != 24 || key.base[22] != '=' || key.base[23] != '=')
        return false;
    for (size_t i = 0; i < 22; i++)
        if (!b64_char(key.base[i]))
            return false;
    /* the last character carries 2 bits: its low 4 bits must be zero */
    return strchr("AQgw", key.base[21]) != NULL;
}

int sp_ws_accept_key(sp_slice key, char out[SP_WS_ACCEPT_LEN + 1])
{
    if (!key_valid(key))
        return -EINVAL;
    unsigned char in[24 + sizeof WS_GUID - 1];
    memcpy(in, key.base, 24);
    memcpy(in + 24, WS_GUID, sizeof WS_GUID - 1);
    unsigned char md[SHA_DIGEST_LENGTH];
    SHA1(in, sizeof in, md);
    EVP_EncodeBlock((unsigned char *)out, md, SHA_DIGEST_LENGTH);
    out[SP_WS_ACCEPT_LEN] = '\0';
    return 0;
}

static sp_slice trim(sp_slice s)
{
    while (s.len && (s.base[0] == ' ' || s.base[0] == '\t')) {
        s.base++;
        s.len--;
    }
    while (s.len && (s.base[s.len - 1] == ' ' || s.base[s.len - 1] == '\t'))
        s.len--;
    return s;
}

/* True when one comma-separated, trimmed item of `list` equals `want`
 * (case-insensitive): header token lists and the Origin allow-list. */
static bool any_item(sp_slice list, sp_slice want)
{
    while (list.len) {
        const char *comma = memchr(list.base, ',', list.len);
        size_t n = comma ? (size_t)(comma - list.base) : list.len;
        if (sp_slice_case_eq(trim(sp_slice_make(list.base, n)), want))
            return true;
        list.base += comma ? n + 1 : n;
        list.len -= comma ? n + 1 : n;
    }
    return false;
}

bool sp_ws_origin_allowed(const char *origins, sp_slice origin)
{
    if (!origins || !*origins)
        return true;
    return origin.base && any_item(sp_slice_cstr(origins), trim(origin));
}

static const sp_http_header version_header[] = {
    {{"Sec-WebSocket-Version", 21}, {"13", 2}},
    {{"Content-Type", 12}, {"application/json", 16}},
};

bool sp_ws_handshake(sp_http_req *req, const sp_ws_options *o, char accept[SP_WS_ACCEPT_LEN + 1])
{
    sp_slice up = sp_http_req_header(req, SP_SLICE_LIT("upgrade"));
    sp_slice conn = sp_http_req_header(req, SP_SLICE_LIT("connection"));
    if (sp_http_req_method(req) != SP_HTTP_GET || !up.base ||
        !any_item(up, SP_SLICE_LIT("websocket")) || !conn.base ||
        !any_item(conn, SP_SLICE_LIT("upgrade"))) {
        sp_http_respond_error(req, 400,
                              "This endpoint takes a WebSocket handshake: GET with "
                              "'Upgrade: websocket' and 'Connection: Upgrade'");
        return false;
    }
    sp_slice ver = sp_http_req_header(req, SP_SLICE_LIT("sec-websocket-version"));
    if (!ver.base || !sp_slice_eq_cstr(trim(ver), "13")) {
        static const char body[] = "{\"detail\":\"Unsupported Sec-WebSocket-Version: use 13\"}";
        sp_http_respond(req, 426, version_header, 2, sp_slice_make(body, sizeof body - 1));
        return false;
    }
    sp_slice key = sp_http_req_header(req, SP_SLICE_LIT("sec-websocket-key"));
    if (!key.base || sp_ws_accept_key(trim(key), accept) != 0) {
        sp_http_respond_error(req, 400, "Sec-WebSocket-Key must be 16 bytes in base64");
        return false;
    }
    if (!sp_ws_origin_allowed(o->origins, sp_http_req_header(req, SP_SLICE_LIT("origin")))) {
        sp_http_respond_error(req, 403, "Origin not allowed");
        return false;
    }
    return true;
}
