import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createTestCa,
  freePort,
  run,
  startOidcIssuer,
  startPostgres,
  type TestOidcIssuer,
  type TestPostgres,
} from '@chaperone/testkit';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningStandaloneSidecar, runStandalone } from '../../modes/standalone.js';
import { configYaml, seedOrders } from '../../test-support/orders-fixture.js';

let db: TestPostgres;
let idp: TestOidcIssuer;
let sidecar: RunningStandaloneSidecar;
let port: number;
let caPath: string;
const tempDirs: string[] = [];

// A second policy that only OIDC group members get: pgbench tables, read + write.
const ONCALL_POLICY = `---
apiVersion: chaperone.dev/v1alpha1
kind: AccessPolicy
metadata: { name: oncall }
spec:
  subjects: [{ kind: Group, name: orders-oncall }]
  connections: { names: [orders-db] }
  rules:
    - { name: bench, action: allow, postgres: { operations: [read, write], tables: ["public.pgbench_*"] } }
  guardrails: []
`;

beforeAll(async () => {
  db = await startPostgres({ tls: true });
  await seedOrders(db);
  idp = await startOidcIssuer({ clientId: 'chaperone' });
  const env = { ...process.env, PGPASSWORD: db.password, PGSSLMODE: 'disable' };
  const init = await run(
    'pgbench',
    ['-h', '127.0.0.1', '-p', String(db.port), '-U', 'postgres', '-i', '-q', '-s', '1', 'orders'],
    { env },
  );
  expect(init.code, init.stderr).toBe(0);
  await db.psql(
    'GRANT ALL ON pgbench_accounts, pgbench_branches, pgbench_tellers, pgbench_history TO chaperone_admin',
    {
      database: 'orders',
    },
  );
  const dir = await mkdtemp(join(tmpdir(), 'chaperone-cfg-'));
  tempDirs.push(dir);
  // Upstream over TLS verified against the test CA (verify-full), the CA from a Secret.
  const caPem = (await import('node:fs')).readFileSync(db.ca?.certPath ?? '', 'utf8');
  const conf = configYaml(db)
    .replace('tls: { mode: disable }', 'tls: { mode: verify-full, caSecretRef: { name: pg-ca } }')
    .concat(
      `---\napiVersion: v1\nkind: Secret\nmetadata: { name: pg-ca }\nstringData:\n  ca.crt: |\n${caPem.replace(/^/gm, '    ')}\n`,
    )
    .concat(ONCALL_POLICY);
  await writeFile(join(dir, 'config.yaml'), conf);
  const pki = await mkdtemp(join(tmpdir(), 'chaperone-pki-'));
  tempDirs.push(pki);
  const ca = await createTestCa(pki);
  const cert = await ca.issue('sidecar', {
    commonName: 'localhost',
    altNames: ['IP:127.0.0.1', 'DNS:localhost'],
    usage: 'server',
  });
  caPath = ca.certPath;
  const fs = await import('node:fs/promises');
  sidecar = await runStandalone({
    configDir: dir,
    serviceAccount: { namespace: 'agents', name: 'orders-agent' },
    recordingsDir: join(dir, 'rec'),
    adminPort: 0,
    listenPorts: { 'orders-db': await freePort() },
    oidc: { issuers: [{ issuer: idp.issuer, audience: 'chaperone' }], require: false, tokenUser: 'oidc' },
    clientTls: {
      cert: await fs.readFile(cert.certPath, 'utf8'),
      key: await fs.readFile(cert.keyPath, 'utf8'),
    },
    log: () => {},
  });
  port = sidecar.gateways.get('orders-db')?.port ?? 0;
});
afterAll(async () => {
  await sidecar?.stop();
  await idp?.stop();
  await db?.stop();
  for (const d of tempDirs) await rm(d, { recursive: true, force: true });
});

const pgbench = (mode: string, env: NodeJS.ProcessEnv) =>
  run(
    'pgbench',
    ['-h', '127.0.0.1', '-p', String(port), '-n', '-M', mode, '-c', '4', '-j', '2', '-t', '100', 'orders'],
    {
      env: { ...process.env, PGSSLMODE: 'disable', ...env },
      timeoutMs: 120_000,
    },
  );

describe('real clients through the gateway', () => {
  it('speaks TLS to psql (verify-full against the sidecar certificate) and TLS upstream', async () => {
    // The statement runs on the gateway's upstream backend, so pg_stat_ssl tells whether that is TLS.
    const sql =
      'SELECT count(*) FROM ONLY customers; SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()';
    const res = await run('psql', ['-X', '-At', '-c', sql], {
      env: {
        ...process.env,
        PGHOST: '127.0.0.1',
        PGPORT: String(port),
        PGUSER: 'agent',
        PGDATABASE: 'orders',
        PGSSLMODE: 'verify-full',
        PGSSLROOTCERT: caPath,
      },
    });
    expect(res.stderr).toBe('');
    expect(res.stdout.trim().split('\n')).toEqual(['2', 't']);
  });

  it('runs pgbench (TPC-B: reads and writes) in simple, extended and prepared mode for an OIDC group member', async () => {
    const token = await idp.mint({
      subject: 'carol',
      email: 'carol@example.test',
      groups: ['orders-oncall'],
    });
    for (const mode of ['simple', 'extended', 'prepared']) {
      const res = await pgbench(mode, { PGUSER: 'oidc', PGPASSWORD: token });
      expect(res.code, `${mode}: ${res.stderr}`).toBe(0);
      expect(res.stdout).toContain('number of transactions actually processed: 400/400');
      expect(res.stdout).toMatch(/number of failed transactions: 0/);
    }
  });

  it('denies pgbench for the pod identity alone: its policy does not cover the pgbench tables', async () => {
    const res = await pgbench('prepared', { PGUSER: 'agent' });
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(/42501|approval|denied/);
  });

  it('refuses a tampered or wrong-audience ID token with 28P01', async () => {
    const good = await idp.mint({ subject: 'mallory', groups: ['dev'] });
    const [h, p, s] = good.split('.');
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p ?? '', 'base64url').toString()), groups: ['orders-oncall'] })).toString('base64url')}.${s}`;
    for (const password of [forged, await idp.mint({ subject: 'x', audience: 'other' }), 'not-a-jwt']) {
      const c = new pg.Client({ host: '127.0.0.1', port, user: 'oidc', password, database: 'orders' });
      await expect(c.connect()).rejects.toMatchObject({ code: '28P01' });
    }
  });

  it('refuses a replication connection and drops the options startup parameter', async () => {
    const repl = await run('psql', [
      '-X',
      '-c',
      'IDENTIFY_SYSTEM',
      `postgresql://agent@127.0.0.1:${port}/orders?replication=database&sslmode=disable`,
    ]);
    expect(repl.code).not.toBe(0);
    expect(repl.stderr).toContain('replication connections are not supported');
    const opt = await run('psql', [
      '-X',
      '-At',
      '-c',
      'SHOW search_path',
      `postgresql://agent@127.0.0.1:${port}/orders?sslmode=disable&options=-csearch_path%3Devil`,
    ]);
    expect(opt.stdout.trim()).not.toContain('evil');
  });
});
