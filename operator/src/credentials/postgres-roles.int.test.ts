// The JIT PostgreSQL role issuer and the sweeper against a real PostgreSQL, with an admin that is NOT
// a superuser (CREATEROLE + grant roles WITH ADMIN OPTION), as the docs tell operators to set it up.
import { randomBytes, randomUUID } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { run, startPostgres, type TestPostgres } from '@chaperone/testkit';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CredentialError } from './credential-error.js';
import type { PostgresTarget } from './postgres-admin.js';
import { PostgresRoleIssuer, type PostgresRoleRequest } from './postgres-role-issuer.js';
import { parseRoleMark } from './role-mark.js';
import { PostgresRoleSweeper, type RoleSweepOutcome } from './role-sweeper.js';

const ADMIN = 'chaperone_admin';
const ADMIN_PASSWORD = randomBytes(18).toString('base64url');
const WEAK_ADMIN = 'weak_admin';
const WEAK_PASSWORD = randomBytes(18).toString('base64url');

let server: TestPostgres;
let target: PostgresTarget;
const issuer = new PostgresRoleIssuer();
const admin = { username: ADMIN, password: ADMIN_PASSWORD };

async function sql(query: string, database = 'postgres', params: unknown[] = []) {
  const c = await server.connect(database);
  try {
    return (await c.query(query, params)).rows;
  } finally {
    await c.end();
  }
}

async function connectAs(user: string, password: string, database = 'orders'): Promise<pg.Client> {
  const c = new pg.Client({ host: server.host, port: server.port, user, password, database });
  await c.connect();
  return c;
}

/** The SQLSTATE a login attempt fails with, or 'ok'. */
async function loginResult(user: string, password: string): Promise<string> {
  try {
    const c = await connectAs(user, password);
    await c.end();
    return 'ok';
  } catch (err) {
    return (err as { code?: string }).code ?? String(err);
  }
}

async function sqlStateOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
    return undefined;
  } catch (err) {
    return (err as { code?: string }).code;
  }
}

let seq = 0;
/** A request for a fresh pod and Connection, so tests never see each other's roles in a filtered sweep. */
function request(over: Partial<PostgresRoleRequest> = {}): PostgresRoleRequest {
  seq++;
  return {
    target,
    admin,
    connection: { namespace: 'team-a', name: `orders-db-${seq}` },
    pod: { namespace: 'team-a', name: `agent-${seq}-7d9f8c6b5-xk2lp`, uid: randomUUID() },
    ttlMs: 10 * 60_000,
    grantRoles: ['orders_reader'],
    sessionId: `sess-${seq}`,
    ...over,
  };
}

function sweeperFor(req: PostgresRoleRequest) {
  const conn = `${req.connection.namespace}/${req.connection.name}`;
  return new PostgresRoleSweeper({ target, admin, connections: (c) => c === conn });
}

async function roleRow(name: string) {
  const rows = await sql(
    `SELECT rolcanlogin, rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls, rolinherit,
            rolvaliduntil, shobj_description(oid, 'pg_authid') AS comment
       FROM pg_roles WHERE rolname = $1`,
    'postgres',
    [name],
  );
  return rows[0] as
    | {
        rolcanlogin: boolean;
        rolsuper: boolean;
        rolcreaterole: boolean;
        rolcreatedb: boolean;
        rolreplication: boolean;
        rolbypassrls: boolean;
        rolinherit: boolean;
        rolvaliduntil: Date | null;
        comment: string | null;
      }
    | undefined;
}

const chaperoneRoles = async () =>
  (await sql(`SELECT rolname FROM pg_roles WHERE rolname LIKE 'chaperone\\_%' ORDER BY 1`)).map(
    (r) => r.rolname as string,
  );

const sleepUntil = (t: Date) => new Promise((r) => setTimeout(r, Math.max(0, t.getTime() - Date.now())));

/** Resolves when the server ends the client's session. */
function ended(client: pg.Client): Promise<string> {
  return new Promise((resolve) => {
    // pg reports the FATAL and then the closed socket: both are expected here.
    client.on('error', (err) => resolve((err as { code?: string }).code ?? err.message));
    client.once('end', () => resolve('end'));
  });
}

function outcomeFor(outcomes: RoleSweepOutcome[], role: string): RoleSweepOutcome {
  const o = outcomes.find((x) => x.role === role);
  if (!o) throw new Error(`no outcome for ${role}: ${JSON.stringify(outcomes)}`);
  return o;
}

beforeAll(async () => {
  server = await startPostgres({ settings: { log_statement: 'all' } });
  target = { host: server.host, port: server.port, database: 'orders', tls: { mode: 'disable' } };
  await server.psql('CREATE DATABASE orders');
  await server.psql('CREATE DATABASE reports');
  await server.psql(
    [
      'CREATE TABLE items (id int PRIMARY KEY, name text)',
      "INSERT INTO items VALUES (1, 'widget'), (2, 'gadget')",
      'CREATE TABLE secrets (v text)',
      'CREATE ROLE orders_reader NOLOGIN',
      'GRANT SELECT ON items TO orders_reader',
      'CREATE ROLE orders_ddl NOLOGIN',
      'GRANT CREATE ON SCHEMA public TO orders_ddl',
      `CREATE ROLE ${ADMIN} LOGIN CREATEROLE NOSUPERUSER PASSWORD '${ADMIN_PASSWORD}'`,
      `GRANT orders_reader TO ${ADMIN} WITH ADMIN OPTION`,
      `GRANT orders_ddl TO ${ADMIN} WITH ADMIN OPTION`,
      `CREATE ROLE ${WEAK_ADMIN} LOGIN NOCREATEROLE PASSWORD '${WEAK_PASSWORD}'`,
    ].join('; '),
    { database: 'orders' },
  );
  await server.psql('GRANT CREATE ON SCHEMA public TO orders_ddl', { database: 'reports' });
});

afterAll(async () => {
  await server?.stop();
});

describe('PostgresRoleIssuer', () => {
  it('issues a role that logs in with node-postgres and psql and has the grant role’s privileges, no more', async () => {
    const req = request();
    const cred = await issuer.issue(req);
    expect(cred.username.startsWith(`chaperone_agent_${seq}_7d9f8c`)).toBe(true);
    expect(cred.username).toMatch(/^[a-z_][a-z0-9_]*_[a-z2-7]{10}$/);
    expect(cred.password).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(cred.description).toContain(cred.username);
    expect(cred.description).toContain('orders_reader');
    expect(cred.description).toContain(cred.expiresAt.toISOString());
    expect(cred.description).not.toContain(cred.password);

    const c = await connectAs(cred.username, cred.password);
    try {
      expect((await c.query('SELECT current_user AS u')).rows[0].u).toBe(cred.username);
      expect((await c.query('SELECT count(*)::int AS n FROM items')).rows[0].n).toBe(2);
      expect(await sqlStateOf(c.query("INSERT INTO items VALUES (3, 'x')"))).toBe('42501');
      expect(await sqlStateOf(c.query('SELECT * FROM secrets'))).toBe('42501');
      expect(await sqlStateOf(c.query('CREATE TABLE mine (x int)'))).toBe('42501');
      expect(await sqlStateOf(c.query('CREATE ROLE other'))).toBe('42501');
    } finally {
      await c.end();
    }

    const psql = await run(
      'psql',
      [
        '-X',
        '-At',
        '-h',
        server.host,
        '-p',
        String(server.port),
        '-U',
        cred.username,
        '-d',
        'orders',
        '-c',
        'SELECT current_user, count(*) FROM items',
      ],
      { env: { ...process.env, PGPASSWORD: cred.password, PGSSLMODE: 'disable' } },
    );
    expect(psql.stderr).toBe('');
    expect(psql.stdout.trim()).toBe(`${cred.username}|2`);

    const row = await roleRow(cred.username);
    expect(row).toMatchObject({
      rolcanlogin: true,
      rolsuper: false,
      rolcreaterole: false,
      rolcreatedb: false,
      rolreplication: false,
      rolbypassrls: false,
      rolinherit: true,
    });
    expect(row?.rolvaliduntil?.getTime()).toBe(cred.expiresAt.getTime());
    expect(parseRoleMark(row?.comment)).toEqual({
      v: 1,
      connection: `team-a/${req.connection.name}`,
      pod: `team-a/${req.pod.name}`,
      podUid: req.pod.uid,
      createdAt: expect.any(String),
      expiresAt: cred.expiresAt.toISOString(),
      sessionId: req.sessionId,
    });
    const members = await sql(
      `SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
        WHERE m.member = (SELECT oid FROM pg_roles WHERE rolname = $1)`,
      'postgres',
      [cred.username],
    );
    expect(members.map((m) => m.rolname)).toEqual(['orders_reader']);
  });

  it('sends only a SCRAM verifier: the plaintext is neither stored nor in the statement log', async () => {
    const cred = await issuer.issue(request());
    const [auth] = await sql('SELECT rolpassword FROM pg_authid WHERE rolname = $1', 'postgres', [
      cred.username,
    ]);
    expect(auth?.rolpassword).toMatch(
      /^SCRAM-SHA-256\$4096:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$/,
    );
    const log = await readFile(join(dirname(server.dataDir), 'postgres.log'), 'utf8');
    // log_statement=all recorded the CREATE ROLE (so this check can fail) with the verifier only.
    expect(log).toContain(`CREATE ROLE "${cred.username}"`);
    expect(log).toContain(auth?.rolpassword);
    expect(log).not.toContain(cred.password);
  });

  it('the role cannot log in after VALID UNTIL', async () => {
    const cred = await issuer.issue(request({ ttlMs: 2_000 }));
    expect(await loginResult(cred.username, cred.password)).toBe('ok');
    await sleepUntil(new Date(cred.expiresAt.getTime() + 500));
    expect(await loginResult(cred.username, cred.password)).toBe('28P01');
  });

  it('works with a superuser admin as well', async () => {
    const cred = await issuer.issue(request({ admin: { username: 'postgres', password: server.password } }));
    expect(await loginResult(cred.username, cred.password)).toBe('ok');
  });

  it('admin without CREATEROLE: a clear error and nothing created', async () => {
    const before = await chaperoneRoles();
    const err = await issuer
      .issue(request({ admin: { username: WEAK_ADMIN, password: WEAK_PASSWORD } }))
      .catch((e) => e);
    expect(err).toBeInstanceOf(CredentialError);
    expect(err.reason).toBe('AdminLacksCreateRole');
    expect(err.message).toMatch(/weak_admin lacks CREATEROLE/);
    expect(err.message).toMatch(/ALTER ROLE weak_admin CREATEROLE/);
    expect(err.message).not.toMatch(/SCRAM-SHA-256\$/);
    expect(await chaperoneRoles()).toEqual(before);
  });

  it('a grant role that does not exist: a clear error and no half-made role', async () => {
    const before = await chaperoneRoles();
    const err = await issuer
      .issue(request({ grantRoles: ['orders_reader', 'no_such_role'] }))
      .catch((e) => e);
    expect(err).toBeInstanceOf(CredentialError);
    expect(err.reason).toBe('GrantRoleMissing');
    expect(err.message).toContain('"no_such_role" does not exist');
    expect(err.message).toContain('Nothing was created');
    expect(await chaperoneRoles()).toEqual(before);
  });

  it('a grant role the admin may not hand out (a superuser): refused, nothing created', async () => {
    const before = await chaperoneRoles();
    const err = await issuer.issue(request({ grantRoles: ['postgres'] })).catch((e) => e);
    expect(err).toBeInstanceOf(CredentialError);
    expect(err.reason).toBe('AdminCannotGrantRole');
    expect(err.message).toMatch(/chaperone_admin may not grant postgres/);
    expect(await chaperoneRoles()).toEqual(before);
  });

  it('a wrong admin password: AdminLoginFailed, without the password in the message', async () => {
    const wrong = 'definitely-wrong-password';
    const err = await issuer.issue(request({ admin: { username: ADMIN, password: wrong } })).catch((e) => e);
    expect(err).toBeInstanceOf(CredentialError);
    expect(err.reason).toBe('AdminLoginFailed');
    expect(err.message).toContain('chaperone_admin');
    expect(err.message).not.toContain(wrong);
  });

  it('bad input is refused before anything reaches the server', async () => {
    const invalid = async (over: Partial<PostgresRoleRequest>, pattern: RegExp) => {
      const err = await issuer.issue(request(over)).catch((e) => e);
      expect(err).toBeInstanceOf(CredentialError);
      expect(err.reason).toBe('InvalidInput');
      expect(err.message).toMatch(pattern);
    };
    await invalid({ ttlMs: 0 }, /ttl/);
    await invalid({ ttlMs: 25 * 3600_000 }, /ttl/);
    await invalid({ grantRoles: [] }, /grantRoles is empty/);
    await invalid({ grantRoles: ['pg_read_server_files'] }, /never granted/);
    await invalid({ usernamePrefix: 'Bad-Prefix' }, /usernamePrefix/);
    await invalid({ pod: { namespace: 'team-a', name: 'Not A Name', uid: 'u' } }, /pod.name/);
  });
});

describe('PostgresRoleSweeper', () => {
  it('disables an expired role and terminates its open session', async () => {
    const req = request({ ttlMs: 2_000 });
    const cred = await issuer.issue(req);
    const session = await connectAs(cred.username, cred.password);
    const gone = ended(session);
    await sleepUntil(new Date(cred.expiresAt.getTime() + 200));
    // Expired roles keep their open sessions until someone ends them: that is the sweeper's job.
    expect((await session.query('SELECT 1 AS one')).rows[0].one).toBe(1);

    const report = await sweeperFor(req).sweep({
      livePodUids: new Set([req.pod.uid]),
      dropAfterMs: 3600_000,
    });
    const o = outcomeFor(report.outcomes, cred.username);
    expect(o).toMatchObject({ action: 'disable', reason: 'expired', ok: true, terminatedSessions: 1 });
    expect(o.connection).toBe(`team-a/${req.connection.name}`);
    expect(await gone).toBe('57P01'); // admin_shutdown: terminated by pg_terminate_backend
    const row = await roleRow(cred.username);
    expect(row?.rolcanlogin).toBe(false);
    expect(Date.parse(parseRoleMark(row?.comment)?.disabledAt ?? '')).toBeGreaterThanOrEqual(
      report.at.getTime() - 1,
    );

    // Next sweep: disabled and waiting to be dropped, nothing to do.
    const again = await sweeperFor(req).sweep({ livePodUids: new Set([req.pod.uid]), dropAfterMs: 3600_000 });
    expect(again.outcomes).toEqual([]);
    expect(again.awaitingDrop).toBe(1);
  });

  it('keeps a live role whose pod is alive, and disables the roles of a pod that is gone', async () => {
    const req = request();
    const cred = await issuer.issue(req);
    const sweeper = sweeperFor(req);
    const kept = await sweeper.sweep({
      livePodUids: new Set([req.pod.uid]),
      dropAfterMs: 0,
      podGoneGraceMs: 0,
    });
    expect(kept.outcomes).toEqual([]);
    expect(kept.active).toBe(1);
    expect(await loginResult(cred.username, cred.password)).toBe('ok');

    const report = await sweeper.sweep({
      livePodUids: () => false,
      dropAfterMs: 3600_000,
      podGoneGraceMs: 0,
    });
    expect(outcomeFor(report.outcomes, cred.username)).toMatchObject({
      action: 'disable',
      reason: 'pod-gone',
      ok: true,
    });
    expect(await loginResult(cred.username, cred.password)).toBe('28000'); // not permitted to log in
  });

  it('drops a long-disabled role that created tables in two databases; the tables stay, owned by the admin', async () => {
    const req = request({ grantRoles: ['orders_reader', 'orders_ddl'] });
    const cred = await issuer.issue(req);
    for (const db of ['orders', 'reports']) {
      const c = await connectAs(cred.username, cred.password, db);
      await c.query(`CREATE TABLE made_by_${seq} (x int)`);
      await c.end();
    }
    const sweeper = sweeperFor(req);
    const disabled = await sweeper.sweep({
      livePodUids: new Set(),
      dropAfterMs: 3600_000,
      podGoneGraceMs: 0,
    });
    expect(outcomeFor(disabled.outcomes, cred.username)).toMatchObject({ action: 'disable', ok: true });

    // An hour later by the plan's clock: the role has been disabled for longer than dropAfterMs.
    const later = new Date(Date.now() + 3600_000 + 1_000);
    const dropped = await sweeper.sweep({ now: later, livePodUids: new Set(), dropAfterMs: 3600_000 });
    const o = outcomeFor(dropped.outcomes, cred.username);
    expect(o).toMatchObject({ action: 'drop', reason: 'disabled-long-enough', ok: true });
    expect(o.databases?.sort()).toEqual(['orders', 'reports']);
    expect(await roleRow(cred.username)).toBeUndefined();
    for (const db of ['orders', 'reports']) {
      const [t] = await sql(`SELECT tableowner FROM pg_tables WHERE tablename = $1`, db, [`made_by_${seq}`]);
      expect(t?.tableowner).toBe(ADMIN);
    }
  });

  it('a new sweeper instance finds roles an earlier issuer made (no local state)', async () => {
    const req = request();
    const cred = await new PostgresRoleIssuer().issue(req);
    const listed = await new PostgresRoleSweeper({ target, admin }).listRoles();
    const found = listed.find((r) => r.name === cred.username);
    expect(parseRoleMark(found?.comment)?.podUid).toBe(req.pod.uid);

    const report = await sweeperFor(req).sweep({
      livePodUids: new Set(),
      dropAfterMs: 3600_000,
      podGoneGraceMs: 0,
    });
    expect(outcomeFor(report.outcomes, cred.username)).toMatchObject({
      action: 'disable',
      reason: 'pod-gone',
      ok: true,
    });
  });

  it('revokeForPod disables that pod’s roles at once and ends their sessions; other pods keep theirs', async () => {
    const reqA = request();
    const a1 = await issuer.issue(reqA);
    const a2 = await issuer.issue({ ...reqA, sessionId: 'second' });
    const b = await issuer.issue(request({ connection: reqA.connection }));
    const session = await connectAs(a1.username, a1.password);
    const gone = ended(session);

    const outcomes = await new PostgresRoleSweeper({ target, admin }).revokeForPod(reqA.pod.uid);
    expect(outcomes.map((o) => o.role).sort()).toEqual([a1.username, a2.username].sort());
    expect(outcomes.every((o) => o.ok && o.reason === 'pod-deleted')).toBe(true);
    expect(outcomeFor(outcomes, a1.username).terminatedSessions).toBe(1);
    expect(await gone).toBe('57P01');
    expect(await loginResult(a2.username, a2.password)).toBe('28000');
    expect(await loginResult(b.username, b.password)).toBe('ok');
  });
});

describe('PostgresRoleSweeper and foreign roles', () => {
  it('never touches a role without our mark, whatever its name, expiry or comment', async () => {
    const fakeMark = JSON.stringify({
      chaperone: {
        v: 1,
        connection: 'team-a/x',
        pod: 'team-a/x',
        podUid: 'gone',
        createdAt: '2000-01-01T00:00:00Z',
        expiresAt: '2000-01-01T00:00:00Z',
      },
    });
    await server.psql(
      [
        `CREATE ROLE chaperone_foreign_a LOGIN PASSWORD 'a' VALID UNTIL '2000-01-01'`,
        `CREATE ROLE chaperone_foreign_b LOGIN PASSWORD 'b'`,
        `COMMENT ON ROLE chaperone_foreign_b IS 'reporting account, owned by the DBA'`,
        `CREATE ROLE chaperone_foreign_c NOLOGIN`,
        `COMMENT ON ROLE chaperone_foreign_c IS '{"chaperone":{"v":2}}'`,
        `CREATE ROLE chaperone_foreign_su SUPERUSER LOGIN PASSWORD 'su' VALID UNTIL '2000-01-01'`,
        `COMMENT ON ROLE chaperone_foreign_su IS '${fakeMark}'`,
      ].join('; '),
    );
    const foreign = [
      'chaperone_foreign_a',
      'chaperone_foreign_b',
      'chaperone_foreign_c',
      'chaperone_foreign_su',
    ];
    const before = await Promise.all(foreign.map(roleRow));

    // Unfiltered, everything looks dead and expired, and disabled roles are dropped at once.
    const sweeper = new PostgresRoleSweeper({
      target,
      admin: { username: 'postgres', password: server.password },
    });
    const first = await sweeper.sweep({ livePodUids: new Set(), dropAfterMs: 0, podGoneGraceMs: 0 });
    const second = await sweeper.sweep({ livePodUids: new Set(), dropAfterMs: 0, podGoneGraceMs: 0 });
    const revoked = await sweeper.revokeForPod('gone');
    const touched = [...first.outcomes, ...second.outcomes, ...revoked].map((o) => o.role);
    for (const name of foreign) expect(touched).not.toContain(name);
    // …while our own roles from the earlier tests were retired by the same sweeps.
    expect(touched.length).toBeGreaterThan(0);
    expect(second.outcomes.every((o) => o.action === 'drop' && o.ok)).toBe(true);
    expect(await Promise.all(foreign.map(roleRow))).toEqual(before);
    expect((await chaperoneRoles()).filter((n) => !n.startsWith('chaperone_admin'))).toEqual(foreign);
  });
});

describe('PostgresRoleIssuer over TLS (libpq sslmode semantics)', () => {
  let tlsServer: TestPostgres;
  let ca: string;
  const tlsTarget = (tls: PostgresTarget['tls']): PostgresTarget => ({
    host: tlsServer.host,
    port: tlsServer.port,
    database: 'postgres',
    tls,
  });

  beforeAll(async () => {
    tlsServer = await startPostgres({ tls: true });
    ca = await readFile(tlsServer.ca!.certPath, 'utf8');
    await tlsServer.psql('CREATE ROLE tls_reader NOLOGIN');
    // Refuse plain TCP, so a passing issuance proves the admin session used TLS.
    const hba = join(tlsServer.dataDir, 'pg_hba.conf');
    await writeFile(hba, `hostnossl all all 0.0.0.0/0 reject\n${await readFile(hba, 'utf8')}`);
    await tlsServer.psql('SELECT pg_reload_conf()');
    // The postmaster re-reads pg_hba.conf asynchronously: wait until plain TCP is refused.
    for (let i = 0; ; i++) {
      const refused = await tlsServer.psql('SELECT 1').then(
        () => false,
        () => true,
      );
      if (refused) break;
      if (i > 100) throw new Error('pg_hba.conf reload did not take effect');
      await new Promise((r) => setTimeout(r, 50));
    }
  });
  afterAll(async () => {
    await tlsServer?.stop();
  });

  const issueWith = (tls: PostgresTarget['tls']) =>
    issuer.issue(
      request({
        target: tlsTarget(tls),
        admin: { username: 'postgres', password: tlsServer.password },
        grantRoles: ['tls_reader'],
      }),
    );

  it('verify-full with the server’s CA, verify-ca with any name, and require all work', async () => {
    expect((await issueWith({ mode: 'verify-full', ca })).username).toMatch(/^chaperone_/);
    expect((await issueWith({ mode: 'verify-full', ca, serverName: 'localhost' })).username).toMatch(
      /^chaperone_/,
    );
    expect((await issueWith({ mode: 'verify-ca', ca, serverName: 'elsewhere.example' })).username).toMatch(
      /^chaperone_/,
    );
    expect((await issueWith({ mode: 'require' })).username).toMatch(/^chaperone_/);
  });

  it('fails closed: untrusted CA, wrong name, and plain TCP are refused with clear errors', async () => {
    const untrusted = await issueWith({ mode: 'verify-full' }).catch((e) => e);
    expect(untrusted).toBeInstanceOf(CredentialError);
    expect(untrusted.reason).toBe('TargetTlsFailed');
    expect(untrusted.message).toMatch(/tls.mode=verify-full/);

    const wrongName = await issueWith({ mode: 'verify-full', ca, serverName: 'elsewhere.example' }).catch(
      (e) => e,
    );
    expect(wrongName.reason).toBe('TargetTlsFailed');
    expect(wrongName.message).toMatch(/elsewhere\.example/);

    const plain = await issueWith({ mode: 'disable' }).catch((e) => e);
    expect(plain.reason).toBe('AdminLoginFailed');
    expect(plain.message).toMatch(/pg_hba/);
  });
});
