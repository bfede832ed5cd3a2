import { readFile } from 'node:fs/promises';
import {
  type AccessPolicy,
  type AccessRequest,
  ALLOWED_NAMESPACES_ANNOTATION,
  type Condition,
  type Connection,
} from '@chaperone/api';
import {
  type ControlPlane,
  freePort,
  startControlPlane,
  startPostgres,
  startSshd,
  type TestPostgres,
  type TestSshd,
} from '@chaperone/testkit';
import { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { coreV1EventSink, EventRecorder, REPORTING_CONTROLLER } from './events.js';
import { ControllerManager, type ControllerManagerOptions } from './manager.js';

const OPERATOR_NS = 'chaperone-system';
const NS = 'team-a';
const ADMIN_PASSWORD = 'admin-pw-77c1';
const WRONG_PASSWORD = 'not-the-password-93af';

type Kind = 'connections' | 'accesspolicies' | 'accessrequests';

async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

function condition(obj: { status?: { conditions?: Condition[] } }, type: string): Condition | undefined {
  return obj.status?.conditions?.find((c) => c.type === type);
}

describe('ControllerManager against a real API server and PostgreSQL', () => {
  let cp: ControlPlane;
  let pg: TestPostgres;
  let sshd: TestSshd;
  let custom: CustomObjectsApi;
  let core: CoreV1Api;
  let registry: Registry;
  let manager: ControllerManager;
  const logs: string[] = [];

  const options = (identity: string, reg: Registry): ControllerManagerOptions => ({
    kubeConfig: cp.admin.kubeConfig(),
    operatorNamespace: OPERATOR_NS,
    identity,
    registry: reg,
    leaderElection: { leaseDurationMs: 3_000, renewDeadlineMs: 2_000, retryPeriodMs: 250 },
    connectionNotReadyRecheckAfterMs: 1_500,
    log: (level, message, fields) =>
      logs.push(`${identity} ${level} ${message} ${JSON.stringify(fields ?? {})}`),
  });

  const apply = async (obj: object) => {
    const r = await cp.kubectl(['apply', '-f', '-'], { input: stringify(obj) });
    if (r.code !== 0) throw new Error(`kubectl apply failed: ${r.stderr}`);
  };
  const get = async <T>(plural: Kind, name: string): Promise<T> =>
    (await custom.getNamespacedCustomObject({
      group: 'chaperone.dev',
      version: 'v1alpha1',
      namespace: NS,
      plural,
      name,
    })) as T;
  const secret = (name: string, data: Record<string, string>) =>
    core.createNamespacedSecret({
      namespace: OPERATOR_NS,
      body: { metadata: { name, annotations: { [ALLOWED_NAMESPACES_ANNOTATION]: NS } }, stringData: data },
    });

  const pgConnection = (name: string, adminSecret: string, grantRoles = ['orders_reader']): Connection => ({
    apiVersion: 'chaperone.dev/v1alpha1',
    kind: 'Connection',
    metadata: { name, namespace: NS },
    spec: {
      type: 'postgres',
      endpoint: { host: '127.0.0.1', port: pg.port, tls: { mode: 'disable' } },
      listen: { port: 15432 },
      credentials: { postgres: { adminSecretRef: { name: adminSecret }, grantRoles } },
    },
  });

  const accessRequest = (name: string, expiresInMs: number): AccessRequest => ({
    apiVersion: 'chaperone.dev/v1alpha1',
    kind: 'AccessRequest',
    metadata: { name, namespace: NS },
    spec: {
      requester: { serviceAccount: { namespace: NS, name: 'orders-agent' } },
      connection: 'orders-db',
      policy: 'orders-agents',
      operation: { type: 'postgres', text: 'DELETE FROM public.orders' },
      expiresAt: new Date(Date.now() + expiresInMs).toISOString(),
    },
  });

  const waitForPhase = (name: string, phase: string, timeoutMs = 30_000) =>
    waitFor(
      `${name} to be ${phase}`,
      async () => {
        const r = await get<AccessRequest>('accessrequests', name);
        return r.status?.phase === phase ? r : undefined;
      },
      timeoutMs,
    );

  beforeAll(async () => {
    [cp, pg, sshd] = await Promise.all([
      startControlPlane({ installCrds: true }),
      startPostgres(),
      startSshd(),
    ]);
    const kc = cp.admin.kubeConfig();
    custom = kc.makeApiClient(CustomObjectsApi);
    core = kc.makeApiClient(CoreV1Api);
    for (const name of [OPERATOR_NS, NS]) await core.createNamespace({ body: { metadata: { name } } });
    await pg.psql(`
      CREATE ROLE chaperone_admin LOGIN CREATEROLE PASSWORD '${ADMIN_PASSWORD}';
      CREATE ROLE weak LOGIN PASSWORD 'weak-pw';
      CREATE ROLE orders_reader NOLOGIN;
    `);
    await secret('orders-db-admin', { username: 'chaperone_admin', password: ADMIN_PASSWORD });
    registry = new Registry();
    manager = new ControllerManager(options('operator-0', registry));
    manager.start();
    await waitFor('the manager to lead and sync', async () => (manager.isSynced ? true : undefined));
  });

  afterAll(async () => {
    await manager?.stop();
    await Promise.all([cp?.stop(), pg?.stop(), sshd?.stop()]);
  });

  it('a Connection with a good admin Secret becomes Ready, with observedGeneration and an Event', async () => {
    await apply(pgConnection('orders-db', 'orders-db-admin'));
    const conn = await waitFor('orders-db Ready', async () => {
      const c = await get<Connection>('connections', 'orders-db');
      return condition(c, 'Ready')?.status === 'True' ? c : undefined;
    });
    expect(condition(conn, 'CredentialsValid')).toMatchObject({ status: 'True', reason: 'Valid' });
    expect(condition(conn, 'Reachable')).toMatchObject({ status: 'True', reason: 'Reached' });
    expect(conn.status?.observedGeneration).toBe(conn.metadata.generation);
    expect(condition(conn, 'Ready')?.observedGeneration).toBe(conn.metadata.generation);
    const events = await waitFor('a Ready Event', async () => {
      const list = await core.listNamespacedEvent({
        namespace: NS,
        fieldSelector: 'involvedObject.name=orders-db,involvedObject.kind=Connection',
      });
      return list.items.some((e) => e.reason === 'Ready') ? list.items : undefined;
    });
    expect(events.find((e) => e.reason === 'Ready')).toMatchObject({
      type: 'Normal',
      reportingComponent: REPORTING_CONTROLLER,
      reportingInstance: 'operator-0',
    });
    // The status write went through the status subresource under the operator's field manager.
    const managers = (conn.metadata as { managedFields?: { manager: string; subresource?: string }[] })
      .managedFields;
    expect(managers).toContainEqual(
      expect.objectContaining({ manager: 'chaperone-operator', subresource: 'status' }),
    );
  });

  it('a wrong password → CredentialsValid=False saying which role and Secret, without the password', async () => {
    await secret('wrong-admin', { username: 'chaperone_admin', password: WRONG_PASSWORD });
    await apply(pgConnection('wrong-pw-db', 'wrong-admin'));
    const conn = await waitFor('CredentialsValid=False', async () => {
      const c = await get<Connection>('connections', 'wrong-pw-db');
      return condition(c, 'CredentialsValid')?.status === 'False' ? c : undefined;
    });
    const cred = condition(conn, 'CredentialsValid')!;
    expect(cred.reason).toBe('AuthenticationFailed');
    expect(cred.message).toContain('chaperone_admin');
    expect(cred.message).toContain(`${OPERATOR_NS}/wrong-admin`);
    expect(condition(conn, 'Reachable')?.status).toBe('True');
    expect(condition(conn, 'Ready')).toMatchObject({ status: 'False', reason: 'AuthenticationFailed' });
    expect(JSON.stringify(conn)).not.toContain(WRONG_PASSWORD);
    expect(logs.join('\n')).not.toContain(WRONG_PASSWORD);
    expect(logs.join('\n')).not.toContain(ADMIN_PASSWORD);
  });

  it('a missing Secret is named with its namespace; creating it makes the Connection Ready on the next check', async () => {
    await apply(pgConnection('late-secret-db', 'late-admin'));
    const conn = await waitFor('AdminSecretNotFound', async () => {
      const c = await get<Connection>('connections', 'late-secret-db');
      return condition(c, 'CredentialsValid')?.reason === 'AdminSecretNotFound' ? c : undefined;
    });
    const message = condition(conn, 'CredentialsValid')!.message;
    expect(message).toContain('"late-admin"');
    expect(message).toContain(`"${OPERATOR_NS}"`);
    await secret('late-admin', { username: 'chaperone_admin', password: ADMIN_PASSWORD });
    await waitFor('late-secret-db Ready', async () => {
      const c = await get<Connection>('connections', 'late-secret-db');
      return condition(c, 'Ready')?.status === 'True' ? c : undefined;
    });
  });

  it('an admin role without CREATEROLE → CannotCreateRoles with the fix', async () => {
    await secret('weak-admin', { username: 'weak', password: 'weak-pw' });
    await apply(pgConnection('weak-db', 'weak-admin'));
    const conn = await waitFor('CannotCreateRoles', async () => {
      const c = await get<Connection>('connections', 'weak-db');
      return condition(c, 'CredentialsValid')?.reason === 'CannotCreateRoles' ? c : undefined;
    });
    expect(condition(conn, 'CredentialsValid')?.message).toContain('ALTER ROLE weak CREATEROLE');
  });

  it('a grant role that does not exist → GrantRoleNotFound naming it', async () => {
    await apply(pgConnection('no-role-db', 'orders-db-admin', ['orders_reader', 'ghost_role']));
    const conn = await waitFor('GrantRoleNotFound', async () => {
      const c = await get<Connection>('connections', 'no-role-db');
      return condition(c, 'CredentialsValid')?.reason === 'GrantRoleNotFound' ? c : undefined;
    });
    expect(condition(conn, 'CredentialsValid')?.message).toContain('"ghost_role"');
  });

  it('an ssh Connection with the real user CA and sshd becomes Ready; a closed port is Unreachable', async () => {
    await secret('bastion-ca', { ca: await readFile(sshd.userCaKeyPath, 'utf8') });
    const ssh = (name: string, port: number): Connection => ({
      apiVersion: 'chaperone.dev/v1alpha1',
      kind: 'Connection',
      metadata: { name, namespace: NS },
      spec: {
        type: 'ssh',
        endpoint: { host: '127.0.0.1', port, hostKeys: [sshd.hostPublicKey.trim()] },
        listen: { port: 12222 },
        credentials: { ssh: { caSecretRef: { name: 'bastion-ca' }, principals: [sshd.loginUser] } },
      },
    });
    await apply(ssh('bastion', sshd.port));
    await apply(ssh('bastion-down', await freePort()));
    await waitFor('bastion Ready', async () => {
      const c = await get<Connection>('connections', 'bastion');
      return condition(c, 'Ready')?.status === 'True' ? c : undefined;
    });
    const down = await waitFor('bastion-down Unreachable', async () => {
      const c = await get<Connection>('connections', 'bastion-down');
      return condition(c, 'Reachable')?.reason === 'Unreachable' ? c : undefined;
    });
    expect(condition(down, 'CredentialsValid')?.status).toBe('True');
  });

  it('an AccessPolicy naming a missing Connection is Ready=False, and Ready once the Connection exists', async () => {
    const policy: AccessPolicy = {
      apiVersion: 'chaperone.dev/v1alpha1',
      kind: 'AccessPolicy',
      metadata: { name: 'orders-agents', namespace: NS },
      spec: {
        subjects: [{ kind: 'ServiceAccount', name: 'orders-agent' }],
        connections: { names: ['orders-db', 'billing-db'] },
        rules: [{ name: 'read', action: 'allow', postgres: { operations: ['read'] } }],
        approval: { approvers: { groups: ['dba'] } },
      },
    };
    await apply(policy);
    const p = await waitFor('policy Ready=False', async () => {
      const x = await get<AccessPolicy>('accesspolicies', 'orders-agents');
      return condition(x, 'Ready')?.status === 'False' ? x : undefined;
    });
    expect(condition(p, 'Ready')).toMatchObject({ reason: 'ConnectionsNotFound' });
    expect(condition(p, 'Ready')?.message).toContain('billing-db');
    expect(condition(p, 'Ready')?.message).not.toContain('orders-db,');
    expect(p.status?.connections).toEqual(['orders-db']);
    expect(p.status?.appliesTo?.serviceAccounts).toEqual([`${NS}/orders-agent`]);
    expect(p.status?.ruleCount).toBe(1);

    await apply(pgConnection('billing-db', 'orders-db-admin'));
    const ready = await waitFor('policy Ready=True', async () => {
      const x = await get<AccessPolicy>('accesspolicies', 'orders-agents');
      return condition(x, 'Ready')?.status === 'True' ? x : undefined;
    });
    expect(ready.status?.connections).toEqual(['billing-db', 'orders-db']);
  });

  it('a pending AccessRequest expires at expiresAt; a decided one is left alone', async () => {
    await apply(accessRequest('soon', 2_500));
    await apply(accessRequest('decided', 2_500));
    // An approver decides before expiry (what the webhook would complete with by/at).
    await custom.patchNamespacedCustomObjectStatus(
      {
        group: 'chaperone.dev',
        version: 'v1alpha1',
        namespace: NS,
        plural: 'accessrequests',
        name: 'decided',
        body: { status: { phase: 'Approved', decision: { verdict: 'Approved', by: 'alice' } } },
      },
      (await import('@kubernetes/client-node')).setHeaderOptions(
        'Content-Type',
        'application/merge-patch+json',
      ),
    );
    const pending = await get<AccessRequest>('accessrequests', 'soon');
    expect(pending.status?.phase ?? 'Pending').toBe('Pending');
    const expired = await waitForPhase('soon', 'Expired');
    expect(condition(expired, 'Decided')).toMatchObject({ status: 'True', reason: 'Expired' });
    // Not before its time: the write happened after expiresAt.
    const decidedAt = Date.parse(condition(expired, 'Decided')!.lastTransitionTime);
    expect(decidedAt).toBeGreaterThanOrEqual(Date.parse(expired.spec.expiresAt) - 1_000);
    await new Promise((r) => setTimeout(r, 1_000));
    const decided = await get<AccessRequest>('accessrequests', 'decided');
    expect(decided.status?.phase).toBe('Approved');
  });

  it('malformed CRs are refused by the API server and the manager keeps working', async () => {
    const bad = [
      // postgres type with an ssh credentials block (CEL)
      {
        ...pgConnection('bad-conn', 'x'),
        spec: {
          ...pgConnection('bad-conn', 'x').spec,
          credentials: { ssh: { caSecretRef: { name: 'x' }, principals: ['a'] } },
        },
      },
      // approve rule without approvers (CEL)
      {
        apiVersion: 'chaperone.dev/v1alpha1',
        kind: 'AccessPolicy',
        metadata: { name: 'bad-policy', namespace: NS },
        spec: {
          subjects: [{ kind: 'User', name: 'bob' }],
          connections: { names: ['orders-db'] },
          rules: [{ name: 'w', action: 'approve' }],
        },
      },
      // expiresAt that is not a date-time
      {
        ...accessRequest('bad-request', 1_000),
        spec: { ...accessRequest('bad-request', 1_000).spec, expiresAt: 'tomorrow' },
      },
      // missing spec
      {
        apiVersion: 'chaperone.dev/v1alpha1',
        kind: 'AccessRequest',
        metadata: { name: 'no-spec', namespace: NS },
      },
    ];
    for (const obj of bad) {
      const r = await cp.kubectl(['apply', '-f', '-'], { input: stringify(obj) });
      expect(r.code, `${(obj as { metadata: { name: string } }).metadata.name} should be refused`).not.toBe(
        0,
      );
      expect(r.stderr).toMatch(/invalid|Invalid|required/);
    }
    // Expiring a decided request is refused by the CRD's rules too (the manager never tries).
    const refused = await cp.kubectl([
      'patch',
      '-n',
      NS,
      'accessrequest',
      'decided',
      '--subresource=status',
      '--type=merge',
      '-p',
      '{"status":{"phase":"Expired"}}',
    ]);
    expect(refused.code).not.toBe(0);

    expect(manager.isLeader).toBe(true);
    await apply(accessRequest('after-bad', 500));
    await waitForPhase('after-bad', 'Expired');
  });

  it("Events aggregate on the real API server: repeats grow one Event's count", async () => {
    const recorder = new EventRecorder({
      sink: coreV1EventSink(core),
      reportingInstance: 'aggregation-test',
      minWriteIntervalMs: 0,
    });
    const conn = await get<Connection>('connections', 'orders-db');
    const involved = {
      apiVersion: 'chaperone.dev/v1alpha1',
      kind: 'Connection',
      namespace: NS,
      name: 'orders-db',
      uid: conn.metadata.uid!,
    };
    for (let i = 0; i < 5; i++) {
      await recorder.record(involved, {
        type: 'Warning',
        reason: 'AggregationTest',
        message: `attempt ${i}`,
      });
    }
    await recorder.close();
    const list = await core.listNamespacedEvent({ namespace: NS, fieldSelector: 'reason=AggregationTest' });
    expect(list.items).toHaveLength(1);
    expect(list.items[0]).toMatchObject({ count: 5, message: 'attempt 4', type: 'Warning' });
  });

  it('metrics exist after reconciles', async () => {
    const text = await registry.metrics();
    expect(text).toMatch(/chaperone_operator_reconcile_total\{kind="Connection",result="requeue"\} [1-9]/);
    expect(text).toMatch(/chaperone_operator_reconcile_total\{kind="AccessRequest",result="success"\} [1-9]/);
    expect(text).toMatch(/chaperone_operator_reconcile_duration_seconds_count\{kind="AccessPolicy"\} [1-9]/);
    expect(text).toMatch(
      /chaperone_operator_status_updates_total\{kind="Connection",result="success"\} [1-9]/,
    );
    expect(text).toMatch(/chaperone_operator_leader 1/);
    expect(text).toContain('chaperone_operator_workqueue_depth');
    expect(text).toContain('chaperone_operator_events_total');
  });

  it('restarts and leader changes lose no pending request', async () => {
    // 1. Nobody runs while a request falls due: the next leader's initial list expires it.
    await manager.stop();
    expect((await registry.metrics()).match(/chaperone_operator_leader 0/)).not.toBeNull();
    await apply(accessRequest('due-while-down', 500));
    await new Promise((r) => setTimeout(r, 1_500));
    expect((await get<AccessRequest>('accessrequests', 'due-while-down')).status?.phase ?? 'Pending').toBe(
      'Pending',
    );

    const a = new ControllerManager(options('operator-a', new Registry()));
    const b = new ControllerManager(options('operator-b', new Registry()));
    let both = 0;
    const sampler = setInterval(() => {
      if (a.isLeader && b.isLeader) both++;
    }, 5);
    try {
      a.start();
      await waitFor('a to lead', async () => (a.isSynced ? true : undefined));
      b.start();
      await waitForPhase('due-while-down', 'Expired');

      // 2. Pending requests survive a leader change: the old leader stops before they fall due.
      await apply(accessRequest('across-handover', 4_000));
      await apply(accessRequest('long-lived', 3_600_000));
      await new Promise((r) => setTimeout(r, 500));
      await a.stop();
      await waitFor('b to lead', async () => (b.isSynced ? true : undefined), 10_000);
      const handedOver = await waitForPhase('across-handover', 'Expired', 20_000);
      expect(condition(handedOver, 'Decided')?.reason).toBe('Expired');
      expect((await get<AccessRequest>('accessrequests', 'long-lived')).status?.phase ?? 'Pending').toBe(
        'Pending',
      );

      // 3. And back: a restarted replica takes over again when b stops.
      const a2 = new ControllerManager(options('operator-a', new Registry()));
      a2.start();
      await apply(accessRequest('after-restart', 3_000));
      await b.stop();
      await waitFor('a2 to lead', async () => (a2.isSynced ? true : undefined), 10_000);
      await waitForPhase('after-restart', 'Expired', 20_000);
      await a2.stop();
    } finally {
      clearInterval(sampler);
      await Promise.all([a.stop(), b.stop()]);
    }
    expect(both).toBe(0);
  });
});
