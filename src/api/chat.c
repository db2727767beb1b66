/* chat.c - GET /chat: the live-streams demo, a chat room in one page of
 * plain HTML and JavaScript (no framework) over the WebSocket endpoint of
 * the demo.chat_topic topic.
 *
 * The page publishes {"id","value":{"user","text"}} frames and shows every
 * record of the topic. It remembers the id of the last record it showed
 * and reconnects with ?from=<that id> when the socket drops, so a client
 * that was away sees exactly what it missed: no gap, no duplicate. The
 * status line says when it is offline and from where it resumed. */
#include <stdio.h>

#include "api/api_int.h"

static const char page_head[] =
    "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
    "<title>spate chat</title>\n"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    "<style>body{font:15px system-ui,sans-serif;max-width:40em;margin:1em auto;padding:0 1em}"
    "#log{border:1px solid #ccc;height:60vh;overflow-y:auto;padding:.5em;margin:.5em 0}"
    "#log div{margin:.15em 0}#log .u{font-weight:600;margin-right:.4em}"
    "#log .sys{color:#888;font-style:italic}form{display:flex;gap:.5em}"
    "#text{flex:1}#status{color:#555;font-size:13px}</style></head>\n<body>\n"
    "<h1>spate chat</h1>\n"
    "<div id=\"status\">connecting...</div>\n<div id=\"log\"></div>\n"
    "<form id=\"form\"><input id=\"user\" size=\"10\" aria-label=\"name\">"
    "<input id=\"text\" autocomplete=\"off\" placeholder=\"say something\" aria-label=\"message\">"
    "<button>Send</button></form>\n"
    "<script>\n"
    "'use strict';\n"
    "const TOPIC = ";
static const char page_tail[] =
    ";\n"
    "const log = document.getElementById('log'), statusEl = document.getElementById('status');\n"
    "const user = document.getElementById('user'), text = document.getElementById('text');\n"
    "user.value = 'guest' + Math.floor(Math.random() * 1000);\n"
    "let ws = null, lastId = null, seq = 0, retryMs = 500;\n"
    "const outbox = [];\n"
    "function line(cls, who, msg) {\n"
    "  const d = document.createElement('div');\n"
    "  d.className = cls;\n"
    "  if (who) { const u = document.createElement('span'); u.className = 'u';\n"
    "    u.textContent = who; d.appendChild(u); }\n"
    "  d.appendChild(document.createTextNode(msg));\n"
    "  log.appendChild(d); log.scrollTop = log.scrollHeight;\n"
    "}\n"
    "function connect() {\n"
    "  const from = lastId ? lastId : 'earliest';\n"
    "  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';\n"
    "  ws = new WebSocket(proto + '//' + location.host + '/v1/topics/' +\n"
    "                     encodeURIComponent(TOPIC) + '/ws?from=' + encodeURIComponent(from));\n"
    "  ws.onopen = () => {\n"
    "    retryMs = 500;\n"
    "    statusEl.textContent = 'online' + (lastId ? ' (resumed after ' + lastId + ')' : '');\n"
    "    document.body.dataset.state = 'online';\n"
    "    while (outbox.length) ws.send(outbox.shift());\n"
    "  };\n"
    "  ws.onmessage = (ev) => {\n"
    "    const m = JSON.parse(ev.data);\n"
    "    if (m.type === 'gap') { line('sys', '', 'missed messages ' + m.from + '-' + m.to); "
    "return; }\n"
    "    if (m.type === 'error') { line('sys', '', 'error: ' + JSON.stringify(m.detail)); return; "
    "}\n"
    "    if (m.type === 'ack') return;\n"
    "    lastId = m.id;\n"
    "    const v = m.value || {};\n"
    "    line('msg', String(v.user || '?') + ':', String(v.text || ''));\n"
    "  };\n"
    "  ws.onclose = (ev) => {\n"
    "    document.body.dataset.state = 'offline';\n"
    "    statusEl.textContent = 'offline (' + ev.code + '), reconnecting...';\n"
    "    setTimeout(connect, retryMs);\n"
    "    retryMs = Math.min(retryMs * 2, 10000);\n"
    "  };\n"
    "}\n"
    "document.getElementById('form').onsubmit = (e) => {\n"
    "  e.preventDefault();\n"
    "  if (!text.value) return;\n"
    "  const msg = JSON.stringify({ id: 'm' + (++seq),\n"
    "                               value: { user: user.value, text: text.value } });\n"
    "  if (ws && ws.readyState === WebSocket.OPEN) ws.send(msg); else outbox.push(msg);\n"
    "  text.value = '';\n"
    "};\n"
    "connect();\n"
    "</script>\n</body></html>\n";

static void chat_page(sp_http_req *req, void *udata)
{
    sp_api *api = udata;
    static const sp_http_header h[] = {
        {{"Content-Type", 12}, {"text/html; charset=utf-8", 24}},
        {{"Cache-Control", 13}, {"no-cache", 8}},
    };
    sp_buf *b = sp_http_req_scratch(req);
    sp_buf_append(b, page_head, sizeof page_head - 1);
    sp_json_cstr(b, api->opts.chat_topic); /* a topic name: nothing to escape for <script> */
    sp_buf_append(b, page_tail, sizeof page_tail - 1);
    sp_http_respond(req, 200, h, 2, sp_buf_slice(b));
}

int sp__api_register_chat(sp_router *r, sp_api *api)
{
    if (!api->opts.chat_topic || !api->opts.chat_topic[0])
        return 0;
    return sp_router_add(r, SP_HTTP_GET, "/chat", chat_page, api);
}
