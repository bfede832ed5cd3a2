import { startPostgres, type TestPostgres } from '@chaperone/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prepare, sqlSession } from '../test-support/recordings.js';
import { describeEventStoreContract } from '../test-support/store-contract.js';
import { verifySession } from '../verify/chain.js';
import { PostgresEventStore } from './postgres-store.js';

let pg: TestPostgres;
let counter = 0;
const urls = new WeakMap<PostgresEventStore, string>();
const created: string[] = [];

beforeAll(async () => {
  pg = await startPostgres();
});
afterAll(async () => {
  await pg?.stop();
});

async function freshDatabase(): Promise<string> {
  const name = `collector_${++counter}`;
  await pg.psql(`CREATE DATABASE ${name}`);
  created.push(name);
  return pg.url({ database: name });
}

async function rawQuery<T>(store: unknown, sql: string, params: unknown[] = []): Promise<T[]> {
  const url = urls.get(store as PostgresEventStore)!;
  const db = await pg.connect(new URL(url).pathname.slice(1));
  try {
    return (await db.query(sql, params)).rows as T[];
  } finally {
    await db.end();
  }
}

describeEventStoreContract('PostgreSQL', {
  async open() {
    const url = await freshDatabase();
    const store = new PostgresEventStore({ connectionString: url, poolSize: 4 });
    urls.set(store, url);
    return store;
  },
  async tamper(store, sessionId, seq, edit) {
    const [row] = await rawQuery<{ canonical: string }>(
      store,
      'SELECT canonical FROM events WHERE session_id = $1 AND seq = $2',
      [sessionId, seq],
    );
    await rawQuery(store, 'UPDATE events SET canonical = $1 WHERE session_id = $2 AND seq = $3', [
      edit(row!.canonical),
      sessionId,
      seq,
    ]);
  },
  async textIndexRows(store) {
    const [row] = await rawQuery<{ n: number }>(store, 'SELECT count(*)::int AS n FROM statement_chunks');
    return row!.n;
  },
  async cleanup() {
    for (const name of created.splice(0)) await pg.psql(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  },
});

describe('PostgreSQL store shared by several collector replicas', () => {
  it('migrates once when replicas start together, with the trigram index for text search', async () => {
    const url = await freshDatabase();
    const replicas = [1, 2, 3].map(() => new PostgresEventStore({ connectionString: url, poolSize: 2 }));
    try {
      const results = await Promise.all(replicas.map((r) => r.migrate()));
      expect(results.flatMap((r) => r.applied).sort()).toEqual([1, 2, 3]);
      const db = await pg.connect(new URL(url).pathname.slice(1));
      try {
        const idx = await db.query(
          "SELECT indexname FROM pg_indexes WHERE indexname = 'statement_chunks_trgm'",
        );
        expect(idx.rowCount).toBe(1);
        // The planner can use it for the search predicate (on a table this small it may not).
        await db.query('SET enable_seqscan = off');
        const plan = await db.query(
          "EXPLAIN SELECT session_id FROM statement_chunks WHERE text ILIKE '%drop table%'",
        );
        expect(plan.rows.map((r) => Object.values(r).join('')).join('\n')).toContain('statement_chunks_trgm');
      } finally {
        await db.end();
      }
    } finally {
      await Promise.all(replicas.map((r) => r.close()));
    }
  });

  it('stores each event exactly once when replicas ingest overlapping retries concurrently', async () => {
    const url = await freshDatabase();
    const replicas = [1, 2, 3].map(() => new PostgresEventStore({ connectionString: url, poolSize: 4 }));
    try {
      await replicas[0]!.migrate();
      const sessions = Array.from({ length: 40 }, (_, i) =>
        sqlSession(`conc-${i}`, { startMs: Date.UTC(2025, 2, 1) + i * 1000 }),
      );
      const all = prepare(sessions.flat());
      // Every replica gets every event, in batches cut differently and in different orders: the
      // worst case of shippers retrying against different replicas.
      const batchesFor = (r: number) => {
        const order = r % 2 ? [...all].reverse() : all;
        const size = [37, 50, 23][r]!;
        const out = [];
        for (let i = 0; i < order.length; i += size) out.push(order.slice(i, i + size));
        return out;
      };
      const results = await Promise.all(
        replicas.map(async (store, r) => {
          const totals = { stored: 0, duplicates: 0, conflicts: 0 };
          await Promise.all(
            [0, 1].map(async (lane) => {
              const batches = batchesFor(r).filter((_, i) => i % 2 === lane);
              for (const b of batches) {
                const res = await store.appendBatch(b);
                totals.stored += res.stored;
                totals.duplicates += res.duplicates;
                totals.conflicts += res.conflicts.length;
              }
            }),
          );
          return totals;
        }),
      );
      expect(results.reduce((n, r) => n + r.stored, 0)).toBe(all.length);
      expect(results.reduce((n, r) => n + r.duplicates, 0)).toBe(2 * all.length);
      expect(results.reduce((n, r) => n + r.conflicts, 0)).toBe(0);
      const store = replicas[0]!;
      for (let i = 0; i < 40; i++) {
        const s = await store.getSession(`conc-${i}`);
        expect(s).toMatchObject({
          events: 11,
          missingEvents: 0,
          counts: { statements: 3, denied: 1, maskedValues: 9 },
        });
        expect((await verifySession(store, `conc-${i}`)).ok).toBe(true);
      }
      expect((await store.searchSessions({ limit: 100, group: 'x' })).sessions).toEqual([]);
      expect(
        (await store.searchSessions({ limit: 100, identity: 'agents/orders-agent' })).sessions,
      ).toHaveLength(40);
    } finally {
      await Promise.all(replicas.map((r) => r.close()));
    }
  });
});
