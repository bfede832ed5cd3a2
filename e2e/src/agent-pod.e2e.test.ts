// An unchanged agent in a real pod of the local cluster (make cluster-up, make images): the webhook
// injects the sidecar image as a native sidecar; the sidecar gets its policy and a JIT role from the
// broker; psql in the agent image gets masked rows, waits for an approval given with kubectl, and is
// refused DDL; the role is disabled once the pod is gone. The operator and PostgreSQL run on the host
// and pods reach them on the bridge gateway (installing the operator with the chart into the cluster
// needs Service routing and DNS for the broker, which the local cluster does not have yet).
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AccessRequest } from '@chaperone/api';
import { mutatingWebhookConfiguration, type RunningOperator, startOperator } from '@chaperone/operator';
import {
  createOrdersDatabase,
  freePort,
  type LocalCluster,
  localCluster,
  operatorKubeconfig,
  ordersScenarioManifests,
  repoPath,
  startPostgres,
  type TestPostgres,
  waitFor,
} from '@chaperone/testkit';
import { KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const OP_NS = 'chaperone-e2e-system';
const NS = 'chaperone-e2e';

let cluster: LocalCluster;
let pg: TestPostgres;
let operator: RunningOperator | undefined;
let images: Record<string, string>;
let dir: string | undefined;

async function kubectl(args: string[], input?: string): Promise<string> {
  const r = await cluster.kubectl(args, { input, timeoutMs: 120_000 });
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}
const json = async <T>(args: string[]) => JSON.parse(await kubectl([...args, '-o', 'json'])) as T;

const jitRoles = async () =>
  (
    await pg.psql(
      `SELECT rolname || '|' || rolcanlogin FROM pg_roles WHERE rolname LIKE 'chaperone\\_%' AND rolname <> 'chaperone_admin'`,
    )
  )
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => ({ name: l.split('|')[0], login: l.split('|')[1] === 'true' }));

beforeAll(async () => {
  cluster = await localCluster();
  const envFile = repoPath('dist', 'images', 'images.env');
  images = Object.fromEntries(
    readFileSync(envFile, 'utf8')
      .trim()
      .split('\n')
      .map((l) => l.split('=') as [string, string]),
  );
  for (const name of ['sidecar', 'agent'])
    await cluster.importImage(repoPath('dist', 'images', `${name}.tar`));
  // The CRDs as the chart installs them (server-side apply keeps their CEL rules).
  await kubectl(['apply', '--server-side', '--field-manager=chaperone-e2e', '-f', repoPath('crds')]);
  await kubectl(['wait', '--for=condition=Established', '--timeout=60s', '--all', 'crd']);
  pg = await startPostgres({ alsoListen: { address: cluster.gateway, clients: cluster.podCidr } });
  await createOrdersDatabase(pg, 'e2e-admin-password');
  await kubectl(
    ['apply', '-f', '-'],
    ordersScenarioManifests({
      operatorNamespace: OP_NS,
      namespace: NS,
      pgHost: cluster.gateway,
      pgPort: pg.port,
      listenPort: 15432,
      adminPassword: 'e2e-admin-password',
      ttl: '15m',
    }),
  );
  dir = await mkdtemp(join(tmpdir(), 'chaperone-e2e-'));
  const kc = new KubeConfig();
  kc.loadFromFile(await operatorKubeconfig(cluster, OP_NS, join(dir, 'operator.kubeconfig')));
  const port = await freePort();
  operator = await startOperator({
    kubeConfig: kc,
    namespace: OP_NS,
    podName: 'operator-e2e',
    serviceAccountName: 'chaperone-operator',
    serviceName: 'chaperone-operator',
    // On the bridge: the API server (webhooks) and the pods (broker) reach it there.
    httpsHost: cluster.gateway,
    httpsPort: port,
    metricsHost: '127.0.0.1',
    metricsPort: 0,
    extraCertNames: { ipAddresses: [cluster.gateway] },
    brokerUrl: `https://${cluster.gateway}:${port}`,
    sidecarImage: images.SIDECAR_IMAGE as string,
    janitor: { intervalMs: 1_000, podGoneGraceMs: 0 },
    log: () => {},
  });
  const secret = await json<{ data: Record<string, string> }>([
    'get',
    'secret',
    'chaperone-operator-tls',
    '-n',
    OP_NS,
  ]);
  await kubectl(
    ['apply', '-f', '-'],
    JSON.stringify(
      mutatingWebhookConfiguration({
        name: 'chaperone-e2e',
        caBundle: secret.data['ca.crt'] as string,
        clientConfig: { url: `https://${cluster.gateway}:${port}` },
        operatorNamespace: OP_NS,
      }),
    ),
  );
}, 300_000);

afterAll(async () => {
  await cluster?.kubectl(['delete', 'namespace', NS, '--wait=false']);
  await cluster?.kubectl(['delete', 'mutatingwebhookconfiguration', 'chaperone-e2e', '--ignore-not-found']);
  await operator?.stop();
  await pg?.stop();
  // The operator's kubeconfig holds a ServiceAccount token.
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('an agent pod in the local cluster', () => {
  let pod: V1Pod;

  it('runs with the injected native sidecar started before the agent', async () => {
    await kubectl(
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'orders-agent', namespace: NS },
        spec: {
          replicas: 1,
          selector: { matchLabels: { app: 'orders-agent' } },
          template: {
            metadata: {
              labels: { app: 'orders-agent' },
              annotations: { 'chaperone.dev/connections': 'orders-db' },
            },
            spec: {
              serviceAccountName: 'orders-agent',
              containers: [
                {
                  name: 'agent',
                  image: images.AGENT_IMAGE,
                  imagePullPolicy: 'Never',
                  env: [
                    { name: 'PGDATABASE', value: 'orders' },
                    { name: 'PGUSER', value: 'agent' },
                  ],
                  args: [
                    'SELECT id, name, email FROM customers ORDER BY id',
                    "UPDATE orders SET status = 'shipped' WHERE id = 1",
                    'DROP TABLE customers',
                  ],
                },
              ],
            },
          },
        },
      }),
    );
    pod = await waitFor('the agent pod to run', async () => {
      const list = await json<{ items: V1Pod[] }>(['get', 'pods', '-n', NS, '-l', 'app=orders-agent']);
      return list.items.find((p) => p.status?.containerStatuses?.[0]?.state?.running);
    });
    const sidecar = pod.spec?.initContainers?.[0];
    expect(sidecar?.name).toBe('chaperone-sidecar');
    expect(sidecar?.restartPolicy).toBe('Always');
    expect(sidecar?.image).toBe(images.SIDECAR_IMAGE);
    const status = pod.status?.initContainerStatuses?.find((s) => s.name === 'chaperone-sidecar');
    expect(status?.started).toBe(true);
    expect(status?.state?.running).toBeDefined();
    // The agent started only after the sidecar's startup probe passed.
    const sidecarStart = Date.parse(String(status?.state?.running?.startedAt));
    const agentStart = Date.parse(String(pod.status?.containerStatuses?.[0]?.state?.running?.startedAt));
    expect(agentStart).toBeGreaterThanOrEqual(sidecarStart);
  });

  it('gives psql masked rows, pauses the UPDATE for an approver, refuses DDL', async () => {
    const name = pod.metadata?.name ?? '';
    const logs = () => kubectl(['logs', '-n', NS, name, '-c', 'agent']);
    const ar = await waitFor('an AccessRequest for the UPDATE', async () => {
      const list = await json<{ items: AccessRequest[] }>(['get', 'accessrequests', '-n', NS]);
      return list.items.find((a) => (a.status?.phase ?? 'Pending') === 'Pending');
    });
    expect(ar.spec.requester.pod?.name).toBe(name);
    expect(await logs()).toContain('waiting for approval');
    // A real approver identity as the API server sees it: impersonated user alice in group dba.
    await kubectl([
      'patch',
      'accessrequest',
      ar.metadata.name ?? '',
      '-n',
      NS,
      '--subresource=status',
      '--type=merge',
      '--as',
      'alice',
      '--as-group',
      'dba',
      '--as-group',
      'system:authenticated',
      '-p',
      '{"status":{"decision":{"verdict":"Approved"}}}',
    ]);
    const out = await waitFor('the agent to finish its statements', async () => {
      const text = await logs();
      return text.includes('done; sleeping') ? text : undefined;
    });
    expect(out).toContain('Ada Lovelace');
    expect(out).not.toContain('@example.com');
    expect(out).toContain('UPDATE 1');
    expect(out).toMatch(/42501/);
    expect((await pg.psql('SELECT status FROM orders WHERE id = 1', { database: 'orders' })).trim()).toBe(
      'shipped',
    );
    const decided = await json<AccessRequest>(['get', 'accessrequest', ar.metadata.name ?? '', '-n', NS]);
    expect(decided.status?.decision?.by).toBe('alice');
  });

  it('holds a JIT role while the pod lives and disables it when the pod is gone', async () => {
    expect((await jitRoles()).filter((r) => r.login)).toHaveLength(1);
    await kubectl(['delete', 'deployment', 'orders-agent', '-n', NS]);
    await waitFor('the role to be disabled', async () => (await jitRoles()).every((r) => !r.login), 120_000);
  }, 150_000);
});
