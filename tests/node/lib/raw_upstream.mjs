// A scripted OpenAI-compatible upstream on raw TCP sockets, for the wire faults node:http will not
// produce: interim 1xx responses before the final one, bytes after a response's declared end, and
// a response nobody asked for on an idle keep-alive connection. Requests are parsed minimally
// (Content-Length bodies only, which is what the gateway sends).
//
// Scenarios, chosen by the upstream model name (a ':suffix' is ignored):
//   ok            a normal answer (JSON, or SSE in one chunked body for stream: true), keep-alive;
//                 the content is "answer <n>", n counting requests to this fake from 1
//   unsolicited   the ok answer, then 50 ms later a complete second response ("POISON") written on
//                 the same, now idle, connection; emits 'unsolicited' once it is written
//   extra-bytes   the ok answer and, in the same write, a second response ("POISON") after it
//   continue      "100 Continue" first, then the ok answer
//   early-hints   "103 Early Hints" with a Link header first, then the ok answer
//   echo-key      401 whose message echoes the Authorization header it received, a key=... form of
//                 it and 2000 more characters
//   held          (stream) the role and first content events, then nothing until release() is
//                 called; emits 'held' once the first events are written
import net from 'node:net';
import { EventEmitter } from 'node:events';

const CRLF = '\r\n';

function jsonAnswer(model, content) {
  return JSON.stringify({
    id: 'chatcmpl-raw',
    object: 'chat.completion',
    created: 1700000000,
    model,
    choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
    usage: { prompt_tokens: 5, completion_tokens: 2, total_tokens: 7 },
  });
}

function sseAnswer(model, content) {
  const base = { id: 'chatcmpl-raw', object: 'chat.completion.chunk', created: 1700000000, model };
  const events = [
    { ...base, choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }] },
    { ...base, choices: [{ index: 0, delta: { content }, finish_reason: null }] },
    { ...base, choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] },
    { ...base, choices: [], usage: { prompt_tokens: 5, completion_tokens: 2, total_tokens: 7 } },
  ];
  return events.map((e) => `data: ${JSON.stringify(e)}\n\n`).join('') + 'data: [DONE]\n\n';
}

function response(status, reason, body, contentType, stream) {
  const buf = Buffer.from(body, 'utf8');
  if (stream) {
    return Buffer.concat([
      Buffer.from(`HTTP/1.1 ${status} ${reason}${CRLF}Content-Type: text/event-stream${CRLF}Transfer-Encoding: chunked${CRLF}Connection: keep-alive${CRLF}${CRLF}`),
      Buffer.from(buf.length.toString(16) + CRLF),
      buf,
      Buffer.from(`${CRLF}0${CRLF}${CRLF}`),
    ]);
  }
  return Buffer.concat([
    Buffer.from(`HTTP/1.1 ${status} ${reason}${CRLF}Content-Type: ${contentType}${CRLF}Content-Length: ${buf.length}${CRLF}Connection: keep-alive${CRLF}${CRLF}`),
    buf,
  ]);
}

export async function startRawUpstream() {
  const events = new EventEmitter();
  const requests = [];
  const sockets = new Set();
  const timers = new Set();
  const held = [];  // the rest of each 'held' stream
  let connections = 0;
  let served = 0;

  const answer = (model, stream, content) =>
    stream ? response(200, 'OK', sseAnswer(model, content), 'text/event-stream', true) : response(200, 'OK', jsonAnswer(model, content), 'application/json', false);

  function serve(sock, connId, head, body) {
    const lines = head.split(CRLF);
    const headers = {};
    for (const l of lines.slice(1)) {
      const i = l.indexOf(':');
      if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
    }
    let json = null;
    try {
      json = JSON.parse(body.toString('utf8'));
    } catch {}
    const model = String(json?.model ?? '');
    const scenario = model.split(':')[0];
    const stream = json?.stream === true;
    const n = ++served;
    const rec = { connId, requestLine: lines[0], headers, body: json, scenario, n };
    requests.push(rec);
    events.emit('request', rec);
    const ok = answer(model, stream, `answer ${n}`);
    switch (scenario) {
      case 'unsolicited': {
        sock.write(ok);
        const t = setTimeout(() => {
          timers.delete(t);
          if (sock.destroyed) return;
          sock.write(answer(model, false, 'POISON'), () => events.emit('unsolicited', rec));
        }, 50);
        timers.add(t);
        return;
      }
      case 'extra-bytes':
        sock.write(Buffer.concat([ok, answer(model, stream, 'POISON')]));
        return;
      case 'continue':
        sock.write(`HTTP/1.1 100 Continue${CRLF}${CRLF}`);
        sock.write(ok);
        return;
      case 'early-hints':
        sock.write(`HTTP/1.1 103 Early Hints${CRLF}Link: </style.css>; rel=preload; as=style${CRLF}${CRLF}`);
        sock.write(ok);
        return;
      case 'echo-key': {
        const auth = headers.authorization || '(none)';
        const key = auth.replace(/^Bearer\s+/i, '');
        const message = `Incorrect API key provided: ${auth}. Request was api_key=${key}&x=1. ` + 'x'.repeat(2000);
        const text = JSON.stringify({ error: { message, type: 'invalid_request_error', code: 'invalid_api_key' } });
        sock.write(response(401, 'Unauthorized', text, 'application/json', false));
        return;
      }
      case 'held': {
        const sse = sseAnswer(model, `answer ${n}`).split('\n\n').filter(Boolean).map((e) => e + '\n\n');
        const chunk = (text) => Buffer.from(Buffer.byteLength(text).toString(16) + CRLF + text + CRLF);
        sock.write(`HTTP/1.1 200 OK${CRLF}Content-Type: text/event-stream${CRLF}Transfer-Encoding: chunked${CRLF}${CRLF}`);
        sock.write(chunk(sse.slice(0, 2).join('')), () => events.emit('held', rec));
        held.push(() => sock.write(Buffer.concat([chunk(sse.slice(2).join('')), Buffer.from(`0${CRLF}${CRLF}`)])));
        return;
      }
      default:
        sock.write(ok);
    }
  }

  const server = net.createServer((sock) => {
    const connId = ++connections;
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => {});
    let buf = Buffer.alloc(0);
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.subarray(0, end).toString('latin1');
        const m = /\r\ncontent-length:\s*(\d+)/i.exec(head);
        const len = m ? Number(m[1]) : 0;
        if (buf.length < end + 4 + len) return;
        const body = buf.subarray(end + 4, end + 4 + len);
        buf = buf.subarray(end + 4 + len);
        serve(sock, connId, head, body);
      }
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = server.address().port;
  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    port,
    requests,
    events,
    get connections() {
      return connections;
    },
    // Ends every 'held' stream so far.
    release() {
      for (const finish of held.splice(0)) finish();
    },
    nextEvent(name, timeoutMs = 5000) {
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`raw upstream: no '${name}' within ${timeoutMs} ms`)), timeoutMs);
        events.once(name, (v) => {
          clearTimeout(t);
          resolve(v);
        });
      });
    },
    async close() {
      for (const t of timers) clearTimeout(t);
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
