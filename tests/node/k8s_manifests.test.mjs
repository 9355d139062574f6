// deploy/k8s as an operator uses it: both overlays rendered with `kubectl kustomize`, every object
// checked against the Kubernetes API schema, the gateway configuration inside each rendered
// ConfigMap through `gateway check` (laid out at the pod's mount paths, so relative paths resolve as
// in the pod), and the promises the objects make to each other (probes, drain within the grace
// period, hardening, writable state, hot-reloadable policy, selectors, Secrets, the Prometheus
// files). The checks are also fed broken manifests, to show that each of them can fail.
//
// kubectl is not a Debian package on this machine (it comes with the Google Cloud SDK), so
// deploy/install-deps.sh does not install it; without kubectl on PATH this file skips, saying so.
import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { REPO, GATEWAY_BIN, assertBinary, run, tmpDir } from './lib/gateway.mjs';
import {
  findKubectl, kubectlVersion, render, parseManifests, schemaError, modelFor, one, byKind, materialise,
  gatewayPodProblems, hardeningProblems, gatewayPathProblems, referenceProblems, referencedSecrets,
} from './lib/k8s.mjs';

const KUBECTL = findKubectl();
const SKIP = KUBECTL ? false : 'kubectl is not on PATH (it is not a Debian package here, so install-deps.sh cannot add it): deploy/k8s is not rendered or validated';
const K8S = path.join(REPO, 'deploy', 'k8s');

// What each overlay must contain, and the Secrets an operator creates for it (README says how).
const OVERLAYS = {
  single: {
    kinds: ['ConfigMap', 'ConfigMap', 'Deployment', 'PersistentVolumeClaim', 'Service'],
    secrets: ['llm-gateway-admin', 'llm-provider-keys'],
  },
  fleet: {
    kinds: ['ConfigMap', 'ConfigMap', 'ConfigMap', 'Deployment', 'Deployment', 'Deployment', 'HorizontalPodAutoscaler',
      'PodDisruptionBudget', 'Service', 'Service', 'Service', 'Service'],
    secrets: ['llm-gateway-admin', 'llm-gateway-ledger', 'llm-gateway-redis', 'llm-provider-keys'],
  },
};

async function gatewayCheck(file) {
  const r = await run(GATEWAY_BIN, ['check', file], { timeoutMs: 30000 });
  return { ok: r.code === 0, out: (r.stdout + r.stderr).trim() };
}

const rendered = {};
const configs = {};

describe('deploy/k8s overlays', { skip: SKIP }, () => {
  before(async () => {
    assertBinary();
    console.log(`# kubectl: ${KUBECTL}, ${kubectlVersion(KUBECTL)}`);
    for (const name of Object.keys(OVERLAYS)) {
      rendered[name] = await render(KUBECTL, path.join(K8S, 'overlays', name));
      const cm = one(rendered[name], 'ConfigMap', 'llm-gateway-config');
      configs[name] = YAML.parse(cm.data['gateway.yaml']);
    }
  });

  for (const [name, want] of Object.entries(OVERLAYS)) {
    describe(`overlays/${name}`, () => {
      test('renders the expected objects, each valid against the Kubernetes API schema', async () => {
        const objs = rendered[name];
        assert.deepEqual(objs.map((o) => o.kind).sort(), want.kinds);
        const errors = [];
        for (const o of objs) {
          const e = await schemaError(o);
          if (e) errors.push(e);
        }
        assert.deepEqual(errors, []);
      });

      test('gateway check passes on the rendered gateway.yaml and policies, at the pod mount paths', async () => {
        const root = tmpDir('gw-k8s-');
        const cfgFile = materialise(rendered[name], root);
        const r = await gatewayCheck(cfgFile);
        assert.ok(r.ok, r.out);
        const policies = path.join(root, 'etc', 'gateway', 'policies');
        const files = fs.readdirSync(policies);
        assert.ok(files.includes('default.yaml'), `policies mounted: ${files}`);
        for (const f of files) {
          const p = await gatewayCheck(path.join(policies, f));
          assert.ok(p.ok, p.out);
          assert.equal(fs.readFileSync(path.join(policies, f), 'utf8'), fs.readFileSync(path.join(REPO, 'policies', f), 'utf8'), `${f} is policies/${f}`);
        }
      });

      test('probes, drain within the grace period, hardening, writable state, hot-reloadable policy', () => {
        const objs = rendered[name];
        assert.deepEqual(gatewayPodProblems(objs, configs[name]), []);
        assert.deepEqual(hardeningProblems(objs), []);
        assert.deepEqual(gatewayPathProblems(objs, configs[name]), []);
        assert.deepEqual(referenceProblems(objs), []);
        // The policies ConfigMap keeps its name across edits: that is what makes it hot-reload.
        assert.ok(byKind(objs, 'ConfigMap').some((c) => c.metadata.name === 'llm-gateway-policies'));
      });

      test('the Secrets it needs are the documented ones', () => {
        const secrets = referencedSecrets(rendered[name]);
        assert.deepEqual(secrets, want.secrets);
        const readme = fs.readFileSync(path.join(REPO, 'README.md'), 'utf8');
        for (const s of secrets) assert.ok(readme.includes(s), `README.md tells how to create Secret ${s}`);
      });
    });
  }

  test('single: one pod at a time, the SQLite ledger on the PersistentVolumeClaim', () => {
    const objs = rendered.single;
    const dep = one(objs, 'Deployment', 'llm-gateway');
    assert.equal(dep.spec.replicas, 1);
    assert.equal(dep.spec.strategy.type, 'Recreate', 'a ReadWriteOnce volume and one SQLite writer');
    const state = dep.spec.template.spec.volumes.find((v) => v.name === 'state');
    assert.equal(state.persistentVolumeClaim?.claimName, one(objs, 'PersistentVolumeClaim', 'llm-gateway-state').metadata.name);
    assert.equal(configs.single.state.mode, 'local');
    assert.match(configs.single.state.ledger_path, /^\/var\/lib\/gateway\//);
  });

  test('fleet: Redis, Prometheus and the PostgreSQL ledger are wired to the gateways', () => {
    const objs = rendered.fleet;
    const cfg = configs.fleet;
    const svc = (n) => one(objs, 'Service', n);
    assert.deepEqual(cfg.state.ledger, { backend: 'postgres', url_env: 'GATEWAY_LEDGER_URL' });
    assert.equal(cfg.state.ledger_path, undefined, 'no per-replica SQLite ledger');
    const gw = one(objs, 'Deployment', 'llm-gateway').spec.template.spec.containers.find((c) => c.name === 'gateway');
    const envSecret = (v) => gw.env.find((e) => e.name === v)?.valueFrom?.secretKeyRef;
    assert.deepEqual(envSecret('GATEWAY_LEDGER_URL'), { name: 'llm-gateway-ledger', key: 'GATEWAY_LEDGER_URL' });
    assert.equal(cfg.state.mode, 'redis');
    assert.equal(envSecret(cfg.state.redis.password_env)?.name, 'llm-gateway-redis');
    assert.equal(cfg.state.redis.host, svc('redis').metadata.name);
    assert.equal(cfg.state.redis.port, svc('redis').spec.ports[0].port);
    const prom = new URL(cfg.routing.prometheus_url);
    assert.equal(prom.hostname, svc('prometheus').metadata.name);
    assert.equal(Number(prom.port), svc('prometheus').spec.ports[0].port);
    const hpa = one(objs, 'HorizontalPodAutoscaler', 'llm-gateway');
    const pdb = one(objs, 'PodDisruptionBudget', 'llm-gateway');
    assert.ok(pdb.spec.maxUnavailable < hpa.spec.minReplicas, 'a disruption leaves replicas serving');
  });

  test('fleet: Prometheus gets the shipped alert rules unchanged and a scrape config that differs only in its targets', async () => {
    const cm = one(rendered.fleet, 'ConfigMap', 'prometheus-config');
    assert.equal(cm.data['alerts.yml'], fs.readFileSync(path.join(REPO, 'deploy', 'prometheus', 'alerts.yml'), 'utf8'));
    const k8s = YAML.parse(cm.data['prometheus.yml']);
    const shipped = YAML.parse(fs.readFileSync(path.join(REPO, 'deploy', 'prometheus', 'prometheus.yml'), 'utf8'));
    const dns = k8s.scrape_configs[0].dns_sd_configs[0];
    const pods = one(rendered.fleet, 'Service', 'llm-gateway-pods');
    assert.equal(pods.spec.clusterIP, 'None', 'headless: one A record per pod');
    assert.deepEqual(dns.names, [pods.metadata.name]);
    assert.equal(dns.port, Number(configs.fleet.server.listen.split(':').pop()));
    for (const c of [k8s, shipped]) for (const j of c.scrape_configs) { delete j.static_configs; delete j.dns_sd_configs; }
    assert.deepEqual(k8s, shipped);
    // As Prometheus itself loads it, from its mount folder.
    const dir = tmpDir('gw-k8s-prom-');
    for (const [k, v] of Object.entries(cm.data)) fs.writeFileSync(path.join(dir, k), v);
    const r = await run('promtool', ['check', 'config', path.join(dir, 'prometheus.yml')]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const mount = one(rendered.fleet, 'Deployment', 'prometheus').spec.template.spec.containers[0];
    assert.ok(mount.args.includes('--config.file=/etc/prometheus/prometheus.yml'));
    assert.ok(mount.volumeMounts.some((m) => m.mountPath === '/etc/prometheus' && !m.subPath));
  });
});

describe('the checks fail on broken manifests', { skip: SKIP }, () => {
  let deployment, config;
  before(async () => {
    const objs = await render(KUBECTL, path.join(K8S, 'overlays', 'single'));
    deployment = one(objs, 'Deployment', 'llm-gateway');
    config = YAML.parse(one(objs, 'ConfigMap', 'llm-gateway-config').data['gateway.yaml']);
    rendered.brokenBase = objs;
  });
  const mutate = (fn) => {
    const d = structuredClone(deployment);
    fn(d, d.spec.template.spec.containers[0]);
    return rendered.brokenBase.map((o) => (o === deployment ? d : o));
  };

  test('a kustomization with a wrong field type renders, and the schema check refuses it', async () => {
    const dir = tmpDir('gw-k8s-broken-');
    fs.writeFileSync(path.join(dir, 'kustomization.yaml'), 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [deployment.yaml]\n');
    const broken = structuredClone(deployment);
    broken.spec.replicas = 'two';
    broken.spec.template.spec.containers[0].ports[0].containerPort = '8080x';
    fs.writeFileSync(path.join(dir, 'deployment.yaml'), YAML.stringify(broken));
    const [obj] = await render(KUBECTL, dir);
    const e = await schemaError(obj);
    assert.match(String(e), /replicas must be integer/);
    assert.match(String(e), /containerPort must be integer/);
  });

  test('the schema check refuses missing required fields, bad enums and unknown kinds', async () => {
    assert.equal(await schemaError(deployment), null, 'the unbroken Deployment is valid');
    const noContainers = structuredClone(deployment);
    delete noContainers.spec.template.spec.containers;
    assert.match(String(await schemaError(noContainers)), /containers/);
    const badProbe = structuredClone(deployment);
    badProbe.spec.template.spec.containers[0].readinessProbe.periodSeconds = '5s';
    assert.match(String(await schemaError(badProbe)), /periodSeconds must be integer/);
    const badPolicy = structuredClone(deployment);
    badPolicy.spec.template.spec.containers[0].imagePullPolicy = 7;
    assert.match(String(await schemaError(badPolicy)), /imagePullPolicy must be string/);
    await assert.rejects(modelFor({ ...deployment, kind: 'Deploymnet' }), /has no kind 'Deploymnet'/);
    await assert.rejects(modelFor({ ...deployment, apiVersion: 'apps/v9' }), /no Kubernetes API group\/version/);
    await assert.rejects(modelFor({ ...deployment, apiVersion: '../../etc' }), /not an API version/);
    assert.throws(() => parseManifests('a: [1\n'), /does not parse/);
  });

  test('the promise checks name what is wrong', () => {
    const longPreStop = mutate((d, c) => { c.lifecycle.preStop.exec.command = ['sleep', '20']; });
    assert.match(gatewayPodProblems(longPreStop, config).join('\n'), /terminationGracePeriodSeconds 40 < preStop 20 s \+ drain 25 s/);
    const longDrain = { ...config, server: { ...config.server, drain_timeout_ms: 60000 } };
    assert.match(gatewayPodProblems(rendered.brokenBase, longDrain).join('\n'), /drain 60 s/);
    const wrongProbe = mutate((d, c) => { c.readinessProbe.httpGet.path = '/healthz'; c.livenessProbe.httpGet.port = 9090; });
    const probeProblems = gatewayPodProblems(wrongProbe, config).join('\n');
    assert.match(probeProblems, /readinessProbe asks \/healthz, not \/readyz/);
    assert.match(probeProblems, /livenessProbe port 9090/);
    const writable = mutate((d, c) => { c.securityContext.readOnlyRootFilesystem = false; delete c.resources.limits; });
    assert.match(hardeningProblems(writable).join('\n'), /readOnlyRootFilesystem is not true[\s\S]*no memory limit/);
    const root = mutate((d) => { d.spec.template.spec.securityContext.runAsUser = 0; });
    assert.match(hardeningProblems(root).join('\n'), /no non-zero runAsUser/);
    const noState = mutate((d, c) => { c.volumeMounts = c.volumeMounts.filter((m) => m.name !== 'state'); });
    assert.match(gatewayPathProblems(noState, config).join('\n'), /ledger\.sqlite is on the read-only root file system/);
    const subPath = mutate((d, c) => {
      const m = c.volumeMounts.find((x) => x.name === 'policies');
      m.mountPath = '/etc/gateway/policies/default.yaml';
      m.subPath = 'default.yaml';
    });
    assert.match(gatewayPathProblems(subPath, config).join('\n'), /subPath/);
    const lostClaim = rendered.brokenBase.filter((o) => o.kind !== 'PersistentVolumeClaim');
    assert.match(referenceProblems(lostClaim).join('\n'), /missing PersistentVolumeClaim llm-gateway-state/);
    const relabelled = mutate((d) => { d.spec.template.metadata.labels = { 'app.kubernetes.io/name': 'other' }; });
    const refs = referenceProblems(relabelled).join('\n');
    assert.match(refs, /selector does not match its pod labels/);
    assert.match(refs, /Service\/llm-gateway selects no pods/);
  });
});
