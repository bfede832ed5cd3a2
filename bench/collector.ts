// `make bench` (collector part): ingest events/s into SQLite over
// HTTP on loopback, and session search latency on 1M stored events.
//   make build && node bench/collector.ts [ingest|search|search-pg|all]
// Env: EVENTS (search dataset, default 1000000), INGEST_EVENTS (per run, default 100000),
// CLIENTS (concurrent shippers, default 4), DB_URL (also measure ingest into this PostgreSQL),
// SQLITE=0 (skip SQLite ingest).
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canonicalJson, type RecordingEvent } from '@chaperone/api';
import {
  type EventStore,
  PostgresEventStore,
  type PreparedEvent,
  type SessionQuery,
  SqliteEventStore,
  workloadSession,
} from '@chaperone/collector';
import pg from 'pg';

const mode = process.argv[2] ?? 'all';
const CLI = new URL('../collector/dist/cli.js', import.meta.url).pathname;
const TOKEN = 'measure-token-0123456789abcdef';
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function startCollector(db: string, port: number, dir: string): Promise<ChildProcess> {
  await writeFile(join(dir, 'token'), TOKEN);
  const proc = spawn(
    process.execPath,
    [
      CLI,
      'serve',
      '--db',
      db,
      '--port',
      String(port),
      '--ingest-token-file',
      join(dir, 'token'),
      '--log-level',
      'warn',
      '--max-batch-events',
      '1000',
    ],
    { stdio: 'inherit' },
  );
  for (let i = 0; i < 200; i++) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/readyz`)).ok) return proc;
    } catch {}
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('collector did not start');
}

async function measureIngest(label: string, db: string, dir: string, batch: number, port: number) {
  const total = Number(process.env.INGEST_EVENTS ?? 100_000);
  const clients = Number(process.env.CLIENTS ?? 4);
  // Bodies are serialized up front: the shippers share the 2 cores with the collector, and we
  // measure the collector, not JSON.stringify in the client.
  const bodies: string[][] = Array.from({ length: clients }, () => []);
  let made = 0;
  let n = 0;
  let pending: RecordingEvent[] = [];
  while (made < total) {
    const s = workloadSession(
      `${label}-${batch}-${n}`,
      20,
      Date.UTC(2025, 0, 1) + n * 1000,
      `agents/sa-${n % 50}`,
    );
    n++;
    for (const e of s) {
      pending.push(e);
      made++;
      if (pending.length === batch) {
        bodies[(made / batch) % clients]!.push(JSON.stringify({ events: pending }));
        pending = [];
      }
    }
  }
  const proc = await startCollector(db, port, dir);
  try {
    const t0 = performance.now();
    await Promise.all(
      bodies.map(async (list) => {
        for (const body of list) {
          const res = await fetch(`http://127.0.0.1:${port}/v1/events`, {
            method: 'POST',
            headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
            body,
          });
          if (!res.ok) throw new Error(`${res.status} ${await res.text()}`);
          await res.json();
        }
      }),
    );
    const secs = (performance.now() - t0) / 1000;
    const sent = bodies.reduce((a, l) => a + l.length, 0) * batch;
    return { label, batch, clients, events: sent, seconds: secs, rate: sent / secs };
  } finally {
    proc.kill('SIGTERM');
    await new Promise((r) => proc.once('exit', r));
  }
}

async function ingest() {
  const dir = await mkdtemp(join(tmpdir(), 'collector-measure-'));
  const rows = [];
  let port = 18600;
  try {
    for (const sync of process.env.SQLITE === '0' ? [] : (['full', 'normal'] as const)) {
      for (const batch of [100, 250, 500]) {
        const db = `sqlite:${join(dir, `ingest-${sync}-${batch}.db`)}?synchronous=${sync}`;
        rows.push({
          store: `sqlite (synchronous=${sync})`,
          ...(await measureIngest('i', db, dir, batch, port++)),
        });
      }
    }
    if (process.env.DB_URL) {
      for (const batch of [100, 500])
        rows.push({
          store: 'postgres',
          ...(await measureIngest(`pg${port}`, process.env.DB_URL, dir, batch, port++)),
        });
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  console.log('\nIngest over HTTP (loopback, pre-serialized bodies)');
  console.log('store                        batch  clients   events   seconds   events/s');
  for (const r of rows) {
    console.log(
      `${r.store.padEnd(28)} ${String(r.batch).padStart(5)} ${String(r.clients).padStart(8)} ${String(r.events).padStart(8)} ${r.seconds.toFixed(2).padStart(9)} ${Math.round(r.rate).toString().padStart(10)}`,
    );
  }
}

async function search(kind: 'sqlite' | 'postgres') {
  const target = Number(process.env.EVENTS ?? 1_000_000);
  const dir = await mkdtemp(join(tmpdir(), 'collector-search-'));
  const path = join(dir, 'search.db');
  const open = (): EventStore =>
    kind === 'sqlite'
      ? new SqliteEventStore({ path, synchronous: 'normal' })
      : new PostgresEventStore({ connectionString: process.env.DB_URL! });
  const store = open();
  await store.migrate();
  const t0 = Date.parse('2024-01-01T00:00:00Z');
  let events = 0;
  let sessions = 0;
  const started = performance.now();
  let batch: PreparedEvent[] = [];
  while (events < target) {
    const id = `s-${sessions.toString(36).padStart(6, '0')}`;
    // ~40 events per session; sessions spread over a year; 200 ServiceAccounts; a user on half.
    const queries = 15 + (sessions % 11);
    const sa = `agents/sa-${sessions % 200}`;
    const session = workloadSession(id, queries, t0 + sessions * 1_200_000 + (sessions % 7) * 1000, sa).map(
      (e) => {
        const identity = {
          ...e.identity,
          ...(sessions % 2 ? { user: `user${sessions % 1000}@example.com` } : {}),
          groups: [`team-${sessions % 50}`, ...(sessions % 10 === 0 ? ['oncall'] : [])],
        };
        const connection = `conn-${sessions % 20}`;
        if (e.type === 'query' && sessions % 997 === 0) {
          return {
            ...e,
            identity,
            connection,
            data: { ...e.data, text: `${e.data.text} -- incident-4711` },
          } as RecordingEvent;
        }
        return { ...e, identity, connection } as RecordingEvent;
      },
    );
    // Rebuild the chain after the edits.
    let prev = '';
    for (const e of session) {
      const ev = { ...e, prevHash: prev } as RecordingEvent;
      const canonical = canonicalJson(ev);
      prev = sha256(canonical);
      batch.push({ event: ev, canonical, hash: prev });
    }
    sessions++;
    events += session.length;
    if (batch.length >= 2000) {
      await store.appendBatch(batch);
      batch = [];
    }
  }
  if (batch.length) await store.appendBatch(batch);
  const genSecs = (performance.now() - started) / 1000;
  const size = kind === 'sqlite' ? `; file ${((await stat(path)).size / 1e6).toFixed(0)} MB` : '';
  console.log(
    `\nGenerated ${events} events in ${sessions} sessions directly into ${kind} in ${genSecs.toFixed(1)} s (${Math.round(events / genSecs)} events/s incl. hashing)${size}`,
  );
  await store.close();
  if (kind === 'postgres') {
    // What autovacuum would do shortly after a bulk load.
    const c = new pg.Client({ connectionString: process.env.DB_URL });
    await c.connect();
    await c.query('VACUUM ANALYZE');
    await c.end();
  }
  const reader = open();

  // A deep cursor: the position after 10,000 sessions.
  let deep: SessionQuery['cursor'];
  {
    let cursor: SessionQuery['cursor'];
    for (let i = 0; i < 20; i++)
      cursor = (await reader.searchSessions({ limit: 500, cursor })).nextCursor ?? undefined;
    deep = cursor;
  }
  const queries: Array<[string, Omit<SessionQuery, 'limit'>]> = [
    ['newest 50', {}],
    ['page after 10,000 sessions', { cursor: deep }],
    ['identity (SA, 1/200)', { identity: 'agents/sa-17' }],
    ['identity (user, 1/2000)', { identity: 'user17@example.com' }],
    ['group (1/50)', { group: 'team-7' }],
    ['group (1/10)', { group: 'oncall' }],
    ['connection (1/20)', { connection: 'conn-3' }],
    ['decision denied', { decision: 'denied' }],
    ['decision masked + connection', { decision: 'masked', connection: 'conn-3' }],
    ['time range (1 week)', { from: new Date(t0 + 100 * 86_400_000), to: new Date(t0 + 107 * 86_400_000) }],
    ['text rare ("incident-4711")', { text: 'incident-4711' }],
    ['text common ("customer_id = 1")', { text: 'customer_id = 1' }],
    ['text + identity', { text: 'customer_id = 3', identity: 'agents/sa-5' }],
    [
      'group + decision + time',
      { group: 'team-3', decision: 'denied', from: new Date(t0 + 30 * 86_400_000) },
    ],
  ];
  console.log(
    `\nSession search on ${events} events / ${sessions} sessions (${kind}, in-process, limit 50, 40 runs each)`,
  );
  console.log('query                                  p50 ms   p95 ms   rows');
  for (const [name, q] of queries) {
    const times: number[] = [];
    let rows = 0;
    for (let i = 0; i < 40; i++) {
      const t = performance.now();
      const page = await reader.searchSessions({ ...q, limit: 50 });
      times.push(performance.now() - t);
      rows = page.sessions.length;
    }
    times.sort((a, b) => a - b);
    console.log(
      `${name.padEnd(38)} ${pct(times, 50).toFixed(2).padStart(7)} ${pct(times, 95).toFixed(2).padStart(8)} ${String(rows).padStart(6)}`,
    );
  }
  await reader.close();
  await rm(dir, { recursive: true, force: true });
}

if (mode === 'ingest' || mode === 'all') await ingest();
if (mode === 'search' || mode === 'all') await search('sqlite');
if (mode === 'search-pg' || (mode === 'all' && process.env.DB_URL)) await search('postgres');
