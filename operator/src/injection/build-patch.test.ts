import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  CONNECTIONS_ANNOTATION,
  type Connection,
  parseConnectionsAnnotation,
  SIDECAR_TOKEN_AUDIENCE,
  STATUS_ANNOTATION,
} from '@chaperone/api';
import { repoPath } from '@chaperone/testkit';
import type { V1Container, V1Pod } from '@kubernetes/client-node';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { JsonPatchOperation } from '../admission/admission-review.js';
import {
  COLLECTOR_TOKEN_AUDIENCE,
  SIDECAR_ADMIN_PORT,
  SIDECAR_CONTAINER_NAME,
  SIDECAR_PATHS,
} from '../operator-constants.js';
import { applyJsonPatch, JsonPatchError } from './apply-json-patch.js';
import {
  agentEnv,
  buildPatch,
  connectionPortEnvName,
  INJECTED_VOLUMES,
  type InjectedConnection,
  type InjectionConfig,
  InjectionConflictError,
  injectionConflicts,
  resolveInjectionConfig,
  sidecarContainer,
} from './build-patch.js';

const TESTDATA = fileURLToPath(new URL('./testdata/', import.meta.url));
const UPDATE = process.env.UPDATE_GOLDEN === '1';
const readJson = <T>(file: string): T => JSON.parse(readFileSync(join(TESTDATA, file), 'utf8')) as T;
const writeJson = (file: string, value: unknown) => {
  writeFileSync(join(TESTDATA, file), `${JSON.stringify(value, null, 2)}\n`);
  // In the repository's format, so `biome check` and UPDATE_GOLDEN=1 do not fight over the files.
  execFileSync(repoPath('node_modules', '.bin', 'biome'), ['format', '--write', join(TESTDATA, file)], {
    stdio: 'ignore',
  });
};

const baseConfig = readJson<InjectionConfig>('config.json');
const allConnections = readJson<Connection[]>('connections.json');

function configFor(name: string): InjectionConfig {
  const file = `${name}.config.json`;
  return existsSync(join(TESTDATA, file))
    ? { ...baseConfig, ...readJson<Partial<InjectionConfig>>(file) }
    : baseConfig;
}

/** The Connections a pod names, in annotation order, as the webhook resolves them. */
function connectionsOf(pod: V1Pod): Connection[] {
  return parseConnectionsAnnotation(pod.metadata?.annotations?.[CONNECTIONS_ANNOTATION]).map((name) => {
    const c = allConnections.find((x) => x.metadata.name === name);
    if (!c) throw new Error(`testdata/connections.json has no Connection ${name}`);
    return c;
  });
}

const sidecarOf = (pod: V1Pod) => pod.spec?.initContainers?.find((c) => c.name === SIDECAR_CONTAINER_NAME);
const agentContainersOf = (pod: V1Pod): V1Container[] => [
  ...(pod.spec?.containers ?? []),
  ...(pod.spec?.initContainers ?? []).filter((c) => c.name !== SIDECAR_CONTAINER_NAME),
];

// `already-injected` is the `plain` pod after injection: derived, so it follows the sidecar's shape.
const discovered = readdirSync(TESTDATA)
  .filter((f) => f.endsWith('.pod.json'))
  .map((f) => f.replace(/\.pod\.json$/, ''))
  .filter((c) => c !== 'already-injected')
  .sort();
const cases = [...discovered, 'already-injected'];

describe('buildPatch golden fixtures (testdata/*.pod.json → *.patch.json; UPDATE_GOLDEN=1 rewrites)', () => {
  it('has the fixture set the brief asks for', () => {
    expect(cases).toEqual(
      expect.arrayContaining([
        'plain',
        'existing-fields',
        'multi-container',
        'all-types',
        'already-injected',
      ]),
    );
  });

  for (const name of cases) {
    it(name, () => {
      if (UPDATE && name === 'already-injected') {
        const plain = readJson<V1Pod>('plain.pod.json');
        writeJson(
          'already-injected.pod.json',
          applyJsonPatch(plain, buildPatch(plain, connectionsOf(plain), configFor('plain'))),
        );
      }
      const pod = readJson<V1Pod>(`${name}.pod.json`);
      const patch = buildPatch(pod, connectionsOf(pod), configFor(name));
      if (UPDATE) writeJson(`${name}.patch.json`, patch);
      if (!existsSync(join(TESTDATA, `${name}.patch.json`)))
        throw new Error(`testdata/${name}.patch.json is missing: run with UPDATE_GOLDEN=1 and review it`);
      // Parsed comparison: the files may be reformatted without breaking the test.
      expect(patch).toEqual(readJson<JsonPatchOperation[]>(`${name}.patch.json`));
    });
  }

  it('the already-injected fixture needs no patch (idempotent)', () => {
    expect(readJson<JsonPatchOperation[]>('already-injected.patch.json')).toEqual([]);
  });
});

describe('applying the patch', () => {
  for (const name of cases.filter((c) => c !== 'already-injected')) {
    it(`${name}: gives the expected pod, and a second pass adds nothing`, () => {
      const pod = readJson<V1Pod>(`${name}.pod.json`);
      const connections = connectionsOf(pod);
      const config = configFor(name);
      const out = applyJsonPatch(pod, buildPatch(pod, connections, config));
      checkInjectedShape(pod, out, connections, config);
      expect(buildPatch(out, connections, config)).toEqual([]);
    });
  }

  it('pins the exact sidecar of the plain fixture', () => {
    const pod = readJson<V1Pod>('plain.pod.json');
    const out = applyJsonPatch(pod, buildPatch(pod, connectionsOf(pod), baseConfig));
    expect(sidecarOf(out)?.args).toEqual([
      '--broker',
      'https://chaperone-operator.chaperone-system.svc:9443',
      '--token-file',
      '/var/run/secrets/chaperone.dev/tokens/broker-token',
      '--connections',
      'orders-db',
      '--admin-port',
      '15020',
      '--spool',
      '/var/spool/chaperone',
      '--agent-config-dir',
      '/var/run/chaperone.dev/agent',
    ]);
    expect(out.spec?.containers[0]?.env).toEqual([
      { name: 'PGHOST', value: '127.0.0.1' },
      { name: 'PGPORT', value: '15432' },
      { name: 'CHAPERONE_ORDERS_DB_PORT', value: '15432' },
    ]);
  });
});

/** What every injected pod must look like, checked on the patched pod rather than on the patch. */
function checkInjectedShape(
  before: V1Pod,
  pod: V1Pod,
  connections: readonly InjectedConnection[],
  config: InjectionConfig,
): void {
  const c = resolveInjectionConfig(config);
  expect(pod.metadata?.annotations?.[STATUS_ANNOTATION]).toBe('injected');
  // Existing annotations, volumes, containers and env survive.
  for (const [k, v] of Object.entries(before.metadata?.annotations ?? {}))
    expect(pod.metadata?.annotations?.[k]).toBe(v);
  const kube = connections.some((c) => c.spec.type === 'kubernetes');
  // The pod's own API token volume is the one that goes (Kubernetes Connections: the sidecar holds
  // the only way to the API server).
  for (const v of before.spec?.volumes ?? []) {
    if (kube && v.name.startsWith('kube-api-access-'))
      expect(pod.spec?.volumes?.some((x) => x.name === v.name)).toBe(false);
    else expect(pod.spec?.volumes).toContainEqual(v);
  }
  if (kube) {
    expect(pod.spec?.automountServiceAccountToken).toBe(false);
    for (const c of [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])])
      expect(
        (c.volumeMounts ?? []).some((m) => m.mountPath.startsWith('/var/run/secrets/kubernetes.io/')),
      ).toBe(false);
  }
  expect(pod.spec?.containers.map((x) => x.name)).toEqual(before.spec?.containers.map((x) => x.name));

  const init = pod.spec?.initContainers ?? [];
  expect(init[0]?.name).toBe(SIDECAR_CONTAINER_NAME);
  expect(init.filter((x) => x.name === SIDECAR_CONTAINER_NAME)).toHaveLength(1);
  expect(init.slice(1).map((x) => x.name)).toEqual((before.spec?.initContainers ?? []).map((x) => x.name));
  const sidecar = init[0] as V1Container;
  expect(sidecar.restartPolicy).toBe('Always');
  expect(sidecar.command).toBeUndefined();
  expect(sidecar.image).toBe(c.sidecarImage);
  expect(sidecar.startupProbe).toMatchObject({
    httpGet: { path: '/readyz', port: SIDECAR_ADMIN_PORT },
    periodSeconds: 1,
    failureThreshold: 60,
  });
  expect(sidecar.readinessProbe).toMatchObject({ httpGet: { path: '/readyz', port: SIDECAR_ADMIN_PORT } });
  expect(sidecar.securityContext).toEqual({
    runAsNonRoot: true,
    runAsUser: c.runAsUser,
    runAsGroup: c.runAsGroup,
    readOnlyRootFilesystem: true,
    allowPrivilegeEscalation: false,
    capabilities: { drop: ['ALL'] },
    seccompProfile: { type: 'RuntimeDefault' },
  });
  expect(sidecar.resources).toEqual(c.resources);
  const args = sidecar.args ?? [];
  const flag = (f: string) => (args.includes(f) ? args[args.indexOf(f) + 1] : undefined);
  expect(flag('--connections')).toBe(connections.map((x) => x.metadata.name).join(','));
  expect(flag('--collector')).toBe(c.collectorUrl);
  expect(flag('--collector-token-file')).toBe(c.collectorUrl ? SIDECAR_PATHS.collectorToken : undefined);
  expect(sidecar.env?.find((e) => e.name === 'CHAPERONE_BROKER_CA')?.value).toBe(c.brokerCaPem);
  for (const [envName, fieldPath] of [
    ['POD_NAME', 'metadata.name'],
    ['POD_NAMESPACE', 'metadata.namespace'],
    ['POD_UID', 'metadata.uid'],
  ])
    expect(sidecar.env?.find((e) => e.name === envName)?.valueFrom?.fieldRef?.fieldPath).toBe(fieldPath);

  // The token volume: the audiences asked for, mounted read-only into the sidecar and nowhere else.
  const tokens = pod.spec?.volumes?.find((v) => v.name === INJECTED_VOLUMES.tokens);
  const audiences = tokens?.projected?.sources?.map((s) => s.serviceAccountToken?.audience);
  expect(audiences).toEqual(
    c.collectorUrl ? [SIDECAR_TOKEN_AUDIENCE, COLLECTOR_TOKEN_AUDIENCE] : [SIDECAR_TOKEN_AUDIENCE],
  );
  for (const s of tokens?.projected?.sources ?? [])
    expect(s.serviceAccountToken?.expirationSeconds).toBe(c.tokenExpirationSeconds);
  expect(sidecar.volumeMounts).toContainEqual({
    name: INJECTED_VOLUMES.tokens,
    mountPath: SIDECAR_PATHS.tokenDir,
    readOnly: true,
  });
  expect(pod.spec?.volumes?.find((v) => v.name === INJECTED_VOLUMES.spool)?.emptyDir?.sizeLimit).toBe(
    '256Mi',
  );

  const wanted = agentEnv(connections);
  for (const container of agentContainersOf(pod)) {
    expect(container.volumeMounts?.some((m) => m.name === INJECTED_VOLUMES.tokens)).toBe(false);
    expect(container.volumeMounts).toContainEqual({
      name: INJECTED_VOLUMES.agentConfig,
      mountPath: SIDECAR_PATHS.agentConfig,
      readOnly: true,
    });
    for (const w of wanted) expect(container.env?.filter((e) => e.name === w.name)).toEqual([w]);
    // The container's own env is kept, in its order, after ours.
    const original = [...(before.spec?.containers ?? []), ...(before.spec?.initContainers ?? [])].find(
      (x) => x.name === container.name,
    );
    const own = (original?.env ?? []).filter((e) => !wanted.some((w) => w.name === e.name));
    expect((container.env ?? []).filter((e) => !wanted.some((w) => w.name === e.name))).toEqual(own);
    const firstOwn = (container.env ?? []).findIndex((e) => own.some((o) => o.name === e.name));
    if (firstOwn >= 0)
      expect(
        (container.env ?? []).slice(0, firstOwn).every((e) => wanted.some((w) => w.name === e.name)),
      ).toBe(true);
  }
}

describe('agent env', () => {
  const conn = (
    name: string,
    type: InjectedConnection['spec']['type'],
    port: number,
  ): InjectedConnection => ({
    metadata: { name },
    spec: { type, listen: { port } },
  });

  it('points PGHOST/PGPORT at the first postgres Connection and names every port', () => {
    expect(
      agentEnv([
        conn('bastion', 'ssh', 2222),
        conn('reports-db', 'postgres', 15433),
        conn('orders-db', 'postgres', 15432),
      ]),
    ).toEqual([
      { name: 'PGHOST', value: '127.0.0.1' },
      { name: 'PGPORT', value: '15433' },
      { name: 'CHAPERONE_BASTION_PORT', value: '2222' },
      { name: 'CHAPERONE_REPORTS_DB_PORT', value: '15433' },
      { name: 'CHAPERONE_ORDERS_DB_PORT', value: '15432' },
      { name: 'CHAPERONE_SSH_CONFIG', value: '/var/run/chaperone.dev/agent/ssh_config' },
    ]);
  });

  it('sets KUBECONFIG only with a kubernetes Connection and no PG* without postgres', () => {
    expect(agentEnv([conn('cluster-api', 'kubernetes', 16443)])).toEqual([
      { name: 'CHAPERONE_CLUSTER_API_PORT', value: '16443' },
      { name: 'KUBECONFIG', value: '/var/run/chaperone.dev/agent/kubeconfig' },
    ]);
  });

  it('maps Connection names to env var names', () => {
    expect(connectionPortEnvName('orders-db')).toBe('CHAPERONE_ORDERS_DB_PORT');
    expect(connectionPortEnvName('eu.orders-db2')).toBe('CHAPERONE_EU_ORDERS_DB2_PORT');
  });
});

describe('conflicts refuse instead of injecting a pod that would bypass or break the chaperone', () => {
  const orders = allConnections.filter((c) => c.metadata.name === 'orders-db');
  const base = (): V1Pod => readJson<V1Pod>('plain.pod.json');
  const expectConflict = (pod: V1Pod, pattern: RegExp, connections: InjectedConnection[] = orders) => {
    const problems = injectionConflicts(pod, connections, baseConfig);
    expect(problems.join('\n')).toMatch(pattern);
    expect(() => buildPatch(pod, connections, baseConfig)).toThrow(InjectionConflictError);
  };

  it('a container that points PGHOST elsewhere (it would bypass the sidecar)', () => {
    const pod = base();
    (pod.spec as NonNullable<V1Pod['spec']>).containers[0] = {
      name: 'agent',
      image: 'x',
      env: [{ name: 'PGHOST', value: 'orders-db.prod.internal' }],
    };
    expectConflict(pod, /container "agent" sets PGHOST to another value; chaperone sets PGHOST=127.0.0.1/);
    // The value is not echoed: env values may be secrets.
    expect(injectionConflicts(pod, orders, baseConfig).join()).not.toContain('orders-db.prod.internal');
  });

  it('an init container that takes PGPORT from a reference', () => {
    const pod = base();
    pod.spec!.initContainers = [
      {
        name: 'migrate',
        image: 'x',
        env: [{ name: 'PGPORT', valueFrom: { configMapKeyRef: { name: 'db', key: 'port' } } }],
      },
    ];
    expectConflict(pod, /init container "migrate" sets PGPORT from a reference/);
  });

  it('PGHOSTADDR, which libpq prefers over PGHOST', () => {
    const pod = base();
    pod.spec!.containers[0]!.env = [{ name: 'PGHOSTADDR', value: '10.0.0.5' }];
    expectConflict(pod, /sets PGHOSTADDR/);
  });

  it('an agent container mounting a token for the broker audience', () => {
    const pod = base();
    pod.spec!.volumes = [
      {
        name: 'stolen',
        projected: { sources: [{ serviceAccountToken: { audience: 'chaperone', path: 't' } }] },
      },
    ];
    pod.spec!.containers[0]!.volumeMounts = [{ name: 'stolen', mountPath: '/t' }];
    expectConflict(pod, /container "agent" mounts volume "stolen", which holds a ServiceAccount token/);
  });

  it('an agent container mounting the injected token volume by name', () => {
    const pod = base();
    pod.spec!.containers[0]!.volumeMounts = [{ name: INJECTED_VOLUMES.tokens, mountPath: '/t' }];
    expectConflict(pod, /mounts volume "chaperone-tokens"/);
  });

  it('something else mounted where the agent config goes', () => {
    const pod = base();
    pod.spec!.containers[0]!.volumeMounts = [{ name: 'cfg', mountPath: `${SIDECAR_PATHS.agentConfig}/` }];
    expectConflict(pod, /mounts something at \/var\/run\/chaperone.dev\/agent/);
  });

  it('shared process namespaces, host PID and host network', () => {
    for (const [field, pattern] of [
      ['shareProcessNamespace', /shareProcessNamespace is true/],
      ['hostPID', /hostPID is true/],
      ['hostNetwork', /hostNetwork is true/],
    ] as const) {
      const pod = base();
      pod.spec![field] = true;
      expectConflict(pod, pattern);
    }
  });

  it('a regular container using the sidecar name', () => {
    const pod = base();
    pod.spec!.containers.push({ name: SIDECAR_CONTAINER_NAME, image: 'x' });
    expectConflict(pod, /name reserved for the chaperone sidecar/);
  });

  it('a container port the sidecar listens on', () => {
    const pod = base();
    pod.spec!.containers[0]!.ports = [{ containerPort: 15432 }];
    expectConflict(pod, /declares port 15432, which is the sidecar's listener for Connection "orders-db"/);
    const admin = base();
    admin.spec!.containers[0]!.ports = [{ containerPort: SIDECAR_ADMIN_PORT }];
    expectConflict(admin, /the sidecar's admin port/);
  });

  it('two Connections on one port, on the admin port, or with the same env name', () => {
    const c = (name: string, port: number): InjectedConnection => ({
      metadata: { name },
      spec: { type: 'postgres', listen: { port } },
    });
    expectConflict(base(), /Connections "a" and "b" both listen on port 15432/, [
      c('a', 15432),
      c('b', 15432),
    ]);
    expectConflict(base(), /Connection "a" listens on port 15020, the sidecar's admin port/, [c('a', 15020)]);
    expectConflict(base(), /both map to env var CHAPERONE_ORDERS_DB_PORT/, [
      c('orders-db', 1),
      c('orders.db', 2),
    ]);
  });

  it('allows env the user set to exactly the injected value, and keeps it', () => {
    const pod = base();
    pod.spec!.containers[0]!.env = [{ name: 'PGPORT', value: '15432' }];
    const out = applyJsonPatch(pod, buildPatch(pod, orders, baseConfig));
    expect(out.spec?.containers[0]?.env?.map((e) => e.name)).toEqual([
      'PGHOST',
      'CHAPERONE_ORDERS_DB_PORT',
      'PGPORT',
    ]);
  });
});

describe('repairing a pod that claims to be injected', () => {
  const orders = allConnections.filter((c) => c.metadata.name === 'orders-db');
  const injected = () => readJson<V1Pod>('already-injected.pod.json');

  it('replaces a tampered sidecar (command that would leak the token) with the real one', () => {
    const pod = injected();
    pod.spec!.initContainers![0]!.command = ['sh', '-c', 'cat /var/run/secrets/chaperone.dev/tokens/*'];
    const patch = buildPatch(pod, orders, baseConfig);
    expect(patch).toEqual([
      { op: 'replace', path: '/spec/initContainers/0', value: sidecarContainer(orders, baseConfig) },
    ]);
  });

  it('adds the sidecar when only the annotation was copied', () => {
    const pod = readJson<V1Pod>('plain.pod.json');
    pod.metadata!.annotations![STATUS_ANNOTATION] = 'injected';
    const out = applyJsonPatch(pod, buildPatch(pod, orders, baseConfig));
    expect(sidecarOf(out)).toEqual(sidecarContainer(orders, baseConfig));
  });

  it('moves a sidecar that is not first to the front', () => {
    const pod = injected();
    pod.spec!.initContainers!.push({ name: 'migrate', image: 'm' });
    pod.spec!.initContainers!.reverse();
    const out = applyJsonPatch(pod, buildPatch(pod, orders, baseConfig));
    expect(out.spec?.initContainers?.map((c) => c.name)).toEqual([SIDECAR_CONTAINER_NAME, 'migrate']);
  });

  it('gives a container added later (another webhook, reinvocation) the agent env and mount', () => {
    const pod = injected();
    pod.spec!.containers.push({ name: 'late', image: 'l' });
    const patch = buildPatch(pod, orders, baseConfig);
    expect(patch.every((op) => op.path.startsWith('/spec/containers/1/'))).toBe(true);
    const out = applyJsonPatch(pod, patch);
    expect(out.spec?.containers[1]?.env).toEqual(agentEnv(orders));
  });

  it('replaces a volume of a reserved name that differs', () => {
    const pod = injected();
    const i = pod.spec!.volumes!.findIndex((v) => v.name === INJECTED_VOLUMES.spool);
    pod.spec!.volumes![i] = { name: INJECTED_VOLUMES.spool, hostPath: { path: '/' } };
    expect(buildPatch(pod, orders, baseConfig)).toEqual([
      {
        op: 'replace',
        path: `/spec/volumes/${i}`,
        value: { name: INJECTED_VOLUMES.spool, emptyDir: { sizeLimit: '256Mi' } },
      },
    ]);
  });
});

describe('injection configuration', () => {
  it('applies the defaults', () => {
    const c = resolveInjectionConfig(baseConfig);
    expect(c).toMatchObject({
      imagePullPolicy: 'IfNotPresent',
      tokenExpirationSeconds: 3600,
      runAsUser: 65532,
      runAsGroup: 65532,
      resources: { requests: { cpu: '50m', memory: '128Mi' }, limits: { memory: '384Mi' } },
    });
  });

  it('picks the pull policy the API server would', () => {
    const policy = (sidecarImage: string) =>
      resolveInjectionConfig({ ...baseConfig, sidecarImage }).imagePullPolicy;
    expect(policy('sidecar')).toBe('Always');
    expect(policy('sidecar:latest')).toBe('Always');
    expect(policy('localhost:5000/sidecar')).toBe('Always');
    expect(policy('localhost:5000/sidecar:1.2')).toBe('IfNotPresent');
    expect(policy('sidecar@sha256:0123')).toBe('IfNotPresent');
  });

  it('refuses a configuration that would make a broken or weaker sidecar, saying what to fix', () => {
    expect(() => resolveInjectionConfig({ ...baseConfig, brokerUrl: 'http://broker' })).toThrow(
      /brokerUrl must be an https/,
    );
    expect(() => resolveInjectionConfig({ ...baseConfig, brokerCaPem: 'x' })).toThrow(/brokerCaPem/);
    expect(() => resolveInjectionConfig({ ...baseConfig, tokenExpirationSeconds: 60 })).toThrow(
      /between 600 and 86400/,
    );
    expect(() => resolveInjectionConfig({ ...baseConfig, runAsUser: 0 })).toThrow(/never runs as root/);
    expect(() => resolveInjectionConfig({ ...baseConfig, sidecarImage: ' ' })).toThrow(/sidecarImage/);
    expect(() => resolveInjectionConfig({ ...baseConfig, collectorUrl: 'collector' })).toThrow(
      /collectorUrl/,
    );
  });
});

describe('the JSON patch applier used above', () => {
  it('fails like the API server on a missing parent or an index out of range', () => {
    expect(() => applyJsonPatch({ a: [] }, [{ op: 'add', path: '/b/c', value: 1 }])).toThrow(JsonPatchError);
    expect(() => applyJsonPatch({ a: [] }, [{ op: 'add', path: '/a/1', value: 1 }])).toThrow(JsonPatchError);
    expect(() => applyJsonPatch({ a: [1] }, [{ op: 'replace', path: '/a/1', value: 1 }])).toThrow(
      JsonPatchError,
    );
    expect(() => applyJsonPatch({ a: 1 }, [{ op: 'remove', path: '/b' }])).toThrow(JsonPatchError);
    expect(() => applyJsonPatch({ a: 1 }, [{ op: 'test', path: '/a', value: 2 }])).toThrow(JsonPatchError);
  });

  it('inserts, appends, replaces and unescapes pointer segments', () => {
    expect(
      applyJsonPatch({ a: [1, 3], m: { 'x/y': 1 } }, [
        { op: 'add', path: '/a/1', value: 2 },
        { op: 'add', path: '/a/-', value: 4 },
        { op: 'replace', path: '/m/x~1y', value: 2 },
        { op: 'add', path: '/m/t~0', value: 3 },
        { op: 'remove', path: '/a/0' },
      ]),
    ).toEqual({ a: [2, 3, 4], m: { 'x/y': 2, 't~': 3 } });
  });
});

describe('properties over generated pods', () => {
  const name = fc.stringMatching(/^[a-z][a-z0-9-]{0,8}$/);
  const env = fc.array(
    fc.record({
      name: fc.constantFrom('LOG', 'HOME', 'DATABASE_URL', 'X'),
      value: fc.string({ maxLength: 5 }),
    }),
    { maxLength: 3 },
  );
  const container = fc.record(
    {
      name,
      image: fc.constant('img'),
      env,
      volumeMounts: fc.array(
        fc.record({ name: fc.constant('data'), mountPath: fc.constantFrom('/data', '/x') }),
        {
          maxLength: 1,
        },
      ),
    },
    { requiredKeys: ['name', 'image'] },
  );
  const pods = fc
    .record(
      {
        containers: fc.uniqueArray(container, { minLength: 1, maxLength: 3, selector: (c) => c.name }),
        initContainers: fc.uniqueArray(container, { maxLength: 2, selector: (c) => c.name }),
        volumes: fc.constant(null).map(() => [{ name: 'data', emptyDir: {} }]),
        annotations: fc.dictionary(fc.constantFrom('a', 'b/c'), fc.string({ maxLength: 3 }), { maxKeys: 2 }),
      },
      { requiredKeys: ['containers'] },
    )
    .filter((p) => {
      const names = [...p.containers, ...(p.initContainers ?? [])].map((c) => c.name);
      return new Set(names).size === names.length;
    })
    .map(
      ({ annotations, ...spec }): V1Pod => ({
        metadata: { name: 'p', ...(annotations ? { annotations } : {}) },
        spec,
      }),
    );
  const connectionSets = fc
    .subarray(allConnections, { minLength: 1 })
    .chain((cs) => fc.shuffledSubarray(cs, { minLength: cs.length, maxLength: cs.length }));
  const configs = fc.record({ collectorUrl: fc.constantFrom(undefined, 'https://collector:8443') }).map(
    (o): InjectionConfig => ({
      ...baseConfig,
      ...(o.collectorUrl ? { collectorUrl: o.collectorUrl } : {}),
    }),
  );

  it('the patch applies, yields the injected shape, and is idempotent', () => {
    fc.assert(
      fc.property(pods, connectionSets, configs, (pod, connections, config) => {
        const patch = buildPatch(pod, connections, config);
        const out = applyJsonPatch(pod, patch);
        checkInjectedShape(pod, out, connections, config);
        expect(buildPatch(out, connections, config)).toEqual([]);
        // Deterministic.
        expect(buildPatch(structuredClone(pod), connections, config)).toEqual(patch);
      }),
      { numRuns: 200 },
    );
  });
});
