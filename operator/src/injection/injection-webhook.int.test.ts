// The injection webhook against a real kube-apiserver: the API server calls our OperatorHttpsServer
// over TLS through the MutatingWebhookConfiguration that mutatingWebhookConfiguration() builds, and
// pods are created with the real kubectl.
import { readFile } from 'node:fs/promises';
import { connect, type PeerCertificate } from 'node:tls';
import {
  CONNECTIONS_ANNOTATION,
  type Connection,
  INJECT_LABEL,
  NAMESPACE_INJECTION_LABEL,
  STATUS_ANNOTATION,
} from '@chaperone/api';
import {
  type ControlPlane,
  createTestCa,
  makeWorkDir,
  startControlPlane,
  type TestCa,
  type WorkDir,
} from '@chaperone/testkit';
import * as k8s from '@kubernetes/client-node';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OperatorHttpsServer, type ServingCertificate } from '../admission/https-server.js';
import { mutatingWebhookConfiguration, WEBHOOK_NAMES } from '../admission/webhook-configuration.js';
import { INJECTION_WEBHOOK_PATH, SIDECAR_CONTAINER_NAME } from '../operator-constants.js';
import {
  agentEnv,
  buildPatch,
  INJECTED_VOLUMES,
  type InjectionConfig,
  injectedVolumes,
  sidecarContainer,
} from './build-patch.js';
import { createInjectionHandler } from './injection-webhook.js';

const OPERATOR_NS = 'chaperone-system';
const testdata = async <T>(f: string): Promise<T> =>
  JSON.parse(await readFile(new URL(`./testdata/${f}`, import.meta.url), 'utf8')) as T;

let cp: ControlPlane;
let work: WorkDir;
let server: OperatorHttpsServer;
let port: number;
let ca: TestCa;
let config: InjectionConfig;
let ordersDb: Connection;
let bastion: Connection;

const readCert = async (c: { certPath: string; keyPath: string }): Promise<ServingCertificate> => ({
  cert: await readFile(c.certPath, 'utf8'),
  key: await readFile(c.keyPath, 'utf8'),
});

const isNotFound = (err: unknown) => err instanceof k8s.ApiException && err.code === 404;

async function kubectlOk(args: string[], input?: string): Promise<string> {
  const res = await cp.kubectl(args, { input });
  if (res.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed: ${res.stderr}`);
  return res.stdout;
}

function podManifest(
  name: string,
  namespace: string,
  opts: { labels?: Record<string, string>; connections?: string } = {},
): k8s.V1Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace,
      labels: { app: 'agent', ...opts.labels },
      annotations: opts.connections ? { [CONNECTIONS_ANNOTATION]: opts.connections } : {},
    },
    spec: { containers: [{ name: 'agent', image: 'registry.local/agent:1.0' }] },
  };
}

async function createPod(pod: k8s.V1Pod, dryRun = false) {
  return cp.kubectl(['create', '-f', '-', '-o', 'json', ...(dryRun ? ['--dry-run=server'] : [])], {
    input: JSON.stringify(pod),
  });
}

async function createPodOk(pod: k8s.V1Pod): Promise<k8s.V1Pod> {
  const res = await createPod(pod);
  if (res.code !== 0) throw new Error(`creating pod ${pod.metadata?.name} failed: ${res.stderr}`);
  return JSON.parse(res.stdout) as k8s.V1Pod;
}

beforeAll(async () => {
  cp = await startControlPlane({ installCrds: true });
  work = await makeWorkDir('injection-webhook');
  ca = await createTestCa(work.path, 'webhook-ca-1');
  const serving = await ca.issue('webhook-1', {
    commonName: '127.0.0.1',
    altNames: ['IP:127.0.0.1'],
    usage: 'server',
  });
  config = {
    ...(await testdata<InjectionConfig>('config.json')),
    brokerCaPem: await readFile(ca.certPath, 'utf8'),
  };

  const kc = cp.admin.kubeConfig();
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  server = new OperatorHttpsServer({
    host: '127.0.0.1',
    port: 0,
    certificate: await readCert(serving),
    registry: new Registry(),
  });
  server.admission(
    INJECTION_WEBHOOK_PATH,
    'injection',
    createInjectionHandler({
      config: () => config,
      operatorNamespace: OPERATOR_NS,
      async lookupNamespace(name) {
        try {
          return (await core.readNamespace({ name })).metadata?.labels ?? {};
        } catch (err) {
          if (isNotFound(err)) return undefined;
          throw err;
        }
      },
      async lookupConnection(namespace, name) {
        try {
          return (await custom.getNamespacedCustomObject({
            group: 'chaperone.dev',
            version: 'v1alpha1',
            plural: 'connections',
            namespace,
            name,
          })) as Connection;
        } catch (err) {
          if (isNotFound(err)) return undefined;
          throw err;
        }
      },
    }),
  );
  port = await server.listen();

  for (const [name, labels] of [
    ['shop', { [NAMESPACE_INJECTION_LABEL]: 'enabled' }],
    ['plain', {}],
    [OPERATOR_NS, { [NAMESPACE_INJECTION_LABEL]: 'enabled' }],
  ] as const)
    await core.createNamespace({ body: { metadata: { name, labels } } });
  const connections = await testdata<Connection[]>('connections.json');
  for (const ns of ['shop', 'plain'])
    for (const c of connections.filter((x) => ['orders-db', 'bastion'].includes(x.metadata.name ?? '')))
      await kubectlOk(
        ['apply', '-f', '-'],
        JSON.stringify({ ...c, metadata: { ...c.metadata, namespace: ns } }),
      );
  ordersDb = connections.find((c) => c.metadata.name === 'orders-db') as Connection;
  bastion = connections.find((c) => c.metadata.name === 'bastion') as Connection;

  const webhooks = mutatingWebhookConfiguration({
    name: 'chaperone-test',
    caBundle: Buffer.from(await readFile(ca.certPath)).toString('base64'),
    clientConfig: { url: `https://127.0.0.1:${port}` },
    operatorNamespace: OPERATOR_NS,
  });
  await kc
    .makeApiClient(k8s.AdmissionregistrationV1Api)
    .createMutatingWebhookConfiguration({ body: webhooks });

  // The API server picks webhook configurations up asynchronously: wait until a dry run is injected.
  const deadline = Date.now() + 30_000;
  for (;;) {
    const res = await createPod(podManifest('probe', 'shop', { connections: 'orders-db' }), true);
    if (res.code === 0 && (JSON.parse(res.stdout) as k8s.V1Pod).spec?.initContainers?.length) break;
    if (Date.now() > deadline) throw new Error(`the injection webhook never took effect: ${res.stderr}`);
    await new Promise((r) => setTimeout(r, 200));
  }
});

afterAll(async () => {
  await server?.close();
  await cp?.stop();
  await work?.remove();
});

describe('sidecar injection through the real API server', () => {
  it('gives a pod in an opted-in namespace exactly the expected sidecar, volumes and env', async () => {
    const pod = await createPodOk(podManifest('orders-agent', 'shop', { connections: 'orders-db,bastion' }));
    const connections = [ordersDb, bastion];
    expect(pod.metadata?.annotations?.[STATUS_ANNOTATION]).toBe('injected');
    // Exactly what we built, after the API server's defaulting: nothing added, nothing dropped.
    expect(pod.spec?.initContainers).toEqual([sidecarContainer(connections, config)]);
    expect(pod.spec?.initContainers?.[0]?.restartPolicy).toBe('Always');
    expect(pod.spec?.volumes).toEqual(injectedVolumes(config));
    const agent = pod.spec?.containers[0];
    expect(agent?.env).toEqual(agentEnv(connections));
    expect(agent?.env).toContainEqual({ name: 'PGHOST', value: '127.0.0.1' });
    expect(agent?.env).toContainEqual({ name: 'PGPORT', value: '15432' });
    expect(agent?.env).toContainEqual({
      name: 'CHAPERONE_SSH_CONFIG',
      value: '/var/run/chaperone.dev/agent/ssh_config',
    });
    expect(agent?.volumeMounts).toEqual([
      { name: INJECTED_VOLUMES.agentConfig, mountPath: '/var/run/chaperone.dev/agent', readOnly: true },
    ]);
    // The stored pod is a fixed point: computing the patch again yields nothing.
    expect(buildPatch(pod, connections, config)).toEqual([]);
  });

  it('leaves a pod in a namespace that did not opt in untouched', async () => {
    const pod = await createPodOk(podManifest('bystander', 'plain', { connections: 'orders-db' }));
    expect(pod.spec?.initContainers).toBeUndefined();
    expect(pod.spec?.volumes).toBeUndefined();
    expect(pod.metadata?.annotations?.[STATUS_ANNOTATION]).toBeUndefined();
  });

  it('injects a pod that opts in with its own label', async () => {
    const pod = await createPodOk(
      podManifest('labelled', 'plain', { labels: { [INJECT_LABEL]: 'true' }, connections: 'orders-db' }),
    );
    expect(pod.spec?.initContainers?.map((c) => c.name)).toEqual([SIDECAR_CONTAINER_NAME]);
    expect(pod.metadata?.annotations?.[STATUS_ANNOTATION]).toBe('injected');
  });

  it('honours the opt-out label in an opted-in namespace', async () => {
    const pod = await createPodOk(podManifest('opted-out', 'shop', { labels: { [INJECT_LABEL]: 'false' } }));
    expect(pod.spec?.initContainers).toBeUndefined();
  });

  it('refuses a pod naming a Connection that does not exist, with a message saying what to fix', async () => {
    const res = await createPod(podManifest('typo', 'shop', { connections: 'orders-db,ordres-db' }));
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain(
      `admission webhook "${WEBHOOK_NAMES.namespaceInjection}" denied the request: chaperone: Connection "ordres-db" named in chaperone.dev/connections does not exist in namespace "shop"`,
    );
    expect((await cp.kubectl(['get', 'pod', 'typo', '-n', 'shop'])).code).not.toBe(0);
  });

  it('refuses an opted-in pod without the connections annotation and says how to opt out', async () => {
    const res = await createPod(
      podManifest('no-annotation', 'plain', { labels: { [INJECT_LABEL]: 'true' } }),
    );
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain(`admission webhook "${WEBHOOK_NAMES.podInjection}" denied the request`);
    expect(res.stderr).toContain('has no chaperone.dev/connections annotation');
    expect(res.stderr).toContain('remove the pod label chaperone.dev/inject=true');
  });

  it('adds no second sidecar when an injected pod spec is submitted again', async () => {
    const first = await createPodOk(podManifest('original', 'shop', { connections: 'orders-db' }));
    const again: k8s.V1Pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: 'resubmitted',
        namespace: 'shop',
        labels: first.metadata?.labels,
        annotations: first.metadata?.annotations,
      },
      spec: first.spec,
    };
    const second = await createPodOk(again);
    expect(second.spec?.initContainers?.filter((c) => c.name === SIDECAR_CONTAINER_NAME)).toHaveLength(1);
    expect(second.spec?.initContainers).toEqual(first.spec?.initContainers);
    expect(second.spec?.volumes).toEqual(first.spec?.volumes);
    expect(second.spec?.containers).toEqual(first.spec?.containers);
  });

  it('never injects kube-system pods, even with the namespace and the pod labelled', async () => {
    await kubectlOk(['label', 'namespace', 'kube-system', `${NAMESPACE_INJECTION_LABEL}=enabled`]);
    try {
      const pod = await createPodOk(
        podManifest('system', 'kube-system', {
          labels: { [INJECT_LABEL]: 'true' },
          connections: 'orders-db',
        }),
      );
      expect(pod.spec?.initContainers).toBeUndefined();
      expect(pod.metadata?.annotations?.[STATUS_ANNOTATION]).toBeUndefined();
    } finally {
      await kubectlOk(['label', 'namespace', 'kube-system', `${NAMESPACE_INJECTION_LABEL}-`]);
    }
  });

  it("never injects pods in the operator's namespace (the operator must start while its webhook is down)", async () => {
    const pod = await createPodOk(
      podManifest('operator-0', OPERATOR_NS, {
        labels: { [INJECT_LABEL]: 'true' },
        connections: 'orders-db',
      }),
    );
    expect(pod.spec?.initContainers).toBeUndefined();
  });

  it('refuses a debug container that targets the sidecar, and allows one that targets the agent', async () => {
    await createPodOk(podManifest('debugged', 'shop', { connections: 'orders-db' }));
    const addDebug = (name: string, target: string) =>
      cp.kubectl([
        'patch',
        'pod',
        'debugged',
        '-n',
        'shop',
        '--subresource=ephemeralcontainers',
        '--type=strategic',
        '-p',
        JSON.stringify({
          spec: {
            ephemeralContainers: [
              {
                name,
                image: 'registry.local/busybox:1',
                targetContainerName: target,
                terminationMessagePolicy: 'File',
              },
            ],
          },
        }),
      ]);
    const refused = await addDebug('peek', SIDECAR_CONTAINER_NAME);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('ephemeral container "peek" targets the chaperone sidecar');
    const allowed = await addDebug('debug', 'agent');
    expect(allowed.stderr).toBe('');
    expect(allowed.code).toBe(0);
  });
});

describe('serving certificate hot reload', () => {
  const peerOf = (ca?: string) =>
    new Promise<{ authorized: boolean; peer: PeerCertificate; error?: string }>((resolve, reject) => {
      const socket = connect(
        { host: '127.0.0.1', port, ...(ca ? { ca } : {}), rejectUnauthorized: false },
        () => {
          const result = {
            authorized: socket.authorized,
            peer: socket.getPeerCertificate(),
            error: socket.authorizationError?.toString(),
          };
          socket.end();
          resolve(result);
        },
      );
      socket.on('error', reject);
    });

  it('serves a new certificate to new connections after setCertificate', async () => {
    const ca1 = await readFile(ca.certPath, 'utf8');
    const before = await peerOf(ca1);
    expect(before.authorized).toBe(true);
    expect(before.peer.issuer.CN).toBe('webhook-ca-1');

    const ca2 = await createTestCa(work.path, 'webhook-ca-2');
    const rotated = await ca2.issue('webhook-2', {
      commonName: '127.0.0.1',
      altNames: ['IP:127.0.0.1'],
      usage: 'server',
    });
    server.setCertificate(await readCert(rotated));

    const after = await peerOf(await readFile(ca2.certPath, 'utf8'));
    expect(after.authorized).toBe(true);
    expect(after.peer.issuer.CN).toBe('webhook-ca-2');
    expect(after.peer.fingerprint256).not.toBe(before.peer.fingerprint256);
    // A client that only trusts the old CA no longer accepts the server.
    expect((await peerOf(ca1)).authorized).toBe(false);
  });

  it('keeps serving the current certificate when given a broken pair', async () => {
    const current = await readCert(await ca.issue('webhook-3', { commonName: 'x', usage: 'server' }));
    const other = await readCert(await ca.issue('webhook-4', { commonName: 'y', usage: 'server' }));
    const before = (await peerOf()).peer.fingerprint256;
    expect(() => server.setCertificate({ cert: current.cert, key: other.key })).toThrow();
    expect((await peerOf()).peer.fingerprint256).toBe(before);
  });
});
