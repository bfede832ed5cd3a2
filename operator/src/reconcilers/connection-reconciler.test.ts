import { generateKeyPairSync } from 'node:crypto';
import { ALLOWED_NAMESPACES_ANNOTATION, type Condition, type Connection } from '@chaperone/api';
import sshpk from 'sshpk';
import { describe, expect, it } from 'vitest';
import {
  type ConnectionReconcileDeps,
  canGrantRole,
  checkSshCaKey,
  type PostgresProbeInput,
  type PostgresProbeResult,
  type ProbeResult,
  reconcileConnection,
  type SecretData,
} from './connection-reconciler.js';

const OPERATOR_NS = 'chaperone-system';
const NOW = new Date('2030-01-01T12:00:00Z');
const PASSWORD = 's3cret-admin-password';

function postgresConnection(over: Partial<Connection['spec']> = {}): Connection {
  return {
    apiVersion: 'chaperone.dev/v1alpha1',
    kind: 'Connection',
    metadata: { name: 'orders-db', namespace: 'team-a', generation: 3 },
    spec: {
      type: 'postgres',
      endpoint: { host: 'db.example', port: 5432, database: 'orders' },
      listen: { port: 15432 },
      credentials: {
        postgres: { adminSecretRef: { name: 'orders-db-admin' }, grantRoles: ['orders_reader'] },
      },
      ...over,
    },
  };
}

function sshConnection(): Connection {
  return {
    apiVersion: 'chaperone.dev/v1alpha1',
    kind: 'Connection',
    metadata: { name: 'bastion', namespace: 'team-a', generation: 1 },
    spec: {
      type: 'ssh',
      endpoint: { host: 'bastion.example', port: 22, hostKeys: ['ssh-ed25519 AAAA'] },
      listen: { port: 12222 },
      credentials: { ssh: { caSecretRef: { name: 'bastion-ca' }, principals: ['deploy'] } },
    },
  };
}

function kubeConnection(
  over: Partial<Connection['spec']['endpoint']> = {},
  saNamespace?: string,
): Connection {
  return {
    apiVersion: 'chaperone.dev/v1alpha1',
    kind: 'Connection',
    metadata: { name: 'cluster', namespace: 'team-a', generation: 1 },
    spec: {
      type: 'kubernetes',
      endpoint: { url: 'https://10.0.0.1:6443', ...over },
      listen: { port: 16443 },
      credentials: {
        kubernetes: {
          serviceAccountRef: { name: 'agent-upstream', ...(saNamespace ? { namespace: saNamespace } : {}) },
        },
      },
    },
  };
}

const okProbe = (
  over: Partial<Extract<PostgresProbeResult, { outcome: 'ok' }>> = {},
): PostgresProbeResult => ({
  outcome: 'ok',
  serverVersionNum: 150004,
  serverVersion: '15.4',
  tls: true,
  role: { name: 'chaperone_admin', superuser: false, createRole: true },
  grantRoles: [{ name: 'orders_reader', exists: true, superuser: false, adminOption: true }],
  ...over,
});

interface FakeOptions {
  secrets?: Record<string, SecretData>;
  /** Default: every Secret allows all namespaces. */
  secretAnnotations?: Record<string, Record<string, string>>;
  secretError?: string;
  serviceAccounts?: string[];
  tcp?: ProbeResult;
  postgres?: PostgresProbeResult | Error;
  ssh?: ProbeResult;
  kube?: ProbeResult;
}

function fakeDeps(o: FakeOptions = {}) {
  const calls: {
    secrets: string[];
    postgres: PostgresProbeInput[];
    kube: { url: string; caPem?: string; insecureSkipTLSVerify?: boolean }[];
    tcp: number;
  } = { secrets: [], postgres: [], kube: [], tcp: 0 };
  const deps: ConnectionReconcileDeps = {
    now: () => NOW,
    operatorNamespace: OPERATOR_NS,
    async readSecret(namespace, name) {
      calls.secrets.push(`${namespace}/${name}`);
      if (o.secretError) throw new Error(o.secretError);
      const data = o.secrets?.[`${namespace}/${name}`];
      if (!data) return undefined;
      return {
        data,
        annotations: o.secretAnnotations?.[`${namespace}/${name}`] ?? {
          [ALLOWED_NAMESPACES_ANNOTATION]: '*',
        },
      };
    },
    async serviceAccountExists(namespace, name) {
      return (o.serviceAccounts ?? []).includes(`${namespace}/${name}`);
    },
    async probeTcp() {
      calls.tcp++;
      return o.tcp ?? { ok: true, detail: 'TCP connect' };
    },
    async probePostgres(input) {
      calls.postgres.push(input);
      if (o.postgres instanceof Error) throw o.postgres;
      return o.postgres ?? okProbe();
    },
    async probeSsh() {
      return o.ssh ?? { ok: true, detail: 'SSH-2.0-OpenSSH_9.2' };
    },
    async probeKubernetesApi(url, opts) {
      calls.kube.push({ url, ...opts });
      return o.kube ?? { ok: true, detail: 'HTTP 401 for GET /version' };
    },
  };
  return { deps, calls };
}

const adminSecret = {
  [`${OPERATOR_NS}/orders-db-admin`]: { username: 'chaperone_admin', password: PASSWORD },
};

function cond(conditions: Condition[] | undefined, type: string): Condition {
  const c = conditions?.find((x) => x.type === type);
  if (!c) throw new Error(`no ${type} condition`);
  return c;
}

interface PostgresCase {
  name: string;
  conn?: Connection;
  fake: FakeOptions;
  credentials: [Condition['status'], string];
  reachable: [Condition['status'], string];
  ready: [Condition['status'], string];
  /** Substrings the message of the leading failing condition must contain. */
  says?: string[];
}

const postgresCases: PostgresCase[] = [
  {
    name: 'all checks pass',
    fake: { secrets: adminSecret },
    credentials: ['True', 'Valid'],
    reachable: ['True', 'Reached'],
    ready: ['True', 'Ready'],
  },
  {
    name: 'admin Secret missing',
    fake: { secrets: {} },
    credentials: ['False', 'AdminSecretNotFound'],
    reachable: ['True', 'Reached'],
    ready: ['False', 'AdminSecretNotFound'],
    says: [
      '"orders-db-admin"',
      `"${OPERATOR_NS}"`,
      'kubectl -n chaperone-system create secret generic orders-db-admin',
    ],
  },
  {
    name: 'admin Secret missing and target down',
    fake: { secrets: {}, tcp: { ok: false, message: 'connect ECONNREFUSED' } },
    credentials: ['False', 'AdminSecretNotFound'],
    reachable: ['False', 'Unreachable'],
    ready: ['False', 'AdminSecretNotFound'],
  },
  {
    name: 'admin Secret unreadable',
    fake: { secretError: 'HTTP 403: secrets "orders-db-admin" is forbidden' },
    credentials: ['Unknown', 'AdminSecretReadFailed'],
    reachable: ['True', 'Reached'],
    ready: ['Unknown', 'AdminSecretReadFailed'],
    says: ['forbidden', 'needs get on secrets'],
  },
  {
    name: 'admin Secret without the password key',
    fake: { secrets: { [`${OPERATOR_NS}/orders-db-admin`]: { username: 'chaperone_admin' } } },
    credentials: ['False', 'AdminSecretInvalid'],
    reachable: ['True', 'Reached'],
    ready: ['False', 'AdminSecretInvalid'],
    says: ['"password"', 'passwordKey'],
  },
  {
    name: 'server unreachable',
    fake: {
      secrets: adminSecret,
      postgres: { outcome: 'unreachable', message: 'connect ECONNREFUSED 10.0.0.5:5432' },
    },
    credentials: ['Unknown', 'NotChecked'],
    reachable: ['False', 'Unreachable'],
    ready: ['False', 'Unreachable'],
    says: ['ECONNREFUSED', 'db.example:5432'],
  },
  {
    name: 'TLS handshake fails',
    fake: {
      secrets: adminSecret,
      postgres: { outcome: 'tls-failed', message: 'self-signed certificate in certificate chain' },
    },
    credentials: ['Unknown', 'NotChecked'],
    reachable: ['False', 'TLSHandshakeFailed'],
    ready: ['False', 'TLSHandshakeFailed'],
    says: ['verify-full', 'caSecretRef'],
  },
  {
    name: 'wrong password',
    fake: {
      secrets: adminSecret,
      postgres: {
        outcome: 'auth-failed',
        message: 'password authentication failed for user "chaperone_admin"',
      },
    },
    credentials: ['False', 'AuthenticationFailed'],
    reachable: ['True', 'Reached'],
    ready: ['False', 'AuthenticationFailed'],
    says: ['chaperone_admin', `"${OPERATOR_NS}/orders-db-admin"`, 'key "password"'],
  },
  {
    name: 'database missing',
    fake: {
      secrets: adminSecret,
      postgres: { outcome: 'database-missing', message: 'database "orders" does not exist' },
    },
    credentials: ['False', 'DatabaseNotFound'],
    reachable: ['True', 'Reached'],
    ready: ['False', 'DatabaseNotFound'],
  },
  {
    name: 'admin role cannot create roles',
    fake: {
      secrets: adminSecret,
      postgres: okProbe({ role: { name: 'chaperone_admin', superuser: false, createRole: false } }),
    },
    credentials: ['False', 'CannotCreateRoles'],
    reachable: ['True', 'Reached'],
    ready: ['False', 'CannotCreateRoles'],
    says: ['ALTER ROLE chaperone_admin CREATEROLE'],
  },
  {
    name: 'a grant role does not exist',
    fake: {
      secrets: adminSecret,
      postgres: okProbe({
        grantRoles: [{ name: 'orders_reader', exists: false, superuser: false, adminOption: false }],
      }),
    },
    credentials: ['False', 'GrantRoleNotFound'],
    reachable: ['True', 'Reached'],
    ready: ['False', 'GrantRoleNotFound'],
    says: ['"orders_reader"', 'CREATE ROLE orders_reader NOLOGIN'],
  },
  {
    name: 'PostgreSQL 16: CREATEROLE without ADMIN OPTION cannot grant',
    fake: {
      secrets: adminSecret,
      postgres: okProbe({
        serverVersionNum: 160002,
        grantRoles: [{ name: 'orders_reader', exists: true, superuser: false, adminOption: false }],
      }),
    },
    credentials: ['False', 'CannotGrantRoles'],
    reachable: ['True', 'Reached'],
    ready: ['False', 'CannotGrantRoles'],
    says: ['GRANT orders_reader TO chaperone_admin WITH ADMIN OPTION'],
  },
  {
    name: 'PostgreSQL 15: CREATEROLE alone may grant',
    fake: {
      secrets: adminSecret,
      postgres: okProbe({
        grantRoles: [{ name: 'orders_reader', exists: true, superuser: false, adminOption: false }],
      }),
    },
    credentials: ['True', 'Valid'],
    reachable: ['True', 'Reached'],
    ready: ['True', 'Ready'],
  },
  {
    name: 'a superuser grant role needs a superuser admin',
    fake: {
      secrets: adminSecret,
      postgres: okProbe({
        grantRoles: [{ name: 'orders_reader', exists: true, superuser: true, adminOption: true }],
      }),
    },
    credentials: ['False', 'CannotGrantRoles'],
    reachable: ['True', 'Reached'],
    ready: ['False', 'CannotGrantRoles'],
  },
  {
    name: 'the probe itself throws',
    fake: { secrets: adminSecret, postgres: new Error('socket hang up') },
    credentials: ['Unknown', 'ProbeFailed'],
    reachable: ['Unknown', 'ProbeFailed'],
    ready: ['Unknown', 'ProbeFailed'],
  },
  {
    name: 'TLS CA Secret missing: nothing is sent to the server',
    conn: postgresConnection({
      endpoint: {
        host: 'db.example',
        port: 5432,
        tls: { mode: 'verify-full', caSecretRef: { name: 'orders-ca' } },
      },
    }),
    fake: { secrets: adminSecret },
    credentials: ['Unknown', 'NotChecked'],
    reachable: ['False', 'CASecretNotFound'],
    ready: ['False', 'CASecretNotFound'],
    says: ['"orders-ca"', `"${OPERATOR_NS}"`, 'ca.crt'],
  },
];

describe('reconcileConnection (postgres)', () => {
  it.each(postgresCases)('$name', async (c) => {
    const { deps } = fakeDeps(c.fake);
    const out = await reconcileConnection(c.conn ?? postgresConnection(), deps);
    const conditions = out.status?.conditions;
    const summary = (type: string) => [cond(conditions, type).status, cond(conditions, type).reason];
    expect(summary('CredentialsValid')).toEqual(c.credentials);
    expect(summary('Reachable')).toEqual(c.reachable);
    expect(summary('Ready')).toEqual(c.ready);
    const ready = cond(conditions, 'Ready');
    for (const s of c.says ?? []) expect(ready.message).toContain(s);
    // Whatever happened, the password is never in the status or an Event.
    expect(JSON.stringify(out)).not.toContain(PASSWORD);
    expect(out.status?.observedGeneration).toBe(3);
    for (const x of conditions ?? []) expect(x.observedGeneration).toBe(3);
    expect(out.requeueAfterMs).toBe(ready.status === 'True' ? 300_000 : 60_000);
    expect(out.events).toHaveLength(1);
    expect(out.events[0]!.type).toBe(ready.status === 'True' ? 'Normal' : 'Warning');
  });

  it('reads the admin Secret from the operator namespace with the configured keys and passes TLS settings on', async () => {
    const conn = postgresConnection({
      endpoint: {
        host: 'db.example',
        port: 5432,
        database: 'orders',
        tls: {
          mode: 'verify-ca',
          caSecretRef: { name: 'orders-ca', key: 'bundle.pem' },
          serverName: 'db.internal',
        },
      },
      credentials: {
        postgres: {
          adminSecretRef: { name: 'orders-db-admin', usernameKey: 'user', passwordKey: 'pass' },
          grantRoles: ['orders_reader'],
          database: 'admin_db',
        },
      },
    });
    const ca = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
    const { deps, calls } = fakeDeps({
      secrets: {
        [`${OPERATOR_NS}/orders-db-admin`]: { user: 'boss', pass: PASSWORD },
        [`${OPERATOR_NS}/orders-ca`]: { 'bundle.pem': ca },
      },
    });
    await reconcileConnection(conn, deps);
    expect(calls.secrets.sort()).toEqual([`${OPERATOR_NS}/orders-ca`, `${OPERATOR_NS}/orders-db-admin`]);
    expect(calls.postgres).toEqual([
      {
        host: 'db.example',
        port: 5432,
        database: 'admin_db',
        user: 'boss',
        password: PASSWORD,
        tls: { mode: 'verify-ca', ca, serverName: 'db.internal' },
        grantRoles: ['orders_reader'],
      },
    ]);
  });

  it('never logs in with an admin Secret that does not allow the Connection namespace', async () => {
    const key = Object.keys(adminSecret)[0] as string;
    const cases: Record<string, string>[] = [{}, { [ALLOWED_NAMESPACES_ANNOTATION]: 'billing' }];
    for (const annotations of cases) {
      const { deps, calls } = fakeDeps({ secrets: adminSecret, secretAnnotations: { [key]: annotations } });
      const out = await reconcileConnection(postgresConnection(), deps);
      const credentials = cond(out.status?.conditions, 'CredentialsValid');
      expect([credentials.status, credentials.reason]).toEqual(['False', 'AdminSecretNotAllowed']);
      expect(credentials.message).toContain(`${ALLOWED_NAMESPACES_ANNOTATION}=`);
      expect(calls.postgres).toEqual([]);
    }
  });

  it('defaults: verify-full, database from the endpoint, then postgres', async () => {
    const a = fakeDeps({ secrets: adminSecret });
    await reconcileConnection(postgresConnection(), a.deps);
    expect(a.calls.postgres[0]!.tls).toEqual({ mode: 'verify-full' });
    expect(a.calls.postgres[0]!.database).toBe('orders');
    const b = fakeDeps({ secrets: adminSecret });
    await reconcileConnection(postgresConnection({ endpoint: { host: 'h', port: 1 } }), b.deps);
    expect(b.calls.postgres[0]!.database).toBe('postgres');
  });

  it('keeps lastTransitionTime and emits no Event while nothing changes; moves both when Ready flips', async () => {
    const conn = postgresConnection();
    const first = await reconcileConnection(conn, fakeDeps({ secrets: adminSecret }).deps);
    const stored: Connection = { ...conn, status: first.status };
    const later = { ...fakeDeps({ secrets: adminSecret }).deps, now: () => new Date('2030-01-01T13:00:00Z') };
    const again = await reconcileConnection(stored, later);
    expect(again.status).toEqual(first.status);
    expect(again.events).toEqual([]);
    const broken = {
      ...fakeDeps({
        secrets: adminSecret,
        postgres: { outcome: 'auth-failed', message: 'password authentication failed' },
      }).deps,
      now: () => new Date('2030-01-01T13:00:00Z'),
    };
    const flipped = await reconcileConnection(stored, broken);
    expect(cond(flipped.status?.conditions, 'Ready').lastTransitionTime).toBe('2030-01-01T13:00:00Z');
    expect(cond(flipped.status?.conditions, 'Reachable').lastTransitionTime).toBe('2030-01-01T12:00:00Z');
    expect(flipped.events).toEqual([
      expect.objectContaining({ type: 'Warning', reason: 'AuthenticationFailed' }),
    ]);
  });
});

describe('canGrantRole', () => {
  const role = (superuser: boolean, createRole: boolean) => ({ name: 'a', superuser, createRole });
  const grant = (superuser: boolean, adminOption: boolean) => ({
    name: 'g',
    exists: true,
    superuser,
    adminOption,
  });
  it.each([
    { r: role(true, false), g: grant(true, false), v: 160000, ok: true },
    { r: role(false, true), g: grant(true, true), v: 150000, ok: false },
    { r: role(false, false), g: grant(false, true), v: 160000, ok: true },
    { r: role(false, true), g: grant(false, false), v: 150000, ok: true },
    { r: role(false, true), g: grant(false, false), v: 160000, ok: false },
    { r: role(false, false), g: grant(false, false), v: 150000, ok: false },
  ])(
    'superuser=$r.superuser createrole=$r.createRole grant-super=$g.superuser admin=$g.adminOption v$v → $ok',
    ({ r, g, v, ok }) => {
      expect(canGrantRole(r, g, v)).toBe(ok);
    },
  );
});

function opensshEd25519(): string {
  const { privateKey } = generateKeyPairSync('ed25519');
  return sshpk
    .parsePrivateKey(privateKey.export({ type: 'pkcs8', format: 'pem' }), 'auto')
    .toString('openssh');
}

describe('reconcileConnection (ssh)', () => {
  const caKey = opensshEd25519();
  it('a parseable CA key and an SSH banner make it Ready', async () => {
    const { deps } = fakeDeps({ secrets: { [`${OPERATOR_NS}/bastion-ca`]: { ca: caKey } } });
    const out = await reconcileConnection(sshConnection(), deps);
    expect(cond(out.status?.conditions, 'Ready').status).toBe('True');
    expect(cond(out.status?.conditions, 'CredentialsValid').message).toMatch(/ed25519 SHA256:/);
    expect(JSON.stringify(out)).not.toContain('PRIVATE KEY');
  });

  it.each<{ name: string; secrets: Record<string, SecretData>; reason: string; says: string }>([
    { name: 'missing Secret', secrets: {}, reason: 'CASecretNotFound', says: 'ssh-keygen' },
    {
      name: 'missing key',
      secrets: { [`${OPERATOR_NS}/bastion-ca`]: { other: caKey } },
      reason: 'CASecretInvalid',
      says: '"ca"',
    },
    {
      name: 'a public key instead of the private one',
      secrets: {
        [`${OPERATOR_NS}/bastion-ca`]: {
          ca: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBjYrBWqnL9U4ZAgBS1fiu9D9A8f3FuGzsIYI9aqXt4E',
        },
      },
      reason: 'CAKeyInvalid',
      says: 'not the .pub',
    },
    {
      name: 'garbage',
      secrets: { [`${OPERATOR_NS}/bastion-ca`]: { ca: 'hello' } },
      reason: 'CAKeyInvalid',
      says: 'bastion-ca',
    },
  ])('$name → $reason', async ({ secrets, reason, says }) => {
    const { deps } = fakeDeps({ secrets });
    const out = await reconcileConnection(sshConnection(), deps);
    const c = cond(out.status?.conditions, 'CredentialsValid');
    expect([c.status, c.reason]).toEqual(['False', reason]);
    expect(c.message).toContain(says);
    expect(cond(out.status?.conditions, 'Ready').reason).toBe(reason);
  });

  it('an encrypted CA key is named as such', () => {
    const { privateKey } = generateKeyPairSync('ed25519');
    const encrypted = privateKey.export({
      type: 'pkcs8',
      format: 'pem',
      cipher: 'aes-256-cbc',
      passphrase: 'pw',
    });
    expect(checkSshCaKey(String(encrypted))).toEqual(
      expect.objectContaining({ ok: false, reason: 'CAKeyEncrypted' }),
    );
  });

  it('no SSH server → Reachable False', async () => {
    const { deps } = fakeDeps({
      secrets: { [`${OPERATOR_NS}/bastion-ca`]: { ca: caKey } },
      ssh: { ok: false, message: 'the server at bastion.example:22 does not speak SSH' },
    });
    const out = await reconcileConnection(sshConnection(), deps);
    const r = cond(out.status?.conditions, 'Reachable');
    expect([r.status, r.reason]).toEqual(['False', 'Unreachable']);
    expect(cond(out.status?.conditions, 'CredentialsValid').status).toBe('True');
    expect(cond(out.status?.conditions, 'Ready').reason).toBe('Unreachable');
  });
});

describe('reconcileConnection (kubernetes)', () => {
  it('ServiceAccount in the Connection namespace by default; Ready when it exists and the server answers', async () => {
    const { deps, calls } = fakeDeps({ serviceAccounts: ['team-a/agent-upstream'] });
    const out = await reconcileConnection(kubeConnection(), deps);
    expect(cond(out.status?.conditions, 'Ready').status).toBe('True');
    expect(calls.kube).toEqual([{ url: 'https://10.0.0.1:6443' }]);
  });

  it('missing ServiceAccount names namespace and name', async () => {
    const { deps } = fakeDeps({ serviceAccounts: ['team-a/agent-upstream'] });
    const out = await reconcileConnection(kubeConnection({}, 'infra'), deps);
    const c = cond(out.status?.conditions, 'CredentialsValid');
    expect([c.status, c.reason]).toEqual(['False', 'ServiceAccountNotFound']);
    expect(c.message).toContain('"infra"');
    expect(c.message).toContain('kubectl -n infra create serviceaccount agent-upstream');
  });

  it('passes the decoded caBundle, reports TLS failures and refuses a caBundle that is not PEM', async () => {
    const pem = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
    const ok = fakeDeps({
      serviceAccounts: ['team-a/agent-upstream'],
      kube: { ok: false, message: 'unable to verify the first certificate', tls: true },
    });
    const out = await reconcileConnection(
      kubeConnection({ caBundle: Buffer.from(pem).toString('base64') }),
      ok.deps,
    );
    expect(ok.calls.kube[0]!.caPem).toBe(pem);
    expect(cond(out.status?.conditions, 'Reachable').reason).toBe('TLSVerificationFailed');

    const bad = fakeDeps({ serviceAccounts: ['team-a/agent-upstream'] });
    const out2 = await reconcileConnection(
      kubeConnection({ caBundle: Buffer.from('nope').toString('base64') }),
      bad.deps,
    );
    expect(cond(out2.status?.conditions, 'Reachable').reason).toBe('CABundleInvalid');
    expect(bad.calls.kube).toEqual([]);
  });
});
