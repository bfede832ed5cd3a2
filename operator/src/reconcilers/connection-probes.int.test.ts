import { readFile } from 'node:fs/promises';
import { freePort, startPostgres, startSshd, type TestPostgres, type TestSshd } from '@chaperone/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { probePostgres, probeSsh, probeTcp } from './connection-probes.js';
import type { PostgresProbeInput } from './connection-reconciler.js';

const ADMIN_PASSWORD = 'admin-pw-1f9d';

describe('connection probes against real servers', () => {
  let pg: TestPostgres;
  let sshd: TestSshd;
  let ca: string;

  beforeAll(async () => {
    [pg, sshd] = await Promise.all([startPostgres({ tls: true }), startSshd()]);
    ca = await readFile(pg.ca!.certPath, 'utf8');
    await pg.psql(`
      CREATE ROLE chaperone_admin LOGIN CREATEROLE PASSWORD '${ADMIN_PASSWORD}';
      CREATE ROLE weak LOGIN PASSWORD 'weak-pw';
      CREATE ROLE orders_reader NOLOGIN;
      CREATE ROLE orders_writer NOLOGIN;
      GRANT orders_writer TO chaperone_admin WITH ADMIN OPTION;
    `);
  });
  afterAll(async () => {
    await Promise.all([pg?.stop(), sshd?.stop()]);
  });

  const input = (over: Partial<PostgresProbeInput> = {}): PostgresProbeInput => ({
    host: '127.0.0.1',
    port: pg.port,
    database: 'postgres',
    user: 'chaperone_admin',
    password: ADMIN_PASSWORD,
    tls: { mode: 'verify-full', ca },
    grantRoles: ['orders_reader', 'orders_writer', 'missing_role'],
    ...over,
  });

  it('logs in with verify-full and reports the role and each grant role', async () => {
    const r = await probePostgres(input());
    expect(r).toMatchObject({
      outcome: 'ok',
      tls: true,
      role: { name: 'chaperone_admin', superuser: false, createRole: true },
      grantRoles: [
        { name: 'orders_reader', exists: true, superuser: false, adminOption: false },
        { name: 'orders_writer', exists: true, superuser: false, adminOption: true },
        { name: 'missing_role', exists: false, superuser: false, adminOption: false },
      ],
    });
    if (r.outcome === 'ok') expect(r.serverVersionNum).toBeGreaterThanOrEqual(150000);
  });

  it('verify-full checks serverName against the certificate', async () => {
    const ok = await probePostgres(input({ tls: { mode: 'verify-full', ca, serverName: 'localhost' } }));
    expect(ok.outcome).toBe('ok');
    const bad = await probePostgres(
      input({ tls: { mode: 'verify-full', ca, serverName: 'db.example.com' } }),
    );
    expect(bad.outcome).toBe('tls-failed');
  });

  it('verify-full without the CA fails closed; require and disable connect', async () => {
    expect((await probePostgres(input({ tls: { mode: 'verify-full' } }))).outcome).toBe('tls-failed');
    expect((await probePostgres(input({ tls: { mode: 'verify-ca' } }))).outcome).toBe('tls-failed');
    expect((await probePostgres(input({ tls: { mode: 'verify-ca', ca } }))).outcome).toBe('ok');
    expect(await probePostgres(input({ tls: { mode: 'require' } }))).toMatchObject({
      outcome: 'ok',
      tls: true,
    });
    expect(await probePostgres(input({ tls: { mode: 'disable' } }))).toMatchObject({
      outcome: 'ok',
      tls: false,
    });
  });

  it('a wrong password is an authentication failure whose message holds no password', async () => {
    const r = await probePostgres(input({ password: 'wrong-password-xyz' }));
    expect(r.outcome).toBe('auth-failed');
    expect(JSON.stringify(r)).not.toContain('wrong-password-xyz');
    expect(JSON.stringify(r)).not.toContain(ADMIN_PASSWORD);
  });

  it('a role without CREATEROLE logs in and says so', async () => {
    const r = await probePostgres(input({ user: 'weak', password: 'weak-pw' }));
    expect(r).toMatchObject({ outcome: 'ok', role: { name: 'weak', createRole: false, superuser: false } });
  });

  it('a missing database and a closed port are told apart', async () => {
    expect((await probePostgres(input({ database: 'nope' }))).outcome).toBe('database-missing');
    const closed = await freePort();
    expect((await probePostgres(input({ port: closed }))).outcome).toBe('unreachable');
    expect(await probeTcp('127.0.0.1', closed)).toMatchObject({ ok: false });
    expect(await probeTcp('127.0.0.1', pg.port)).toMatchObject({ ok: true });
  });

  it('probeSsh reads the banner of a real sshd and refuses a server that is not SSH', async () => {
    const ok = await probeSsh(sshd.host, sshd.port);
    expect(ok).toMatchObject({ ok: true });
    if (ok.ok) expect(ok.detail).toMatch(/^SSH-2\.0-OpenSSH/);
    // PostgreSQL waits for the client to speak first: no banner.
    const notSsh = await probeSsh('127.0.0.1', pg.port, 500);
    expect(notSsh.ok).toBe(false);
  });
});
