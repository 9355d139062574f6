// The reference's catalog facts (tests/data/reference_catalog.yaml: a checked-in copy of the YAML
// snippets of reference/providers.md and the example record of compliance.md) against
// `gateway catalog --format json`, field by field. Every difference must be listed in ALLOWED with
// its reason, and every listed difference must still occur, so the list cannot go stale. A mutated
// catalog shows the comparison catches a wrong price, a lost flag and a missing deployment.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { REPO, GATEWAY_BIN, run } from './lib/gateway.mjs';

const REF = YAML.parse(fs.readFileSync(path.join(REPO, 'tests', 'data', 'reference_catalog.yaml'), 'utf8'));

// The reference's provider ids are the catalog's provider names.
const PROVIDER = { deepseek: 'deepseek', 'alibaba-qwen': 'qwen', 'moonshot-kimi': 'kimi', 'zhipu-glm': 'glm', minimax: 'minimax' };
// The list flags of compliance.md §5 and what each snippet `sanctions` value means in them.
const LIST_FLAGS = REF.compliance_vocabulary.lists;
const SANCTIONS = {
  watchlist_pending_entity_list: ['us_entity_list_pending'],
  dod_1260H_reported_unconfirmed: ['dod_1260h_pending'],
  none_found: [],
  'us_entity_list_2025-01-15': ['us_entity_list'],
};
// Snippet `trains_on_data` in the catalog's vocabulary (no|opt_in|opt_out|yes|unknown): Kimi's
// "default" is "by default; opt-out only by enterprise contract" (providers.md §3), so opt_out.
const TRAINS = { default_optout: 'opt_out', never: 'no', default: 'opt_out' };
// Snippet inference scopes as catalog inference_countries / inference_excluded.
const SCOPE = {
  CN: { inference: ['CN'], excluded: [] },
  HK: { inference: ['HK'], excluded: [] },
  US: { inference: ['US'], excluded: [] },
  global_ex_CN: { inference: ['*'], excluded: ['CN'] },
};
// DeepSeek's snippet ban groups and the catalog codes that belong to each.
const BAN_GROUP = (code) => {
  if (code.startsWith('us_fed:') || code.startsWith('us_state:')) return 'US-fed/state-devices';
  return { it_garante: 'IT', kr_pipc: 'KR', au_pspf: 'AU', tw_public: 'TW', de_berlin_dsa_notice: 'DE-DSA-notice', cz_public: 'CZ-public-admin' }[code] ?? code;
};
const AGENCY = { Navy: 'navy', 'DISA/DoD': ['disa', 'dod'], NASA: 'nasa', House: 'house', Commerce: 'commerce' };

// Every difference the comparison finds, each with the reason it is right (or knowingly kept).
const ALLOWED = {
  'deepseek/* price.as_of': 'the catalog dates a price by its compile date (2026-11-23); the vendor page month (as of 2026-10) is in price.source',
  'deepseek schedule.exclude': 'the reference names the rule (Chinese public holidays) but lists no dates; the catalog lists the one date it can source, National Day 2026-10-01, and `gateway check` warns that it does not cover 12 months',
  'deepseek flags': 'compliance.md §1: the FY2026 NDAA §1532 names DeepSeek as covered AI [S]; the snippet\'s sanctions field covers only the Entity List',
  'deepseek gov_bans': 'compliance.md §4 also lists the Netherlands central-government ban and India\'s Finance Ministry bar, which the providers.md snippet leaves out',
  'qwen@cn-beijing contracting_country': 'compliance.md §6: dashscope.aliyuncs.com contracts with an Alibaba Cloud CN entity [U]; the snippet\'s SG is the international contract',
  'qwen@cn-beijing trains_on_customer_data': 'the never-train commitment is the international contract\'s [S]; Beijing\'s is not stated [U], so unknown',
  'qwen@us-east-1 inference': 'us-east-1 runs US-only or Global mode by model (providers.md scopes [V]); Global mode, which may use China nodes, is its own region `global`, so us-east-1 is the US-only scope',
  'qwen regions': 'the Global, EU (Frankfurt) and Tokyo workspace regions come from providers.md\'s scope table and workspace URL regions, not the snippet\'s endpoints',
  'qwen/* last tier up_to': 'the last tier covers the rest of the window: the catalog writes max, the window (ctx) bounds it',
  'qwen/qwen3-coder-plus cached_input': 'providers.md model table: qwen3-coder-plus cache read = 10% (LiteLLM), not the implicit 20%',
  'qwen/qwen3.8-flash cached_input': 'providers.md model table lists qwen3.8-flash\'s cached price, 0.016 [S]',
  'qwen/text-embedding-v4 cache_write': 'an embedding model has no prompt cache: its cached and cache-write prices are its input price, never billed',
  'qwen/text-embedding-v4 cached_input': 'as qwen/text-embedding-v4 cache_write',
  'qwen/text-embedding-v4 context_window': 'the snippet gives no ctx; providers.md\'s model table gives 8,192 tokens per row, which the catalog keeps as the window',
  'qwen/text-embedding-v4 tiers': 'the snippet gives a flat price_in (0.07; Beijing 0.072 per the model table), the catalog one tier',
  'kimi@cn contracting_country': 'compliance.md §6: api.moonshot.cn is Moonshot, Beijing [U]; the snippet\'s SG is the international platform',
  'kimi@cn trains_on_customer_data': 'compliance.md §6: api.moonshot.cn trains on data: yes [S]; the snippet\'s value is the international platform\'s',
  'kimi/kimi-k2.6 fixed_temperature': 'a request constraint (temperature must be 1), not a deployment fact; the catalog does not model it',
  'glm regions': 'the Coding Plan endpoints (the snippet\'s coding_openai, providers.md\'s China table) are regions of their own, intl-coding and cn-coding',
  'minimax@cn contracting_country': 'compliance.md §6: api.minimaxi.com is a Shanghai entity [U]; providers.md §5\'s Singapore entity is the international one',
  'minimax@cn inference': 'compliance.md §6: api.minimaxi.com stores and runs in CN [U]; providers.md §5\'s US is the international endpoint',
  'minimax@cn storage': 'as minimax@cn inference',
  'minimax/* last tier up_to': 'as qwen/* last tier up_to',
};

const sorted = (a) => [...a].sort();
const near = (a, b) => typeof a === 'number' && typeof b === 'number' && Math.abs(a - b) < 1e-9;
const same = (a, b) => near(a, b) || JSON.stringify(a) === JSON.stringify(b);
const expandDays = (w) => {
  const days = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];
  const [d, t] = w.split(' ');
  const [a, b] = d.split('-');
  return `${days.slice(days.indexOf(a), days.indexOf(b ?? a) + 1).join(',')} ${t}`;
};

// Returns Map(key -> {want, got}) of every field where the catalog differs from the reference.
export function compare(catalog) {
  const diffs = new Map();
  const check = (key, want, got) => {
    if (!same(want, got) && !diffs.has(key)) diffs.set(key, { want, got });
  };
  const deps = (p) => catalog.deployments.filter((d) => d.provider === p);
  for (const rp of REF.providers) {
    const p = PROVIDER[rp.id];
    const all = deps(p);
    check(`${p} present`, true, all.length > 0);
    if (!all.length) continue;
    const regions = [...new Set(all.map((d) => d.region))];
    const snippetRegions = Array.isArray(rp.endpoints) ? rp.endpoints : Object.keys(rp.endpoints);
    check(`${p} regions`, sorted(snippetRegions), sorted(regions));
    const flagsWanted = new Set(rp.risk.sanctions !== undefined ? SANCTIONS[rp.risk.sanctions] : []);
    for (const d of all) {
      const at = `${p}@${d.region}`;
      check(`${p} jurisdiction`, rp.hq.split('-')[0], d.risk.jurisdiction);
      check(`${p} developer_country`, rp.hq.split('-')[0], d.developer_country);
      // "SG (z.ai) / CN (bigmodel)": the international regions SG, the China ones CN.
      const entity = rp.contracting_entity.includes('/') ? (d.region.startsWith('cn') ? 'CN' : 'SG') : rp.contracting_entity;
      check(`${at} contracting_country`, entity, d.risk.contracting_country);
      if (rp.data_processing) {
        check(`${at} inference`, [rp.data_processing], d.risk.inference_countries);
        check(`${at} storage`, [rp.data_processing], d.risk.storage_countries);
      }
      if (!Array.isArray(rp.endpoints) && rp.endpoints[d.region]) {
        const scope = rp.endpoints[d.region].inference_scope;
        const want = SCOPE[scope] ?? scope;
        check(`${at} inference`, want, SCOPE[scope] ? { inference: d.risk.inference_countries, excluded: d.risk.inference_excluded } : d.risk.inference_countries);
      }
      if (rp.risk.sanctions !== undefined)
        check(`${p} flags`, sorted(flagsWanted), sorted(d.risk.flags.filter((f) => LIST_FLAGS.includes(f))));
      if (rp.risk.severity) check(`${p} sanctions_risk`, rp.risk.severity, d.risk.sanctions_risk);
      if (rp.risk.trains_on_data) check(`${at} trains_on_customer_data`, TRAINS[rp.risk.trains_on_data], d.risk.trains_on_customer_data);
      if (rp.risk.distillation_allegation) check(`${p} distillation_allegation`, true, d.risk.flags.includes('distillation_allegation'));
      if (rp.risk.gov_bans) check(`${p} gov_bans`, sorted(rp.risk.gov_bans), sorted(new Set(d.risk.gov_device_bans.map(BAN_GROUP))));
      if (rp.pricing_schedule) {
        const s = d.price.schedule ?? { peak_utc: [], offpeak_dates: [] };
        check(`${p} schedule.peak`, rp.pricing_schedule.peak.map(expandDays), s.peak_utc);
        check(`${p} schedule.offpeak_factor`, rp.pricing_schedule.offpeak_factor, s.offpeak_factor);
        check(`${p} schedule.exclude`, rp.pricing_schedule.exclude, s.offpeak_dates);
      }
      if (rp.caching) {
        // Qwen: cache creation 125% of input everywhere; cached input the implicit 20% unless listed.
        const snippet = rp.models.find((m) => m.id === d.model);
        d.price.tiers.forEach((t, i) => {
          check(`${p}/${d.model} cache_write`, +(t.input * rp.caching.explicit.write_factor).toFixed(9), +t.cache_write.toFixed(9));
          if (snippet?.tiers?.[i]?.in_cached === undefined)
            check(`${p}/${d.model} cached_input`, +(t.input * rp.caching.implicit.hit_factor).toFixed(9), +t.cached_input.toFixed(9));
        });
      }
    }
    if (rp.data_residency_selectable) check(`${p} residency selectable`, true, new Set(all.map((d) => JSON.stringify(d.risk.storage_countries))).size > 1);
    for (const m of rp.models) {
      const ds = all.filter((d) => d.model === m.id);
      if (!ds.length) {
        check(`${p}/${m.id} missing`, m.id, null);
        continue;
      }
      for (const d of ds) {
        const key = (f) => `${p}/${m.id} ${f}`;
        check(key('context_window'), m.ctx, d.context_window);
        if (m.max_out !== undefined) check(key('max_output'), m.max_out, d.max_output);
        if (m.caps) check(key('capabilities'), sorted(m.caps), sorted(d.capabilities));
        if (m.concurrency !== undefined) check(key('concurrency_limit'), m.concurrency, d.concurrency_limit);
        if (m.as_of) check(`${p}/* price.as_of`, m.as_of, d.price.as_of);
        if (m.verified) check(key('sources.price'), m.verified, d.sources?.price);
        if (m.fixed_temperature !== undefined) check(key('fixed_temperature'), m.fixed_temperature, d.fixed_temperature);
        const flat = m.price_peak ?? m.price;
        const tiers = m.tiers ?? (flat ? [flat] : []);
        check(key('tiers'), tiers.length, d.price.tiers.length);
        tiers.forEach((t, i) => {
          const ct = d.price.tiers[i];
          if (!ct) return;
          if (t.upto !== undefined) {
            if (i === tiers.length - 1) check(`${p}/* last tier up_to`, t.upto, ct.up_to_input_tokens);
            else check(key(`tier${i} up_to`), t.upto, ct.up_to_input_tokens);
          }
          check(key(`tier${i} input`), t.in, ct.input);
          if (t.in_cached !== undefined) check(key(`tier${i} cached_input`), t.in_cached, ct.cached_input);
          if (t.cache_write !== undefined) check(key(`tier${i} cache_write`), t.cache_write, ct.cache_write);
          check(key(`tier${i} output`), t.out, ct.output);
        });
      }
      for (const alias of m.aliases ?? []) {
        const a = all.filter((d) => d.model === alias);
        check(`${p}/${alias} alias present`, true, a.length > 0);
        for (const d of a) {
          check(`${p}/${alias} alias_of`, m.id, d.alias_of);
          const target = all.find((x) => x.region === d.region && x.model === m.id);
          check(`${p}/${alias} price`, target?.price.tiers, d.price.tiers);
        }
      }
    }
  }
  // compliance.md §1/§4: DeepSeek's US agencies and all 17 states, by code.
  const bans = catalog.deployments.find((d) => d.id === 'deepseek@global/deepseek-flash')?.risk.gov_device_bans ?? [];
  check('deepseek us_state bans', sorted(REF.compliance_deepseek_bans.us_states.map((s) => `us_state:${s}`)), sorted(bans.filter((b) => b.startsWith('us_state:'))));
  check('deepseek us_fed bans', sorted(Object.values(AGENCY).flat().map((a) => `us_fed:${a}`)), sorted(bans.filter((b) => b.startsWith('us_fed:'))));
  check('deepseek country bans', REF.compliance_deepseek_bans.countries.length, bans.filter((b) => !b.startsWith('us_')).length);
  // compliance.md §5 vocabulary: the catalog spells list names and ban codes as the record does.
  for (const code of REF.compliance_vocabulary.gov_device_bans) check(`vocabulary ban ${code}`, true, bans.includes(code));
  for (const d of catalog.deployments)
    for (const f of d.risk.flags)
      if (!['gov_device_bans', 'distillation_allegation'].includes(f)) check(`vocabulary flag ${f}`, true, LIST_FLAGS.includes(f));
  // compliance.md §5: the example record, Alibaba's Singapore endpoint.
  const ex = REF.compliance_example;
  for (const d of catalog.deployments.filter((x) => x.provider === ex.deployment_region.provider && x.region === ex.deployment_region.region)) {
    const k = (f) => `compliance example ${f}`;
    check(k('parent_country'), ex.provider.parent_country, d.risk.jurisdiction);
    check(k('contracting_entity_country'), ex.endpoint.contracting_entity_country, d.risk.contracting_country);
    check(k('doj_dsp_covered_person'), ex.endpoint.doj_dsp_covered_person, d.risk.doj_dsp_covered_person);
    check(k('data_storage_country'), ex.endpoint.data_storage_country, d.risk.storage_countries);
    check(k('inference_countries'), SCOPE[ex.endpoint.inference_countries], { inference: d.risk.inference_countries, excluded: d.risk.inference_excluded });
    check(k('trains_on_customer_data'), ex.endpoint.trains_on_customer_data, d.risk.trains_on_customer_data);
    check(k('cac_genai_filed'), ex.endpoint.cac_genai_filed, d.risk.cac_genai_filed);
    check(k('developer_country'), ex.model.developer_country, d.developer_country);
  }
  return diffs;
}

async function catalogJson() {
  const r = await run(GATEWAY_BIN, ['catalog', '--format', 'json']);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

describe('the built-in catalog against the reference, field by field', () => {
  test('no difference but the listed ones, and every listed one still occurs', async () => {
    const catalog = await catalogJson();
    assert.equal(catalog.catalog_date, REF.reference_date);
    const diffs = compare(catalog);
    const unexplained = [...diffs].filter(([k]) => !(k in ALLOWED)).map(([k, v]) => `${k}: reference ${JSON.stringify(v.want)}, catalog ${JSON.stringify(v.got)}`);
    assert.deepEqual(unexplained, [], 'differences with no reason in ALLOWED');
    const stale = Object.keys(ALLOWED).filter((k) => !diffs.has(k));
    assert.deepEqual(stale, [], 'ALLOWED lists differences that no longer occur');
  });

  test('the comparison catches a wrong price, a lost flag, a wrong residency and a missing model', async () => {
    const catalog = await catalogJson();
    const flash = catalog.deployments.find((d) => d.id === 'deepseek@global/deepseek-flash');
    flash.price.tiers[0].input = 0.31;
    const glm = catalog.deployments.find((d) => d.id === 'glm@intl/glm-4.7');
    glm.risk.flags = [];
    const sg = catalog.deployments.find((d) => d.id === 'qwen@ap-southeast-1/qwen-flash');
    sg.risk.inference_excluded = [];
    catalog.deployments = catalog.deployments.filter((d) => d.model !== 'kimi-k3');
    const diffs = compare(catalog);
    for (const k of ['deepseek/deepseek-flash tier0 input', 'glm flags', 'qwen@ap-southeast-1 inference', 'compliance example inference_countries', 'kimi/kimi-k3 missing'])
      assert.ok(diffs.has(k), `${k} not reported; got ${[...diffs.keys()].join(' | ')}`);
  });
});
