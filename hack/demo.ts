// `make demo`: an agent speaks plain PostgreSQL to the Chaperone sidecar, which masks, pauses for
// approval, denies and records — against a real, temporary PostgreSQL. Everything runs on
// 127.0.0.1 and is removed at the end. Needs `make build` (the Makefile does it).
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, repoPath, run, startPostgres } from '@chaperone/testkit';
import { parseAllDocuments, stringify } from 'yaml';

const tty = process.stdout.isTTY;
const bold = (s: string) => (tty ? `\x1b[1m${s}\x1b[0m` : s);
const dim = (s: string) => (tty ? `\x1b[2m${s}\x1b[0m` : s);
const green = (s: string) => (tty ? `\x1b[32m${s}\x1b[0m` : s);
const red = (s: string) => (tty ? `\x1b[31m${s}\x1b[0m` : s);
const step = (n: number, text: string) => console.log(`\n${bold(`${n}. ${text}`)}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const t0 = Date.now();

step(1, 'A real PostgreSQL with an orders database (temporary, on 127.0.0.1)');
const pg = await startPostgres();
const work = await mkdtemp(join(tmpdir(), 'chaperone-demo-'));
let sidecar: ReturnType<typeof spawn> | undefined;
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
  const recordings = join(work, 'recordings');
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
      '--recordings',
      recordings,
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

  step(6, 'Everything was recorded, with decisions, approver and a hash chain (no secret in it)');
  await sleep(300);
  sidecar.kill('SIGTERM');
  await new Promise((r) => sidecar?.once('exit', r));
  for (const f of (await readdir(recordings)).sort()) {
    const events = (await readFile(join(recordings, f), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    for (const e of events) {
      const d = e.data;
      const what =
        e.type === 'query'
          ? `${d.decision.padEnd(8)} ${d.text}${d.reason ? dim(`  — ${d.reason}`) : ''}`
          : e.type === 'result'
            ? `rows=${d.rows} masked=${d.maskedValues}${d.command ? ` ${d.command}` : ''}${d.error ? ` error` : ''}`
            : e.type === 'approval.decided'
              ? `${d.verdict} by ${d.by}${d.comment ? ` (${d.comment})` : ''}`
              : e.type === 'approval.requested'
                ? d.request
                : e.type === 'credential.issued'
                  ? d.description
                  : e.type === 'session.end'
                    ? d.reason
                    : '';
      if (e.type !== 'session.start') console.log(`  ${dim(`#${e.seq}`)} ${e.type.padEnd(18)} ${what}`);
    }
  }
  const all = (
    await Promise.all((await readdir(recordings)).map((f) => readFile(join(recordings, f), 'utf8')))
  ).join('');
  console.log(
    `  admin password in recordings: ${all.includes('demo-admin-password') ? red('FOUND') : green('absent')}`,
  );
  console.log(
    `\n${bold('Done')} in ${((Date.now() - t0) / 1000).toFixed(1)} s. Recordings are JSON lines; the collector (docs/) makes them searchable.`,
  );
} finally {
  sidecar?.kill('SIGKILL');
  await pg.stop();
  await rm(work, { recursive: true, force: true });
}
