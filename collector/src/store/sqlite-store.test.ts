import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describeEventStoreContract } from '../test-support/store-contract.js';
import { SqliteEventStore } from './sqlite-store.js';

const dirs: string[] = [];
const paths = new WeakMap<SqliteEventStore, string>();

// A second connection to the same file, as someone with access to the disk would use.
function raw<T>(store: unknown, fn: (db: Database.Database) => T): T {
  const db = new Database(paths.get(store as SqliteEventStore)!);
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

describeEventStoreContract('SQLite', {
  async open() {
    const dir = await mkdtemp(join(tmpdir(), 'chaperone-collector-sqlite-'));
    dirs.push(dir);
    const path = join(dir, 'collector.db');
    const store = new SqliteEventStore({ path, synchronous: 'normal' });
    paths.set(store, path);
    return store;
  },
  async tamper(store, sessionId, seq, edit) {
    raw(store, (db) => {
      const row = db
        .prepare('SELECT canonical FROM events WHERE session_id = ? AND seq = ?')
        .get(sessionId, seq) as {
        canonical: string;
      };
      db.prepare('UPDATE events SET canonical = ? WHERE session_id = ? AND seq = ?').run(
        edit(row.canonical),
        sessionId,
        seq,
      );
    });
  },
  async textIndexRows(store) {
    return raw(
      store,
      (db) => (db.prepare('SELECT count(*) AS n FROM statement_chunks').get() as { n: number }).n,
    );
  },
  async cleanup() {
    for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
  },
});
