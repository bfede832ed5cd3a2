// Chaperone installed like a user installs it, then used by an unchanged agent in real pods.
//
// The Helm chart goes into the cluster (CRDs, two operator replicas serving the webhooks and the
// credential broker behind a Service, the collector storing recordings in PostgreSQL); a platform
// team's objects and the chart README's examples are applied with kubectl and reconciled; an agent Deployment gets the injected native sidecar; psql
// in the agent image gets masked rows, waits for `kubectl chaperone approve` by a real user, is
// refused DDL; the JIT role lives as long as the pod; auditors find the session and its approver in
// the collector. Also: an unknown Connection is refused at admission, and deleting every operator pod
// while a session runs loses no recording.
//
// Runs against the local cluster (make cluster-up) or any cluster described to
// support/cluster-under-test.ts. PostgreSQL runs on this machine, where pods reach it.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AccessRequest } from '@chaperone/api';
import {
  createOrdersDatabase,
  csrUserKubeconfig,
  findHelm,
  ordersScenarioManifests,
  repoPath,
  run,
  startPostgres,
  type TestPostgres,
  waitFor,
} from '@chaperone/testkit';
import type { V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ClusterUnderTest, clusterUnderTest } from './support/cluster-under-test.js';

const RELEASE = 'chaperone';
const OP_NS = 'chaperone-system';
const NS = 'chaperone-e2e';
const EXAMPLES_NS = 'shop';
const OPERATOR_SELECTOR = 'app.kubernetes.io/instance=chaperone,app.kubernetes.io/component=operator';

let cluster: ClusterUnderTest;
let pg: TestPostgres;
let images: Record<string, string>;
let dir: string;
let helm: string;
let auditorToken: string;
let installed = false;

async function kubectl(args: string[], input?: string): Promise<string> {
  const r = await cluster.kubectl(args, { input, timeoutMs: 180_000 });
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

const repoAndTag = (ref: string) => {
  const i = ref.lastIndexOf(':');
  return { repository: ref.slice(0, i), tag: ref.slice(i + 1) };
};

/**
 * An agent Deployment running the unchanged agent image. Pods here have no DNS (nothing may leave
 * the machine), so the pod lists the two Service names the sidecar dials as hostAliases, with the
 * Services' cluster IPs; with cluster DNS they resolve to the same addresses anyway.
 */
async function agentDeployment(name: string, statements: string[]): Promise<string> {
  const ip = async (svc: string) =>
    (await kubectl(['get', 'service', svc, '-n', OP_NS, '-o', 'jsonpath={.spec.clusterIP}'])).trim();
  return JSON.stringify({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: NS },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name }, annotations: { 'chaperone.dev/connections': 'orders-db' } },
        spec: {
          serviceAccountName: 'orders-agent',
          terminationGracePeriodSeconds: 5,
          hostAliases: [
            { ip: await ip(`${RELEASE}-operator`), hostnames: [`${RELEASE}-operator.${OP_NS}.svc`] },
            { ip: await ip(`${RELEASE}-collector`), hostnames: [`${RELEASE}-collector.${OP_NS}.svc`] },
          ],
          containers: [
            {
              name: 'agent',
              image: images.AGENT_IMAGE,
              imagePullPolicy: 'IfNotPresent',
              env: [
                { name: 'PGDATABASE', value: 'orders' },
                { name: 'PGUSER', value: 'agent' },
              ],
              args: statements,
            },
          ],
        },
      },
    },
  });
}

async function runningPod(app: string): Promise<V1Pod> {
  return waitFor(`the ${app} pod to run`, async () => {
    const list = await json<{ items: V1Pod[] }>(['get', 'pods', '-n', NS, '-l', `app=${app}`]);
    return list.items.find(
      (p) => !p.metadata?.deletionTimestamp && p.status?.containerStatuses?.[0]?.state?.running,
    );
  });
}

const agentLogs = (pod: V1Pod) => kubectl(['logs', '-n', NS, pod.metadata?.name ?? '', '-c', 'agent']);

/**
 * The collector's auditor API through `kubectl port-forward` (works on any cluster). One forward,
 * opened on first use and kept for the suite: the collector pod is never replaced by these tests.
 */
let collectorForward: { port: number; stop(): void } | undefined;
async function collectorApi<T>(path: string): Promise<T> {
  collectorForward ??= await cluster.portForward(OP_NS, `svc/${RELEASE}-collector`, 8080);
  const res = await fetch(`http://127.0.0.1:${collectorForward.port}${path}`, {
    headers: { authorization: `Bearer ${auditorToken}` },
    signal: AbortSignal.timeout(15_000),
  });
  if (!res.ok) throw new Error(`collector ${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

interface SessionSummary {
  sessionId: string;
  ended: boolean;
  missingEvents: number;
  identity: { serviceAccount: string | null; pod: string | null };
}

beforeAll(async () => {
  cluster = await clusterUnderTest();
  helm = findHelm();
  dir = await mkdtemp(join(tmpdir(), 'chaperone-e2e-'));
  images = Object.fromEntries(
    readFileSync(repoPath('dist', 'images', 'images.env'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => l.split('=') as [string, string]),
  );
  await cluster.loadImages(
    ['sidecar', 'operator', 'collector', 'agent'].map((n) => repoPath('dist', 'images', `${n}.tar`)),
  );

  // PostgreSQL on this machine: the orders database, and the collector's database.
  pg = await startPostgres({ alsoListen: { address: cluster.hostAddress, clients: cluster.podClients } });
  await createOrdersDatabase(pg, 'e2e-admin-password');
  const collectorPassword = randomBytes(12).toString('hex');
  await pg.psql(`CREATE ROLE recordings_writer LOGIN PASSWORD '${collectorPassword}'`);
  await pg.psql('CREATE DATABASE recordings OWNER recordings_writer');

  // What the platform team creates before installing: the namespace, the collector's database URL
  // and a break-glass auditor token (Secrets, never values).
  auditorToken = randomBytes(16).toString('hex');
  await kubectl(['create', 'namespace', OP_NS]);
  await kubectl([
    'create',
    'secret',
    'generic',
    'collector-db',
    '-n',
    OP_NS,
    `--from-literal=url=postgres://recordings_writer:${collectorPassword}@${cluster.hostAddress}:${pg.port}/recordings`,
  ]);
  await kubectl([
    'create',
    'secret',
    'generic',
    'collector-auditor',
    '-n',
    OP_NS,
    `--from-literal=token=${auditorToken}`,
  ]);

  const operator = repoAndTag(images.OPERATOR_IMAGE ?? '');
  const sidecar = repoAndTag(images.SIDECAR_IMAGE ?? '');
  const collector = repoAndTag(images.COLLECTOR_IMAGE ?? '');
  const install = await run(
    helm,
    [
      'install',
      RELEASE,
      repoPath('charts', 'chaperone'),
      '--kubeconfig',
      cluster.kubeconfigPath,
      '--namespace',
      OP_NS,
      '--wait',
      '--timeout',
      '5m',
      '--set',
      `operator.image.repository=${operator.repository},operator.image.tag=${operator.tag}`,
      '--set',
      `sidecar.image.repository=${sidecar.repository},sidecar.image.tag=${sidecar.tag}`,
      '--set',
      `collector.image.repository=${collector.repository},collector.image.tag=${collector.tag}`,
      '--set',
      'collector.database.postgres.existingSecret=collector-db',
      '--set',
      'collector.auth.auditorTokenSecret.name=collector-auditor',
    ],
    { timeoutMs: 360_000 },
  );
  if (install.code !== 0) throw new Error(`helm install: ${install.stderr}`);
  installed = true;
  // The leader patches its CA into the webhook configuration; until then the API server cannot call it.
  await waitFor('the caBundle in the webhook configuration', async () =>
    (
      await kubectl([
        'get',
        'mutatingwebhookconfiguration',
        'chaperone',
        '-o',
        'jsonpath={.webhooks[0].clientConfig.caBundle}',
      ])
    ).trim(),
  );

  await kubectl(
    ['apply', '-f', '-'],
    ordersScenarioManifests({
      operatorNamespace: OP_NS,
      namespace: NS,
      pgHost: cluster.hostAddress,
      pgPort: pg.port,
      listenPort: 15432,
      adminPassword: 'e2e-admin-password',
      ttl: '15m',
      operatorAccount: false,
    }),
  );
  await kubectl(['wait', '--for=condition=Ready', 'connection/orders-db', '-n', NS, '--timeout=120s']);
}, 600_000);

afterAll(async () => {
  collectorForward?.stop();
  if (cluster) {
    await cluster.kubectl(['delete', 'namespace', NS, EXAMPLES_NS, '--wait=false', '--ignore-not-found']);
    if (installed)
      await run(helm, ['uninstall', RELEASE, '--kubeconfig', cluster.kubeconfigPath, '-n', OP_NS, '--wait'], {
        timeoutMs: 180_000,
      });
    await cluster.kubectl(['delete', 'namespace', OP_NS, '--wait=false']);
  }
  await pg?.stop();
  // The approver's kubeconfig holds a private key.
  if (dir) await rm(dir, { recursive: true, force: true });
}, 300_000);

describe('Chaperone installed with the Helm chart', () => {
  it('runs two operator replicas and the collector, and the examples are accepted', async () => {
    const ops = await json<{ items: V1Pod[] }>(['get', 'pods', '-n', OP_NS, '-l', OPERATOR_SELECTOR]);
    expect(ops.items.filter((p) => p.status?.containerStatuses?.[0]?.ready)).toHaveLength(2);
    expect(ops.items[0]?.spec?.containers[0]?.image).toBe(images.OPERATOR_IMAGE);
    // Every example object of the docs passes the installed CRDs' schemas and CEL rules.
    const out = await kubectl(['apply', '--dry-run=server', '-n', NS, '-f', repoPath('examples')]);
    expect(out).toMatch(/connection\.chaperone\.dev\/orders-db .*\(server dry run\)/);
  });

  it("reconciles the chart README's example objects applied with kubectl, and fails closed on them", async () => {
    // The README's next step after installing, into namespace shop: the Connection and the policy.
    // The admin Secret they name (orders-db-admin) is this suite's, allowed only for NS: the
    // operator must refuse to lend it to shop, and say how to allow it.
    await kubectl(['create', 'namespace', EXAMPLES_NS]);
    await kubectl([
      'apply',
      '-n',
      EXAMPLES_NS,
      '-f',
      repoPath('examples', 'orders-db-connection.yaml'),
      '-f',
      repoPath('examples', 'orders-agents-policy.yaml'),
    ]);
    const ready = await waitFor('the example Connection to be reconciled', async () => {
      const c = await json<{
        metadata: { generation: number };
        status?: {
          observedGeneration?: number;
          conditions?: { type: string; status: string; reason: string; message: string }[];
        };
      }>(['get', 'connection', 'orders-db', '-n', EXAMPLES_NS]);
      return c.status?.observedGeneration === c.metadata.generation
        ? c.status.conditions?.find((x) => x.type === 'Ready')
        : undefined;
    });
    expect(ready).toMatchObject({ status: 'False', reason: 'AdminSecretNotAllowed' });
    expect(ready.message).toContain(
      `kubectl -n ${OP_NS} annotate secret orders-db-admin chaperone.dev/allowed-namespaces=${NS},${EXAMPLES_NS}`,
    );
    // The policy itself is sound: it names its subjects, which the operator lists.
    const applies = await waitFor('the example AccessPolicy to be reconciled', async () => {
      const p = await json<{ status?: { appliesTo?: { serviceAccounts?: string[]; groups?: string[] } } }>([
        'get',
        'accesspolicy',
        'orders-agents',
        '-n',
        EXAMPLES_NS,
      ]);
      return p.status?.appliesTo;
    });
    expect(applies.serviceAccounts).toEqual([`${EXAMPLES_NS}/orders-agent`]);
    expect(applies.groups).toEqual(['orders-oncall']);
  });

  it('refuses at admission a pod naming a Connection that does not exist', async () => {
    const r = await cluster.kubectl(['apply', '-f', '-'], {
      input: JSON.stringify({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'typo', namespace: NS, annotations: { 'chaperone.dev/connections': 'ordres-db' } },
        spec: { containers: [{ name: 'agent', image: images.AGENT_IMAGE, imagePullPolicy: 'IfNotPresent' }] },
      }),
    });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('Connection "ordres-db" named in chaperone.dev/connections does not exist');
    const pods = await json<{ items: V1Pod[] }>(['get', 'pods', '-n', NS]);
    expect(pods.items.map((p) => p.metadata?.name)).not.toContain('typo');
  });

  describe('an agent pod', () => {
    let pod: V1Pod;

    it('runs with the injected native sidecar started before the agent', async () => {
      await kubectl(
        ['apply', '-f', '-'],
        await agentDeployment('orders-agent', [
          'SELECT id, name, email FROM customers ORDER BY id',
          "UPDATE orders SET status = 'shipped' WHERE id = 1",
          'DROP TABLE customers',
        ]),
      );
      pod = await runningPod('orders-agent');
      const sidecar = pod.spec?.initContainers?.[0];
      expect(sidecar?.name).toBe('chaperone-sidecar');
      expect(sidecar?.restartPolicy).toBe('Always');
      expect(sidecar?.image).toBe(images.SIDECAR_IMAGE);
      const status = pod.status?.initContainerStatuses?.find((s) => s.name === 'chaperone-sidecar');
      expect(status?.started).toBe(true);
      expect(status?.state?.running).toBeDefined();
      const sidecarStart = Date.parse(String(status?.state?.running?.startedAt));
      const agentStart = Date.parse(String(pod.status?.containerStatuses?.[0]?.state?.running?.startedAt));
      expect(agentStart).toBeGreaterThanOrEqual(sidecarStart);
      // No credential reaches the agent container: only where the sidecar listens.
      const env = pod.spec?.containers[0]?.env?.map((e) => e.name) ?? [];
      expect(env).toEqual(expect.arrayContaining(['PGHOST', 'PGPORT']));
      expect(env.some((n) => /PASSWORD|TOKEN|SECRET/i.test(n))).toBe(false);
    });

    it('gives psql masked rows, waits for kubectl chaperone approve, refuses DDL', async () => {
      const ar = await waitFor('an AccessRequest for the UPDATE', async () => {
        const list = await json<{ items: AccessRequest[] }>(['get', 'accessrequests', '-n', NS]);
        return list.items.find((a) => (a.status?.phase ?? 'Pending') === 'Pending');
      });
      expect(ar.spec.requester.pod?.name).toBe(pod.metadata?.name);
      expect(await agentLogs(pod)).toContain('waiting for approval');

      // alice is a real user of the cluster (a client certificate from its CSR API), group dba.
      const alice = await csrUserKubeconfig(
        cluster.kubectl,
        { name: 'alice', groups: ['dba'] },
        join(dir, 'alice'),
      );
      const bin = join(dir, 'bin');
      await mkdir(bin, { recursive: true });
      await writeFile(
        join(bin, 'kubectl-chaperone'),
        `#!/bin/sh\nexec "${process.execPath}" "${repoPath('operator/dist/kubectl-plugin/kubectl-chaperone.js')}" "$@"\n`,
      );
      await chmod(join(bin, 'kubectl-chaperone'), 0o755);
      const env = { ...process.env, PATH: `${bin}:${process.env.PATH}`, KUBECONFIG: alice };
      const approve = await run(
        cluster.kubectlPath,
        ['chaperone', 'approve', ar.metadata.name ?? '', '-n', NS, '--comment', 'e2e ticket OPS-7'],
        { env },
      );
      expect(approve.stderr).toBe('');
      expect(approve.code).toBe(0);

      const out = await waitFor('the agent to finish its statements', async () => {
        const text = await agentLogs(pod);
        return text.includes('done; sleeping') ? text : undefined;
      });
      expect(out).toContain('Ada Lovelace');
      expect(out).not.toContain('ada@example.com');
      expect(out).toContain('UPDATE 1');
      expect(out).toMatch(/42501/);
      expect((await pg.psql('SELECT status FROM orders WHERE id = 1', { database: 'orders' })).trim()).toBe(
        'shipped',
      );
      const decided = await json<AccessRequest>(['get', 'accessrequest', ar.metadata.name ?? '', '-n', NS]);
      expect(decided.status?.decision?.by).toBe('alice');
    });

    it('is searchable in the collector with the approver', async () => {
      const found = await waitFor('the approved session in the collector', async () => {
        const { sessions } = await collectorApi<{ sessions: SessionSummary[] }>(
          `/v1/sessions?identity=${encodeURIComponent(`${NS}/orders-agent`)}&decision=approved`,
        );
        return sessions.find((s) => s.identity.pod === pod.metadata?.name && s.ended);
      });
      const detail = await collectorApi<{ events: { type: string; data?: Record<string, unknown> }[] }>(
        `/v1/sessions/${encodeURIComponent(found.sessionId)}`,
      );
      const decided = detail.events.find((e) => e.type === 'approval.decided');
      expect(decided?.data?.by).toBe('alice');
      expect(JSON.stringify(detail.events)).not.toContain('ada@example.com');
      expect(found.missingEvents).toBe(0);
    });

    it('holds a JIT role while the pod lives and disables it when the pod is gone', async () => {
      expect((await jitRoles()).filter((r) => r.login)).toHaveLength(1);
      await kubectl(['delete', 'deployment', 'orders-agent', '-n', NS]);
      await waitFor(
        'the role to be disabled',
        async () => (await jitRoles()).every((r) => !r.login),
        120_000,
      );
    }, 150_000);
  });

  it('loses no recording when every operator pod is deleted while a session runs', async () => {
    // Marks as column aliases: recordings keep statements normalized, with literals taken out.
    const marks = ['before', 'during', 'after'].map(
      (m) => `e2e_${m}_restart_${randomBytes(3).toString('hex')}`,
    );
    await kubectl(
      ['apply', '-f', '-'],
      await agentDeployment('long-agent', [
        `SELECT 1 AS ${marks[0]}`,
        `SELECT 2 AS ${marks[1]}, pg_sleep(20)`,
        `SELECT 3 AS ${marks[2]}`,
      ]),
    );
    const pod = await runningPod('long-agent');
    await waitFor('the long statement to start', async () =>
      (await agentLogs(pod)).includes(`psql -c SELECT 2 AS ${marks[1]}`),
    );
    const before = await json<{ items: V1Pod[] }>(['get', 'pods', '-n', OP_NS, '-l', OPERATOR_SELECTOR]);
    await kubectl(['delete', 'pods', '-n', OP_NS, '-l', OPERATOR_SELECTOR, '--wait=false']);

    const out = await waitFor(
      'the agent to finish',
      async () => {
        const text = await agentLogs(pod);
        return text.includes('done; sleeping') ? text : undefined;
      },
      120_000,
    );
    for (const m of marks) expect(out).toContain(m);
    expect(out).not.toMatch(/exit status [1-9]/);
    // The Deployment replaced both replicas.
    await kubectl(['rollout', 'status', `deployment/${RELEASE}-operator`, '-n', OP_NS, '--timeout=180s']);
    const after = await json<{ items: V1Pod[] }>(['get', 'pods', '-n', OP_NS, '-l', OPERATOR_SELECTOR]);
    const old = new Set(before.items.map((p) => p.metadata?.uid));
    expect(
      after.items.filter((p) => !p.metadata?.deletionTimestamp && !old.has(p.metadata?.uid)),
    ).toHaveLength(2);

    // Every session of the pod is in the collector, complete (no sequence gaps) and ended.
    for (const m of marks) {
      const s = await waitFor(`the session of ${m}`, async () => {
        const { sessions } = await collectorApi<{ sessions: SessionSummary[] }>(
          `/v1/sessions?text=${encodeURIComponent(m)}`,
        );
        return sessions.find((x) => x.identity.pod === pod.metadata?.name && x.ended);
      });
      expect(s.missingEvents).toBe(0);
    }
    const verify = await collectorApi<{ ok: boolean }>(
      '/v1/verify?from=2000-01-01T00:00:00Z&to=2100-01-01T00:00:00Z',
    );
    expect(verify.ok).toBe(true);
  }, 300_000);
});
