import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPostgres, type TestPostgres } from './postgres.js';
import { run } from './run.js';

const psql = (pg: TestPostgres, env: Record<string, string>, sql: string) =>
  run(
    'psql',
    ['-X', '-At', '-h', '127.0.0.1', '-p', String(pg.port), '-U', 'postgres', '-d', 'postgres', '-c', sql],
    {
      env: { ...process.env, ...env },
    },
  );

describe('PostgreSQL harness (plain)', () => {
  let pg: TestPostgres;
  beforeAll(async () => {
    pg = await startPostgres();
  });
  afterAll(async () => {
    await pg?.stop();
  });

  it('lets psql log in with SCRAM-SHA-256 and the right password', async () => {
    const res = await psql(
      pg,
      { PGPASSWORD: pg.password, PGSSLMODE: 'disable' },
      'SELECT current_user, version()',
    );
    expect(res.stderr).toBe('');
    expect(res.stdout).toMatch(/^postgres\|PostgreSQL 1[5-9]/);
    const stored = await pg.psql("SELECT left(rolpassword, 14) FROM pg_authid WHERE rolname = 'postgres'");
    expect(stored.trim()).toBe('SCRAM-SHA-256$');
    const hba = await pg.psql(
      "SELECT DISTINCT auth_method FROM pg_hba_file_rules WHERE type <> 'local' OR true",
    );
    expect(hba.trim().split('\n')).toEqual(['scram-sha-256']);
  });

  it('refuses a wrong password', async () => {
    const res = await psql(pg, { PGPASSWORD: 'wrong', PGSSLMODE: 'disable' }, 'SELECT 1');
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain('password authentication failed for user "postgres"');
  });

  it('does not run as root', async () => {
    const owner = await pg.psql("SELECT pg_read_file('postmaster.pid') IS NOT NULL");
    expect(owner.trim()).toBe('t');
    if (process.getuid?.() === 0) {
      const ps = await run('ps', ['-o', 'user=', '-C', 'postgres']);
      expect(
        ps.stdout
          .split('\n')
          .filter(Boolean)
          .every((u) => u.trim() !== 'root'),
      ).toBe(true);
    }
  });

  it('refuses TLS when started without it', async () => {
    const res = await psql(pg, { PGPASSWORD: pg.password, PGSSLMODE: 'require' }, 'SELECT 1');
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(/server does not support SSL/);
  });
});

describe('PostgreSQL harness (TLS with a test CA)', () => {
  let pg: TestPostgres;
  beforeAll(async () => {
    pg = await startPostgres({ tls: true });
  });
  afterAll(async () => {
    await pg?.stop();
  });

  it('serves TLS that verifies against the test CA with verify-full', async () => {
    const ca = pg.ca?.certPath;
    expect(ca).toBeDefined();
    const res = await psql(
      pg,
      { PGPASSWORD: pg.password, PGSSLMODE: 'verify-full', PGSSLROOTCERT: ca ?? '' },
      'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()',
    );
    expect(res.stderr).toBe('');
    expect(res.stdout.trim()).toBe('t');
  });

  it('fails verify-full against a CA that did not sign the server certificate', async () => {
    const other = '/etc/ssl/certs/ca-certificates.crt';
    const res = await psql(
      pg,
      { PGPASSWORD: pg.password, PGSSLMODE: 'verify-full', PGSSLROOTCERT: other },
      'SELECT 1',
    );
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(/certificate verify failed/);
  });
});
