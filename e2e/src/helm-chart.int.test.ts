import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  APPROVAL_WEBHOOK_PATH,
  INJECTION_WEBHOOK_PATH,
  MUTATING_WEBHOOK_CONFIGURATION,
  mutatingWebhookConfiguration,
} from '@chaperone/operator';
import {
  type ControlPlane,
  findHelm,
  installCrds,
  pinnedVersions,
  type RunResult,
  repoPath,
  run,
  startControlPlane,
} from '@chaperone/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isMap, parseAllDocuments, parseDocument, type YAMLMap } from 'yaml';

// The Helm chart (charts/chaperone) rendered by a real helm and validated by a real kube-apiserver:
// every option combination must pass a server-side dry-run, the RBAC must be least privilege and
// enough for the operator (checked by impersonating its ServiceAccount), and the chart must not
// drift from crds/ or from the operator's own webhook definition.

const CHART = repoPath('charts', 'chaperone');
const NS = 'chaperone-system';
const RELEASE = 'chaperone';
const OPERATOR = 'chaperone-operator';
const COLLECTOR = 'chaperone-collector';
const OPERATOR_SA = `system:serviceaccount:${NS}:${OPERATOR}`;
const COLLECTOR_SA = `system:serviceaccount:${NS}:${COLLECTOR}`;

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  [key: string]: unknown;
}

interface PolicyRule {
  apiGroups?: string[];
  resources?: string[];
  resourceNames?: string[];
  verbs: string[];
}

interface Container {
  name: string;
  image: string;
  args: string[];
  env?: {
    name: string;
    valueFrom?: { fieldRef?: { fieldPath: string }; secretKeyRef?: { name: string; key: string } };
  }[];
  ports: { name: string; containerPort: number }[];
  securityContext: Record<string, unknown>;
  volumeMounts?: { name: string; mountPath: string }[];
  livenessProbe?: { httpGet: { path: string; port: string | number } };
  readinessProbe?: { httpGet: { path: string; port: string | number } };
  resources?: Record<string, unknown>;
}

interface Deployment extends K8sObject {
  spec: {
    replicas: number;
    strategy: { type: string };
    template: {
      metadata: { labels: Record<string, string> };
      spec: {
        serviceAccountName: string;
        containers: Container[];
        volumes?: {
          name: string;
          secret?: { secretName: string };
          persistentVolumeClaim?: { claimName: string };
        }[];
        securityContext: Record<string, unknown>;
        affinity?: Record<string, unknown>;
        topologySpreadConstraints?: unknown[];
      };
    };
  };
}

interface Webhook {
  name: string;
  clientConfig: {
    caBundle?: string;
    service?: { name: string; namespace: string; path: string; port: number };
  };
  [key: string]: unknown;
}

/** A values scenario: what a platform team would set, and a name for the test title. */
interface Scenario {
  name: string;
  values: Record<string, unknown>;
}

const SCENARIOS: Scenario[] = [
  { name: 'defaults', values: {} },
  { name: 'cert-manager with the chart-made CA', values: { certs: { mode: 'certManager' } } },
  {
    name: 'cert-manager with an existing ClusterIssuer',
    values: {
      certs: { mode: 'certManager', certManager: { issuerRef: { kind: 'ClusterIssuer', name: 'corp-ca' } } },
    },
  },
  {
    name: 'PostgreSQL collector with 3 replicas',
    values: { collector: { replicaCount: 3, database: { postgres: { existingSecret: 'collector-db' } } } },
  },
  { name: 'ServiceMonitors', values: { serviceMonitor: { enabled: true, labels: { release: 'prom' } } } },
  { name: 'one operator replica', values: { operator: { replicaCount: 1 } } },
  {
    name: 'three operator replicas with pod labels and a priority class',
    values: {
      operator: {
        replicaCount: 3,
        podLabels: { team: 'security' },
        priorityClassName: 'system-cluster-critical',
      },
    },
  },
  {
    name: 'OIDC auditors, auditor token, retention, existing claim',
    values: {
      collector: {
        auth: {
          oidc: { issuer: 'https://login.example.com', audience: 'chaperone', groupsClaim: 'roles' },
          auditorGroups: ['auditors', 'security'],
          auditorTokenSecret: { name: 'auditor-token' },
        },
        retention: 'orders-db=30d,*=90d',
        database: { sqlite: { persistence: { existingClaim: 'recordings' } } },
      },
    },
  },
  {
    name: 'aggregated editor, custom webhook name, image tags',
    values: {
      rbac: { aggregateEditor: true },
      webhook: { configurationName: 'chaperone-prod' },
      operator: { image: { tag: '9.9.9' } },
      sidecar: { image: { repository: 'registry.local/sidecar', tag: '1.2.3' } },
    },
  },
];

let cp: ControlPlane;
let work: string;
let helm: string;

async function helmRun(args: string[]): Promise<RunResult> {
  return run(helm, args, {
    env: {
      ...process.env,
      HELM_CACHE_HOME: join(work, 'helm-cache'),
      HELM_CONFIG_HOME: join(work, 'helm-config'),
      HELM_DATA_HOME: join(work, 'helm-data'),
    },
  });
}

let valuesCounter = 0;
async function valuesFile(values: Record<string, unknown>): Promise<string> {
  const path = join(work, `values-${valuesCounter++}.json`);
  await writeFile(path, JSON.stringify(values)); // JSON is YAML
  return path;
}

/** `helm template` output as text; throws with helm's message when rendering fails. */
async function renderText(values: Record<string, unknown>): Promise<string> {
  const res = await helmRun([
    'template',
    RELEASE,
    CHART,
    '--namespace',
    NS,
    '--kube-version',
    pinnedVersions().KUBE_VERSION ?? '',
    '-f',
    await valuesFile(values),
  ]);
  if (res.code !== 0) throw new Error(`helm template failed: ${res.stderr}`);
  return res.stdout;
}

async function render(values: Record<string, unknown>): Promise<K8sObject[]> {
  return parseAllDocuments(await renderText(values))
    .map((d) => d.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null);
}

function find<T extends K8sObject = K8sObject>(objs: K8sObject[], kind: string, name: string): T {
  const found = objs.find((o) => o.kind === kind && o.metadata.name === name);
  if (!found)
    throw new Error(`no ${kind} ${name} in ${objs.map((o) => `${o.kind}/${o.metadata.name}`).join(', ')}`);
  return found as T;
}

const kinds = (objs: K8sObject[], kind: string) => objs.filter((o) => o.kind === kind);

/** The value following `flag` in an args list (undefined when absent). */
function arg(args: string[], flag: string): string | undefined {
  const i = args.indexOf(flag);
  return i >= 0 ? args[i + 1] : undefined;
}

const toYaml = (objs: K8sObject[]) => objs.map((o) => JSON.stringify(o)).join('\n---\n');

// Minimal copies of the third-party CRDs the chart can render objects of (cert-manager,
// Prometheus Operator), so a server-side dry-run accepts those kinds. Only the fields the chart
// sets are typed (required ones marked); the rest is preserved, as the real CRDs would accept more.
const THIRD_PARTY_CRDS = `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: { name: issuers.cert-manager.io }
spec:
  group: cert-manager.io
  names: { kind: Issuer, plural: issuers, singular: issuer, listKind: IssuerList }
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          required: [spec]
          properties:
            spec:
              type: object
              x-kubernetes-preserve-unknown-fields: true
              properties:
                selfSigned: { type: object }
                ca: { type: object, required: [secretName], properties: { secretName: { type: string } } }
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: { name: certificates.cert-manager.io }
spec:
  group: cert-manager.io
  names: { kind: Certificate, plural: certificates, singular: certificate, listKind: CertificateList }
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          required: [spec]
          properties:
            spec:
              type: object
              required: [secretName, issuerRef]
              x-kubernetes-preserve-unknown-fields: true
              properties:
                secretName: { type: string }
                isCA: { type: boolean }
                commonName: { type: string }
                duration: { type: string }
                renewBefore: { type: string }
                dnsNames: { type: array, items: { type: string } }
                usages: { type: array, items: { type: string, enum: [server auth, client auth, digital signature, key encipherment, cert sign] } }
                privateKey:
                  type: object
                  properties:
                    algorithm: { type: string, enum: [RSA, ECDSA, Ed25519] }
                    size: { type: integer }
                    rotationPolicy: { type: string, enum: [Never, Always] }
                issuerRef:
                  type: object
                  required: [name]
                  properties: { name: { type: string }, kind: { type: string }, group: { type: string } }
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: { name: servicemonitors.monitoring.coreos.com }
spec:
  group: monitoring.coreos.com
  names: { kind: ServiceMonitor, plural: servicemonitors, singular: servicemonitor, listKind: ServiceMonitorList }
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          required: [spec]
          properties:
            spec:
              type: object
              required: [selector, endpoints]
              x-kubernetes-preserve-unknown-fields: true
              properties:
                selector: { type: object, x-kubernetes-preserve-unknown-fields: true }
                namespaceSelector: { type: object, properties: { matchNames: { type: array, items: { type: string } } } }
                endpoints:
                  type: array
                  items:
                    type: object
                    properties:
                      port: { type: string }
                      path: { type: string }
                      scheme: { type: string, enum: [http, https] }
                      interval: { type: string, pattern: '^(0|(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$' }
                      scrapeTimeout: { type: string }
`;

beforeAll(async () => {
  helm = findHelm();
  work = await mkdtemp(join(tmpdir(), 'chaperone-helm-'));
  cp = await startControlPlane({ installCrds: false });
  // The chart's own CRDs, as `helm install` would apply them before the templates.
  await installCrds(cp.kubectlPath, cp.admin.kubeconfigPath, cp.admin.kubeConfig(), join(CHART, 'crds'));
  const thirdParty = join(work, 'third-party-crds.yaml');
  await writeFile(thirdParty, THIRD_PARTY_CRDS);
  await installCrds(cp.kubectlPath, cp.admin.kubeconfigPath, cp.admin.kubeConfig(), thirdParty);
  // The release namespace enforces the restricted Pod Security Standard, so the API server itself
  // judges the operator's and collector's hardening (it warns about workload templates).
  const ns = await cp.kubectl(['apply', '-f', '-'], {
    input: JSON.stringify({
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: {
        name: NS,
        labels: {
          'pod-security.kubernetes.io/enforce': 'restricted',
          'pod-security.kubernetes.io/warn': 'restricted',
          'pod-security.kubernetes.io/audit': 'restricted',
        },
      },
    }),
  });
  if (ns.code !== 0) throw new Error(ns.stderr);
  for (const name of ['shop', 'other']) {
    const created = await cp.kubectl(['create', 'namespace', name]);
    if (created.code !== 0) throw new Error(created.stderr);
  }
});

afterAll(async () => {
  await cp?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('helm chart charts/chaperone', () => {
  it('passes helm lint --strict with defaults and with every scenario', async () => {
    for (const s of SCENARIOS) {
      const res = await helmRun([
        'lint',
        '--strict',
        CHART,
        '--namespace',
        NS,
        '-f',
        await valuesFile(s.values),
      ]);
      expect(res.code, `${s.name}: ${res.stdout}${res.stderr}`).toBe(0);
      expect(res.stdout).toContain('0 chart(s) failed');
    }
  });

  it.each(SCENARIOS)('$name: the API server accepts every object (server-side dry-run)', async (s) => {
    const objs = await render(s.values);
    const res = await cp.kubectl(['apply', '--dry-run=server', '-f', '-'], {
      input: await renderText(s.values),
    });
    expect(res.code, res.stderr).toBe(0);
    // The restricted Pod Security Standard has nothing to say about the pod templates.
    expect(res.stderr).not.toMatch(/would violate PodSecurity/);
    // kubectl lists every object it sent: none was filtered away.
    for (const o of objs) {
      expect(res.stdout).toMatch(
        new RegExp(`/${o.metadata.name} (created|configured|unchanged) \\(server dry run\\)`),
      );
    }
  });

  it('refuses value combinations that cannot work, saying what to change', async () => {
    await expect(renderText({ collector: { replicaCount: 2 } })).rejects.toThrow(
      /collector\.replicaCount > 1 needs PostgreSQL.*collector\.database\.postgres\.existingSecret/,
    );
    await expect(renderText({ certs: { mode: 'vault' } })).rejects.toThrow(
      /certs\.mode must be "self" or "certManager"/,
    );
    await expect(renderText({ operator: { replicaCount: 0 } })).rejects.toThrow(
      /operator\.replicaCount must be at least 1/,
    );
    await expect(
      renderText({ collector: { auth: { oidc: { issuer: 'https://login.example.com' } } } }),
    ).rejects.toThrow(/oidc\.issuer and collector\.auth\.oidc\.audience go together/);
    await expect(
      renderText({ collector: { auth: { oidc: { issuer: 'https://i.example.com', audience: 'a' } } } }),
    ).rejects.toThrow(/needs collector\.auth\.auditorGroups/);
  });

  it('ships exact copies of crds/ (run `make gen` after changing a CRD)', async () => {
    const source = (await readdir(repoPath('crds'))).filter((f) => f.endsWith('.yaml')).sort();
    const chart = (await readdir(join(CHART, 'crds'))).sort();
    expect(chart).toEqual(source);
    for (const f of source) {
      const a = await readFile(repoPath('crds', f), 'utf8');
      const b = await readFile(join(CHART, 'crds', f), 'utf8');
      expect(b === a, `charts/chaperone/crds/${f} differs from crds/${f}: run \`make gen\``).toBe(true);
    }
  });
  it('documents every value: a `# --` comment in values.yaml and a row in README.md', async () => {
    const doc = parseDocument(await readFile(join(CHART, 'values.yaml'), 'utf8'));
    const readme = await readFile(join(CHART, 'README.md'), 'utf8');
    const leaves: { path: string; comment: string }[] = [];
    // A comment before the first key of a nested map belongs to that map in the YAML tree.
    const walk = (map: YAMLMap, prefix: string, firstComment: string | undefined) => {
      map.items.forEach((pair, i) => {
        const key = String((pair.key as { value: unknown }).value);
        const path = prefix ? `${prefix}.${key}` : key;
        const comment =
          (pair.key as { commentBefore?: string | null }).commentBefore ??
          (i === 0 ? firstComment : undefined);
        // Container resources are one value (a standard Kubernetes block), documented as a whole.
        if (isMap(pair.value) && pair.value.items.length > 0 && key !== 'resources') {
          walk(pair.value, path, pair.value.commentBefore ?? undefined);
        } else {
          leaves.push({ path, comment: comment ?? '' });
        }
      });
    };
    if (!isMap(doc.contents)) throw new Error('values.yaml is not a map');
    walk(doc.contents, '', doc.commentBefore ?? undefined);
    expect(leaves.length).toBeGreaterThan(50);
    for (const { path, comment } of leaves) {
      expect(
        comment.split('\n').some((line) => line.startsWith(' -- ') || line.startsWith('-- ')),
        `${path} has no "# -- " comment`,
      ).toBe(true);
      // biome pads table cells, so match the cell, not the exact spacing.
      expect(readme, `README.md has no row for ${path}`).toMatch(
        new RegExp(`^\\| \`${path.replaceAll('.', '\\.')}\` +\\|`, 'm'),
      );
    }
  });
});

describe('operator', () => {
  it('runs 2 hardened replicas with the arguments, probes and identity the operator needs', async () => {
    const objs = await render({});
    const d = find<Deployment>(objs, 'Deployment', OPERATOR);
    expect(d.spec.replicas).toBe(2);
    const pod = d.spec.template.spec;
    expect(pod.serviceAccountName).toBe(OPERATOR);
    // Operator pods carry the label the injection webhook skips.
    expect(d.spec.template.metadata.labels['app.kubernetes.io/component']).toBe('operator');
    const [c] = pod.containers;
    if (!c) throw new Error('no operator container');
    expect(c.image).toBe('ghcr.io/chaperone-dev/chaperone-operator:0.1.0');
    expect(c.args[0]).toBe('run');
    expect(arg(c.args, '--namespace')).toBe('$(POD_NAMESPACE)');
    expect(arg(c.args, '--pod-name')).toBe('$(POD_NAME)');
    expect(arg(c.args, '--https-port')).toBe('9443');
    expect(arg(c.args, '--metrics-port')).toBe('8080');
    expect(arg(c.args, '--service-name')).toBe(OPERATOR);
    expect(arg(c.args, '--webhook-configuration')).toBe(MUTATING_WEBHOOK_CONFIGURATION);
    expect(arg(c.args, '--tls-secret')).toBe('chaperone-operator-tls');
    expect(arg(c.args, '--sidecar-image')).toBe('ghcr.io/chaperone-dev/chaperone-sidecar:0.1.0');
    expect(arg(c.args, '--collector-url')).toBe(`http://${COLLECTOR}.${NS}.svc:8080`);
    expect(c.args).not.toContain('--cert-dir');
    expect(c.env?.find((e) => e.name === 'POD_NAME')?.valueFrom?.fieldRef?.fieldPath).toBe('metadata.name');
    expect(c.env?.find((e) => e.name === 'POD_NAMESPACE')?.valueFrom?.fieldRef?.fieldPath).toBe(
      'metadata.namespace',
    );
    expect(c.ports).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ name: 'https', containerPort: 9443 }),
        expect.objectContaining({ name: 'metrics', containerPort: 8080 }),
      ]),
    );
    expect(c.livenessProbe?.httpGet).toEqual({ path: '/healthz', port: 'metrics' });
    expect(c.readinessProbe?.httpGet).toEqual({ path: '/readyz', port: 'metrics' });
    expect(c.securityContext).toMatchObject({
      runAsNonRoot: true,
      runAsUser: 65532,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(c.resources).toHaveProperty('requests');
    expect(c.resources).toHaveProperty('limits');
    expect(JSON.stringify(pod.affinity)).toContain('preferredDuringSchedulingIgnoredDuringExecution');
    expect(pod.topologySpreadConstraints).toHaveLength(1);

    const svc = find(objs, 'Service', OPERATOR) as K8sObject & {
      spec: { ports: { name: string; port: number; targetPort: string }[] };
    };
    expect(svc.spec.ports).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ name: 'https', port: 443, targetPort: 'https' }),
        expect.objectContaining({ name: 'metrics', port: 8080, targetPort: 'metrics' }),
      ]),
    );
    const pdb = find(objs, 'PodDisruptionBudget', OPERATOR) as K8sObject & { spec: { minAvailable: number } };
    expect(pdb.spec.minAvailable).toBe(1);
    find(objs, 'ServiceAccount', OPERATOR);
    // Self-managed certificates: no cert-manager objects.
    expect(objs.filter((o) => o.apiVersion.startsWith('cert-manager.io/'))).toEqual([]);
  });

  it('adds podLabels but never lets them change the labels the selectors and the webhook rely on', async () => {
    const objs = await render({
      operator: { podLabels: { team: 'security', 'app.kubernetes.io/component': 'agent' } },
      collector: { podLabels: { team: 'audit', 'app.kubernetes.io/instance': 'other' } },
    });
    const operatorLabels = find<Deployment>(objs, 'Deployment', OPERATOR).spec.template.metadata.labels;
    expect(operatorLabels).toMatchObject({ team: 'security', 'app.kubernetes.io/component': 'operator' });
    const collectorLabels = find<Deployment>(objs, 'Deployment', COLLECTOR).spec.template.metadata.labels;
    expect(collectorLabels).toMatchObject({ team: 'audit', 'app.kubernetes.io/instance': RELEASE });
  });

  it('has no PodDisruptionBudget with one replica (it would block every drain)', async () => {
    const objs = await render({ operator: { replicaCount: 1 } });
    expect(kinds(objs, 'PodDisruptionBudget')).toEqual([]);
  });

  it('with cert-manager: CA chain, serving Certificate for the Service names, mounted Secret, injected caBundle', async () => {
    const objs = await render({ certs: { mode: 'certManager' } });
    const cert = find(objs, 'Certificate', OPERATOR) as K8sObject & {
      spec: { secretName: string; dnsNames: string[]; issuerRef: { kind: string; name: string } };
    };
    expect(cert.spec.secretName).toBe('chaperone-operator-tls');
    expect(cert.spec.dnsNames).toEqual(
      expect.arrayContaining([`${OPERATOR}.${NS}.svc`, `${OPERATOR}.${NS}.svc.cluster.local`]),
    );
    // The serving certificate is signed by the chart's CA Issuer, which is backed by a CA
    // certificate from the self-signed Issuer.
    const caIssuer = find(objs, 'Issuer', cert.spec.issuerRef.name) as K8sObject & {
      spec: { ca: { secretName: string } };
    };
    const ca = objs.find(
      (o) =>
        o.kind === 'Certificate' &&
        (o as K8sObject & { spec: { secretName: string } }).spec.secretName === caIssuer.spec.ca.secretName,
    ) as (K8sObject & { spec: { isCA: boolean; issuerRef: { name: string } } }) | undefined;
    expect(ca?.spec.isCA).toBe(true);
    const root = find(objs, 'Issuer', ca?.spec.issuerRef.name ?? '') as K8sObject & {
      spec: Record<string, unknown>;
    };
    expect(root.spec).toHaveProperty('selfSigned');

    const mwc = find(objs, 'MutatingWebhookConfiguration', MUTATING_WEBHOOK_CONFIGURATION);
    expect(mwc.metadata.annotations?.['cert-manager.io/inject-ca-from']).toBe(`${NS}/${OPERATOR}`);
    const d = find<Deployment>(objs, 'Deployment', OPERATOR);
    const [c] = d.spec.template.spec.containers;
    expect(arg(c?.args ?? [], '--cert-dir')).toBe('/etc/chaperone/tls');
    const mount = c?.volumeMounts?.find((m) => m.mountPath === '/etc/chaperone/tls');
    const volume = d.spec.template.spec.volumes?.find((v) => v.name === mount?.name);
    expect(volume?.secret?.secretName).toBe(cert.spec.secretName);

    // With an existing issuer the chart makes no issuers of its own.
    const external = await render({
      certs: { mode: 'certManager', certManager: { issuerRef: { kind: 'ClusterIssuer', name: 'corp-ca' } } },
    });
    expect(kinds(external, 'Issuer')).toEqual([]);
    expect(
      (find(external, 'Certificate', OPERATOR) as K8sObject & { spec: { issuerRef: unknown } }).spec
        .issuerRef,
    ).toEqual({
      kind: 'ClusterIssuer',
      name: 'corp-ca',
    });
  });
});

describe('collector', () => {
  it('defaults to one replica on SQLite with a PVC, Recreate, and TokenReview for sidecars', async () => {
    const objs = await render({});
    const d = find<Deployment>(objs, 'Deployment', COLLECTOR);
    expect(d.spec.replicas).toBe(1);
    expect(d.spec.strategy.type).toBe('Recreate');
    const [c] = d.spec.template.spec.containers;
    if (!c) throw new Error('no collector container');
    expect(c.args[0]).toBe('serve');
    expect(arg(c.args, '--db')).toBe('sqlite:/data/collector.db');
    expect(arg(c.args, '--host')).toBe('0.0.0.0');
    expect(arg(c.args, '--port')).toBe('8080');
    expect(c.args).toContain('--kube-token-review');
    expect(arg(c.args, '--token-audience')).toBe('chaperone-collector');
    const dataMount = c.volumeMounts?.find((m) => m.mountPath === '/data');
    const pvcName = d.spec.template.spec.volumes?.find((v) => v.name === dataMount?.name)
      ?.persistentVolumeClaim?.claimName;
    const pvc = find(objs, 'PersistentVolumeClaim', pvcName ?? '') as K8sObject & {
      spec: { resources: { requests: { storage: string } } };
    };
    expect(pvc.spec.resources.requests.storage).toBe('10Gi');
    expect(pvc.metadata.annotations?.['helm.sh/resource-policy']).toBe('keep');
    expect(c.securityContext).toMatchObject({
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      runAsNonRoot: true,
    });
    const svc = find(objs, 'Service', COLLECTOR) as K8sObject & {
      spec: { ports: { port: number; targetPort: string }[] };
    };
    expect(svc.spec.ports).toEqual([expect.objectContaining({ port: 8080, targetPort: 'http' })]);
  });

  it('with a PostgreSQL Secret: N replicas rolling, URL from the Secret, no volume', async () => {
    const objs = await render({
      collector: {
        replicaCount: 3,
        database: { postgres: { existingSecret: 'collector-db', urlKey: 'dsn' } },
      },
    });
    const d = find<Deployment>(objs, 'Deployment', COLLECTOR);
    expect(d.spec.replicas).toBe(3);
    expect(d.spec.strategy.type).toBe('RollingUpdate');
    const [c] = d.spec.template.spec.containers;
    // The URL carries a password: it comes from the Secret through the environment, never argv.
    expect(arg(c?.args ?? [], '--db')).toBeUndefined();
    expect(c?.env?.find((e) => e.name === 'CHAPERONE_COLLECTOR_DB')?.valueFrom?.secretKeyRef).toEqual({
      name: 'collector-db',
      key: 'dsn',
    });
    expect(kinds(objs, 'PersistentVolumeClaim')).toEqual([]);
    expect(d.spec.template.spec.volumes?.some((v) => v.persistentVolumeClaim)).toBe(false);
    expect(
      (find(objs, 'PodDisruptionBudget', COLLECTOR) as K8sObject & { spec: { minAvailable: number } }).spec
        .minAvailable,
    ).toBe(1);
  });

  it('passes auditor authentication settings as collector flags', async () => {
    const objs = await render({
      collector: {
        auth: {
          oidc: { issuer: 'https://login.example.com', audience: 'chaperone', usernameClaim: 'email' },
          auditorGroups: ['auditors', 'security'],
          auditorTokenSecret: { name: 'auditor-token', key: 'bearer' },
        },
      },
    });
    const d = find<Deployment>(objs, 'Deployment', COLLECTOR);
    const [c] = d.spec.template.spec.containers;
    const args = c?.args ?? [];
    expect(arg(args, '--oidc-issuer')).toBe('https://login.example.com');
    expect(arg(args, '--oidc-audience')).toBe('chaperone');
    expect(arg(args, '--oidc-username-claim')).toBe('email');
    expect(args).not.toContain('--oidc-groups-claim');
    expect(args.filter((_arg, i) => args[i - 1] === '--auditor-group')).toEqual(['auditors', 'security']);
    const tokenFile = arg(args, '--auditor-token-file') ?? '';
    const mount = c?.volumeMounts?.find((m) => tokenFile.startsWith(`${m.mountPath}/`));
    expect(d.spec.template.spec.volumes?.find((v) => v.name === mount?.name)?.secret?.secretName).toBe(
      'auditor-token',
    );
    expect(tokenFile.endsWith('/bearer')).toBe(true);
  });
});

describe('ServiceMonitor', () => {
  it('is rendered only when enabled, scraping the named metrics ports of both Services', async () => {
    expect(kinds(await render({}), 'ServiceMonitor')).toEqual([]);
    const objs = await render({ serviceMonitor: { enabled: true, labels: { release: 'prom' } } });
    const monitors = kinds(objs, 'ServiceMonitor') as (K8sObject & {
      spec: {
        selector: { matchLabels: Record<string, string> };
        endpoints: { port: string; path: string }[];
      };
    })[];
    expect(monitors).toHaveLength(2);
    for (const m of monitors) {
      expect(m.metadata.labels?.release).toBe('prom');
      // The selector picks exactly one of the chart's Services, and the port exists on it.
      const services = kinds(objs, 'Service').filter((s) =>
        Object.entries(m.spec.selector.matchLabels).every(([k, v]) => s.metadata.labels?.[k] === v),
      ) as (K8sObject & { spec: { ports: { name: string }[] } })[];
      expect(services).toHaveLength(1);
      const [endpoint] = m.spec.endpoints;
      expect(services[0]?.spec.ports.map((p) => p.name)).toContain(endpoint?.port);
      expect(endpoint?.path).toBe('/metrics');
    }
  });
});

describe('RBAC', () => {
  const allRules = async () => {
    const out: { role: K8sObject; rule: PolicyRule }[] = [];
    for (const s of SCENARIOS) {
      for (const role of (await render(s.values)).filter(
        (o) => o.kind === 'ClusterRole' || o.kind === 'Role',
      )) {
        for (const rule of (role as K8sObject & { rules: PolicyRule[] }).rules) out.push({ role, rule });
      }
    }
    return out;
  };

  it('is least privilege: no wildcards, no escalation verbs, Secrets only in the release namespace', async () => {
    const rules = await allRules();
    expect(rules.length).toBeGreaterThan(10);
    for (const { role, rule } of rules) {
      const where = `${role.kind} ${role.metadata.name}: ${JSON.stringify(rule)}`;
      for (const list of [rule.verbs, rule.resources ?? [], rule.apiGroups ?? [], rule.resourceNames ?? []]) {
        expect(
          list.some((x) => x.includes('*')),
          where,
        ).toBe(false);
      }
      expect(
        rule.verbs.filter((v) => ['escalate', 'bind', 'impersonate', 'approve', 'sign'].includes(v)),
        where,
      ).toEqual([]);
      const rbacOrWebhooks = (rule.apiGroups ?? []).some(
        (g) => g === 'rbac.authorization.k8s.io' || g === 'certificates.k8s.io',
      );
      expect(rbacOrWebhooks, where).toBe(false);
      if (role.kind === 'ClusterRole') {
        expect(rule.resources, where).not.toContain('secrets');
        // Cluster-wide writes to webhook configurations only by name.
        if (
          (rule.resources ?? []).includes('mutatingwebhookconfigurations') &&
          rule.verbs.some((v) => v !== 'list' && v !== 'watch')
        ) {
          expect(rule.resourceNames?.length, where).toBeGreaterThan(0);
        }
      } else {
        expect(role.metadata.namespace, where).toBe(NS);
      }
    }
  });

  describe('on a real API server, impersonating the ServiceAccounts', () => {
    beforeAll(async () => {
      // Only the identities and permissions for real (no workloads, no webhooks: nothing serves them).
      const objs = (await render({})).filter((o) =>
        ['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding'].includes(o.kind),
      );
      const applied = await cp.kubectl(['apply', '-f', '-'], { input: toYaml(objs) });
      if (applied.code !== 0) throw new Error(applied.stderr);
      const setup = [
        ['create', 'serviceaccount', 'orders-agent', '-n', 'shop'],
        [
          'create',
          'secret',
          'generic',
          'orders-db-admin',
          '-n',
          'shop',
          '--from-literal=password=not-for-the-operator',
        ],
        [
          'create',
          'secret',
          'generic',
          'orders-db-admin',
          '-n',
          NS,
          '--from-literal=password=for-the-operator',
        ],
        [
          'create',
          'rolebinding',
          'dba-approvers',
          '-n',
          'shop',
          '--clusterrole=chaperone-approver',
          '--group=dba',
        ],
        [
          'create',
          'rolebinding',
          'platform-editors',
          '-n',
          'shop',
          '--clusterrole=chaperone-editor',
          '--group=platform',
        ],
      ];
      for (const args of setup) {
        const res = await cp.kubectl(args);
        if (res.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${res.stderr}`);
      }
      // The chart's webhook configuration (webhooks stripped: nothing serves them here) and a foreign one.
      for (const name of [MUTATING_WEBHOOK_CONFIGURATION, 'someone-elses-webhooks']) {
        const res = await cp.kubectl(['apply', '-f', '-'], {
          input: JSON.stringify({
            apiVersion: 'admissionregistration.k8s.io/v1',
            kind: 'MutatingWebhookConfiguration',
            metadata: { name },
          }),
        });
        if (res.code !== 0) throw new Error(res.stderr);
      }
    });

    const canI = async (as: string, args: string[], groups: string[] = []) => {
      const res = await cp.kubectl([
        'auth',
        'can-i',
        ...args,
        `--as=${as}`,
        ...groups.map((g) => `--as-group=${g}`),
      ]);
      return res.stdout.trim();
    };

    it('the operator can do its job', async () => {
      const asOperator = ['--as', OPERATOR_SA];
      const ok = async (args: string[], input?: string) => {
        const res = await cp.kubectl([...args, ...asOperator], { input });
        expect(res.code, `kubectl ${args.join(' ')}: ${res.stderr}`).toBe(0);
      };
      await ok(['get', 'pods', '--all-namespaces']);
      await ok(['get', 'namespaces']);
      await ok(['get', 'connections,accesspolicies,accessrequests', '--all-namespaces']);
      await ok([
        'create',
        '--dry-run=server',
        '-n',
        'shop',
        '-f',
        repoPath('examples', 'accessrequest.yaml'),
      ]);
      await ok(['get', 'secret', 'orders-db-admin', '-n', NS, '-o', 'name']);
      await ok(['create', 'secret', 'generic', 'probe', '-n', NS, '--from-literal=k=v', '--dry-run=server']);
      await ok(
        ['create', '--dry-run=server', '-f', '-'],
        JSON.stringify({
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { name: 'chaperone-operator-leader', namespace: NS },
          spec: { holderIdentity: 'chaperone-operator-0' },
        }),
      );
      await ok([
        'patch',
        'mutatingwebhookconfiguration',
        MUTATING_WEBHOOK_CONFIGURATION,
        '--type=merge',
        '-p',
        '{"metadata":{"annotations":{"chaperone.dev/probe":"1"}}}',
        '--dry-run=server',
      ]);
      // TokenRequest for a Kubernetes Connection's ServiceAccount (the token itself is not looked at).
      await ok([
        'create',
        'token',
        'orders-agent',
        '-n',
        'shop',
        '--audience=https://kubernetes.default.svc',
        '--duration=10m',
      ]);
      expect(await canI(OPERATOR_SA, ['create', 'tokenreviews.authentication.k8s.io'])).toBe('yes');
      expect(
        await canI(OPERATOR_SA, [
          'patch',
          'accessrequests.chaperone.dev',
          '--subresource=status',
          '-n',
          'shop',
        ]),
      ).toBe('yes');
      expect(
        await canI(OPERATOR_SA, ['patch', 'connections.chaperone.dev', '--subresource=status', '-n', 'shop']),
      ).toBe('yes');
      expect(await canI(OPERATOR_SA, ['delete', 'accessrequests.chaperone.dev', '-n', 'shop'])).toBe('yes');
      expect(await canI(OPERATOR_SA, ['create', 'events', '-n', 'shop'])).toBe('yes');
      expect(await canI(OPERATOR_SA, ['create', 'events.events.k8s.io', '-n', 'shop'])).toBe('yes');
    });

    it('the operator cannot do more', async () => {
      const res = await cp.kubectl(['get', 'secret', 'orders-db-admin', '-n', 'shop', '--as', OPERATOR_SA]);
      expect(res.code).not.toBe(0);
      expect(res.stderr).toMatch(/forbidden/i);
      expect(res.stdout).not.toContain('not-for-the-operator');
      const denied: string[][] = [
        ['list', 'secrets', '--all-namespaces'],
        ['get', 'secrets', '-n', 'other'],
        ['create', 'leases.coordination.k8s.io', '-n', 'shop'],
        ['patch', `mutatingwebhookconfigurations/someone-elses-webhooks`],
        ['create', 'mutatingwebhookconfigurations'],
        ['delete', `mutatingwebhookconfigurations/${MUTATING_WEBHOOK_CONFIGURATION}`],
        ['patch', 'validatingwebhookconfigurations/anything'],
        ['create', 'pods', '-n', 'shop'],
        ['delete', 'pods', '-n', 'shop'],
        ['patch', 'pods', '-n', 'shop'],
        ['create', 'connections.chaperone.dev', '-n', 'shop'],
        ['update', 'accesspolicies.chaperone.dev', '-n', 'shop'],
        ['patch', 'accessrequests.chaperone.dev', '-n', 'shop'],
        ['create', 'serviceaccounts', '-n', 'shop'],
        ['create', 'clusterrolebindings'],
        ['impersonate', 'users'],
        ['create', 'subjectaccessreviews.authorization.k8s.io'],
        ['delete', 'customresourcedefinitions.apiextensions.k8s.io'],
      ];
      for (const args of denied) expect(await canI(OPERATOR_SA, args), args.join(' ')).toBe('no');
    });

    it('the collector may only review tokens', async () => {
      expect(await canI(COLLECTOR_SA, ['create', 'tokenreviews.authentication.k8s.io'])).toBe('yes');
      for (const args of [
        ['get', 'secrets', '-n', NS],
        ['list', 'pods', '--all-namespaces'],
        ['get', 'accessrequests.chaperone.dev', '-n', 'shop'],
        ['create', 'serviceaccounts/token', '-n', 'shop'],
      ]) {
        expect(await canI(COLLECTOR_SA, args), args.join(' ')).toBe('no');
      }
    });

    it('approvers may read and decide requests where they are bound, and nothing else', async () => {
      const approver = (args: string[]) => canI('alice@example.com', args, ['dba']);
      expect(await approver(['list', 'accessrequests.chaperone.dev', '-n', 'shop'])).toBe('yes');
      expect(
        await approver(['patch', 'accessrequests.chaperone.dev', '--subresource=status', '-n', 'shop']),
      ).toBe('yes');
      expect(
        await approver(['patch', 'accessrequests.chaperone.dev', '--subresource=status', '-n', 'other']),
      ).toBe('no');
      expect(await approver(['patch', 'accessrequests.chaperone.dev', '-n', 'shop'])).toBe('no');
      expect(await approver(['delete', 'accessrequests.chaperone.dev', '-n', 'shop'])).toBe('no');
      expect(await approver(['create', 'accesspolicies.chaperone.dev', '-n', 'shop'])).toBe('no');
      expect(await approver(['get', 'secrets', '-n', 'shop'])).toBe('no');
    });

    it('editors may author Connections and AccessPolicies but not decide requests', async () => {
      const editor = (args: string[]) => canI('pat@example.com', args, ['platform']);
      expect(await editor(['create', 'connections.chaperone.dev', '-n', 'shop'])).toBe('yes');
      expect(await editor(['delete', 'accesspolicies.chaperone.dev', '-n', 'shop'])).toBe('yes');
      expect(
        await editor(['patch', 'accessrequests.chaperone.dev', '--subresource=status', '-n', 'shop']),
      ).toBe('no');
      expect(await editor(['patch', 'connections.chaperone.dev', '--subresource=status', '-n', 'shop'])).toBe(
        'no',
      );
      expect(await editor(['get', 'secrets', '-n', 'shop'])).toBe('no');
    });
  });

  it('aggregates into the built-in roles only as configured', async () => {
    const label = (o: K8sObject, role: string) =>
      o.metadata.labels?.[`rbac.authorization.k8s.io/aggregate-to-${role}`];
    const defaults = await render({});
    expect(label(find(defaults, 'ClusterRole', 'chaperone-viewer'), 'view')).toBe('true');
    expect(label(find(defaults, 'ClusterRole', 'chaperone-editor'), 'edit')).toBeUndefined();
    expect(label(find(defaults, 'ClusterRole', 'chaperone-approver'), 'edit')).toBeUndefined();
    const opted = await render({ rbac: { aggregateEditor: true, aggregateViewer: false } });
    expect(label(find(opted, 'ClusterRole', 'chaperone-editor'), 'edit')).toBe('true');
    expect(label(find(opted, 'ClusterRole', 'chaperone-editor'), 'admin')).toBe('true');
    expect(label(find(opted, 'ClusterRole', 'chaperone-viewer'), 'view')).toBeUndefined();
  });

  it('lets the operator patch only the configured webhook configuration name', async () => {
    const objs = await render({ webhook: { configurationName: 'chaperone-prod' } });
    const role = find(objs, 'ClusterRole', OPERATOR) as K8sObject & { rules: PolicyRule[] };
    const patch = role.rules.filter(
      (r) => r.resources?.includes('mutatingwebhookconfigurations') && r.verbs.includes('patch'),
    );
    expect(patch.map((r) => r.resourceNames)).toEqual([['chaperone-prod']]);
    expect(find(objs, 'MutatingWebhookConfiguration', 'chaperone-prod').metadata.name).toBe('chaperone-prod');
    const [c] = find<Deployment>(objs, 'Deployment', OPERATOR).spec.template.spec.containers;
    expect(arg(c?.args ?? [], '--webhook-configuration')).toBe('chaperone-prod');
  });
});

describe('MutatingWebhookConfiguration', () => {
  const webhooksOf = (objs: K8sObject[], name = MUTATING_WEBHOOK_CONFIGURATION) =>
    (find(objs, 'MutatingWebhookConfiguration', name) as K8sObject & { webhooks: Webhook[] }).webhooks;

  it("equals the operator's mutatingWebhookConfiguration() for the chart's Service", async () => {
    const variants = [
      { values: {}, name: MUTATING_WEBHOOK_CONFIGURATION, port: 443 },
      {
        values: { operator: { service: { port: 8443 } }, webhook: { configurationName: 'other' } },
        name: 'other',
        port: 8443,
      },
    ];
    for (const { values, name, port } of variants) {
      const expected = mutatingWebhookConfiguration({
        name,
        caBundle: '', // the leader patches it in later
        clientConfig: { service: { name: OPERATOR, namespace: NS, port } },
      });
      expect(webhooksOf(await render(values), name)).toEqual(expected.webhooks);
    }
  });

  it('points every webhook at the operator Service on the path the operator serves, with no caBundle yet', async () => {
    const rendered = webhooksOf(await render({}));
    expect(rendered.length).toBe(3);
    for (const hook of rendered) {
      expect(hook.clientConfig.service).toMatchObject({ name: OPERATOR, namespace: NS, port: 443 });
      expect([INJECTION_WEBHOOK_PATH, APPROVAL_WEBHOOK_PATH]).toContain(hook.clientConfig.service?.path);
      // The operator's leader patches it in; a rendered field would make `helm upgrade` reset it.
      expect(hook.clientConfig).not.toHaveProperty('caBundle');
    }
    expect(rendered.filter((h) => h.clientConfig.service?.path === INJECTION_WEBHOOK_PATH)).toHaveLength(2);
    expect(rendered.filter((h) => h.clientConfig.service?.path === APPROVAL_WEBHOOK_PATH)).toHaveLength(1);
  });
});

describe('webhook routing on a real API server', () => {
  // The chart's configuration installed for real; nothing serves the operator Service here, so
  // every request the API server sends to a webhook fails closed, naming the webhook. That shows
  // exactly which requests the selectors route to the operator.
  beforeAll(async () => {
    const mwc = find(await render({}), 'MutatingWebhookConfiguration', MUTATING_WEBHOOK_CONFIGURATION);
    const applied = await cp.kubectl(['apply', '-f', '-'], { input: JSON.stringify(mwc) });
    if (applied.code !== 0) throw new Error(applied.stderr);
    for (const ns of ['shop', 'kube-public', NS]) {
      const labelled = await cp.kubectl([
        'label',
        'namespace',
        ns,
        'chaperone.dev/injection=enabled',
        '--overwrite',
      ]);
      if (labelled.code !== 0) throw new Error(labelled.stderr);
    }
  });

  /** Server-side dry-run of a pod that the restricted Pod Security Standard accepts. */
  const createPod = (namespace: string, labels: Record<string, string>) =>
    cp.kubectl(['create', '--dry-run=server', '-f', '-'], {
      input: JSON.stringify({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'agent', namespace, labels },
        spec: {
          securityContext: {
            runAsNonRoot: true,
            runAsUser: 1000,
            seccompProfile: { type: 'RuntimeDefault' },
          },
          containers: [
            {
              name: 'agent',
              image: 'localhost/agent:dev',
              securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
            },
          ],
        },
      }),
    });
  const sentTo = (res: RunResult) =>
    /failed calling webhook "([^"]+)"/.exec(res.stderr)?.[1] ?? (res.code === 0 ? 'none' : res.stderr);

  it('sends opted-in pods to exactly one injection webhook and leaves the others alone', async () => {
    expect(sentTo(await createPod('shop', {}))).toBe('namespace.inject.chaperone.dev');
    expect(sentTo(await createPod('shop', { 'chaperone.dev/inject': 'true' }))).toBe(
      'namespace.inject.chaperone.dev',
    );
    expect(sentTo(await createPod('other', { 'chaperone.dev/inject': 'true' }))).toBe(
      'pod.inject.chaperone.dev',
    );
    expect(sentTo(await createPod('other', {}))).toBe('none');
    expect(sentTo(await createPod('shop', { 'chaperone.dev/inject': 'false' }))).toBe('none');
    expect(sentTo(await createPod('shop', { 'app.kubernetes.io/component': 'operator' }))).toBe('none');
    // System namespaces and the release namespace, even when labelled.
    expect(sentTo(await createPod('kube-public', { 'chaperone.dev/inject': 'true' }))).toBe('none');
    expect(sentTo(await createPod(NS, { 'chaperone.dev/inject': 'true' }))).toBe('none');
  });

  it('sends AccessRequest status changes to the approval webhook, and nothing else of them', async () => {
    const ar = await cp.kubectl(['create', '-n', 'shop', '-f', repoPath('examples', 'accessrequest.yaml')]);
    expect(ar.code, ar.stderr).toBe(0);
    const decide = await cp.kubectl([
      'patch',
      'accessrequest',
      'orders-db-7f3a9c',
      '-n',
      'shop',
      '--subresource=status',
      '--type=merge',
      '-p',
      '{"status":{"decision":{"verdict":"Approved"}}}',
    ]);
    expect(sentTo(decide)).toBe('approval.chaperone.dev');
    const relabel = await cp.kubectl([
      'label',
      'accessrequest',
      'orders-db-7f3a9c',
      '-n',
      'shop',
      'note=seen',
    ]);
    expect(sentTo(relabel)).toBe('none');
  });
});

describe('helm install, upgrade and uninstall on a real API server', () => {
  const release = 'upgrade-test';
  const namespace = 'chaperone-upgrade';
  const webhookName = 'upgrade-test';
  const operatorSa = `system:serviceaccount:${namespace}:${release}-chaperone-operator`;
  const helmAt = (args: string[]) =>
    helmRun([...args, '--kubeconfig', cp.admin.kubeconfigPath, '--namespace', namespace]);
  const caBundles = async () => {
    const res = await cp.kubectl(['get', 'mutatingwebhookconfiguration', webhookName, '-o', 'json']);
    expect(res.code, res.stderr).toBe(0);
    return (JSON.parse(res.stdout) as { webhooks: Webhook[] }).webhooks.map((w) => w.clientConfig.caBundle);
  };

  it('keeps the caBundle the operator patched in across helm upgrade, and the recordings across uninstall', async () => {
    const installed = await helmAt([
      'install',
      release,
      CHART,
      '--create-namespace',
      '--set',
      `webhook.configurationName=${webhookName}`,
    ]);
    expect(installed.code, installed.stderr).toBe(0);
    expect(await caBundles()).toEqual([undefined, undefined, undefined]);

    // What the operator's leader does, as the release's operator ServiceAccount.
    const caBundle = (await readFile(cp.caCertPath)).toString('base64');
    const patch = [0, 1, 2].map((i) => ({
      op: 'add',
      path: `/webhooks/${i}/clientConfig/caBundle`,
      value: caBundle,
    }));
    const patched = await cp.kubectl([
      'patch',
      'mutatingwebhookconfiguration',
      webhookName,
      '--type=json',
      '-p',
      JSON.stringify(patch),
      '--as',
      operatorSa,
    ]);
    expect(patched.code, patched.stderr).toBe(0);

    // The documented upgrade: CRDs first (Helm never upgrades them), then the release.
    const crds = await cp.kubectl(['apply', '--server-side', '--force-conflicts', '-f', join(CHART, 'crds')]);
    expect(crds.code, crds.stderr).toBe(0);
    const upgraded = await helmAt([
      'upgrade',
      release,
      CHART,
      '--reuse-values',
      '--set',
      'operator.replicaCount=3',
    ]);
    expect(upgraded.code, upgraded.stderr).toBe(0);
    expect(await caBundles()).toEqual([caBundle, caBundle, caBundle]);
    const replicas = await cp.kubectl([
      'get',
      'deployment',
      `${release}-chaperone-operator`,
      '-n',
      namespace,
      '-o',
      'jsonpath={.spec.replicas}',
    ]);
    expect(replicas.stdout).toBe('3');

    const uninstalled = await helmAt(['uninstall', release]);
    expect(uninstalled.code, uninstalled.stderr).toBe(0);
    const pvc = await cp.kubectl([
      'get',
      'pvc',
      `${release}-chaperone-collector-data`,
      '-n',
      namespace,
      '-o',
      'name',
    ]);
    expect(pvc.code, pvc.stderr).toBe(0);
    const mwc = await cp.kubectl(['get', 'mutatingwebhookconfiguration', webhookName]);
    expect(mwc.stderr).toMatch(/NotFound/);
    const crd = await cp.kubectl(['get', 'crd', 'accessrequests.chaperone.dev', '-o', 'name']);
    expect(crd.code, crd.stderr).toBe(0);
  });
});
