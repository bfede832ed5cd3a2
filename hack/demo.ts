// `make demo`: an agent speaks plain PostgreSQL to the Chaperone sidecar, which masks, pauses for
// approval, denies and records — against a real, temporary PostgreSQL. Everything runs on
// 127.0.0.1 and is removed at the end. Needs `make build` (the Makefile does it).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, repoPath, run, startPostgres } from '@chaperone/testkit';
import { parseAllDocuments, stringify } from 'yaml';
import { bold, dim, green, red, sleep, step } from './demo-style.ts';

const t0 = Date.now();

step(1, 'A real PostgreSQL with an orders database (temporary, on 127.0.0.1)');
const pg = await startPostgres();
const work = await mkdtemp(join(tmpdir(), 'chaperone-demo-'));
let sidecar: ReturnType<typeof spawn> | undefined;
let collector: ReturnType<typeof spawn> | undefined;
// Demo-only tokens for this run's local collector (standalone mode reads them from files).
const INGEST_TOKEN = randomBytes(12).toString('hex');
const AUDITOR_TOKEN = randomBytes(12).toString('hex');
try {
  await pg.psql("CREATE ROLE chaperone_admin LOGIN CREATEROLE PASSWORD 'demo-admin-password'");
  await pg.psql('CREATE DATABASE orders OWNER chaperone_admin');
  await pg.psql(
    `SET ROLE chaperone_admin;
     CREATE TABLE customers (id int PRIMARY KEY, name text, email text, ssn text, note text);
     CREATE TABLE orders (id int PRIMARY KEY, customer_id int REFERENCES customers, amount numeric(10,2), status text);
     INSERT INTO customers VALUES
       (1, 'Ada Lovelace', 'ada@example.com', '123-45-6789', 'pays with 4111 1111 1111 1111'),
       (2, 'Alan Turing',  'alan@example.com', '987-65-4321', 'prefers invoices');
     INSERT INTO orders SELECT g, 1 + g % 2, g * 10, CASE WHEN g % 4 = 0 THEN 'cancelled' ELSE 'open' END
       FROM generate_series(1, 12) g;`,
    { database: 'orders' },
  );
  console.log(`  PostgreSQL ${pg.port}: tables customers (2 rows) and orders (12 rows)`);

  step(
    2,
    'The sidecar starts from examples/ (Connection, AccessPolicy, Secret) — the same YAML as in a cluster',
  );
  const listen = await freePort();
  const admin = await freePort();
  const config = join(work, 'config');
  await run('mkdir', ['-p', config]);
  for (const file of [
    'orders-db-connection.yaml',
    'orders-db-admin-secret.yaml',
    'orders-agents-policy.yaml',
  ]) {
    const docs = parseAllDocuments(await readFile(repoPath('examples', file), 'utf8')).map((d) => d.toJS());
    for (const doc of docs) {
      // Point the example at this run's database and ports; nothing else changes.
      if (doc.kind === 'Connection')
        Object.assign(doc.spec.endpoint, { port: pg.port }, { tls: { mode: 'disable' } });
      if (doc.kind === 'Connection') doc.spec.listen.port = listen;
      if (doc.kind === 'Secret') doc.stringData.password = 'demo-admin-password';
    }
    await writeFile(join(config, file), docs.map((d) => stringify(d)).join('---\n'));
  }
  const collectorPort = await freePort();
  const collectorUrl = `http://127.0.0.1:${collectorPort}`;
  await writeFile(join(work, 'ingest.token'), INGEST_TOKEN, { mode: 0o600 });
  await writeFile(join(work, 'auditor.token'), AUDITOR_TOKEN, { mode: 0o600 });
  collector = spawn(
    process.execPath,
    [
      repoPath('collector', 'dist', 'cli.js'),
      'serve',
      '--db',
      `sqlite:${join(work, 'collector.db')}`,
      '--port',
      String(collectorPort),
      '--ingest-token-file',
      join(work, 'ingest.token'),
      '--auditor-token-file',
      join(work, 'auditor.token'),
      '--log-level',
      'warn',
    ],
    { stdio: 'ignore' },
  );
  for (let i = 0; i < 100; i++) {
    if ((await fetch(`${collectorUrl}/healthz`).catch(() => undefined))?.ok) break;
    await sleep(100);
  }
  const cli = repoPath('sidecar', 'dist', 'cli.js');
  sidecar = spawn(
    process.execPath,
    [
      '--liftoff-only',
      cli,
      '--standalone',
      config,
      '--service-account',
      'default/orders-agent',
      '--collector',
      collectorUrl,
      '--collector-token-file',
      join(work, 'ingest.token'),
      '--spool',
      join(work, 'spool'),
      '--admin-port',
      String(admin),
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let sidecarLog = '';
  sidecar.stderr?.on('data', (d) => {
    sidecarLog += d;
  });
  for (let i = 0; i < 100 && !sidecarLog.includes('"ready"'); i++) await sleep(50);
  const ready = /"msg":"ready","ms":(\d+)/.exec(sidecarLog);
  if (!ready) throw new Error(`sidecar did not start:\n${sidecarLog}`);
  console.log(
    `  chaperone-sidecar --standalone ${dim('<examples>')}  ready in ${ready[1]} ms, listening on 127.0.0.1:${listen}`,
  );
  console.log(
    `  the agent gets only ${bold(`PGHOST=127.0.0.1 PGPORT=${listen}`)} — no password, no database account`,
  );

  const env = {
    ...process.env,
    PGHOST: '127.0.0.1',
    PGPORT: String(listen),
    PGUSER: 'agent',
    PGDATABASE: 'orders',
    PGSSLMODE: 'disable',
  };
  // psql's output is streamed, so a NOTICE shows up while the statement still waits.
  const agent = (sql: string) =>
    new Promise<number>((resolve) => {
      console.log(`${dim('agent$')} psql -c ${JSON.stringify(sql)}`);
      const child = spawn('psql', ['-X', '-c', sql], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      const show = (color: (s: string) => string) => (d: Buffer) =>
        process.stdout.write(color(d.toString().replace(/^(?=.)/gm, '  ')));
      child.stdout.on(
        'data',
        show((x) => x),
      );
      child.stderr.on(
        'data',
        show((x) => (/ERROR/.test(x) ? red(x) : x)),
      );
      child.on('close', (code) => resolve(code ?? 1));
    });

  step(3, 'Reads are allowed — e-mail, SSN and card numbers are masked on the way back');
  await agent('SELECT id, name, email, ssn, note FROM customers ORDER BY id');

  step(4, 'A DELETE waits for a human; a DBA approves it from another terminal');
  const pending = agent("DELETE FROM orders WHERE status = 'cancelled'");
  let name = '';
  for (let i = 0; i < 100 && !name; i++) {
    await sleep(100);
    const list = (await (await fetch(`http://127.0.0.1:${admin}/approvals`)).json()) as {
      items: Array<{ name: string }>;
    };
    name = list.items[0]?.name ?? '';
  }
  await sleep(1500);
  console.log(`${dim('dba$')} chaperone-sidecar approvals approve ${name} --reason "cleanup ticket 4711"`);
  const approve = await run(process.execPath, [
    cli,
    'approvals',
    'approve',
    name,
    '--reason',
    'cleanup ticket 4711',
    '--by',
    'alice',
    '--admin',
    `http://127.0.0.1:${admin}`,
  ]);
  console.log(green(`  ${approve.stdout.trim()}`));
  await pending;

  step(5, 'DDL is refused outright, and so is a query that would unmask a column through an expression');
  await agent('DROP TABLE customers');
  await agent('SELECT upper(ssn) FROM customers');

  step(6, 'Everything was recorded: the sidecar spooled it and shipped it to the collector');
  await sleep(500);
  sidecar.kill('SIGTERM');
  await new Promise((r) => sidecar?.once('exit', r));
  const api = async (path: string) =>
    (
      await fetch(`${collectorUrl}${path}`, { headers: { authorization: `Bearer ${AUDITOR_TOKEN}` } })
    ).json() as Promise<Record<string, unknown>>;
  const { sessions = [] } = (await api('/v1/sessions?limit=20')) as {
    sessions?: Array<{ sessionId: string }>;
  };
  console.log(`  ${sessions.length} sessions in the collector; the DELETE's transcript:`);
  for (const s of sessions) {
    const res = await fetch(`${collectorUrl}/v1/sessions/${encodeURIComponent(s.sessionId)}/replay`, {
      headers: { authorization: `Bearer ${AUDITOR_TOKEN}` },
    });
    const text = await res.text();
    if (text.includes('DELETE')) console.log(text.trimEnd().replace(/^/gm, '    '));
  }
  const verify = await api('/v1/verify?from=2000-01-01T00:00:00Z&to=2100-01-01T00:00:00Z');
  console.log(`  hash chains: ${verify.ok === true ? green('verified') : red(JSON.stringify(verify))}`);
  const everything = JSON.stringify(
    await Promise.all(sessions.map((s) => api(`/v1/sessions/${encodeURIComponent(s.sessionId)}`))),
  );
  console.log(
    `  admin password in recordings: ${everything.includes('demo-admin-password') ? red('FOUND') : green('absent')}`,
  );

  console.log(`\n${bold('Done')} in ${((Date.now() - t0) / 1000).toFixed(1)} s.`);
  console.log(`  Auditor UI:  ${collectorUrl}/ui   (log in with token ${AUDITOR_TOKEN})`);
  console.log(
    `  API:         curl -s -H 'Authorization: Bearer ${AUDITOR_TOKEN}' '${collectorUrl}/v1/sessions?decision=denied'`,
  );
  if (process.stdin.isTTY && !process.env.CI) {
    console.log(
      dim('  The collector stays up for you to look around; Ctrl-C ends the demo and removes everything.'),
    );
    await new Promise((resolve) => process.once('SIGINT', resolve));
  }
} finally {
  sidecar?.kill('SIGKILL');
  collector?.kill('SIGTERM');
  await pg.stop();
  await rm(work, { recursive: true, force: true });
}
