import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RecordingEvent } from '@chaperone/api';
import { freePort, startPostgres, type TestPostgres } from '@chaperone/testkit';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildCli,
  type CollectorProcess,
  runVerify,
  startCollectorProcess,
} from './test-support/collector-process.js';
import { ship } from './test-support/shipper.js';
import { interleave, workloadSession } from './test-support/workload.js';

// Faults with the real CLI as a separate process: kill -9 while several shippers send 10,000+
// events, restart on the same database, let the shippers retry — then every event is present
// exactly once and every chain verifies. Tampering with the database is found by `verify`.

const INGEST_TOKEN = 'fault-test-ingest-token-0123456789';
const AUDITOR_TOKEN = 'fault-test-auditor-token-0123456789';
const SHIPPERS = 6;
const SESSIONS_PER_SHIPPER = 42;
const QUERIES = 20; // 43 events per session → 10,836 events

let dir: string;
let tokenArgs: string[];
const running = new Set<CollectorProcess>();

beforeAll(async () => {
  await buildCli();
  dir = await mkdtemp(join(tmpdir(), 'chaperone-collector-faults-'));
  await writeFile(join(dir, 'ingest.token'), INGEST_TOKEN);
  await writeFile(join(dir, 'auditor.token'), AUDITOR_TOKEN);
  tokenArgs = [
    '--ingest-token-file',
    join(dir, 'ingest.token'),
    '--auditor-token-file',
    join(dir, 'auditor.token'),
  ];
});
afterAll(async () => {
  for (const c of running) c.proc.kill('SIGKILL');
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function start(args: string[], port: number): Promise<CollectorProcess> {
  const c = await startCollectorProcess([...tokenArgs, ...args], port);
  running.add(c);
  void c.exited.then(() => running.delete(c));
  return c;
}

function workload(prefix: string): {
  perShipper: RecordingEvent[][];
  sessions: Map<string, number>;
  total: number;
} {
  const sessions = new Map<string, number>();
  const perShipper: RecordingEvent[][] = [];
  const t0 = Date.parse('2025-05-01T00:00:00.000Z');
  for (let s = 0; s < SHIPPERS; s++) {
    const mine: RecordingEvent[][] = [];
    for (let i = 0; i < SESSIONS_PER_SHIPPER; i++) {
      const id = `${prefix}-${s}-${i}`;
      const events = workloadSession(
        id,
        QUERIES + (i % 2),
        t0 + (s * SESSIONS_PER_SHIPPER + i) * 1000,
        `agents/shipper-${s}`,
      );
      sessions.set(id, events.length);
      mine.push(events);
    }
    perShipper.push(interleave(mine, s + 1));
  }
  const total = [...sessions.values()].reduce((a, b) => a + b, 0);
  return { perShipper, sessions, total };
}

/** Sends batches that must be refused, and checks the collector keeps serving. */
async function badClient(url: string, until: () => boolean): Promise<number> {
  let refused = 0;
  const post = (body: string, token = INGEST_TOKEN) =>
    fetch(`${url}/v1/events`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body,
    }).catch(() => undefined);
  while (!until()) {
    const bad = [
      post(JSON.stringify({ events: [{ v: 1, type: 'query', sessionId: 'evil', seq: 0 }] })),
      post(JSON.stringify({ events: Array(1001).fill({}) })),
      post('{"events": [', INGEST_TOKEN),
      post(JSON.stringify({ events: [] }), 'wrong-token'),
    ];
    for (const res of await Promise.all(bad)) {
      if (!res) continue; // collector down at the moment
      if (res.status >= 500) continue;
      expect(res.status).toBeGreaterThanOrEqual(400);
      expect(res.status).toBeLessThan(500);
      refused++;
      await res.body?.cancel();
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return refused;
}

describe('collector faults (SQLite, one process)', () => {
  it('loses nothing and stores nothing twice when killed -9 mid-way through 10,000+ events', async () => {
    const db = join(dir, 'kill.db');
    const port = await freePort();
    let collector = await start(['--db', `sqlite:${db}`], port);
    const { perShipper, sessions, total } = workload('k');
    expect(total).toBeGreaterThan(10_000);

    let acked = 0;
    let killed: Promise<void> | undefined;
    const onAck = (n: number) => {
      acked += n;
      if (!killed && acked > total * 0.4) {
        killed = (async () => {
          collector.proc.kill('SIGKILL');
          expect(await collector.exited).toBe('SIGKILL');
          await new Promise((r) => setTimeout(r, 300)); // shippers fail and retry meanwhile
          collector = await start(['--db', `sqlite:${db}`], port);
        })();
      }
    };
    let done = false;
    const bad = badClient(`http://127.0.0.1:${port}`, () => done);
    const results = await Promise.all(
      perShipper.map((events) =>
        ship({
          urls: [`http://127.0.0.1:${port}`],
          token: INGEST_TOKEN,
          events,
          batchSize: () => 50 + Math.floor(Math.random() * 150),
          onAck,
          pauseMs: 5,
        }),
      ),
    );
    done = true;
    expect(await bad).toBeGreaterThan(0);
    await killed;
    expect(killed).toBeDefined();
    expect(results.reduce((n, r) => n + r.failures, 0)).toBeGreaterThan(0);
    expect(results.reduce((n, r) => n + r.acknowledged, 0)).toBe(total);

    // Every event exactly once, and the summaries agree with the rows (no batch half-applied).
    const raw = new Database(db, { readonly: true });
    const counts = raw
      .prepare(
        'SELECT session_id, count(*) AS n, count(DISTINCT seq) AS d, max(seq) AS m FROM events GROUP BY session_id',
      )
      .all() as Array<{ session_id: string; n: number; d: number; m: number }>;
    const summaries = new Map(
      (
        raw.prepare('SELECT session_id, events, max_seq FROM sessions').all() as Array<{
          session_id: string;
          events: number;
          max_seq: number;
        }>
      ).map((r) => [r.session_id, r]),
    );
    const evil = raw.prepare("SELECT count(*) AS n FROM events WHERE session_id = 'evil'").get() as {
      n: number;
    };
    raw.close();
    expect(evil.n).toBe(0);
    expect(counts).toHaveLength(sessions.size);
    for (const c of counts) {
      const expected = sessions.get(c.session_id);
      expect({ id: c.session_id, n: c.n, distinct: c.d, max: c.m }).toEqual({
        id: c.session_id,
        n: expected,
        distinct: expected,
        max: expected! - 1,
      });
      expect(summaries.get(c.session_id)).toEqual({
        session_id: c.session_id,
        events: expected,
        max_seq: expected! - 1,
      });
    }

    // Every chain verifies, through the API (running collector) and the CLI (same file).
    const api = await fetch(`${collector.url}/v1/verify?from=2025-01-01`, {
      headers: { authorization: `Bearer ${AUDITOR_TOKEN}` },
    });
    expect(await api.json()).toMatchObject({
      ok: true,
      sessionsChecked: sessions.size,
      eventsChecked: total,
      broken: [],
    });
    const cli = await runVerify(['--db', `sqlite:${db}`]);
    expect(cli.stderr).toBe('');
    expect(cli.stdout.trim()).toBe(
      `verified ${sessions.size} sessions, ${total} events: every chain is intact`,
    );
    expect(cli.code).toBe(0);

    // SIGTERM: a clean stop.
    collector.proc.kill('SIGTERM');
    expect(await collector.exited).toBe(0);
  });

  it('names the session and the broken link of a tampered event, and the CLI exits 1', async () => {
    const db = join(dir, 'tamper.db');
    const port = await freePort();
    const collector = await start(['--db', `sqlite:${db}`], port);
    const events = workloadSession('tamper-me', 5, Date.parse('2025-06-01T00:00:00Z'), 'agents/a').concat(
      workloadSession('leave-me', 5, Date.parse('2025-06-01T01:00:00Z'), 'agents/a'),
    );
    await ship({ urls: [collector.url], token: INGEST_TOKEN, events, batchSize: () => 100 });
    collector.proc.kill('SIGTERM');
    expect(await collector.exited).toBe(0);
    expect((await runVerify(['--db', `sqlite:${db}`])).code).toBe(0);

    // What an insider with write access to the database might do: soften a recorded statement.
    const raw = new Database(db);
    raw
      .prepare(
        "UPDATE events SET canonical = replace(canonical, 'customer_id = 3', 'customer_id = 4') WHERE session_id = 'tamper-me' AND seq = 8",
      )
      .run();
    raw.close();

    const one = await runVerify(['--db', `sqlite:${db}`, '--session', 'tamper-me']);
    expect(one.code).toBe(1);
    const lines = one.stdout.trim().split('\n');
    expect(lines[0]).toBe('session tamper-me: BROKEN (13 events, last seq 12, ended)');
    expect(lines[1]).toMatch(
      /^ {2}- seq 8: the stored text hashes to [0-9a-f]{12}…, not to [0-9a-f]{12}… as recorded when it was ingested$/,
    );
    expect(lines[2]).toMatch(
      /^ {2}- link 8 → 9 is broken: seq 9 carries prevHash [0-9a-f]{12}…, but the stored seq 8 hashes to [0-9a-f]{12}…$/,
    );

    const all = await runVerify([
      '--db',
      `sqlite:${db}`,
      '--from',
      '2025-06-01',
      '--to',
      '2025-06-02',
      '--json',
    ]);
    expect(all.code).toBe(1);
    const report = JSON.parse(all.stdout);
    expect(report).toMatchObject({ ok: false, sessionsChecked: 2, eventsChecked: 26 });
    expect(report.broken.map((b: { sessionId: string }) => b.sessionId)).toEqual(['tamper-me']);
    expect(report.broken[0].problems[1]).toMatchObject({ kind: 'broken-link', seq: 9 });
    expect(report.broken[0].problems[1].expectedPrevHash).not.toBe(
      report.broken[0].problems[1].actualPrevHash,
    );

    // Usage and access errors are exit 2, not a verdict.
    expect((await runVerify(['--db', `sqlite:${db}`, '--session', 'nope'])).code).toBe(2);
    const missing = await runVerify(['--db', `sqlite:${join(dir, 'missing.db')}`]);
    expect(missing).toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/cannot open sqlite:.*missing\.db/),
    });
    new Database(join(dir, 'empty.db')).close();
    const empty = await runVerify(['--db', `sqlite:${join(dir, 'empty.db')}`]);
    expect(empty).toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/has schema version 0, this tool reads 2/),
    });
  });
});

describe('collector faults (PostgreSQL, two replicas)', () => {
  let pgServer: TestPostgres;
  beforeAll(async () => {
    pgServer = await startPostgres();
    await pgServer.psql('CREATE DATABASE collector');
  });
  afterAll(async () => {
    await pgServer?.stop();
  });

  it('keeps every event exactly once when one of two replicas is killed -9 and shippers fail over', async () => {
    const url = pgServer.url({ database: 'collector' });
    const [portA, portB] = [await freePort(), await freePort()];
    let a = await start(['--db', url], portA);
    const b = await start(['--db', url], portB);
    const { perShipper, sessions, total } = workload('r');
    let acked = 0;
    let killed: Promise<void> | undefined;
    const results = await Promise.all(
      perShipper.map((events, i) =>
        ship({
          // Half the shippers prefer A, half B; each fails over to the other.
          urls: i % 2 ? [a.url, b.url] : [b.url, a.url],
          token: INGEST_TOKEN,
          events,
          batchSize: () => 100 + Math.floor(Math.random() * 200),
          pauseMs: 5,
          onAck: (n) => {
            acked += n;
            if (!killed && acked > total * 0.3) {
              killed = (async () => {
                a.proc.kill('SIGKILL');
                await a.exited;
                await new Promise((r) => setTimeout(r, 300));
                a = await start(['--db', url], portA);
              })();
            }
          },
        }),
      ),
    );
    await killed;
    expect(killed).toBeDefined();
    expect(results.reduce((n, r) => n + r.failures, 0)).toBeGreaterThan(0);
    expect(results.reduce((n, r) => n + r.acknowledged, 0)).toBe(total);

    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      const { rows } = await client.query<{ session_id: string; n: number; d: number; events: number }>(
        `SELECT e.session_id, count(*)::int AS n, count(DISTINCT e.seq)::int AS d, s.events
         FROM events e JOIN sessions s USING (session_id) GROUP BY e.session_id, s.events`,
      );
      expect(rows).toHaveLength(sessions.size);
      for (const r of rows) {
        const expected = sessions.get(r.session_id);
        expect({ id: r.session_id, n: r.n, d: r.d, summary: r.events }).toEqual({
          id: r.session_id,
          n: expected,
          d: expected,
          summary: expected,
        });
      }
    } finally {
      await client.end();
    }
    const cli = await runVerify(['--db', url]);
    expect(cli.stdout.trim()).toBe(
      `verified ${sessions.size} sessions, ${total} events: every chain is intact`,
    );
    expect(cli.code).toBe(0);
    for (const c of [a, b]) {
      c.proc.kill('SIGTERM');
      expect(await c.exited).toBe(0);
    }
  });
});
