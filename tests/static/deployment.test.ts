/**
 * The deployment files cannot run here (no container engine), so they are checked statically: they
 * parse; every variable they set for the edge or a worker is one the configuration schema knows,
 * with a value it accepts; probes point at /health and /ready; each image's CMD entry file exists
 * and everything it imports is copied into the image; dashboards and alerts use only metrics the
 * code defines (and the dashboard shows every one); no secret is written down.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { parseAllDocuments, parseDocument } from 'yaml';
import { describe, expect, it } from 'vitest';
import { edgeEnvSchema, workerEnvSchema } from '../../shared/config.ts';

const ROOT = join(import.meta.dirname, '../..');
const read = (p: string) => readFileSync(join(ROOT, p), 'utf8');
type Obj = Record<string, any>; // parsed YAML/JSON: shapes are checked by the tests themselves

function yamlFile(p: string): Obj {
  const doc = parseDocument(read(p), { merge: true });
  expect(doc.errors.map((e) => e.message), p).toEqual([]);
  return doc.toJS({ maxAliasCount: 1000 }) as Obj;
}
function yamlDocs(p: string): Obj[] {
  return parseAllDocuments(read(p)).map((doc) => {
    expect(doc.errors.map((e) => e.message), p).toEqual([]);
    return doc.toJS() as Obj;
  }).filter(Boolean);
}

type Schema = typeof edgeEnvSchema | typeof workerEnvSchema;
const SCHEMAS = { edge: edgeEnvSchema, worker: workerEnvSchema };

/** Every name is a variable of `schema`; every literal value (not `${…}` interpolation) is one it accepts. */
function expectKnownEnv(schema: Schema, env: Record<string, unknown>, where: string): void {
  const shape = schema.shape as Record<string, { safeParse(v: unknown): { success: boolean } }>;
  for (const [name, value] of Object.entries(env)) {
    expect(shape[name], `${where}: ${name} is not a configuration variable (shared/config.ts)`).toBeDefined();
    const text = String(value);
    if (!text.includes('${') && !text.includes('change-me') && text !== '') {
      expect(shape[name]!.safeParse(text).success, `${where}: ${name}=${text} is refused by the schema`).toBe(true);
    }
  }
}

// ── Metric names, from the code that defines them ───────────────────────────────────────────────
const METRIC_DIRS = ['shared/metrics', 'workers/metrics'];
const DEFINED = new Set(METRIC_DIRS.flatMap((d) => readdirSync(join(ROOT, d)).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))
  .flatMap((f) => [...read(`${d}/${f}`).matchAll(/'(bionic_[a-z0-9_]+)'/g)].map((m) => m[1]!))));
const defaults = new Registry();
collectDefaultMetrics({ register: defaults });
/** prom-client's default process metrics, which the workers expose too. */
const DEFAULT_METRICS = defaults.getMetricsAsJSON().then((m) => new Set(m.map((x) => x.name)));

/** Metric names an expression reads (histogram series map back to their metric). */
const metricsIn = (expr: string) => [...expr.matchAll(/\b((?:bionic|process|nodejs)_[a-z0-9_]+)/g)].map((m) => m[1]!.replace(/_(bucket|sum|count)$/, (s, _x, off, all: string) => (DEFINED.has(all.slice(0, -s.length)) ? '' : s)));

async function expectDefinedMetrics(exprs: string[], where: string): Promise<void> {
  const known = new Set([...DEFINED, ...(await DEFAULT_METRICS)]);
  for (const e of exprs) for (const m of metricsIn(e)) expect(known.has(m), `${where}: ${m} is not a metric the code defines (${e})`).toBe(true);
}

describe('metric names', () => {
  it('are found where the code defines them', () => {
    expect(DEFINED.size).toBeGreaterThanOrEqual(15);
    for (const m of ['bionic_http_requests_total', 'bionic_cdc_lag_seconds', 'bionic_saga_stuck']) expect(DEFINED).toContain(m);
  });
});

// ── Compose ─────────────────────────────────────────────────────────────────────────────────────
describe('infra/compose.yaml', () => {
  const compose = yamlFile('infra/compose.yaml');
  const services = compose.services as Obj;

  it('has the production-shaped stack', () => {
    for (const s of ['kafka', 'postgres-crm', 'postgres-platform', 'clickhouse', 'minio', 'minio-init', 'redis', 'kv-gateway', 'openldap', 'keycloak', 'migrate', 'worker', 'edge', 'prometheus', 'grafana']) {
      expect(services, s).toHaveProperty(s);
    }
    expect(services.kafka.environment.KAFKA_PROCESS_ROLES).toContain('controller'); // KRaft, no ZooKeeper
    expect(Object.keys(services).some((s) => /zookeeper/i.test(s))).toBe(false);
    expect(services['postgres-crm'].command.join(' ')).toContain('wal_level=logical');
  });

  it('sets only configuration variables for the edge and the workers, with values the schema accepts', () => {
    expectKnownEnv(SCHEMAS.edge, services.edge.environment, 'compose edge');
    for (const s of ['worker', 'migrate']) expectKnownEnv(SCHEMAS.worker, services[s].environment, `compose ${s}`);
  });

  it('mounts files that exist, builds from Dockerfiles that exist, and runs entry files that exist', () => {
    for (const [name, s] of Object.entries(services) as [string, Obj][]) {
      for (const v of (s.volumes ?? []) as string[]) {
        const host = v.split(':')[0]!;
        if (host.startsWith('.')) expect(existsSync(resolve(ROOT, 'infra', host)), `${name}: ${host}`).toBe(true);
      }
      if (s.build) expect(existsSync(resolve(ROOT, 'infra', s.build.context, s.build.dockerfile)), `${name}: ${s.build.dockerfile}`).toBe(true);
      if (String(s.image).startsWith('bionicpro/') && Array.isArray(s.command)) {
        const entry = (s.command as string[]).find((a) => /\.(ts|mjs)$/.test(a))!;
        expect(existsSync(join(ROOT, entry)), `${name}: ${entry}`).toBe(true);
      }
    }
  });

  it('creates the reports bucket with the lifecycle rule and imports the Keycloak realm', () => {
    const init = services['minio-init'];
    expect(init.volumes).toContain('./s3/lifecycle.json:/lifecycle.json:ro');
    expect(init.command.join(' ')).toMatch(/mc mb --ignore-existing bionic\/reports[\s\S]*mc ilm import bionic\/reports < \/lifecycle\.json/);
    expect(JSON.parse(read('infra/s3/lifecycle.json')).Rules.length).toBeGreaterThan(0);
    expect(services.keycloak.command).toContain('--import-realm');
    expect(services.keycloak.volumes[0]).toMatch(/^\.\/keycloak\/realm-bionicpro\.json:\/opt\/keycloak\/data\/import\//);
  });

  it('gives Prometheus its configuration, the alert rules and the metrics token as a file', () => {
    expect(services.prometheus.volumes).toEqual(expect.arrayContaining([
      './prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro', './prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro',
    ]));
    expect(services.prometheus.configs).toContainEqual({ source: 'metrics-token', target: '/etc/prometheus/metrics-token' });
    expect(compose.configs['metrics-token']).toEqual({ environment: 'METRICS_TOKEN' });
  });
});

// ── Dockerfiles ─────────────────────────────────────────────────────────────────────────────────
/** Instructions of the final stage, with line continuations joined. */
function finalStage(p: string): { op: string; args: string }[] {
  const lines = read(p).replace(/\\\n/g, ' ').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  const all = lines.map((l) => ({ op: l.split(/\s+/)[0]!.toUpperCase(), args: l.slice(l.indexOf(' ') + 1).trim() }));
  expect(all.filter((i) => i.op === 'FROM').length, `${p} is multi-stage`).toBeGreaterThanOrEqual(2);
  return all.slice(all.map((i) => i.op).lastIndexOf('FROM'));
}

/** Files reachable from `entry` through relative imports (static and dynamic), and the packages they import. */
function importGraph(entry: string): { files: Set<string>; packages: Set<string> } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const visit = (file: string) => {
    if (files.has(file)) return;
    files.add(file);
    for (const m of read(file).matchAll(/(?:^|\n)\s*(?:import|export)[^'"\n;]*?from\s+'([^']+)'|import\(\s*'([^']+)'\s*\)|^import\s+'([^']+)'/gm)) {
      const spec = m[1] ?? m[2] ?? m[3]!;
      if (spec.startsWith('.')) visit(relative(ROOT, resolve(ROOT, dirname(file), spec)));
      else if (!spec.startsWith('node:')) packages.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!);
    }
  };
  visit(entry);
  return { files, packages };
}

describe.each([
  ['infra/docker/edge.Dockerfile', 'edge/main.node.ts'],
  ['infra/docker/worker.Dockerfile', 'workers/main.ts'],
])('%s', (dockerfile, expectedEntry) => {
  const stage = finalStage(dockerfile);
  const cmd = JSON.parse(stage.filter((i) => i.op === 'CMD').at(-1)!.args) as string[];
  const copied = stage.filter((i) => i.op === 'COPY' && !i.args.startsWith('--from')).flatMap((i) => i.args.split(/\s+/).slice(0, -1));
  const covered = (file: string) => copied.some((src) => file === src || file.startsWith(src.replace(/\/?$/, '/')));

  it('runs as a non-root user with a HEALTHCHECK on /health', () => {
    expect(stage.filter((i) => i.op === 'USER').at(-1)?.args).toMatch(/^(?!root$|0$)\S+$/);
    expect(stage.find((i) => i.op === 'HEALTHCHECK')?.args).toContain('/health');
    expect(existsSync(join(ROOT, `${dockerfile}.dockerignore`))).toBe(true);
  });

  it('starts an entry file that exists, with everything it imports copied into the image', () => {
    const entry = cmd.find((a) => /\.(ts|mjs|js)$/.test(a))!;
    expect(entry).toBe(expectedEntry);
    expect(existsSync(join(ROOT, entry))).toBe(true);
    const { files, packages } = importGraph(entry);
    for (const f of files) expect(covered(f), `${f} (imported by ${entry}) is not copied into the image`).toBe(true);
    const removed = [...read(dockerfile).matchAll(/node_modules\/((?:@[^/\s]+\/)?[^/\s]+)/g)].map((m) => m[1]!);
    for (const p of removed) expect(packages.has(p), `${entry} imports ${p}, which the image deletes`).toBe(false);
    const declared = JSON.parse(read('package.json')) as { dependencies: Record<string, string> };
    for (const p of packages) expect(declared.dependencies, `${p} must be a production dependency`).toHaveProperty(p);
  });
});

// ── Kubernetes ──────────────────────────────────────────────────────────────────────────────────
describe('infra/k8s', () => {
  const kustomization = yamlFile('infra/k8s/kustomization.yaml');
  const docs = readdirSync(join(ROOT, 'infra/k8s')).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml')
    .flatMap((f) => yamlDocs(`infra/k8s/${f}`).map((d): Obj => ({ ...d, file: f })));
  const byKind = (kind: string) => docs.filter((d) => d.kind === kind);
  const secret = byKind('Secret')[0]!;
  const configMaps = new Map(byKind('ConfigMap').map((c) => [c.metadata.name as string, c.data as Obj]));
  const workloads = [...byKind('Deployment'), ...byKind('Job')];

  it('lists every manifest but the Secret template in the kustomization', () => {
    for (const d of docs) expect(d.apiVersion && d.kind && d.metadata?.name, d.file).toBeTruthy();
    const listed = kustomization.resources as string[];
    for (const r of listed) expect(existsSync(join(ROOT, 'infra/k8s', r)), r).toBe(true);
    expect(listed).not.toContain('secret.example.yaml');
    expect(new Set(docs.map((d) => d.file))).toEqual(new Set([...listed, 'secret.example.yaml']));
  });

  it('has Deployments, Services, a PodDisruptionBudget each, and an HPA for the edge', () => {
    for (const name of ['bionicpro-edge', 'bionicpro-worker']) {
      const dep = byKind('Deployment').find((d) => d.metadata.name === name)!;
      const labels = dep.spec.template.metadata.labels;
      expect(dep.spec.selector.matchLabels).toEqual(labels);
      expect(byKind('Service').find((s) => s.metadata.name === name)?.spec.selector).toEqual(labels);
      expect(byKind('PodDisruptionBudget').find((p) => p.metadata.name === name)?.spec.selector.matchLabels).toEqual(labels);
    }
    const [hpa] = byKind('HorizontalPodAutoscaler');
    expect(hpa?.spec.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: 'bionicpro-edge' });
  });

  it('probes /health for liveness and /ready for readiness on the container port', () => {
    for (const dep of byKind('Deployment')) {
      const c = dep.spec.template.spec.containers[0];
      expect(c.livenessProbe.httpGet.path, dep.metadata.name).toBe('/health');
      expect(c.readinessProbe.httpGet.path, dep.metadata.name).toBe('/ready');
      for (const p of [c.livenessProbe, c.readinessProbe]) expect(c.ports.map((x: Obj) => x.name)).toContain(p.httpGet.port);
      expect(dep.spec.template.spec.securityContext.runAsNonRoot).toBe(true);
    }
  });

  it('sets only configuration variables, from ConfigMaps and Secret keys that exist', () => {
    for (const w of workloads) {
      const spec = w.spec.template.spec;
      for (const c of spec.containers as Obj[]) {
        const schema = String(c.image).includes('/edge') ? SCHEMAS.edge : SCHEMAS.worker;
        const env: Record<string, unknown> = {};
        for (const from of (c.envFrom ?? []) as Obj[]) {
          const data = configMaps.get(from.configMapRef?.name);
          expect(data, `${w.metadata.name}: ConfigMap ${from.configMapRef?.name}`).toBeDefined();
          Object.assign(env, data);
        }
        for (const e of (c.env ?? []) as Obj[]) {
          const ref = e.valueFrom?.secretKeyRef;
          if (ref) {
            expect(ref.name).toBe(secret.metadata.name);
            expect(secret.stringData, `${w.metadata.name}: secret key ${ref.key}`).toHaveProperty(ref.key);
          }
          env[e.name] = ref ? '${secret}' : e.value;
        }
        expectKnownEnv(schema, env, `k8s ${w.metadata.name}`);
        if (c.command) expect(existsSync(join(ROOT, (c.command as string[]).find((a) => /\.(ts|mjs)$/.test(a))!))).toBe(true);
      }
    }
  });
});

// ── Monitoring ──────────────────────────────────────────────────────────────────────────────────
describe('monitoring', () => {
  it('Prometheus scrapes both /metrics with a bearer token read from a file', () => {
    const prom = yamlFile('infra/prometheus/prometheus.yml');
    for (const job of ['bionic-edge', 'bionic-worker']) {
      const sc = (prom.scrape_configs as Obj[]).find((s) => s.job_name === job)!;
      expect(sc.metrics_path).toBe('/metrics');
      expect(sc.authorization).toEqual({ type: 'Bearer', credentials_file: '/etc/prometheus/metrics-token' });
    }
    const ready = (prom.scrape_configs as Obj[]).find((s) => s.job_name === 'bionic-ready')!;
    expect(ready.static_configs[0].targets.every((t: string) => t.endsWith('/ready'))).toBe(true);
    expect(prom.rule_files).toEqual(['/etc/prometheus/alerts.yml']);
  });

  it('alert rules are complete and use only defined metrics', async () => {
    const rules = (yamlFile('infra/prometheus/alerts.yml').groups as Obj[]).flatMap((g) => g.rules as Obj[]);
    for (const r of rules) {
      expect(r.alert && r.expr && r.for && r.labels?.severity && r.annotations?.summary, JSON.stringify(r)).toBeTruthy();
    }
    await expectDefinedMetrics(rules.map((r) => r.expr), 'alerts.yml');
    const exprs = rules.map((r) => r.expr).join('\n');
    for (const m of ['bionic_cdc_lag_seconds', 'bionic_saga_stuck', 'probe_success']) expect(exprs).toContain(m);
  });

  it('the Grafana dashboard has a panel for every defined metric and reads nothing else', async () => {
    const dash = JSON.parse(read('infra/grafana/bionicpro.json')) as Obj;
    const panels = (dash.panels as Obj[]).filter((p) => p.type !== 'row');
    expect(new Set((dash.panels as Obj[]).map((p) => p.id)).size).toBe(dash.panels.length);
    const exprs = panels.flatMap((p) => {
      expect(p.title && p.targets?.length, JSON.stringify(p)).toBeTruthy();
      return (p.targets as Obj[]).map((t) => t.expr as string);
    });
    await expectDefinedMetrics(exprs, 'bionicpro.json');
    const shown = new Set(exprs.flatMap(metricsIn));
    for (const m of DEFINED) expect(shown.has(m), `no panel shows ${m}`).toBe(true);
    expect(yamlFile('infra/grafana/provisioning/datasources/prometheus.yaml').datasources[0].uid).toBe(panels[0]!.datasource.uid);
  });
});

// ── Deno Deploy ─────────────────────────────────────────────────────────────────────────────────
it('deno.json has a task that deploys the edge, whose entry point exists', () => {
  const tasks = (JSON.parse(read('deno.json')) as { tasks: Record<string, string> }).tasks;
  expect(tasks['deploy:edge']).toMatch(/^deno deploy /);
  expect(existsSync(join(ROOT, 'edge/main.deno.ts'))).toBe(true);
});

// ── Secrets ─────────────────────────────────────────────────────────────────────────────────────
describe('no secrets in deployment files', () => {
  const files = ['infra/compose.yaml', 'infra/docker/edge.Dockerfile', 'infra/docker/worker.Dockerfile', 'infra/prometheus/prometheus.yml',
    'infra/prometheus/alerts.yml', 'infra/grafana/bionicpro.json',
    ...readdirSync(join(ROOT, 'infra/k8s')).map((f) => `infra/k8s/${f}`)];
  const SECRET_NAME = /PASSWORD|SECRET|TOKEN|_KEYS$|CREDENTIAL/;
  /** A value is safe when it is a placeholder, an interpolation without a real default, or empty. */
  const placeholder = (v: string) => v === '' || v.includes('change-me') || /^\$\{[A-Z_]+(:\?[^}]*)?\}$/.test(v) || /^\$\{[A-Z_]+:-\}$/.test(v);

  it.each(files)('%s', (file) => {
    const text = read(file);
    for (const m of text.matchAll(/^\s*-?\s*"?([A-Z][A-Z0-9_]*)"?\s*[:=]\s*"?([^"\n#]*?)"?\s*(?:#.*)?$/gm)) {
      if (SECRET_NAME.test(m[1]!) && !/_(FILE|USERNAME)$/.test(m[1]!)) expect(placeholder(m[2]!.trim()), `${file}: ${m[1]}=${m[2]}`).toBe(true);
    }
    for (const m of text.matchAll(/[a-z+]+:\/\/[^\s:/@"']+:([^\s@"']+)@/g)) expect(placeholder(m[1]!), `${file}: password in ${m[0]}`).toBe(true);
    // Anything that looks like a generated key or token (long, mixed case and digits).
    for (const m of text.matchAll(/(?<![\w/.-])(?=[A-Za-z0-9+/_-]*\d)(?=[A-Za-z0-9+/_-]*[A-Z])(?=[A-Za-z0-9+/_-]*[a-z])[A-Za-z0-9+/_-]{32,}={0,2}/g)) {
      expect(m[0], `${file}: looks like a secret`).toContain('change-me');
    }
  });
});
