// The status page: polls GET /admin/state and renders it; the explain form posts to /admin/explain.
// Every value from the gateway is put on the page as text (textContent / text nodes), never as
// markup: tenant names, model names and refusal messages come from clients and may hold HTML.
// The browser sends the page's own Basic credentials with these same-origin fetches.
'use strict';

const POLL_MS = 2000;

// ---- small DOM helpers -----------------------------------------------------------------------

// An element with a class (optional) and children: strings become text nodes.
function el(tag, className, ...children) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

function td(text, className) {
  return el('td', className, text);
}

// Replaces a table body's rows; an empty list shows one row saying so.
function fillBody(tbody, rows, columns, emptyText) {
  if (rows.length === 0) rows = [el('tr', '', Object.assign(td(emptyText, 'empty'), { colSpan: columns }))];
  tbody.replaceChildren(...rows);
}

function fillFacts(dl, facts) {
  const parts = [];
  for (const [name, value, className] of facts) parts.push(el('dt', '', name), el('dd', className || '', value));
  dl.replaceChildren(...parts);
}

// ---- number formats --------------------------------------------------------------------------

const num = (v) => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const dash = '—';
function fixed(v, digits, unit = '') {
  const n = num(v);
  return n === null ? dash : n.toFixed(digits) + unit;
}
// The gateway's money strings ("0.00054", exact decimal USD): shown as sent, with a dollar sign;
// turned into numbers only to compare them with zero.
const usd = (s) => (s === undefined || s === null || s === '' ? dash : `$${s}`);
const dollars = (s) => Number(s);
// Score terms can be tiny next to each other: four significant digits, not four decimals.
const significant = (v) => (num(v) === null ? dash : v.toPrecision(4));
const percent = (v) => fixed(num(v) === null ? null : v * 100, 1, ' %');
function clock(ms) {
  const n = num(ms);
  return n === null || n <= 0 ? dash : new Date(n).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

// ---- sections ----------------------------------------------------------------------------------

function renderPolicy(policy) {
  const dl = document.getElementById('policy-facts');
  if (!policy) {
    fillFacts(dl, [['Policy', 'none loaded (no `policy:` in the configuration): built-in routing', 'muted']]);
    return;
  }
  const last = policy.last_load || {};
  fillFacts(dl, [
    ['Name', policy.name],
    ['File', policy.file],
    ['Generation', String(policy.generation)],
    ['Reloads', `${policy.reloads_ok} accepted, ${policy.reloads_failed} refused`],
    ['Last load', `${last.ok ? 'accepted' : 'REFUSED'} at ${clock(last.at_ms)} (${last.trigger || dash})`, last.ok ? 'state-ok' : 'state-bad'],
    ['Last load message', last.message || dash],
  ]);
}

function availabilityClass(d) {
  if (d.circuit === 'open' || d.availability === 'open') return 'bad';
  if (d.availability !== 'available' || d.circuit !== 'closed') return 'warn';
  return '';
}

function renderDeployments(deployments) {
  const rows = deployments.map((d) => {
    const f = d.figures || {};
    const cooldown = num(f.routing_cooldown_seconds) > 0 ? fixed(f.routing_cooldown_seconds, 1, ' s') : d.wait_ms > 0 ? fixed(d.wait_ms / 1000, 1, ' s') : dash;
    const availability = d.cause ? `${d.availability} (${d.cause})` : d.availability;
    const name = el('td', '', el('strong', '', d.id), el('div', 'muted', `${d.provider} · ${d.region} · ${d.model}${d.has_credentials ? '' : ' · no credentials'}`));
    const stateClass = availabilityClass(d);
    return el(
      'tr',
      stateClass,
      name,
      td(availability, stateClass ? `state-${stateClass}` : 'state-ok'),
      td(d.circuit, d.circuit === 'closed' ? '' : 'state-bad'),
      td(cooldown, 'num'),
      td(num(f.routing_ttft_seconds_ewma) === null ? dash : fixed(f.routing_ttft_seconds_ewma * 1000, 0, ' ms'), 'num'),
      td(fixed(f.routing_tokens_per_second_ewma, 1), 'num'),
      td(percent(f.routing_error_rate_ewma), 'num'),
      td(percent(f.routing_rate_limited_rate_ewma), 'num'),
      td(fixed(f.routing_in_flight, 0), 'num'),
      td(percent(d.traffic_share), 'num'),
    );
  });
  fillBody(document.querySelector('#deployments-table tbody'), rows, 10, 'No configured deployments (routing has no policy, or no provider is configured)');
}

function renderRoutes(routes) {
  const rows = routes.map((r) => {
    const list = el('ul', 'candidates');
    for (const c of r.candidates) {
      list.append(c.static_exclusion ? el('li', 'excluded', `${c.deployment} — ${c.static_exclusion}`) : el('li', '', c.deployment));
    }
    return el('tr', '', td(r.name), td(r.model || '*'), td(String(r.max_attempts), 'num'), el('td', '', list));
  });
  fillBody(document.querySelector('#routes-table tbody'), rows, 4, 'No routes');
}

// The counterfactual saving of a spend row, under either name a report may give it; none when no
// row of the group had a baseline (a tenant without one saved nothing measurable, not $0).
const savingsOf = (spend) => (spend?.baselined_requests === 0 ? undefined : spend?.savings_usd ?? spend?.saved_usd);

// Tenants with a budget (from the limit store) and tenants with spend today (from the ledger),
// joined by name. A savings figure shows when the spend report carries one.
function renderTenants(tenants, spendToday) {
  const byName = new Map();
  const entry = (name) => {
    if (!byName.has(name)) byName.set(name, { budgets: [], spend: null });
    return byName.get(name);
  };
  for (const t of tenants) entry(t.tenant).budgets = t.budgets;
  for (const row of spendToday?.rows || []) entry(row.key).spend = row;
  const names = [...byName.keys()].sort();
  const rows = names.map((name) => {
    const { budgets, spend } = byName.get(name);
    const savings = savingsOf(spend);
    const budgetList = el('ul', 'candidates');
    for (const b of budgets) {
      const over = dollars(b.remaining_usd) <= 0;
      const reserved = dollars(b.reserved_usd) > 0 ? `, ${usd(b.reserved_usd)} reserved` : '';
      const text = `${b.period}${b.hard ? ' (hard)' : ''}: ${usd(b.spent_usd)} / ${usd(b.limit_usd)}, ${usd(b.remaining_usd)} left${reserved}`;
      budgetList.append(el('li', over ? 'state-bad' : '', text));
    }
    if (budgets.length === 0) budgetList.append(el('li', 'muted', 'no budget'));
    return el(
      'tr',
      '',
      td(name || '(open mode)'),
      td(spend ? String(spend.requests) : '0', 'num'),
      td(spend ? usd(spend.cost_usd) : '$0', 'num'),
      td(savings === undefined ? dash : usd(savings), 'num'),
      el('td', '', budgetList),
    );
  });
  const anySavings = names.some((n) => savingsOf(byName.get(n).spend) !== undefined);
  document.getElementById('savings-note').textContent = rows.length && !anySavings ? 'Savings: no route serving these tenants has a baseline (policy `baseline:`).' : '';
  const none = spendToday === null ? 'No spend ledger configured and no budgets' : 'No spend today and no budgets';
  fillBody(document.querySelector('#tenants-table tbody'), rows, 5, none);
}

function renderRefusals(refusals) {
  document.getElementById('refusals-total').textContent = `${refusals.total} refused since start; the newest ${refusals.recent.length} below, newest first.`;
  const rows = refusals.recent.map((r) =>
    el('tr', '', td(clock(r.at_ms)), td(r.tenant || dash), td(r.model || dash), td(String(r.status), 'num'), td(r.code || r.kind), td(r.message, 'reason'), td(r.request_id)),
  );
  fillBody(document.querySelector('#refusals-table tbody'), rows, 7, 'No refusals since start');
}

function renderSuspensions(suspensions) {
  const rows = suspensions.map((s) =>
    el('tr', '', td(s.selector), td(s.reason, 'reason'), td(s.since), td(s.by || dash), td(s.source), td(s.id)),
  );
  fillBody(document.querySelector('#suspensions-table tbody'), rows, 6, 'No vendor, parent, jurisdiction or deployment is suspended');
}

function render(state) {
  renderPolicy(state.policy);
  renderDeployments(state.deployments || []);
  renderRoutes(state.routes || []);
  renderTenants(state.tenants || [], state.spend_today ?? null);
  renderRefusals(state.refusals || { total: 0, recent: [] });
  renderSuspensions(state.suspensions || []);
}

// ---- polling ---------------------------------------------------------------------------------

let lastSuccess = null;

function showError(message) {
  const banner = document.getElementById('error-banner');
  const since = lastSuccess ? `; the tables show the state of ${lastSuccess.toISOString()}` : '';
  banner.textContent = `Refresh failed: ${message}${since}. Retrying every ${POLL_MS / 1000} s.`;
  banner.hidden = false;
}

// Why an admin request failed, from the gateway's OpenAI-shaped error body when there is one.
async function failure(response) {
  try {
    const body = await response.json();
    if (body?.error?.message) return `HTTP ${response.status}: ${body.error.message}`;
  } catch {
    // not JSON: the status alone says it
  }
  return `HTTP ${response.status}`;
}

async function poll() {
  try {
    const response = await fetch('/admin/state', { cache: 'no-store', headers: { accept: 'application/json' } });
    if (!response.ok) throw new Error(await failure(response));
    const state = await response.json();
    render(state);
    lastSuccess = new Date();
    document.getElementById('last-updated').textContent = `Last updated ${lastSuccess.toISOString()} (every ${POLL_MS / 1000} s)`;
    document.getElementById('error-banner').hidden = true;
  } catch (e) {
    // fetch() rejects with a TypeError when no HTTP answer came at all.
    showError(e instanceof TypeError ? `no answer from the gateway (${e.message})` : e.message || String(e));
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

// ---- explain ---------------------------------------------------------------------------------

function renderExplain(x) {
  const summary = [
    ['Policy', x.policy],
    ['Route', x.route || 'no route matched'],
    ['Objective', x.objective || dash],
    ['Plan', x.plan && x.plan.length ? x.plan.join(' → ') : 'nothing can serve this request'],
    ['Requested model', x.request?.model ?? dash],
    ['Tenant', x.request?.tenant || dash],
  ];
  if (x.error) summary.push(['Refusal', `${x.error.status} ${x.error.kind}: ${x.error.message}`, 'state-bad']);
  fillFacts(document.getElementById('explain-summary'), summary);
  const rows = (x.candidates || []).map((c) => {
    const excluded = c.status === 'excluded';
    const t = c.terms || {};
    return el(
      'tr',
      excluded ? 'warn' : '',
      td(c.deployment),
      td(c.status),
      td(excluded ? dash : String(c.rank), 'num'),
      td(significant(c.score), 'num'),
      td(significant(t.cost), 'num'),
      td(significant(t.latency), 'num'),
      td(significant(t.error_risk), 'num'),
      td(num(c.est_cost_usd) === null ? dash : '$' + c.est_cost_usd.toPrecision(3), 'num'),
      td(fixed(c.expected_latency_ms, 0, ' ms'), 'num'),
      td(excluded ? `${c.exclusion}: ${c.reason}` : dash),
    );
  });
  const table = document.getElementById('explain-table');
  fillBody(table.querySelector('tbody'), rows, 10, 'No candidates');
  table.hidden = false;
}

// An answer to an earlier request must not look like the answer to this one.
function clearExplain() {
  document.getElementById('explain-summary').replaceChildren();
  const table = document.getElementById('explain-table');
  table.querySelector('tbody').replaceChildren();
  table.hidden = true;
}

async function explain(event) {
  event.preventDefault();
  clearExplain();
  const message = document.getElementById('explain-message');
  const text = document.getElementById('explain-input').value;
  try {
    JSON.parse(text);
  } catch (e) {
    message.textContent = `Not JSON: ${e.message}`;
    message.className = 'state-bad';
    return;
  }
  message.textContent = 'Explaining…';
  message.className = 'muted';
  try {
    const response = await fetch('/admin/explain', { method: 'POST', cache: 'no-store', headers: { 'content-type': 'application/json' }, body: text });
    if (!response.ok) throw new Error(await failure(response));
    renderExplain(await response.json());
    message.textContent = `Explained at ${new Date().toISOString()}`;
  } catch (e) {
    message.textContent = `Explain failed: ${e.message || e}`;
    message.className = 'state-bad';
  }
}

document.getElementById('explain-form').addEventListener('submit', explain);
poll();
