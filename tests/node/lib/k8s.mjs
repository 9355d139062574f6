// Kubernetes manifests as the tests see them: rendered by `kubectl kustomize`, each object checked
// against the Kubernetes API schema, and the promises the gateway's objects make to each other and
// to the gateway's configuration, as functions that return what is wrong (empty when nothing is),
// so that the tests can also feed them broken objects and see them fail.
//
// The schema check uses kubernetes-models (npm, pinned in package.json): one class per kind with a
// validator generated from the Kubernetes OpenAPI schema (types, required fields, enums, formats).
// The OpenAPI schema does not forbid unknown fields (the API server does, with strict field
// validation), so a misspelt field passes it; the promise checks below look for the fields that
// matter by their right names, which catches those.
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import YAML from 'yaml';
import { run } from './gateway.mjs';

// The kubectl to render with, or null. It is not a Debian package here (Google Cloud SDK's), so
// deploy/install-deps.sh cannot install it: without one the tests skip, saying so.
export function findKubectl() {
  for (const dir of (process.env.PATH || '').split(path.delimiter)) {
    const p = path.join(dir || '.', 'kubectl');
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {}
  }
  return null;
}

export function kubectlVersion(kubectl) {
  try {
    return execFileSync(kubectl, ['version', '--client'], { encoding: 'utf8', timeout: 20000 }).trim().replace(/\n/g, '; ');
  } catch (e) {
    return `unknown (${e.message.split('\n')[0]})`;
  }
}

// Renders a kustomization folder into plain objects.
export async function render(kubectl, dir) {
  const r = await run(kubectl, ['kustomize', dir], { timeoutMs: 60000 });
  if (r.code !== 0) throw new Error(`kubectl kustomize ${dir} failed (${r.code}): ${r.stderr}`);
  return parseManifests(r.stdout);
}

export function parseManifests(text) {
  const docs = YAML.parseAllDocuments(text);
  for (const d of docs) if (d.errors.length) throw new Error(`rendered YAML does not parse: ${d.errors[0].message}`);
  return docs.map((d) => d.toJS()).filter((o) => o !== null);
}

// The kubernetes-models class for an object's apiVersion and kind; throws for one the schema does
// not know (a misspelt kind or an API version the cluster would not serve either).
export async function modelFor(obj) {
  const apiVersion = String(obj?.apiVersion ?? '');
  if (!/^([a-z0-9.-]+\/)?v[0-9]+((alpha|beta)[0-9]+)?$/.test(apiVersion)) throw new Error(`${describe(obj)}: apiVersion '${apiVersion}' is not an API version`);
  let mod;
  try {
    mod = await import(`kubernetes-models/${apiVersion}`);
  } catch {
    throw new Error(`${describe(obj)}: no Kubernetes API group/version '${apiVersion}'`);
  }
  const Model = Object.hasOwn(mod, obj.kind) ? mod[obj.kind] : undefined;
  if (typeof Model !== 'function') throw new Error(`${describe(obj)}: '${apiVersion}' has no kind '${obj.kind}'`);
  return Model;
}

// The schema's complaint about an object, or null when it is valid.
export async function schemaError(obj) {
  let Model;
  try {
    Model = await modelFor(obj);
  } catch (e) {
    return e.message;
  }
  try {
    new Model(obj).validate();
    return null;
  } catch (e) {
    return `${describe(obj)}: ${e.message}`;
  }
}

export function describe(obj) {
  return `${obj?.kind ?? '?'}/${obj?.metadata?.name ?? '?'}`;
}

export const byKind = (objs, kind) => objs.filter((o) => o.kind === kind);
export function one(objs, kind, name) {
  const found = objs.filter((o) => o.kind === kind && (o.metadata.name === name || o.metadata.name.startsWith(name + '-')));
  if (found.length !== 1) throw new Error(`expected one ${kind} named ${name}(-hash), found ${found.map(describe).join(', ') || 'none'}`);
  return found[0];
}
const WORKLOADS = ['Deployment', 'StatefulSet', 'DaemonSet'];
export const workloads = (objs) => objs.filter((o) => WORKLOADS.includes(o.kind));
const podSpec = (w) => w.spec?.template?.spec ?? {};
const containersOf = (w) => podSpec(w).containers ?? [];

// The gateway container of the llm-gateway Deployment and what it runs.
export function gatewayPod(objs) {
  const dep = one(objs, 'Deployment', 'llm-gateway');
  const c = containersOf(dep).find((x) => x.name === 'gateway');
  if (!c) throw new Error('Deployment/llm-gateway has no container named gateway');
  const args = [...(c.command ?? []), ...(c.args ?? [])];
  const i = args.indexOf('--config');
  if (i < 0 || !args[i + 1]) throw new Error('the gateway container is not started with --config FILE');
  return { dep, container: c, configPath: args[i + 1] };
}

// Lays the ConfigMaps the gateway container mounts out under `root` exactly at their mount paths,
// so that its --config file and the relative paths inside it resolve as they would in the pod.
export function materialise(objs, root) {
  const { dep, container, configPath } = gatewayPod(objs);
  const volumes = new Map((podSpec(dep).volumes ?? []).map((v) => [v.name, v]));
  for (const m of container.volumeMounts ?? []) {
    const cmName = volumes.get(m.name)?.configMap?.name;
    if (!cmName) continue;
    const cm = byKind(objs, 'ConfigMap').find((o) => o.metadata.name === cmName);
    if (!cm) throw new Error(`volume ${m.name} mounts ConfigMap ${cmName}, which the render does not contain`);
    const dir = path.join(root, m.mountPath);
    fs.mkdirSync(dir, { recursive: true });
    for (const [key, text] of Object.entries(cm.data ?? {})) fs.writeFileSync(path.join(dir, key), text);
  }
  return path.join(root, configPath);
}

// ---- promises, each returning a list of problems --------------------------------------------

const portOf = (container, ref) =>
  typeof ref === 'number' ? ref : (container.ports ?? []).find((p) => p.name === ref)?.containerPort;

// Probes on the gateway's own endpoints and port (the one server.listen names), and a shutdown
// that fits: preStop + the drain (server.drain_timeout_ms, default 25 s) + a margin for the
// process to exit must end before terminationGracePeriodSeconds sends SIGKILL.
export function gatewayPodProblems(objs, config, { exitMarginS = 5 } = {}) {
  const problems = [];
  const { dep, container } = gatewayPod(objs);
  const listenPort = Number(String(config?.server?.listen ?? '').split(':').pop());
  for (const [probe, want] of [['readinessProbe', '/readyz'], ['livenessProbe', '/healthz']]) {
    const p = container[probe]?.httpGet;
    if (!p) { problems.push(`${probe} is not an httpGet probe`); continue; }
    if (p.path !== want) problems.push(`${probe} asks ${p.path}, not ${want}`);
    if (portOf(container, p.port) !== listenPort) problems.push(`${probe} port ${p.port} is not server.listen's ${listenPort}`);
  }
  const sleep = container.lifecycle?.preStop?.exec?.command;
  const preStopS = Array.isArray(sleep) && sleep[0] === 'sleep' ? Number(sleep[1]) : NaN;
  if (!Number.isFinite(preStopS)) problems.push('preStop is not `sleep N` (endpoints need time to drop the pod before the drain)');
  const drainS = (config?.server?.drain_timeout_ms ?? 25000) / 1000;
  const grace = podSpec(dep).terminationGracePeriodSeconds ?? 30;
  if (!(preStopS + drainS + exitMarginS <= grace))
    problems.push(`terminationGracePeriodSeconds ${grace} < preStop ${preStopS} s + drain ${drainS} s + ${exitMarginS} s: streams would be killed mid-drain`);
  return problems;
}

// Every container: non-root, no privilege escalation, read-only root file system, no
// capabilities, memory limited, CPU and memory requested.
export function hardeningProblems(objs) {
  const problems = [];
  for (const w of workloads(objs)) {
    const pod = podSpec(w).securityContext ?? {};
    for (const c of containersOf(w)) {
      const sc = c.securityContext ?? {};
      const where = `${describe(w)} container ${c.name}`;
      if ((sc.runAsNonRoot ?? pod.runAsNonRoot) !== true) problems.push(`${where}: runAsNonRoot is not true`);
      const uid = sc.runAsUser ?? pod.runAsUser;
      if (!(uid > 0)) problems.push(`${where}: no non-zero runAsUser`);
      if (sc.allowPrivilegeEscalation !== false) problems.push(`${where}: allowPrivilegeEscalation is not false`);
      if (sc.readOnlyRootFilesystem !== true) problems.push(`${where}: readOnlyRootFilesystem is not true`);
      if (!(sc.capabilities?.drop ?? []).includes('ALL')) problems.push(`${where}: capabilities do not drop ALL`);
      if (!c.resources?.requests?.cpu || !c.resources?.requests?.memory) problems.push(`${where}: no CPU and memory requests`);
      if (!c.resources?.limits?.memory) problems.push(`${where}: no memory limit`);
    }
  }
  return problems;
}

// The files the gateway writes (the SQLite ledger and its recovery file beside it) are on a
// writable volume, since the root file system is read-only; the policy file is in a ConfigMap
// mounted as a directory (a subPath mount is never updated, which would break hot reload).
export function gatewayPathProblems(objs, config) {
  const problems = [];
  const { dep, container, configPath } = gatewayPod(objs);
  const volumes = new Map((podSpec(dep).volumes ?? []).map((v) => [v.name, v]));
  const mountFor = (file) =>
    (container.volumeMounts ?? [])
      .filter((m) => file === m.mountPath || file.startsWith(m.mountPath.replace(/\/$/, '') + '/'))
      .sort((a, b) => b.mountPath.length - a.mountPath.length)[0];
  const resolve = (p) => (path.isAbsolute(p) ? p : path.posix.normalize(path.posix.join(path.posix.dirname(configPath), p)));
  const ledger = config?.state?.ledger_path;
  if (ledger) {
    const m = mountFor(resolve(ledger));
    if (!m) problems.push(`state.ledger_path ${resolve(ledger)} is on the read-only root file system`);
    else if (m.readOnly) problems.push(`state.ledger_path ${resolve(ledger)} is on read-only mount ${m.name}`);
    else if (volumes.get(m.name)?.configMap || volumes.get(m.name)?.secret) problems.push(`state.ledger_path is on ${m.name}, a ConfigMap or Secret`);
  }
  if (config?.policy) {
    const file = resolve(config.policy);
    const m = mountFor(file);
    if (!m || !volumes.get(m.name)?.configMap) problems.push(`policy ${file} is not in a mounted ConfigMap`);
    else if (m.subPath) problems.push(`policy ConfigMap is mounted with subPath: edits would never reach the pod`);
  }
  return problems;
}

// ConfigMaps and Secrets the pods use: every ConfigMap must be in the render; Secrets are made by
// the operator, so they must be exactly the documented ones.
export function referencedSecrets(objs) {
  const names = new Set();
  for (const w of workloads(objs)) {
    for (const v of podSpec(w).volumes ?? []) if (v.secret?.secretName) names.add(v.secret.secretName);
    for (const c of containersOf(w)) {
      for (const e of c.env ?? []) if (e.valueFrom?.secretKeyRef?.name) names.add(e.valueFrom.secretKeyRef.name);
      for (const e of c.envFrom ?? []) if (e.secretRef?.name) names.add(e.secretRef.name);
    }
  }
  return [...names].sort();
}

export function referenceProblems(objs) {
  const problems = [];
  const have = (kind, name) => objs.some((o) => o.kind === kind && o.metadata.name === name);
  for (const w of workloads(objs)) {
    for (const v of podSpec(w).volumes ?? []) {
      if (v.configMap && !have('ConfigMap', v.configMap.name)) problems.push(`${describe(w)} mounts missing ConfigMap ${v.configMap.name}`);
      if (v.persistentVolumeClaim && !have('PersistentVolumeClaim', v.persistentVolumeClaim.claimName))
        problems.push(`${describe(w)} claims missing PersistentVolumeClaim ${v.persistentVolumeClaim.claimName}`);
    }
    const sel = w.spec?.selector?.matchLabels ?? {};
    const labels = w.spec?.template?.metadata?.labels ?? {};
    if (!Object.keys(sel).length || !Object.entries(sel).every(([k, v]) => labels[k] === v)) problems.push(`${describe(w)}: selector does not match its pod labels`);
  }
  // Services select pods and name ports those pods have.
  for (const s of byKind(objs, 'Service')) {
    const sel = s.spec?.selector ?? {};
    const pods = workloads(objs).filter((w) => Object.entries(sel).every(([k, v]) => (w.spec?.template?.metadata?.labels ?? {})[k] === v));
    if (!Object.keys(sel).length || pods.length === 0) { problems.push(`Service/${s.metadata.name} selects no pods`); continue; }
    for (const p of s.spec.ports ?? []) {
      const target = p.targetPort ?? p.port;
      if (!pods.every((w) => containersOf(w).some((c) => portOf(c, target) !== undefined)))
        problems.push(`Service/${s.metadata.name} port ${p.name}: targetPort ${target} is not a port of the pods it selects`);
    }
  }
  // Autoscalers and disruption budgets point at the gateway's workload and pods.
  for (const h of byKind(objs, 'HorizontalPodAutoscaler')) {
    const ref = h.spec.scaleTargetRef;
    const target = objs.find((o) => o.kind === ref.kind && o.metadata.name === ref.name);
    if (!target) problems.push(`HorizontalPodAutoscaler/${h.metadata.name} scales missing ${ref.kind}/${ref.name}`);
    else if (target.spec.replicas !== undefined) problems.push(`${describe(target)} sets replicas although an autoscaler owns the count`);
    if (!(h.spec.minReplicas >= 2)) problems.push(`HorizontalPodAutoscaler/${h.metadata.name}: minReplicas ${h.spec.minReplicas} < 2`);
  }
  for (const b of byKind(objs, 'PodDisruptionBudget')) {
    const sel = b.spec.selector?.matchLabels ?? {};
    const pods = workloads(objs).filter((w) => Object.entries(sel).every(([k, v]) => (w.spec?.template?.metadata?.labels ?? {})[k] === v));
    if (!Object.keys(sel).length || pods.length === 0) problems.push(`PodDisruptionBudget/${b.metadata.name} selects no pods`);
  }
  return problems;
}
