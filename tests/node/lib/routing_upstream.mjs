// A programmable OpenAI-compatible upstream for the routing tests: answers POST .../chat/completions
// for ANY model id (built-in catalog ids such as deepseek-flash included) and its behaviour can be
// switched while the gateway runs (fake.set({...})), so one deployment can become slow, start
// failing and recover.
//
// Behaviour (all fields optional, merged by set()):
//   delayMs   wait this long before the response header (the gateway measures it as TTFT)
//   contentDelayMs  streams only: header and role chunk at once, then wait this long before the
//             first content chunk (how a real slow model looks: TTFT is the first content byte)
//   status    200 = answer; anything else = that HTTP status with an OpenAI-shaped error body
//   retryAfter  Retry-After header value on errors
//   usage     the usage object sent (dialect fields verbatim, e.g. DeepSeek's prompt_cache_hit_tokens)
//   content   assistant text
//   Scripted answers (the accounting tests), any of:
//   pieces    streams: the content as these chunks, pieceDelayMs apart, then the finish chunk
//   cutAfterPieces  streams: destroy the socket after this many pieces (a stream cut mid-answer)
//   usageDelayMs    streams: wait this long between the finish chunk and the usage chunk + [DONE]
//   usageNever      streams: after the finish chunk send nothing more and keep the socket open
//   bodyDelayMs     non-streams: response header at once, the body this much later
//   hold      a Promise: requests that arrive while it is set are answered once it resolves (the
//             test decides when the upstream finishes, e.g. after it stopped a database)
// Streams: role chunk, one content chunk, finish chunk, usage-only chunk (choices: []) when
// stream_options.include_usage is set, [DONE].
//
// Records every request: {at (performance.now()), path, model, stream, headers, body}.

import http from 'node:http';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { startGateway, defaultConfig, tmpDir, request } from './gateway.mjs';

export const DEFAULT_USAGE = { prompt_tokens: 30, completion_tokens: 12, total_tokens: 42 };

export async function startUpstream({ name = 'upstream', host = '127.0.0.1', ...initial } = {}) {
  const behaviour = { delayMs: 0, contentDelayMs: 0, status: 200, retryAfter: undefined, usage: DEFAULT_USAGE, content: `hello from ${name}` };
  Object.assign(behaviour, initial);
  const requests = [];
  const sockets = new Set();
  const timers = new Set();

  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      let body = null;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        body = null;
      }
      const rec = { at: performance.now(), path: req.url, model: body?.model, stream: body?.stream === true, headers: req.headers, body, closedAt: null };
      res.on('close', () => (rec.closedAt = performance.now()));
      requests.push(rec);
      if (req.method !== 'POST' || !/\/chat\/completions(\?|$)/.test(req.url) || !body) {
        const text = JSON.stringify({ error: { message: `unknown ${req.method} ${req.url}`, type: 'invalid_request_error', param: null, code: null } });
        res.writeHead(404, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
        return res.end(text);
      }
      const b = { ...behaviour }; // behaviour at arrival time
      const t = setTimeout(() => {
        timers.delete(t);
        const go = () => {
          if (res.destroyed || res.socket?.destroyed) return;
          answer(b, rec, res);
        };
        if (b.hold) b.hold.then(go);
        else go();
      }, b.delayMs);
      timers.add(t);
    });
  });

  function answer(b, rec, res) {
    if (b.status === 200 && (b.pieces || b.bodyDelayMs || b.usageDelayMs || b.usageNever)) return answerScripted(b, rec, res);
    if (b.status !== 200) {
      const text = JSON.stringify({ error: { message: `${name} failing with ${b.status}`, type: 'server_error', param: null, code: null } });
      const h = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) };
      if (b.retryAfter !== undefined) h['retry-after'] = String(b.retryAfter);
      res.writeHead(b.status, h);
      return res.end(text);
    }
    const id = 'chatcmpl-' + crypto.randomBytes(8).toString('hex');
    const created = Math.floor(Date.now() / 1000);
    const model = rec.model;
    if (!rec.stream) {
      const text = JSON.stringify({
        id,
        object: 'chat.completion',
        created,
        model,
        choices: [{ index: 0, message: { role: 'assistant', content: b.content }, finish_reason: 'stop', logprobs: null }],
        usage: b.usage,
      });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      return res.end(text);
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    const ch = (delta, finish = null) => ({ id, object: 'chat.completion.chunk', created, model, choices: [{ index: 0, delta, finish_reason: finish, logprobs: null }] });
    const evs = [ch({ content: b.content }), ch({}, 'stop')];
    if (rec.body.stream_options?.include_usage) evs.push({ id, object: 'chat.completion.chunk', created, model, choices: [], usage: b.usage });
    res.write(`data: ${JSON.stringify(ch({ role: 'assistant', content: '' }))}\n\n`);
    const rest = () => {
      if (res.destroyed) return;
      for (const e of evs) res.write(`data: ${JSON.stringify(e)}\n\n`);
      res.end('data: [DONE]\n\n');
    };
    if (!b.contentDelayMs) return rest();
    const t = setTimeout(() => {
      timers.delete(t);
      rest();
    }, b.contentDelayMs);
    timers.add(t);
  }

  // The scripted shapes above: every wait is a timer the close() clears.
  function answerScripted(b, rec, res) {
    const id = 'chatcmpl-' + crypto.randomBytes(8).toString('hex');
    const created = Math.floor(Date.now() / 1000);
    const model = rec.model;
    const wait = (ms, fn) => {
      const t = setTimeout(() => {
        timers.delete(t);
        if (!res.destroyed) fn();
      }, ms);
      timers.add(t);
    };
    if (!rec.stream) {
      const text = JSON.stringify({
        id, object: 'chat.completion', created, model,
        choices: [{ index: 0, message: { role: 'assistant', content: b.content }, finish_reason: 'stop', logprobs: null }],
        usage: b.usage,
      });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.flushHeaders();
      return wait(b.bodyDelayMs || 0, () => res.end(text));
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    const ch = (delta, finish = null) => ({ id, object: 'chat.completion.chunk', created, model, choices: [{ index: 0, delta, finish_reason: finish, logprobs: null }] });
    const write = (obj) => res.write(`data: ${JSON.stringify(obj)}\n\n`);
    write(ch({ role: 'assistant', content: '' }));
    const pieces = b.pieces || [b.content];
    const tail = () => {
      if (b.usageNever) return;
      if (rec.body.stream_options?.include_usage) write({ id, object: 'chat.completion.chunk', created, model, choices: [], usage: b.usage });
      res.end('data: [DONE]\n\n');
    };
    const step = (i) => {
      if (i === pieces.length) {
        write(ch({}, 'stop'));
        return b.usageDelayMs ? wait(b.usageDelayMs, tail) : tail();
      }
      if (b.cutAfterPieces !== undefined && i === b.cutAfterPieces) return res.socket?.destroy();
      write(ch({ content: pieces[i] }));
      wait(b.pieceDelayMs || 0, () => step(i + 1));
    };
    wait(b.contentDelayMs || 0, () => step(0));
  }

  server.keepAliveTimeout = 30_000;
  server.headersTimeout = 0;
  server.requestTimeout = 0;
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, resolve);
  });
  const origin = `http://${host}:${server.address().port}`;
  return {
    name,
    origin,
    baseUrl: origin + '/v1', // for openai_compatible providers
    requests,
    behaviour,
    set(patch) {
      Object.assign(behaviour, patch);
    },
    count(pred = () => true) {
      return requests.filter(pred).length;
    },
    async close() {
      for (const t of timers) clearTimeout(t);
      timers.clear();
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

// ---- gateway with a routing policy ----------------------------------------------------------

// Writes `policy` (YAML text) next to the gateway config and starts the gateway with
// `policy: <file>` instead of `models:`. providers: the config's providers section; routing: the
// config's routing section. Resolves the harness's gateway object plus {policyPath, cfgDir}.
// A policy with one catalogue entry, pa/m (priced 10/20 USD per million input/output tokens), and
// an ordered route to it for each model alias in `models`: what the state tests bill against.
export function pricedPolicy(name, models = ['priced']) {
  const routes = models
    .map((m) => `  - name: ${m}\n    match: {model: ${m}}\n    objective: ordered\n    candidates: [pa/m]\n`)
    .join('');
  return `version: 1\nname: ${name}\ncatalog:\n  - {ref: pa/m, context_window: 100000, price: {input: 10, output: 20}}\nroutes:\n${routes}`;
}

export async function startPolicyGateway({ policy, providers, routing, env = {}, upstream = {}, server = {}, tenants, state }) {
  const dir = tmpDir('gw-routing-');
  const policyPath = path.join(dir, 'policy.yaml');
  fs.writeFileSync(policyPath, policy);
  const c = defaultConfig();
  delete c.models;
  Object.assign(c.upstream, upstream);
  Object.assign(c.server, server);
  c.providers = providers;
  c.policy = policyPath;
  if (routing) c.routing = routing;
  if (tenants) c.tenants = tenants;
  if (state) c.state = state;
  const gw = await startGateway({ config: c, env });
  gw.policyPath = policyPath;
  gw.policyDir = dir;
  return gw;
}

// POST /admin/explain with a chat body (and optional trusted routing headers); returns the JSON.
export async function explain(gw, body, headers = {}) {
  const r = await request(gw.url + '/admin/explain', { method: 'POST', body, headers });
  if (r.status !== 200) throw new Error(`/admin/explain -> ${r.status}: ${r.text.slice(0, 500)}`);
  return r.json;
}
