// The status page at /ui: served from the binary with the admin key (Bearer, or HTTP Basic with the
// key as password so a browser can log in), strict headers; then the page itself in Debian's
// Chromium driven by playwright-core: it shows what /admin/state says (deployments, routes,
// spend and budgets, refusals with their reasons, the policy generation), refreshes on its own,
// runs the explain form, renders hostile text as text, and says so when a refresh fails.
// The browser part skips, saying why, only when /usr/bin/chromium is absent.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startGateway, defaultConfig, request, userMsg, run, tmpDir, GATEWAY_BIN } from './lib/gateway.mjs';
import { startUpstream } from './lib/routing_upstream.mjs';

const CHROMIUM = '/usr/bin/chromium';
const NO_CHROMIUM = fs.existsSync(CHROMIUM) ? false : `${CHROMIUM} is absent: install Debian's chromium (deploy/install-deps.sh) to run the browser test`;
const ARTIFACTS = path.join(path.dirname(fileURLToPath(import.meta.url)), 'artifacts');
const ADMIN_KEY = 'adm-' + Math.random().toString(36).slice(2);
// A client-chosen model name is echoed in refusal messages and in explain: it must stay text.
const HOSTILE = '<img src=x onerror="window.__injected=1"><b>bold</b>';
const POLICY = `version: 1
name: status-page
catalog:
  - {ref: pa/m, context_window: 100000, price: {input: 10, output: 20}}
  - {ref: pb/m, context_window: 100000, price: {input: 1, output: 1}}
  - {ref: pc/m, context_window: 100000, price: {input: 1, output: 1}}
  - {ref: pz/m, context_window: 100000, price: {input: 1, output: 1}}
routes:
  - name: priced
    match: {model: priced}
    objective: ordered
    candidates: [pa/m, pz/m]
    baseline: {price: {input: 30, output: 60}}
  - name: broken
    match: {model: broken}
    objective: ordered
    max_attempts: 1
    candidates: [pb/m]
  - name: limited
    match: {model: limited}
    objective: ordered
    max_attempts: 1
    candidates: [pc/m]
`;

let pa, pb, pc, gw, key;

async function mintKey(tenant, id) {
  const r = await run(GATEWAY_BIN, ['keys', 'new', '--tenant', tenant, '--id', id], { timeoutMs: 10000 });
  assert.equal(r.code, 0, `gateway keys new failed: ${r.stderr}`);
  const lines = r.stdout.split('\n').filter((l) => l.trim());
  const m = /id:\s*"?([^,"}\s]+)"?\s*,\s*sha256:\s*"?((?:sha256:)?[0-9a-f]{64})"?/.exec(lines.slice(1).join('\n'));
  assert.ok(m, `a key entry: ${r.stdout}`);
  return { key: lines[0].trim().split(/\s+/).pop(), entry: { id: m[1], sha256: m[2] } };
}

before(async () => {
  pa = await startUpstream({ name: 'pa' });
  pb = await startUpstream({ name: 'pb', status: 500 });
  // Rate-limited for a minute: pc cools down for longer than the test takes.
  pc = await startUpstream({ name: 'pc', status: 429, retryAfter: 60 });
  key = await mintKey('acme', 'k1');
  const dir = tmpDir('gw-status-page-');
  fs.writeFileSync(path.join(dir, 'policy.yaml'), POLICY);
  const c = defaultConfig();
  delete c.models;
  c.server.admin_key_env = 'GW_TEST_ADMIN_KEY';
  // pz is in the catalog but has no provider: the routes table and explain show it excluded.
  c.providers = Object.fromEntries([pa, pb, pc].map((u, i) => [['pa', 'pb', 'pc'][i], { type: 'openai_compatible', base_url: u.baseUrl }]));
  c.policy = path.join(dir, 'policy.yaml');
  c.routing = { policy_poll_ms: 0 };
  c.tenants = { acme: { keys: [key.entry], models: ['priced', 'broken', 'limited'], budget: { daily_usd: 0.5, hard: true } } };
  c.state = { ledger_path: path.join(dir, 'spend.db') };
  gw = await startGateway({ config: c, env: { GW_TEST_ADMIN_KEY: ADMIN_KEY } });
});

after(async () => {
  await pa?.close();
  await pb?.close();
  await pc?.close();
  await gw?.stop();
});

const basicAuth = (user, password) => 'Basic ' + Buffer.from(`${user}:${password}`).toString('base64');
const asAdmin = { authorization: basicAuth('ops', ADMIN_KEY) };
const get = (p, headers = asAdmin) => request(gw.url + p, { headers });
const send = (model) =>
  request(gw.url + '/v1/chat/completions', { method: 'POST', headers: { authorization: `Bearer ${key.key}` }, body: { model, messages: userMsg('status'), max_tokens: 50 } });
// GET with the path exactly as given; resolves the whole raw response.
function rawGet(target, authorization) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(gw.port, '127.0.0.1');
    let out = '';
    sock.setEncoding('latin1');
    sock.setTimeout(10000, () => sock.destroy(new Error(`GET ${target} timed out`)));
    sock.on('data', (d) => (out += d));
    sock.on('end', () => resolve(out));
    sock.on('error', reject);
    sock.write(`GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: ${authorization}\r\nConnection: close\r\n\r\n`);
  });
}
const adminState = async () => {
  const r = await get('/admin/state');
  assert.equal(r.status, 200, r.text);
  return r.json;
};

describe('/ui over plain HTTP', () => {
  test('no credentials, a wrong password, a tenant key or the key as user name: 401 with a Basic challenge', async () => {
    const cases = {
      none: {},
      'wrong password': { authorization: basicAuth('ops', ADMIN_KEY + 'x') },
      'key as user name': { authorization: basicAuth(ADMIN_KEY, 'x') },
      'no colon': { authorization: 'Basic ' + Buffer.from(ADMIN_KEY).toString('base64') },
      'not base64': { authorization: 'Basic !!' + ADMIN_KEY },
      'tenant key': { authorization: `Bearer ${key.key}` },
      'key in another scheme': { authorization: `Token ${ADMIN_KEY}` },
    };
    for (const [name, headers] of Object.entries(cases)) {
      for (const p of ['/ui', '/ui/app.js', '/admin/state']) {
        const r = await get(p, headers);
        assert.equal(r.status, 401, `${name} ${p}: ${r.status} ${r.text}`);
        assert.match(String(r.headers['www-authenticate']), /^Basic realm="gateway"/, `${name} ${p}`);
        assert.equal(r.json?.error?.code, 'invalid_admin_key', `${name} ${p}: ${r.text}`);
        assert.match(r.headers['content-type'], /^application\/json/, `${name} ${p}: a refusal carries no page`);
        assert.equal(r.headers['content-security-policy'], undefined, `${name} ${p}: nothing of the page before the key`);
      }
    }
  });

  test('Basic (any user name) and Bearer both open the page and the admin endpoints', async () => {
    for (const headers of [asAdmin, { authorization: basicAuth('', ADMIN_KEY) }, { authorization: `Bearer ${ADMIN_KEY}` }]) {
      const page = await get('/ui', headers);
      assert.equal(page.status, 200, page.text);
      assert.match(page.text, /<title>Gateway status<\/title>/);
      assert.equal((await get('/admin/state', headers)).status, 200);
      const x = await request(gw.url + '/admin/explain', { method: 'POST', headers, body: { model: 'priced', messages: userMsg('x') } });
      assert.equal(x.status, 200, x.text);
    }
  });

  test('every file: its content type, no-store, a strict CSP, nosniff; nothing loaded from elsewhere', async () => {
    const types = { '/ui': 'text/html', '/ui/': 'text/html', '/ui/app.js': 'text/javascript', '/ui/style.css': 'text/css', '/ui/favicon.svg': 'image/svg+xml' };
    for (const [p, type] of Object.entries(types)) {
      const r = await get(p);
      assert.equal(r.status, 200, `${p}: ${r.text}`);
      assert.equal(r.headers['content-type'].split(';')[0], type, p);
      if (type.startsWith('text/')) assert.match(r.headers['content-type'], /charset=utf-8/, p);
      assert.equal(r.headers['cache-control'], 'no-store', p);
      assert.equal(r.headers['x-content-type-options'], 'nosniff', p);
      const csp = r.headers['content-security-policy'] ?? '';
      assert.match(csp, /(^|; )default-src 'self'(;|$)/, p);
      assert.ok(!/unsafe-inline|unsafe-eval|\*/.test(csp), `${p}: ${csp}`);
      assert.match(csp, /frame-ancestors 'none'/, p);
      if (p !== '/ui/favicon.svg') assert.ok(!r.text.includes('://'), `${p} names another origin`);
    }
    // The page loads exactly its own files, by absolute /ui/ paths, and has no inline script or style.
    const html = (await get('/ui')).text;
    const refs = [...html.matchAll(/\b(?:src|href)="([^"]*)"/g)].map((m) => m[1]).sort();
    assert.deepEqual(refs, ['/ui/app.js', '/ui/favicon.svg', '/ui/style.css']);
    assert.ok(!/<script>|<style|style="|\bon[a-z]+=/.test(html), 'no inline script, style or handler');
  });

  test('unknown files 404 (traversal included), methods other than GET 405', async () => {
    // Sent as raw request lines: URL parsing on the client side would resolve the dots first.
    for (const p of ['/ui/xyz', '/ui/app.js/', '/ui//app.js', '/ui/../admin/state', '/ui/./app.js', '/ui/%2e%2e/admin/state', '/ui/App.js', '/ui/app.js%00', '/uix']) {
      const r = await rawGet(p, asAdmin.authorization);
      assert.match(r, /^HTTP\/1\.1 404 /, `${p}: ${r.slice(0, 300)}`);
      assert.ok(!r.includes('<script'), p);
    }
    for (const method of ['POST', 'PUT', 'DELETE']) {
      const r = await request(gw.url + '/ui', { method, headers: asAdmin, body: '{}' });
      assert.equal(r.status, 405, `${method}: ${r.text}`);
      assert.equal(r.headers.allow, 'GET');
    }
    // Without credentials the method does not matter: 401 before anything else.
    assert.equal((await request(gw.url + '/ui', { method: 'POST', body: '{}' })).status, 401);
  });
});

describe('/ui in Chromium', () => {
  test('shows the live state, refreshes itself, explains a request, keeps hostile text as text', { skip: NO_CHROMIUM, timeout: 180000 }, async () => {
    // Traffic first: one success (pa), one upstream failure (pb), one 429 (pc), refusals with reasons.
    assert.equal((await send('priced')).status, 200);
    assert.ok((await send('broken')).status >= 500);
    assert.equal((await send('limited')).status, 429);
    assert.equal((await send('other-model')).status, 403);
    assert.equal((await send(HOSTILE)).status, 403);
    assert.equal((await request(gw.url + '/admin/reload', { method: 'POST', headers: asAdmin })).status, 200);
    const s = await adminState();
    assert.equal(s.policy.generation, 2);
    const cooling = s.deployments.find((d) => d.id === 'pc@default/m');
    assert.equal(cooling.availability, 'cooldown', JSON.stringify(cooling));
    const acmeSpend = s.spend_today.rows.find((r) => r.key === 'acme');
    assert.ok(acmeSpend, JSON.stringify(s.spend_today));
    const acmeBudget = s.tenants.find((t) => t.tenant === 'acme').budgets[0];
    const refusalMessage = s.refusals.recent.find((r) => r.message.includes("'other-model'"))?.message;
    assert.ok(refusalMessage, JSON.stringify(s.refusals));

    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'], timeout: 60000 });
    try {
      // What a person types into the browser's login prompt: any user name, the admin key.
      const context = await browser.newContext({ httpCredentials: { username: 'on-call', password: ADMIN_KEY }, viewport: { width: 1400, height: 900 } });
      const page = await context.newPage();
      page.setDefaultTimeout(20000);
      const problems = [];
      page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
      page.on('console', (m) => {
        if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`);
      });
      page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));
      page.on('response', (r) => {
        if (r.status() >= 400 && r.status() !== 401) problems.push(`HTTP ${r.status()} for ${r.url()}`);
      });

      const response = await page.goto(gw.url + '/ui');
      assert.equal(response.status(), 200);
      await page.locator('#last-updated', { hasText: 'Last updated' }).waitFor();

      // Deployments: the three configured ones, a third of the attempts each; pc cooling down.
      const depRow = (id) => page.locator('#deployments-table tbody tr', { hasText: id });
      for (const id of ['pa@default/m', 'pb@default/m', 'pc@default/m']) {
        const cells = await depRow(id).locator('td').allTextContents();
        assert.equal(cells.length, 10, cells.join(' | '));
        assert.equal(cells[9], '33.3 %', `${id} traffic share: ${cells.join(' | ')}`);
      }
      assert.equal(await depRow('pa@default/m').locator('td').nth(1).textContent(), 'available');
      const pcCells = await depRow('pc@default/m').locator('td').allTextContents();
      assert.match(pcCells[1], /^cooldown/, pcCells.join(' | '));
      assert.match(pcCells[3], /^\d+\.\d s$/, `a cool-down time: ${pcCells.join(' | ')}`);
      assert.ok(Number(pcCells[3].split(' ')[0]) > 10, `about a minute of cool-down left: ${pcCells.join(' | ')}`);
      assert.notEqual(pcCells[7], '0.0 %', `a 429 rate: ${pcCells.join(' | ')}`);
      assert.equal(await depRow('pc@default/m').getAttribute('class'), 'warn');
      assert.match((await depRow('pa@default/m').locator('td').nth(4).textContent()) ?? '', /^\d+ ms$/, 'a TTFT in ms for the deployment that answered');

      // Routes and candidates, the unconfigured candidate marked excluded.
      const priced = await page.locator('#routes-table tbody tr', { hasText: 'priced' }).textContent();
      assert.match(priced, /pa@default\/m/);
      const excluded = page.locator('#routes-table li.excluded', { hasText: 'pz@default/m' });
      assert.equal(await excluded.count(), 1, `pz is shown excluded: ${priced}`);

      // Spend and budget of the tenant, exactly as /admin/state has them.
      const acme = (await page.locator('#tenants-table tbody tr', { hasText: 'acme' }).locator('td').allTextContents());
      assert.equal(acme[1], String(acmeSpend.requests), acme.join(' | '));
      assert.ok(Number(acmeSpend.cost_usd) > 0, JSON.stringify(acmeSpend));
      assert.equal(acme[2], '$' + acmeSpend.cost_usd, acme.join(' | '));
      // The savings column: the route's baseline is 3x its price, so today's saving is positive.
      assert.ok(Number(acmeSpend.saved_usd) > 0, JSON.stringify(acmeSpend));
      assert.equal(acme[3], '$' + acmeSpend.saved_usd, acme.join(' | '));
      assert.equal(await page.locator('#savings-note').textContent(), '');
      assert.ok(acme[4].startsWith(`daily (hard): $${acmeBudget.spent_usd} / $${acmeBudget.limit_usd}`), acme.join(' | '));

      // Refusals with their reasons; the policy's generation and last load.
      await page.locator('#refusals-table td.reason', { hasText: refusalMessage }).waitFor();
      const policy = await page.locator('#policy-facts').textContent();
      assert.match(policy, /Namestatus-page/);
      assert.match(policy, /Generation2/);
      assert.match(policy, /accepted at .*POST \/admin\/reload/);

      // The hostile model name: shown literally, no element made of it, no script run.
      await page.locator('#refusals-table td.reason', { hasText: HOSTILE }).waitFor();
      assert.equal(await page.locator('#refusals-table img, #refusals-table b').count(), 0);
      assert.equal(await page.evaluate(() => document.querySelectorAll('img').length), 0);

      // It refreshes: a refusal made now appears without a reload.
      const before = await page.locator('#last-updated').textContent();
      assert.equal((await send('fresh-after-load')).status, 403);
      await page.locator('#refusals-table tbody tr', { hasText: 'fresh-after-load' }).waitFor();
      assert.notEqual(await page.locator('#last-updated').textContent(), before);
      assert.equal(await page.locator('#error-banner').isVisible(), false);

      // Explain: every candidate with its score terms, the excluded one with its reason.
      await page.fill('#explain-input', JSON.stringify({ model: 'priced', messages: userMsg('explain me') }));
      await page.click('#explain-submit');
      const primary = page.locator('#explain-table tbody tr', { hasText: 'pa@default/m' });
      await primary.waitFor();
      const pCells = await primary.locator('td').allTextContents();
      assert.equal(pCells[1], 'primary', pCells.join(' | '));
      for (const i of [3, 4, 5, 6]) assert.ok(Number.isFinite(Number(pCells[i])), `score term ${i}: ${pCells.join(' | ')}`);
      const zCells = await page.locator('#explain-table tbody tr', { hasText: 'pz@default/m' }).locator('td').allTextContents();
      assert.equal(zCells[1], 'excluded', zCells.join(' | '));
      assert.ok(zCells[9].length > 3 && zCells[9] !== '—', `an exclusion reason: ${zCells.join(' | ')}`);
      assert.match(await page.locator('#explain-summary').textContent(), /Routepriced/);
      // The artefact: the whole page with the explain answer on it.
      fs.mkdirSync(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: path.join(ARTIFACTS, 'status_page.png'), fullPage: true });

      // Explain with hostile and broken input: text stays text, errors are said, nothing breaks.
      await page.fill('#explain-input', JSON.stringify({ model: HOSTILE, messages: userMsg('x') }));
      await page.click('#explain-submit');
      await page.locator('#explain-summary').getByText(HOSTILE, { exact: true }).waitFor();
      assert.equal(await page.evaluate(() => document.querySelectorAll('img, b').length), 0);
      await page.fill('#explain-input', '{"model": ');
      await page.click('#explain-submit');
      await page.locator('#explain-message', { hasText: 'Not JSON' }).waitFor();
      await page.fill('#explain-input', JSON.stringify({ model: 'priced', messages: 'not a list' }));
      await page.click('#explain-submit');
      await page.locator('#explain-message', { hasText: /Explain failed: HTTP 400/ }).waitFor();

      assert.equal(await page.evaluate(() => window.__injected), undefined);
      // The explain POST with a bad body answered 400 on purpose; anything else is a defect.
      assert.deepEqual(problems.filter((p) => !/^HTTP 400 for .*\/admin\/explain$/.test(p) && !/status of 400/.test(p)), []);

      // The gateway goes away: the page says its refresh failed and keeps the last data.
      await gw.stop();
      await page.locator('#error-banner', { hasText: 'Refresh failed' }).waitFor();
      assert.equal(await page.locator('#refusals-table tbody tr', { hasText: 'fresh-after-load' }).count(), 1);
      await page.evaluate(() => window.scrollTo(0, 0));
      await page.screenshot({ path: path.join(ARTIFACTS, 'status_page_error.png') });
    } finally {
      await browser.close();
    }
  });
});
