// Helpers for the Anthropic Messages surface tests: a fetch for the official SDK that also keeps
// the raw SSE events the SDK was given (the SDK hides `ping`, and the order of events is what these
// tests check), and the event grammar every Messages stream must follow.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { SseParser } from './sse.mjs';

export const ANTHROPIC_SDK_VERSION = JSON.parse(
  fs.readFileSync(new URL('../node_modules/@anthropic-ai/sdk/package.json', import.meta.url), 'utf8'),
).version;

// fetch(url, init) for `new Anthropic({ fetch })`: the SDK reads the response as usual; a clone of
// each streamed body is parsed here. `streams` holds one array of {event, data (parsed)} per
// streamed response, in request order, filled as the bytes arrive; `done` resolves with it when the
// clone ends.
export function recordingFetch() {
  const rec = { streams: [], done: [] };
  rec.fetch = async (url, init) => {
    const res = await fetch(url, init);
    if (!String(res.headers.get('content-type') ?? '').startsWith('text/event-stream')) return res;
    const events = [];
    rec.streams.push(events);
    const copy = res.clone();
    rec.done.push(
      (async () => {
        const parser = new SseParser();
        const decoder = new TextDecoder();
        try {
          for await (const chunk of copy.body) {
            for (const ev of parser.push(decoder.decode(chunk, { stream: true }))) {
              if (ev.data === null) continue; // comments (x-gateway-cost-usd, keep-alives)
              let data;
              try {
                data = JSON.parse(ev.data);
              } catch {
                data = ev.data;
              }
              events.push({ event: ev.event, data });
            }
          }
        } catch {
          // the SDK gave up on the response (a cut stream): what arrived is kept
        }
        return events;
      })(),
    );
    return res;
  };
  rec.last = async () => rec.done[rec.done.length - 1];
  return rec;
}

// Every event's name must equal its data's `type`, and the sequence must be
//   message_start ping (content_block_start content_block_delta* content_block_stop)* message_delta message_stop
// with block indexes 0, 1, 2 ... and every delta/stop naming the open block. Returns the names.
export function assertEventGrammar(events) {
  const names = events.map((e) => e.event);
  for (const e of events) assert.equal(e.data?.type, e.event, `event ${e.event} carries data of type ${e.data?.type}`);
  const shape = names
    .map((n) => ({ message_start: 'S', ping: 'P', content_block_start: '[', content_block_delta: 'd', content_block_stop: ']', message_delta: 'D', message_stop: 'E' })[n] ?? '?')
    .join('');
  assert.match(shape, /^SP(\[d*\])*DE$/, `event order: ${names.join(' ')}`);
  let open = -1;
  let next = 0;
  for (const e of events) {
    if (e.event === 'content_block_start') {
      assert.equal(e.data.index, next, 'blocks are numbered from 0');
      open = next++;
    } else if (e.event === 'content_block_delta' || e.event === 'content_block_stop') {
      assert.equal(e.data.index, open, `${e.event} names the open block`);
    }
  }
  return names;
}

// The content blocks a stream's events describe, rebuilt independently of the SDK.
export function blocksOf(events) {
  const blocks = [];
  for (const e of events) {
    if (e.event === 'content_block_start') blocks.push({ ...e.data.content_block, deltas: [] });
    if (e.event === 'content_block_delta') blocks[e.data.index].deltas.push(e.data.delta);
  }
  return blocks;
}

// A user message of text.
export const user = (text) => ({ role: 'user', content: text });
