// The "orders" scenario on a real API server and PostgreSQL, shared by the operator's integration
// test and `make demo MODE=cluster`: the database, what a platform team applies, and the sidecar
// started exactly as the webhook injected it (no kubelet here: a local process instead of a container).
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { V1Container, V1Pod } from '@kubernetes/client-node';
import type { ControlPlane } from './control-plane.js';
import type { TestPostgres } from './postgres.js';
import { repoPath } from './repo.js';

export interface OrdersScenario {
  operatorNamespace: string;
  /** The agents' namespace: opted in to injection. */
  namespace: string;
  pgPort: number;
  /** Where the sidecar reaches PostgreSQL (default 127.0.0.1; in the local cluster the bridge gateway). */
  pgHost?: string;
  /** The sidecar's listener for orders-db (spec.listen.port). */
  listenPort: number;
  adminPassword: string;
  /** JIT role lifetime (spec.credentials.postgres.ttl). */
  ttl: string;
  /**
   * Also create the operator's namespace and a cluster-admin ServiceAccount for an operator run by
   * the test itself (default true). False when the Helm chart installed the operator with its own RBAC.
   */
  operatorAccount?: boolean;
}

/** Database `orders` with customers (email is masked) and orders, an admin with CREATEROLE, a grant role. */
export async function createOrdersDatabase(pg: TestPostgres, adminPassword: string): Promise<void> {
  await pg.psql(
    `CREATE ROLE chaperone_admin LOGIN CREATEROLE PASSWORD '${adminPassword.replaceAll("'", "''")}'`,
  );
  await pg.psql('CREATE ROLE orders_reader NOLOGIN');
  await pg.psql('GRANT orders_reader TO chaperone_admin WITH ADMIN OPTION');
  await pg.psql('CREATE DATABASE orders');
  await pg.psql(
    `CREATE TABLE customers (id int PRIMARY KEY, name text, email text);
     CREATE TABLE orders (id int PRIMARY KEY, customer_id int REFERENCES customers, status text);
     INSERT INTO customers VALUES (1, 'Ada Lovelace', 'ada@example.com'), (2, 'Alan Turing', 'alan@example.com');
     INSERT INTO orders SELECT g, 1 + g % 2, 'open' FROM generate_series(1, 6) g;
     GRANT SELECT ON customers, orders TO orders_reader;
     GRANT UPDATE ON orders TO orders_reader;`,
    { database: 'orders' },
  );
}

/**
 * What the platform team applies: the operator's namespace and ServiceAccount (cluster-admin here;
 * the chart's least-privilege RBAC is tested on its own), the admin Secret allowed for the agents'
 * namespace, the Connection, the AccessPolicy (reads allowed, writes approved by group dba, DDL
 * denied, customers.email masked), and approver RBAC for every user (the policy decides who may).
 */
export function ordersScenarioManifests(s: OrdersScenario): string {
  const operatorAccount =
    s.operatorAccount === false
      ? ''
      : `
apiVersion: v1
kind: Namespace
metadata: { name: ${s.operatorNamespace} }
---
apiVersion: v1
kind: ServiceAccount
metadata: { name: chaperone-operator, namespace: ${s.operatorNamespace} }
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: { name: chaperone-operator-${s.operatorNamespace} }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin }
subjects: [{ kind: ServiceAccount, name: chaperone-operator, namespace: ${s.operatorNamespace} }]
---`;
  return `${operatorAccount}
apiVersion: v1
kind: Secret
metadata:
  name: orders-db-admin
  namespace: ${s.operatorNamespace}
  annotations: { chaperone.dev/allowed-namespaces: ${s.namespace} }
stringData: { username: chaperone_admin, password: ${JSON.stringify(s.adminPassword)} }
---
apiVersion: v1
kind: Namespace
metadata: { name: ${s.namespace}, labels: { chaperone.dev/injection: enabled } }
---
apiVersion: v1
kind: ServiceAccount
metadata: { name: orders-agent, namespace: ${s.namespace} }
---
apiVersion: chaperone.dev/v1alpha1
kind: Connection
metadata: { name: orders-db, namespace: ${s.namespace} }
spec:
  type: postgres
  endpoint: { host: ${s.pgHost ?? '127.0.0.1'}, port: ${s.pgPort}, database: orders, tls: { mode: disable } }
  listen: { port: ${s.listenPort} }
  credentials:
    postgres: { adminSecretRef: { name: orders-db-admin }, grantRoles: [orders_reader], ttl: ${s.ttl} }
---
apiVersion: chaperone.dev/v1alpha1
kind: AccessPolicy
metadata: { name: orders-agents, namespace: ${s.namespace} }
spec:
  subjects: [{ kind: ServiceAccount, name: orders-agent }]
  connections: { names: [orders-db] }
  rules:
    - { name: no-ddl, action: deny, reason: Schema changes go through migrations., postgres: { operations: [ddl] } }
    - { name: read, action: allow, postgres: { operations: [read] } }
    - { name: write-needs-approval, action: approve, reason: Data changes need a DBA., postgres: { operations: [write] } }
  masking: { columns: [{ column: public.customers.email, strategy: partial }] }
  approval: { approvers: { groups: [dba] }, required: 1, timeout: 10m }
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: { name: chaperone-approver-${s.namespace} }
rules:
  - { apiGroups: [chaperone.dev], resources: [accessrequests], verbs: [get, list, watch] }
  - { apiGroups: [chaperone.dev], resources: [accessrequests/status], verbs: [get, patch] }
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: { name: approvers, namespace: ${s.namespace} }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: chaperone-approver-${s.namespace} }
subjects: [{ apiGroup: rbac.authorization.k8s.io, kind: Group, name: 'system:authenticated' }]
`;
}

/** A kubeconfig file that authenticates as the operator's ServiceAccount (a TokenRequest token). */
export async function operatorKubeconfig(
  cp: {
    server: string;
    caCertPath: string;
    kubectl(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }>;
  },
  namespace: string,
  file: string,
): Promise<string> {
  const r = await cp.kubectl(['create', 'token', 'chaperone-operator', '-n', namespace, '--duration', '2h']);
  if (r.code !== 0) throw new Error(`kubectl create token: ${r.stderr}`);
  await writeFile(
    file,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'test', cluster: { server: cp.server, 'certificate-authority': cp.caCertPath } }],
      users: [{ name: 'operator', user: { token: r.stdout.trim() } }],
      contexts: [{ name: 'operator', context: { cluster: 'test', user: 'operator' } }],
      'current-context': 'operator',
    }),
    { mode: 0o600 },
  );
  return file;
}

export interface InjectedSidecar {
  process: ChildProcess;
  /** The args it runs with: the container's, with file paths moved under workDir. */
  args: string[];
  adminPort: number;
  stderr(): string;
  stop(): Promise<void>;
}

/**
 * Runs sidecar/dist/cli.js with the injected container's own args and env (downward-API values
 * filled in), its projected tokens written as files: minted by the caller with TokenRequest bound to
 * the pod, as the kubelet would. Only paths (to workDir) and the admin port change.
 */
export async function startInjectedSidecar(
  cp: ControlPlane,
  pod: V1Pod,
  opts: { workDir: string; adminPort: number; collector?: boolean },
): Promise<InjectedSidecar> {
  const container = pod.spec?.initContainers?.find((c) => c.name === 'chaperone-sidecar') as
    | V1Container
    | undefined;
  if (!container) throw new Error(`pod ${pod.metadata?.name} has no chaperone-sidecar init container`);
  const ns = pod.metadata?.namespace ?? 'default';
  const podName = pod.metadata?.name ?? '';
  const token = async (audience: string) => {
    const r = await cp.kubectl([
      'create',
      'token',
      pod.spec?.serviceAccountName ?? 'default',
      '-n',
      ns,
      '--audience',
      audience,
      '--bound-object-kind',
      'Pod',
      '--bound-object-name',
      podName,
      '--duration',
      '1h',
    ]);
    if (r.code !== 0) throw new Error(`kubectl create token: ${r.stderr}`);
    return r.stdout.trim();
  };
  const dir = opts.workDir;
  const paths: Record<string, string> = {
    '/var/run/secrets/chaperone.dev/tokens/broker-token': join(dir, 'broker-token'),
    '/var/run/secrets/chaperone.dev/tokens/collector-token': join(dir, 'collector-token'),
    '/var/spool/chaperone': join(dir, 'spool'),
    '/var/run/chaperone.dev/agent': join(dir, 'agent'),
  };
  await mkdir(join(dir, 'spool'), { recursive: true });
  await writeFile(join(dir, 'broker-token'), await token('chaperone'), { mode: 0o600 });
  if (opts.collector) {
    await writeFile(join(dir, 'collector-token'), await token('chaperone-collector'), { mode: 0o600 });
  }
  const args = (container.args ?? []).map((a) => paths[a] ?? a);
  const i = args.indexOf('--admin-port');
  if (i >= 0) args[i + 1] = String(opts.adminPort);
  args.push('--admin-address', '127.0.0.1', '--recordings', join(dir, 'recordings'));
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH };
  for (const e of container.env ?? []) if (e.value !== undefined) env[e.name] = e.value;
  Object.assign(env, { POD_NAME: podName, POD_NAMESPACE: ns, POD_UID: pod.metadata?.uid ?? '' });
  let stderr = '';
  const child = spawn(process.execPath, ['--liftoff-only', repoPath('sidecar/dist/cli.js'), ...args], {
    env,
    cwd: dir,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-50_000);
  });
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the sidecar exited with ${child.exitCode}:\n${stderr}`);
    const ok = await fetch(`http://127.0.0.1:${opts.adminPort}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`the sidecar was not ready within 60 s:\n${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    process: child,
    args,
    adminPort: opts.adminPort,
    stderr: () => stderr,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}
