// `make demo MODE=cluster`: the same agent story as `make demo`, but Kubernetes-native — a real
// kube-apiserver + etcd (from the test control plane), the operator process with its webhooks and
// credential broker, a pod injected by the webhook, a just-in-time PostgreSQL role, an approval with
// `kubectl chaperone approve` by a real client-certificate user, and the collector authenticating
// the sidecar with TokenReview. No kubelet: the sidecar runs as a local process with exactly the
// injected container's arguments and a token bound to the pod. Everything runs on 127.0.0.1 and is
// removed at the end. Needs `make build control-plane` (the Makefile does it).
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AccessRequest } from '@chaperone/api';
import { mutatingWebhookConfiguration } from '@chaperone/operator';
import {
  createOrdersDatabase,
  freePort,
  operatorKubeconfig,
  ordersScenarioManifests,
  repoPath,
  run,
  startControlPlane,
  startInjectedSidecar,
  startPostgres,
  waitFor,
} from '@chaperone/testkit';
import type { V1Pod } from '@kubernetes/client-node';
import { dim, green, red, step } from './demo-style.ts';

const OP_NS = 'chaperone-system';
const NS = 'shop';
const t0 = Date.now();

const work = await mkdtemp(join(tmpdir(), 'chaperone-demo-cluster-'));
const children: ChildProcess[] = [];
const start = (name: string, args: string[], env: NodeJS.ProcessEnv = process.env) => {
  const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr?.on('data', (d: Buffer) => {
    log = (log + d.toString()).slice(-20_000);
  });
  child.once('exit', (code) => {
    if (code && code !== 0 && !stopping) console.error(red(`  ${name} exited with ${code}:\n${log}`));
  });
  children.push(child);
  return child;
};
let stopping = false;
let sidecarStop: (() => Promise<void>) | undefined;

step(1, 'A real kube-apiserver + etcd with the CRDs, and a real PostgreSQL (temporary, on 127.0.0.1)');
const [cp, pg] = await Promise.all([startControlPlane({ installCrds: true }), startPostgres()]);
const kubectl = async (args: string[], opts: Parameters<typeof cp.kubectl>[1] = {}) => {
  const r = await cp.kubectl(args, opts);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
};
const getJson = async <T>(args: string[]) => JSON.parse(await kubectl([...args, '-o', 'json'])) as T;
try {
  await createOrdersDatabase(pg, 'demo-admin-password');
  console.log(`  API server ${cp.server}, PostgreSQL 127.0.0.1:${pg.port} (database orders)`);

  step(
    2,
    'The platform team: admin Secret (operator namespace), Connection, AccessPolicy, opted-in namespace',
  );
  const listenPort = await freePort();
  await kubectl(['apply', '-f', '-'], {
    input: ordersScenarioManifests({
      operatorNamespace: OP_NS,
      namespace: NS,
      pgPort: pg.port,
      listenPort,
      adminPassword: 'demo-admin-password',
      ttl: '15m',
    }),
  });
  console.log(
    '  kubectl apply: Secret chaperone-system/orders-db-admin, Connection and AccessPolicy in shop',
  );

  step(3, 'The operator starts: certificates, webhooks, reconcilers and the credential broker');
  const opKubeconfig = await operatorKubeconfig(cp, OP_NS, join(work, 'operator.kubeconfig'));
  const httpsPort = await freePort();
  const collectorPort = await freePort();
  const collectorUrl = `http://127.0.0.1:${collectorPort}`;
  start('operator', [
    repoPath('operator/dist/cli.js'),
    'run',
    '--kubeconfig',
    opKubeconfig,
    '--namespace',
    OP_NS,
    '--pod-name',
    'chaperone-operator-0',
    '--service-account',
    'chaperone-operator',
    '--service-name',
    'chaperone-operator',
    '--https-port',
    String(httpsPort),
    '--metrics-port',
    String(await freePort()),
    '--broker-url',
    `https://127.0.0.1:${httpsPort}`,
    '--extra-cert-ip',
    '127.0.0.1',
    '--sidecar-image',
    'ghcr.io/chaperone-dev/chaperone-sidecar:0.1.0',
    '--collector-url',
    collectorUrl,
  ]);
  const secret = await waitFor('the operator to write its certificate', () =>
    getJson<{ data: Record<string, string> }>(['get', 'secret', 'chaperone-operator-tls', '-n', OP_NS]),
  );
  // What the Helm chart installs, pointed at the operator on loopback (no Service without a cluster network).
  const webhooks = mutatingWebhookConfiguration({
    name: 'chaperone',
    caBundle: secret.data['ca.crt'] as string,
    clientConfig: { url: `https://127.0.0.1:${httpsPort}` },
    operatorNamespace: OP_NS,
  });
  await kubectl(['apply', '-f', '-'], { input: JSON.stringify(webhooks) });
  await waitFor('the Connection to be Ready', async () => {
    const c = await getJson<{ status?: { conditions?: Array<{ type: string; status: string }> } }>([
      'get',
      'connection',
      'orders-db',
      '-n',
      NS,
    ]);
    return c.status?.conditions?.some((x) => x.type === 'Ready' && x.status === 'True');
  });
  console.log(
    `  operator on https://127.0.0.1:${httpsPort}; ${await kubectl(['get', 'connection', '-n', NS])}`.trimEnd(),
  );

  // The collector authenticates sidecars with TokenReview (audience chaperone-collector).
  const auditorToken = randomBytes(12).toString('hex');
  await writeFile(join(work, 'auditor.token'), auditorToken, { mode: 0o600 });
  start('collector', [
    repoPath('collector/dist/cli.js'),
    'serve',
    '--db',
    `sqlite:${join(work, 'collector.db')}`,
    '--port',
    String(collectorPort),
    '--kube-token-review',
    '--kubeconfig',
    cp.admin.kubeconfigPath,
    '--token-audience',
    'chaperone-collector',
    '--auditor-token-file',
    join(work, 'auditor.token'),
  ]);
  await waitFor('the collector', async () => (await fetch(`${collectorUrl}/healthz`)).ok);

  step(4, 'An agent pod is created; the webhook injects its chaperone');
  await kubectl(['apply', '-f', '-'], {
    input: JSON.stringify({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: 'orders-agent',
        namespace: NS,
        annotations: { 'chaperone.dev/connections': 'orders-db' },
      },
      spec: {
        serviceAccountName: 'orders-agent',
        containers: [{ name: 'agent', image: 'postgres:15', command: ['sleep', 'infinity'] }],
      },
    }),
  });
  const pod = await getJson<V1Pod>(['get', 'pod', 'orders-agent', '-n', NS]);
  const injected = pod.spec?.initContainers?.find((c) => c.name === 'chaperone-sidecar');
  const agentEnv = pod.spec?.containers[0]?.env ?? [];
  console.log(
    `  initContainers[0]: ${injected?.name} restartPolicy=${injected?.restartPolicy} image=${injected?.image}`,
  );
  console.log(
    `  agent env: ${agentEnv.map((e) => `${e.name}=${e.value}`).join(' ')}  (no password anywhere)`,
  );

  step(5, 'The sidecar starts as that container would: token bound to the pod, args from the pod spec');
  const sidecar = await startInjectedSidecar(cp, pod, {
    workDir: join(work, 'sidecar'),
    adminPort: await freePort(),
    collector: true,
  });
  sidecarStop = () => sidecar.stop();
  console.log(`  ${dim(`chaperone-sidecar ${sidecar.args.join(' ')}`)}`);

  const psql = (sql: string) =>
    run(
      'psql',
      ['-X', '-h', '127.0.0.1', '-p', String(listenPort), '-U', 'agent', '-d', 'orders', '-c', sql],
      {
        env: { ...process.env, PGCONNECT_TIMEOUT: '10' },
      },
    );
  const show = (r: { stdout: string; stderr: string }) => {
    for (const line of `${r.stdout}${r.stderr}`.trimEnd().split('\n')) console.log(`  ${line}`);
  };

  step(6, 'psql as the agent: rows come back masked, through a role minted for this pod');
  show(
    await psql(
      'SELECT c.id, c.name, c.email, o.status FROM customers c JOIN orders o ON o.customer_id = c.id WHERE o.id <= 2',
    ),
  );
  const roles = await pg.psql(
    `SELECT rolname || '  valid until ' || rolvaliduntil FROM pg_roles WHERE rolname LIKE 'chaperone\\_%' AND rolname <> 'chaperone_admin'`,
  );
  console.log(`  JIT role in PostgreSQL: ${roles.trim()}`);

  step(7, 'A write waits for a DBA: an AccessRequest appears, alice approves with kubectl chaperone');
  const update = psql(`UPDATE orders SET status = 'shipped' WHERE id = 1`);
  const ar = await waitFor('an AccessRequest', async () =>
    (await getJson<{ items: AccessRequest[] }>(['get', 'accessrequests', '-n', NS])).items.find(
      (a) => (a.status?.phase ?? 'Pending') === 'Pending',
    ),
  );
  console.log(`  ${(await kubectl(['get', 'accessrequests', '-n', NS])).trimEnd().split('\n').join('\n  ')}`);
  const alice = await cp.createUser('alice', ['dba']);
  const bin = join(work, 'bin');
  await mkdir(bin);
  await writeFile(
    join(bin, 'kubectl-chaperone'),
    `#!/bin/sh\nexec "${process.execPath}" "${repoPath('operator/dist/kubectl-plugin/kubectl-chaperone.js')}" "$@"\n`,
  );
  await chmod(join(bin, 'kubectl-chaperone'), 0o755);
  const approve = await run(
    cp.kubectlPath,
    ['chaperone', 'approve', ar.metadata.name ?? '', '-n', NS, '--comment', 'ticket OPS-142'],
    {
      env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, KUBECONFIG: alice.kubeconfigPath },
    },
  );
  console.log(`  $ kubectl chaperone approve ${ar.metadata.name} -n ${NS}   ${dim('(as alice, group dba)')}`);
  console.log(`  ${approve.stdout.trim() || approve.stderr.trim()}`);
  show(await update);

  step(8, 'DDL is refused outright (SQLSTATE 42501)');
  show(await psql('DROP TABLE customers'));

  step(9, 'The pod goes away; the operator disables its role and ends its sessions');
  await kubectl(['delete', 'pod', 'orders-agent', '-n', NS, '--wait=false']);
  await waitFor(
    'the role to be disabled',
    async () =>
      (
        await pg.psql(
          `SELECT count(*) FROM pg_roles WHERE rolname LIKE 'chaperone\\_%' AND rolname <> 'chaperone_admin' AND rolcanlogin`,
        )
      ).trim() === '0',
    60_000,
  );
  console.log(`  ${green('role disabled (NOLOGIN)')}; it is dropped after an hour`);

  step(10, 'Auditors find the session in the collector, with the approver');
  const api = async (path: string) =>
    (
      await fetch(`${collectorUrl}${path}`, { headers: { authorization: `Bearer ${auditorToken}` } })
    ).json() as Promise<Record<string, unknown>>;
  const found = await waitFor('the recordings to arrive', async () => {
    const list = (await api('/v1/sessions')) as { sessions?: Array<{ sessionId: string }> };
    for (const s of list.sessions ?? []) {
      const detail = (await api(`/v1/sessions/${encodeURIComponent(s.sessionId)}`)) as {
        events?: Array<{ type: string; data?: Record<string, unknown> }>;
      };
      const decided = detail.events?.find((e) => e.type === 'approval.decided');
      if (decided) return { sessionId: s.sessionId, by: decided.data?.by, sessions: list.sessions?.length };
    }
    return undefined;
  });
  console.log(`  ${found.sessions} sessions; session ${found.sessionId}: approval.decided by ${found.by}`);
  const verify = await api('/v1/verify?from=2000-01-01T00:00:00Z&to=2100-01-01T00:00:00Z');
  console.log(`  hash chains: ${verify.ok === true ? green('verified') : red(JSON.stringify(verify))}`);
  console.log(`\n${green(`Done in ${Math.round((Date.now() - t0) / 1000)} s.`)}`);
} finally {
  stopping = true;
  await sidecarStop?.();
  for (const c of children) c.kill('SIGTERM');
  await Promise.all([cp.stop(), pg.stop()]);
  await rm(work, { recursive: true, force: true });
}
