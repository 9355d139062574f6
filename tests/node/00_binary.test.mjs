// Fails loudly (instead of every other file silently skipping) when the gateway binary is missing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GATEWAY_BIN, assertBinary, run } from './lib/gateway.mjs';

test(`gateway binary exists and is executable (${GATEWAY_BIN})`, () => {
  assertBinary();
});

test('required external tools are installed (openssl, promtool)', async () => {
  for (const [cmd, args] of [['openssl', ['version']], ['promtool', ['--version']]]) {
    const r = await run(cmd, args).catch((e) => ({ code: -1, stderr: String(e) }));
    assert.equal(r.code, 0, `${cmd} is required by the integration tests: ${r.stderr}`);
  }
});
