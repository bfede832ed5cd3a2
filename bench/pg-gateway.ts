// `make bench` (PostgreSQL gateway part): pgbench select-only through four paths in one run —
// direct, the sidecar with no masking hit, the sidecar masking a column in every row, and
// pgbouncer (session mode) — at 1, 8 and 32 clients. Prints TPS, ratio to direct, p50/p99 latency,
// and the sidecar's idle RSS, RSS under load and time to ready. Ratios, not absolute numbers, are
// the result: everything shares this machine's 2 cores.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  freePort,
  hostUser,
  repoPath,
  run,
  runOk,
  startPostgres,
  type TestPostgres,
} from '@chaperone/testkit';

const DURATION = Number(process.env.BENCH_SECONDS ?? 8);
const CLIENTS = (process.env.BENCH_CLIENTS ?? '1,8,32').split(',').map(Number);
const SCALE = 10;

interface Row {
  path: string;
  clients: number;
  tps: number;
  p50: number;
  p99: number;
}

async function pgbench(
  port: number,
  clients: number,
  script: string,
  work: string,
  env: NodeJS.ProcessEnv,
): Promise<Omit<Row, 'path'>> {
  const prefix = join(work, `log-${port}-${clients}-${Date.now()}`);
  const res = await runOk(
    'pgbench',
    [
      '-h',
      '127.0.0.1',
      '-p',
      String(port),
      '-U',
      env.PGUSER ?? 'postgres',
      '-n',
      '-M',
      'prepared',
      '-c',
      String(clients),
      '-j',
      String(Math.min(clients, 2)),
      '-T',
      String(DURATION),
      '-f',
      script,
      '-l',
      `--log-prefix=${prefix}`,
      'bench',
    ],
    { env, timeoutMs: (DURATION + 60) * 1000 },
  );
  const tps = Number(/tps = ([\d.]+)/.exec(res)?.[1] ?? 0);
  const dir = join(prefix, '..');
  const base = prefix.split('/').pop() ?? '';
  const lat: number[] = [];
  for (const f of (await readdir(dir)).filter((n) => n.startsWith(base))) {
    for (const line of (await readFile(join(dir, f), 'utf8')).split('\n')) {
      const us = Number(line.split(' ')[2]);
      if (us > 0) lat.push(us);
    }
    await rm(join(dir, f));
  }
  lat.sort((a, b) => a - b);
  const pct = (p: number) =>
    lat.length ? (lat[Math.min(lat.length - 1, Math.floor(lat.length * p))] ?? 0) / 1000 : 0;
  return { clients, tps, p50: pct(0.5), p99: pct(0.99) };
}

function rssMb(pid: number): Promise<number> {
  return readFile(`/proc/${pid}/status`, 'utf8').then(
    (s) => Number(/VmRSS:\s+(\d+)/.exec(s)?.[1] ?? 0) / 1024,
  );
}

async function startSidecar(
  pg: TestPostgres,
  work: string,
  masked: boolean,
  recording: 'on' | 'off' = 'on',
): Promise<{ proc: ChildProcess; port: number; readyMs: number }> {
  const port = await freePort();
  const dir = await mkdtemp(join(work, 'cfg-'));
  await writeFile(
    join(dir, 'bench.yaml'),
    `apiVersion: chaperone.dev/v1alpha1
kind: Connection
metadata: { name: bench-db }
spec:
  type: postgres
  endpoint: { host: 127.0.0.1, port: ${pg.port}, database: bench, tls: { mode: disable } }
  listen: { port: ${port} }
  credentials: { postgres: { adminSecretRef: { name: bench-admin }, grantRoles: [pg_read_all_data] } }
---
apiVersion: v1
kind: Secret
metadata: { name: bench-admin }
stringData: { username: postgres, password: "${pg.password}" }
---
apiVersion: chaperone.dev/v1alpha1
kind: AccessPolicy
metadata: { name: bench }
spec:
  subjects: [{ kind: ServiceAccount, name: bench }]
  connections: { names: [bench-db] }
  rules: [{ name: all, action: allow }]
  guardrails: []
  masking:
    columns: [{ column: ${masked ? 'public.pgbench_accounts.filler' : 'public.no_such_table.no_such_column'}, strategy: redact }]
`,
  );
  const started = Date.now();
  const proc = spawn(
    process.execPath,
    ['--liftoff-only', repoPath('bench', 'sidecar-runner.ts'), dir, String(await freePort()), recording],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let log = '';
  proc.stderr?.on('data', (d) => {
    log += d;
  });
  while (!log.includes('"ready"')) {
    if (Date.now() - started > 20_000 || proc.exitCode !== null)
      throw new Error(`sidecar did not start: ${log}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  const readyMs = Number(/"msg":"ready","ms":(\d+)/.exec(log)?.[1] ?? Date.now() - started);
  return { proc, port, readyMs };
}

async function startPgbouncer(pg: TestPostgres, work: string): Promise<{ proc: ChildProcess; port: number }> {
  const user = await hostUser();
  const port = await freePort();
  const ini = join(work, 'pgbouncer.ini');
  await writeFile(join(work, 'userlist.txt'), `"postgres" "${pg.password}"\n`);
  await writeFile(
    ini,
    `[databases]\nbench = host=127.0.0.1 port=${pg.port} dbname=bench user=postgres password=${pg.password}\n[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = ${port}\nauth_type = trust\nauth_file = ${join(work, 'userlist.txt')}\npool_mode = session\nmax_client_conn = 200\ndefault_pool_size = 40\nunix_socket_dir =\nlogfile = ${join(work, 'pgbouncer.log')}\n`,
  );
  await runOk('chown', ['-R', `${user.uid}:${user.gid}`, work]).catch(() => {});
  const proc = spawn('/usr/sbin/pgbouncer', [ini], {
    stdio: 'ignore',
    ...(user.switchUser ? { uid: user.uid, gid: user.gid } : {}),
  });
  for (let i = 0; i < 100; i++) {
    if ((await run('pg_isready', ['-h', '127.0.0.1', '-p', String(port)])).code === 0) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return { proc, port };
}

const work = await mkdtemp(join(tmpdir(), 'chaperone-bench-'));
await runOk('chmod', ['755', work]);
const pg = await startPostgres({ settings: { max_connections: '300', shared_buffers: '256MB' } });
const procs: ChildProcess[] = [];
try {
  await pg.psql('CREATE DATABASE bench');
  const env = { ...process.env, PGPASSWORD: pg.password, PGUSER: 'postgres', PGSSLMODE: 'disable' };
  await runOk(
    'pgbench',
    ['-h', '127.0.0.1', '-p', String(pg.port), '-U', 'postgres', '-i', '-q', '-s', String(SCALE), 'bench'],
    { env, timeoutMs: 300_000 },
  );
  const script = join(work, 'select.sql');
  await writeFile(
    script,
    `\\set aid random(1, ${SCALE * 100000})\nSELECT abalance, filler FROM pgbench_accounts WHERE aid = :aid;\n`,
  );

  const plain = await startSidecar(pg, work, false);
  const masked = await startSidecar(pg, work, true);
  const unrecorded = await startSidecar(pg, work, false, 'off');
  const bouncer = await startPgbouncer(pg, work);
  procs.push(plain.proc, masked.proc, unrecorded.proc, bouncer.proc);
  await new Promise((r) => setTimeout(r, 500));
  const idleRss = await rssMb(plain.proc.pid ?? 0);
  // The agent side has no password: the sidecar holds the credential.
  const agentEnv = { ...process.env, PGUSER: 'agent', PGSSLMODE: 'disable' };

  const rows: Row[] = [];
  let loadRss = 0;
  for (const clients of CLIENTS) {
    rows.push({ path: 'direct', ...(await pgbench(pg.port, clients, script, work, env)) });
    const sampler = setInterval(
      () => void rssMb(plain.proc.pid ?? 0).then((r) => (loadRss = Math.max(loadRss, r))),
      200,
    );
    rows.push({ path: 'sidecar', ...(await pgbench(plain.port, clients, script, work, agentEnv)) });
    clearInterval(sampler);
    rows.push({ path: 'sidecar+masking', ...(await pgbench(masked.port, clients, script, work, agentEnv)) });
    rows.push({
      path: 'sidecar, no recording',
      ...(await pgbench(unrecorded.port, clients, script, work, agentEnv)),
    });
    // pgbouncer's trust mode still wants the user in its auth_file.
    rows.push({
      path: 'pgbouncer',
      ...(await pgbench(bouncer.port, clients, script, work, { ...agentEnv, PGUSER: 'postgres' })),
    });
  }

  console.log(
    `\npgbench -M prepared select-only, scale ${SCALE}, ${DURATION} s per cell, ${process.env.HOSTNAME ?? 'this machine'} (${(await runOk('nproc', [])).trim()} cores)\n`,
  );
  console.log('| clients | path | TPS | × direct | p50 ms | p99 ms |');
  console.log('|---:|---|---:|---:|---:|---:|');
  for (const r of rows) {
    const direct = rows.find((d) => d.path === 'direct' && d.clients === r.clients)?.tps ?? 1;
    console.log(
      `| ${r.clients} | ${r.path} | ${r.tps.toFixed(0)} | ${(r.tps / direct).toFixed(2)} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} |`,
    );
  }
  for (const clients of CLIENTS) {
    const on = rows.find((r) => r.path === 'sidecar' && r.clients === clients)?.tps ?? 0;
    const off = rows.find((r) => r.path === 'sidecar, no recording' && r.clients === clients)?.tps ?? 1;
    console.log(
      `recording overhead at ${clients} clients: ${((1 - on / off) * 100).toFixed(1)} % of gateway throughput`,
    );
  }
  console.log(
    `\nsidecar: ready in ${plain.readyMs} ms (masking config: ${masked.readyMs} ms), idle RSS ${idleRss.toFixed(1)} MB, peak RSS under load ${loadRss.toFixed(1)} MB`,
  );
} finally {
  for (const p of procs) p.kill('SIGKILL');
  await pg.stop();
  await rm(work, { recursive: true, force: true });
}
