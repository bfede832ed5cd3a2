// The operator as a whole against a real kube-apiserver and a real PostgreSQL: a pod created in an
// opted-in namespace is injected; the sidecar, run as a local process with exactly the injected
// container's arguments and a TokenRequest token bound to that pod, gets its policy and a JIT role
// from the broker; psql through it sees masked rows; a guarded UPDATE waits for an AccessRequest
// that an approver releases with kubectl, while Slack, Teams and webhook receivers on 127.0.0.1 get
// one notification each and then the follow-up; the role is disabled after its TTL and after the
// pod goes.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AccessRequest } from '@chaperone/api';
import {
  type ControlPlane,
  createOrdersDatabase,
  freePort,
  httpsJson,
  type InjectedSidecar,
  operatorKubeconfig,
  ordersScenarioManifests,
  run,
  sshClientArgs,
  startControlPlane,
  startInjectedSidecar,
  startPostgres,
  startSshd,
  type TestPostgres,
  type TestUser,
  waitFor,
} from '@chaperone/testkit';
import { KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mutatingWebhookConfiguration } from './admission/webhook-configuration.js';
import { type LocalReceiver, startLocalReceiver } from './notifications/local-receiver.test-support.js';
import { parseNotificationConfig } from './notifications/notification-config.js';
import {
  slackViolations,
  teamsViolations,
  webhookViolations,
} from './notifications/payload-contracts.test-support.js';
import { type RunningOperator, startOperator } from './operator-process.js';

const OP_NS = 'chaperone-system';
const NS = 'shop';
const SIDECAR_IMAGE = 'chaperone/sidecar:test';

let cp: ControlPlane;
let pg: TestPostgres;
let dir: string;
let operators: RunningOperator[] = [];
let httpsPorts: number[] = [];
let alice: TestUser; // dba: an approver
let mallory: TestUser; // not an approver
let listenPort: number;
// Approver notification receivers: Slack fails twice before it accepts.
let slack: LocalReceiver;
let teams: LocalReceiver;
let hook: LocalReceiver;
const SIGNING_KEY = 'whsec-int-test-signing-key';
const SLACK_TOKEN = 'T0INT/B0INT/slack-url-token';
const operatorLogs: string[] = [];
const notificationConfig = () =>
  parseNotificationConfig({
    allowHttp: true,
    collectorUrl: 'https://audit.example.test',
    retry: { attempts: 5, baseDelayMs: 100, maxDelayMs: 400, timeoutMs: 5_000 },
    targets: [
      {
        name: 'audit-hook',
        type: 'webhook',
        secretName: 'chaperone-notify',
        urlKey: 'webhook',
        allPolicies: true,
      },
      { name: 'dba-slack', type: 'slack', secretName: 'chaperone-notify', urlKey: 'slack' },
      { name: 'ops-teams', type: 'teams', secretName: 'chaperone-notify', urlKey: 'teams' },
    ],
  });

const kubectl = async (args: string[], opts: { user?: TestUser; input?: string } = {}) => {
  const r = await cp.kubectl(args, opts);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
};
const json = async <T>(args: string[]): Promise<T> => JSON.parse(await kubectl([...args, '-o', 'json'])) as T;

async function startReplica(name: string, httpsPort: number): Promise<RunningOperator> {
  return startOperator({
    kubeConfig: await (async () => {
      // As the operator's ServiceAccount: its own status writes are told apart from people's.
      const kc = new KubeConfig();
      kc.loadFromFile(await operatorKubeconfig(cp, OP_NS, join(dir, `${name}.kubeconfig`)));
      return kc;
    })(),
    namespace: OP_NS,
    podName: name,
    serviceAccountName: 'chaperone-operator',
    serviceName: 'chaperone-operator',
    httpsHost: '127.0.0.1',
    httpsPort,
    metricsHost: '127.0.0.1',
    metricsPort: 0,
    extraCertNames: { ipAddresses: ['127.0.0.1'] },
    sidecarImage: SIDECAR_IMAGE,
    // Every replica's broker answers the sidecar; the test's sidecar uses the second replica's.
    brokerUrl: `https://127.0.0.1:${httpsPorts[1]}`,
    leaderElection: { leaseDurationMs: 4_000, renewDeadlineMs: 3_000, retryPeriodMs: 500 },
    janitor: { intervalMs: 500, dropAfterMs: 3_600_000, podGoneGraceMs: 0 },
    notifications: notificationConfig(),
    log: (level, message, fields) => {
      operatorLogs.push(`${name} ${level} ${message} ${JSON.stringify(fields ?? {})}`);
      if (process.env.CHAPERONE_TEST_LOG) console.error(name, level, message, JSON.stringify(fields ?? {}));
    },
  });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'chaperone-operator-'));
  [cp, pg] = await Promise.all([startControlPlane({ installCrds: true }), startPostgres()]);
  await createOrdersDatabase(pg, 'admin-secret-pw');
  listenPort = await freePort();
  httpsPorts = [await freePort(), await freePort()];
  alice = await cp.createUser('alice', ['dba']);
  mallory = await cp.createUser('mallory', ['developers']);

  await kubectl(['apply', '-f', '-'], {
    input: ordersScenarioManifests({
      operatorNamespace: OP_NS,
      namespace: NS,
      pgPort: pg.port,
      listenPort,
      adminPassword: 'admin-secret-pw',
      ttl: '1m',
    }),
  });
  [slack, teams, hook] = await Promise.all([
    startLocalReceiver({ failFirst: 2 }),
    startLocalReceiver(),
    startLocalReceiver(),
  ]);
  // The platform team's Secret and the policy's choice of targets (the webhook is for all policies).
  await kubectl(['apply', '-f', '-'], {
    input: JSON.stringify({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'chaperone-notify', namespace: OP_NS },
      stringData: {
        slack: `${slack.url}/services/${SLACK_TOKEN}`,
        teams: `${teams.url}/workflows/teams-url-sig`,
        webhook: `${hook.url}/chaperone`,
        signingKey: SIGNING_KEY,
      },
    }),
  });
  await kubectl([
    'patch',
    'accesspolicy',
    'orders-agents',
    '-n',
    NS,
    '--type=merge',
    '-p',
    '{"spec":{"approval":{"notify":[{"target":"dba-slack"},{"target":"ops-teams"}]}}}',
  ]);
  // Two replicas: the first to start takes the Lease and writes the certificate; the second waits for it.
  const first = startReplica('operator-0', httpsPorts[0] as number);
  operators.push(await first);
  operators.push(await startReplica('operator-1', httpsPorts[1] as number));
  // What the chart installs, pointed at the second replica (the API server reaches it on loopback).
  const secret = await json<{ data: Record<string, string> }>([
    'get',
    'secret',
    'chaperone-operator-tls',
    '-n',
    OP_NS,
  ]);
  const webhooks = mutatingWebhookConfiguration({
    name: 'chaperone',
    caBundle: secret.data['ca.crt'] as string,
    clientConfig: { url: `https://127.0.0.1:${httpsPorts[1]}` },
    operatorNamespace: OP_NS,
  });
  await kubectl(['apply', '-f', '-'], { input: JSON.stringify(webhooks) });
}, 300_000);

afterAll(async () => {
  await Promise.all(sidecars.map((s) => s.stop()));
  await Promise.all(operators.map((o) => o.stop()));
  await Promise.all([cp?.stop(), pg?.stop(), slack?.close(), teams?.close(), hook?.close()]);
  // Kubeconfigs with ServiceAccount tokens and the sidecars' spools: nothing of it may stay behind.
  if (dir) await rm(dir, { recursive: true, force: true });
});

const sidecars: InjectedSidecar[] = [];

async function createAgentPod(name: string, connections = 'orders-db'): Promise<V1Pod> {
  await kubectl(['apply', '-f', '-'], {
    input: JSON.stringify({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace: NS, annotations: { 'chaperone.dev/connections': connections } },
      spec: {
        serviceAccountName: 'orders-agent',
        containers: [{ name: 'agent', image: 'agent:1', command: ['sleep', 'infinity'] }],
      },
    }),
  });
  return json<V1Pod>(['get', 'pod', name, '-n', NS]);
}

/** One sidecar at a time: they all listen on the Connection's port, as in their pods. */
async function startSidecarFor(pod: V1Pod): Promise<InjectedSidecar> {
  for (const old of sidecars.splice(0)) await old.stop();
  const sidecar = await startInjectedSidecar(cp, pod, {
    workDir: await mkdtemp(join(dir, 'sidecar-')),
    adminPort: await freePort(),
  });
  sidecars.push(sidecar);
  return sidecar;
}

const psql = (sql: string) =>
  run(
    'psql',
    ['-X', '-A', '-t', '-h', '127.0.0.1', '-p', String(listenPort), '-U', 'agent', '-d', 'orders', '-c', sql],
    {
      env: { ...process.env, PGCONNECT_TIMEOUT: '10' },
    },
  );

async function jitRoles(): Promise<Array<{ rolname: string; rolcanlogin: boolean }>> {
  const out = await pg.psql(
    `SELECT rolname || '|' || rolcanlogin FROM pg_roles WHERE rolname LIKE 'chaperone\\_%' AND rolname <> 'chaperone_admin' ORDER BY rolname`,
  );
  return out
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const [rolname, login] = l.split('|');
      return { rolname: rolname as string, rolcanlogin: login === 'true' };
    });
}

describe('operator, broker and sidecar together', () => {
  let pod: V1Pod;

  it('injects the pod created in the opted-in namespace', async () => {
    pod = await createAgentPod('orders-agent-1');
    const sidecar = pod.spec?.initContainers?.[0];
    expect(sidecar?.name).toBe('chaperone-sidecar');
    expect(sidecar?.restartPolicy).toBe('Always');
    expect(sidecar?.image).toBe(SIDECAR_IMAGE);
    expect(sidecar?.args).toEqual(expect.arrayContaining(['--broker', `https://127.0.0.1:${httpsPorts[1]}`]));
    expect(pod.spec?.containers[0]?.env).toEqual(
      expect.arrayContaining([
        { name: 'PGHOST', value: '127.0.0.1' },
        { name: 'PGPORT', value: String(listenPort) },
      ]),
    );
    expect(pod.metadata?.annotations?.['chaperone.dev/status']).toBe('injected');
  });

  it('gives the agent masked rows through a JIT role, never the admin login', async () => {
    await startSidecarFor(pod);
    const r = await psql('SELECT id, name, email FROM customers ORDER BY id');
    expect(r.stderr).toBe('');
    const rows = r.stdout.trim().split('\n');
    expect(rows).toHaveLength(2);
    expect(rows[0]).toMatch(/^1\|Ada Lovelace\|\*+\.com$/);
    expect(rows.join('\n')).not.toContain('@example.com');
    const roles = await jitRoles();
    expect(roles).toHaveLength(1);
    expect(roles[0]?.rolcanlogin).toBe(true);
    // The agent's session is the JIT role's, never the admin login.
    const who = await psql('SELECT session_user');
    expect(who.stdout.trim()).toBe(roles[0]?.rolname);
    // The broker's own admin connection (it created the role) may take a moment to leave
    // pg_stat_activity on a loaded machine; the agent's session must never be one of them.
    const adminSessions = () =>
      pg.psql(
        `SELECT DISTINCT usename FROM pg_stat_activity WHERE datname = 'orders' AND usename LIKE 'chaperone\\_%'`,
      );
    let sessions = await adminSessions();
    for (let i = 0; i < 50 && sessions.includes('chaperone_admin'); i++) {
      await new Promise((r) => setTimeout(r, 100));
      sessions = await adminSessions();
    }
    expect(sessions).not.toContain('chaperone_admin');
  });

  it('refuses DDL with SQLSTATE 42501', async () => {
    const r = await run(
      'psql',
      [
        '-X',
        '-h',
        '127.0.0.1',
        '-p',
        String(listenPort),
        '-U',
        'agent',
        '-d',
        'orders',
        '-v',
        'VERBOSITY=verbose',
        '-c',
        'DROP TABLE orders',
      ],
      {},
    );
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('42501');
  });

  async function checkNotifications(ar: AccessRequest): Promise<void> {
    const uid = ar.metadata.uid ?? '';
    const stored = await waitFor(
      'all notifications recorded',
      async () => {
        const got = await json<AccessRequest>(['get', 'accessrequest', ar.metadata.name ?? '', '-n', NS]);
        return (got.status?.notifications ?? []).length === 6 ? got : undefined;
      },
      30_000,
    );
    expect(stored.status?.notifications?.every((n) => n.state === 'Delivered')).toBe(true);
    expect(
      stored.status?.notifications?.find((n) => n.target === 'dba-slack' && n.event === 'requested')
        ?.attempts,
    ).toBe(3);
    // Exactly one of each per target, in its documented shape; the flaky Slack got it once.
    for (const event of ['requested', 'decided']) {
      expect(hook.accepted().filter((m) => m.headers['idempotency-key'] === `${uid}/${event}`)).toHaveLength(
        1,
      );
    }
    expect(slack.received.map((m) => m.status).slice(0, 3)).toEqual([503, 503, 200]);
    expect(slack.accepted()).toHaveLength(2);
    expect(teams.accepted()).toHaveLength(2);
    for (const m of slack.accepted()) expect(slackViolations(JSON.parse(m.body))).toEqual([]);
    for (const m of teams.accepted()) expect(teamsViolations(JSON.parse(m.body))).toEqual([]);
    for (const m of hook.accepted()) expect(webhookViolations(m.body, m.headers, SIGNING_KEY)).toEqual([]);
    const [first, followUp] = slack.accepted().map((m) => JSON.stringify(JSON.parse(m.body)));
    expect(first).toContain(`kubectl chaperone approve ${ar.metadata.name} -n ${NS}`);
    expect(first).toContain('write-needs-approval');
    expect(first).toContain(`https://audit.example.test/ui/sessions/`);
    expect(followUp).toContain('Approved by alice');
    // Kubernetes-native signals: Events on the request and on the agent pod, created and decided.
    const events = await waitFor(
      'the decision Events',
      async () => {
        const list = await json<{
          items: { reason: string; message: string; involvedObject: { kind: string; name: string } }[];
        }>(['get', 'events', '-n', NS]);
        const reasons = (kind: string, name: string) =>
          list.items
            .filter((e) => e.involvedObject.kind === kind && e.involvedObject.name === name)
            .map((e) => e.reason);
        const onRequest = reasons('AccessRequest', ar.metadata.name ?? '');
        const onPod = reasons('Pod', ar.spec.requester.pod?.name ?? '');
        return ['ApprovalRequested', 'Approved', 'Notified'].every((r) => onRequest.includes(r)) &&
          ['ApprovalRequested', 'Approved'].every((r) => onPod.includes(r))
          ? list
          : undefined;
      },
      30_000,
    );
    // The webhook URLs and the signing key appear in no Event, status or log line.
    const everything = JSON.stringify({
      events,
      stored,
      logs: operatorLogs,
      all: await kubectl(['get', 'events', '-A', '-o', 'json']),
    });
    for (const secret of [SIGNING_KEY, SLACK_TOKEN, 'teams-url-sig', `${hook.url}/chaperone`])
      expect(everything).not.toContain(secret);
  }

  it('pauses an UPDATE until an approver approves the AccessRequest with kubectl', async () => {
    const update = psql(`UPDATE orders SET status = 'shipped' WHERE id = 1`);
    const ar = await waitFor('an AccessRequest', async () => {
      const list = await json<{ items: AccessRequest[] }>(['get', 'accessrequests', '-n', NS]);
      return list.items.find((a) => (a.status?.phase ?? 'Pending') === 'Pending');
    });
    const name = ar.metadata.name ?? '';
    expect(ar.spec.requester.serviceAccount).toEqual({ namespace: NS, name: 'orders-agent' });
    expect(ar.spec.requester.pod?.uid).toBe(pod.metadata?.uid);
    expect(ar.spec.rule).toBe('write-needs-approval');
    const patch = ['patch', 'accessrequest', name, '-n', NS, '--subresource=status', '--type=merge'];
    const refused = await cp.kubectl([...patch, '-p', '{"status":{"decision":{"verdict":"Approved"}}}'], {
      user: mallory,
    });
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/not an approver/);
    await kubectl([...patch, '-p', '{"status":{"decision":{"verdict":"Approved","comment":"ok"}}}'], {
      user: alice,
    });
    const r = await update;
    expect(r.stderr).not.toMatch(/ERROR/);
    expect(r.stdout).toContain('UPDATE 1');
    expect((await pg.psql('SELECT status FROM orders WHERE id = 1', { database: 'orders' })).trim()).toBe(
      'shipped',
    );
    const decided = await json<AccessRequest>(['get', 'accessrequest', name, '-n', NS]);
    expect(decided.status?.phase).toBe('Approved');
    expect(decided.status?.decision?.by).toBe('alice');
    await checkNotifications(decided);
  }, 60_000);

  it('keeps a waiting statement through a restart of the broker replica it talks to', async () => {
    const update = psql(`UPDATE orders SET status = 'packed' WHERE id = 2`);
    const pending = async () => {
      const list = await json<{ items: AccessRequest[] }>(['get', 'accessrequests', '-n', NS]);
      return list.items.find((a) => (a.status?.phase ?? 'Pending') === 'Pending');
    };
    const ar = await waitFor('an AccessRequest', pending);
    const serving = operators[1] as RunningOperator;
    await serving.stop();
    operators[1] = await startReplica('operator-1b', httpsPorts[1] as number);
    await kubectl(
      [
        'patch',
        'accessrequest',
        ar.metadata.name ?? '',
        '-n',
        NS,
        '--subresource=status',
        '--type=merge',
        '-p',
        '{"status":{"decision":{"verdict":"Approved"}}}',
      ],
      { user: alice },
    );
    const r = await update;
    expect(r.stdout).toContain('UPDATE 1');
    expect((await pg.psql('SELECT status FROM orders WHERE id = 2', { database: 'orders' })).trim()).toBe(
      'packed',
    );
  }, 60_000);

  it('refuses forged, wrong-audience and unbound tokens at the broker and issues nothing', async () => {
    const before = await jitRoles();
    const ca = await operatorCa();
    const call = (token: string) =>
      postJson(`https://127.0.0.1:${httpsPorts[1]}/v1/credentials`, ca, token, {
        connection: 'orders-db',
        type: 'postgres',
      });
    const wrongAudience = (
      await kubectl([
        'create',
        'token',
        'orders-agent',
        '-n',
        NS,
        '--bound-object-kind',
        'Pod',
        '--bound-object-name',
        'orders-agent-1',
      ])
    ).trim();
    const unbound = (
      await kubectl(['create', 'token', 'orders-agent', '-n', NS, '--audience', 'chaperone'])
    ).trim();
    const forged = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from('{"sub":"system:serviceaccount:shop:orders-agent"}').toString('base64url')}.`;
    const answers = await Promise.all([forged, wrongAudience, unbound, ''].map((t) => call(t)));
    expect(answers.map((a) => a.status)).toEqual([401, 401, 403, 401]);
    expect(answers[1]?.body.error).toMatch(/audience chaperone/);
    expect(answers[2]?.body.error).toMatch(/not bound to a pod/);
    expect(await jitRoles()).toEqual(before);
  });

  it('refuses a Connection in another namespace that names the admin Secret, at the broker and in its status', async () => {
    const before = await jitRoles();
    await kubectl(['apply', '-f', '-'], {
      input: `
apiVersion: v1
kind: Namespace
metadata: { name: other, labels: { chaperone.dev/injection: enabled } }
---
apiVersion: v1
kind: ServiceAccount
metadata: { name: thief, namespace: other }
---
apiVersion: chaperone.dev/v1alpha1
kind: Connection
metadata: { name: borrowed-db, namespace: other }
spec:
  type: postgres
  endpoint: { host: 127.0.0.1, port: ${pg.port}, database: orders, tls: { mode: disable } }
  listen: { port: ${listenPort} }
  credentials:
    postgres: { adminSecretRef: { name: orders-db-admin }, grantRoles: [orders_reader] }
`,
    });
    await kubectl(['apply', '-f', '-'], {
      input: JSON.stringify({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: {
          name: 'thief',
          namespace: 'other',
          annotations: { 'chaperone.dev/connections': 'borrowed-db' },
        },
        spec: { serviceAccountName: 'thief', containers: [{ name: 'agent', image: 'agent:1' }] },
      }),
    });
    const token = (
      await kubectl([
        'create',
        'token',
        'thief',
        '-n',
        'other',
        '--audience',
        'chaperone',
        '--bound-object-kind',
        'Pod',
        '--bound-object-name',
        'thief',
      ])
    ).trim();
    const answer = await postJson(
      `https://127.0.0.1:${httpsPorts[1]}/v1/credentials`,
      await operatorCa(),
      token,
      {
        connection: 'borrowed-db',
        type: 'postgres',
      },
    );
    expect(answer.status).toBe(502);
    expect(answer.body.error).toMatch(/may be used by Connections in shop, not other/);
    expect(await jitRoles()).toEqual(before);
    const status = await waitFor('the Connection status to say why', async () => {
      const c = await json<{
        status?: { conditions?: Array<{ type: string; status: string; reason: string }> };
      }>(['get', 'connection', 'borrowed-db', '-n', 'other']);
      return c.status?.conditions?.find((x) => x.type === 'CredentialsValid');
    });
    expect([status.status, status.reason]).toEqual(['False', 'AdminSecretNotAllowed']);
  });

  it('issues an SSH user certificate and an API token through the broker, both accepted by the real servers', async () => {
    const sshd = await startSshd();
    try {
      const caKey = await readFile(sshd.userCaKeyPath, 'utf8');
      const caBundle = Buffer.from(await readFile(cp.caCertPath)).toString('base64');
      await kubectl(['apply', '-f', '-'], {
        input: `
apiVersion: v1
kind: Secret
metadata: { name: bastion-user-ca, namespace: ${OP_NS}, annotations: { chaperone.dev/allowed-namespaces: ${NS} } }
stringData: { ca: ${JSON.stringify(caKey)} }
---
apiVersion: v1
kind: ServiceAccount
metadata: { name: cluster-reader, namespace: ${NS} }
---
apiVersion: chaperone.dev/v1alpha1
kind: Connection
metadata: { name: bastion, namespace: ${NS} }
spec:
  type: ssh
  endpoint: { host: 127.0.0.1, port: ${sshd.port}, hostKeys: [${JSON.stringify(sshd.hostPublicKey.trim())}] }
  listen: { port: ${await freePort()} }
  credentials: { ssh: { caSecretRef: { name: bastion-user-ca }, principals: [${sshd.loginUser}], ttl: 5m } }
---
apiVersion: chaperone.dev/v1alpha1
kind: Connection
metadata: { name: cluster-api, namespace: ${NS} }
spec:
  type: kubernetes
  endpoint: { url: ${JSON.stringify(cp.server)}, caBundle: ${caBundle} }
  listen: { port: ${await freePort()} }
  credentials: { kubernetes: { serviceAccountRef: { name: cluster-reader }, ttl: 10m } }
`,
      });
      const pod = await createAgentPod('ops-agent', 'bastion,cluster-api');
      expect(pod.spec?.containers[0]?.env?.map((e) => e.name)).toEqual(
        expect.arrayContaining(['CHAPERONE_SSH_CONFIG', 'KUBECONFIG']),
      );
      const token = (
        await kubectl([
          'create',
          'token',
          'orders-agent',
          '-n',
          NS,
          '--audience',
          'chaperone',
          '--bound-object-kind',
          'Pod',
          '--bound-object-name',
          'ops-agent',
        ])
      ).trim();
      const ca = await operatorCa();
      const broker = `https://127.0.0.1:${httpsPorts[1]}/v1/credentials`;

      const key = await sshd.newUserKey('sidecar');
      const publicKey = (await readFile(`${key}.pub`, 'utf8')).trim();
      const ssh = (await postJson(broker, ca, token, {
        connection: 'bastion',
        type: 'ssh',
        publicKey,
      })) as unknown as {
        status: number;
        body: { certificate: string; principals: string[] };
      };
      expect(ssh.status).toBe(200);
      expect(ssh.body.principals).toEqual([sshd.loginUser]);
      await writeFile(`${key}-cert.pub`, `${ssh.body.certificate}\n`);
      const login = await run('ssh', [...sshClientArgs(sshd, key), 'echo logged-in']);
      expect(login.stdout.trim(), login.stderr).toBe('logged-in');

      const kube = (await postJson(broker, ca, token, {
        connection: 'cluster-api',
        type: 'kubernetes',
      })) as unknown as {
        status: number;
        body: { token: string };
      };
      expect(kube.status, JSON.stringify(kube.body)).toBe(200);
      const whoami = await selfSubjectReview(kube.body.token);
      expect(whoami).toBe(`system:serviceaccount:${NS}:cluster-reader`);

      // The injected sidecar gets such a token from the broker itself and serves the agent's
      // kubectl through the kubeconfig it writes into the shared agent-config folder.
      await kubectl(['apply', '-f', '-'], {
        input: `
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: { name: pod-reader, namespace: ${NS} }
rules: [{ apiGroups: [''], resources: [pods], verbs: [get, list] }]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: { name: cluster-reader-pods, namespace: ${NS} }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: Role, name: pod-reader }
subjects: [{ kind: ServiceAccount, name: cluster-reader, namespace: ${NS} }]
---
apiVersion: chaperone.dev/v1alpha1
kind: AccessPolicy
metadata: { name: cluster-readers, namespace: ${NS} }
spec:
  subjects: [{ kind: ServiceAccount, name: orders-agent }]
  connections: { names: [cluster-api] }
  rules:
    - { name: read-pods, action: allow, kubernetes: { verbs: [get, list], resources: [pods] } }
  approval: { approvers: { groups: [sre] } }
`,
      });
      expect(pod.spec?.automountServiceAccountToken).toBe(false);
      const workDir = await mkdtemp(join(dir, 'sidecar-kube-'));
      const kubeSidecar = await startInjectedSidecar(cp, pod, { workDir, adminPort: await freePort() });
      try {
        const agentKubectl = (args: string[]) =>
          run(cp.kubectlPath, ['--kubeconfig', join(workDir, 'agent', 'kubeconfig'), ...args]);
        const pods = await agentKubectl(['get', 'pods', '-n', NS, '-o', 'name']);
        expect(pods.stderr).toBe('');
        expect(pods.stdout).toContain('pod/ops-agent');
        const denied = await agentKubectl(['get', 'secrets', '-n', NS]);
        expect(denied.code).not.toBe(0);
        expect(denied.stderr).toContain('no rule allows');
      } finally {
        await kubeSidecar.stop();
      }

      // orders-db exists and this pod's ServiceAccount may use it elsewhere, but this pod did not
      // declare it: refused even with a valid token.
      const refused = await postJson(broker, ca, token, { connection: 'orders-db', type: 'postgres' });
      expect(refused.status).toBe(403);
    } finally {
      await sshd.stop();
    }
  });

  it('disables the JIT role after its TTL and terminates its sessions', async () => {
    const roles = await jitRoles();
    expect(roles.some((r) => r.rolcanlogin)).toBe(true);
    // A session still open when the TTL ends is ended by the server, not left running.
    const longSession = psql('SELECT pg_sleep(600)');
    await waitFor(
      'the long session to run',
      async () =>
        (
          await pg.psql(`SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(600)%'`)
        ).trim() === '1',
    );
    await waitFor(
      'the role to be disabled after its 1m TTL',
      async () => (await jitRoles()).every((r) => !r.rolcanlogin),
      120_000,
    );
    const ended = await longSession;
    expect(ended.code).not.toBe(0);
    expect(ended.stderr).toMatch(
      /terminating connection due to administrator command|server closed the connection/,
    );
  }, 150_000);

  it('disables the role of a deleted pod', async () => {
    const second = await createAgentPod('orders-agent-2');
    // A fresh sidecar for the new pod mints a fresh role.
    await startSidecarFor(second);
    const r = await psql('SELECT count(*) FROM orders');
    expect(r.stdout.trim()).toBe('6');
    const active = (await jitRoles()).filter((x) => x.rolcanlogin);
    expect(active).toHaveLength(1);
    await kubectl(['delete', 'pod', 'orders-agent-2', '-n', NS, '--wait=false']);
    await waitFor(
      'the deleted pod’s role to be disabled',
      async () => (await jitRoles()).every((x) => !x.rolcanlogin),
      30_000,
    );
  });

  it('keeps pending requests across a leader change, and the new leader expires them', async () => {
    const leader = operators.find((o) => o.isLeader);
    expect(leader).toBeDefined();
    const ar: AccessRequest = {
      apiVersion: 'chaperone.dev/v1alpha1',
      kind: 'AccessRequest',
      metadata: { name: 'leader-change', namespace: NS },
      spec: {
        requester: { serviceAccount: { namespace: NS, name: 'orders-agent' } },
        connection: 'orders-db',
        policy: 'orders-agents',
        rule: 'write-needs-approval',
        sessionId: 'S-leader',
        operation: {
          type: 'postgres',
          class: 'write',
          text: 'UPDATE orders SET status = $1',
          fingerprint: 'f',
          riskReasons: [],
        },
        expiresAt: new Date(Date.now() + 8_000).toISOString(),
      },
    } as AccessRequest;
    await kubectl(['apply', '-f', '-'], { input: JSON.stringify(ar) });
    const created = await waitFor(
      'the request’s notifications recorded by the leader',
      async () => {
        const got = await json<AccessRequest>(['get', 'accessrequest', 'leader-change', '-n', NS]);
        return (got.status?.notifications ?? []).length === 3 ? got : undefined;
      },
      20_000,
    );
    await leader?.stop();
    operators = operators.filter((o) => o !== leader);
    await waitFor('the other replica to lead', async () => operators[0]?.isLeader, 20_000);
    const expired = await waitFor(
      'the pending request to expire under the new leader',
      async () => {
        const got = await json<AccessRequest>(['get', 'accessrequest', 'leader-change', '-n', NS]);
        return got.status?.phase === 'Expired' ? got : undefined;
      },
      30_000,
    );
    expect(expired.status?.decision).toBeUndefined();
    // The new leader sent the follow-up and nothing it found recorded: one of each, per target.
    const uid = created.metadata.uid;
    await waitFor(
      'the expiry follow-up',
      async () => hook.accepted().some((m) => m.headers['idempotency-key'] === `${uid}/decided`),
      20_000,
    );
    for (const event of ['requested', 'decided']) {
      expect(hook.accepted().filter((m) => m.headers['idempotency-key'] === `${uid}/${event}`)).toHaveLength(
        1,
      );
    }
  }, 60_000);
});

async function operatorCa(): Promise<string> {
  const secret = await json<{ data: Record<string, string> }>([
    'get',
    'secret',
    'chaperone-operator-tls',
    '-n',
    OP_NS,
  ]);
  return Buffer.from(secret.data['ca.crt'] as string, 'base64').toString();
}

async function postJson(
  url: string,
  ca: string,
  token: string,
  body: unknown,
): Promise<{ status: number; body: { error: string } }> {
  const res = await httpsJson(url, { ca, token, body });
  return { status: res.status, body: res.json as { error: string } };
}

/** Who the API server says a bearer token is (SelfSubjectReview, no kubeconfig involved). */
async function selfSubjectReview(token: string): Promise<string> {
  const res = await httpsJson(`${cp.server}/apis/authentication.k8s.io/v1/selfsubjectreviews`, {
    ca: await readFile(cp.caCertPath, 'utf8'),
    token,
    body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' },
  });
  const status = res.json.status as { userInfo?: { username?: string } } | undefined;
  return status?.userInfo?.username ?? `HTTP ${res.status}: ${res.text}`;
}
