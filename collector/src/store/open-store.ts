import type { EventStore } from './event-store.js';
import { PostgresEventStore } from './postgres-store.js';
import { SqliteEventStore } from './sqlite-store.js';

export type StoreLocation =
  | { kind: 'sqlite'; path: string; synchronous?: 'full' | 'normal' }
  | { kind: 'postgres'; connectionString: string };

/**
 * `sqlite:PATH` (`sqlite::memory:` for a throwaway store; `?synchronous=normal` trades power-loss
 * durability for speed) or a `postgres://` / `postgresql://` URL.
 */
export function parseStoreLocation(db: string): StoreLocation {
  if (/^postgres(ql)?:\/\//.test(db)) return { kind: 'postgres', connectionString: db };
  if (db.startsWith('sqlite:')) {
    const [path = '', query = ''] = db.slice('sqlite:'.length).split('?', 2);
    if (!path) throw new Error('--db sqlite: needs a file path, e.g. sqlite:/var/lib/chaperone/collector.db');
    const sync = new URLSearchParams(query).get('synchronous');
    if (sync !== null && sync !== 'full' && sync !== 'normal') {
      throw new Error(`--db: synchronous must be full or normal, got ${sync}`);
    }
    return { kind: 'sqlite', path, ...(sync ? { synchronous: sync } : {}) };
  }
  throw new Error(`--db must be sqlite:PATH or a postgres:// URL, got ${JSON.stringify(redactUrl(db))}`);
}

export function openStore(
  location: StoreLocation,
  opts: { onPoolError?: (err: Error) => void; mustExist?: boolean } = {},
): EventStore {
  return location.kind === 'sqlite'
    ? new SqliteEventStore({
        path: location.path,
        synchronous: location.synchronous,
        mustExist: opts.mustExist,
      })
    : new PostgresEventStore({ connectionString: location.connectionString, onPoolError: opts.onPoolError });
}

/** A database URL fit for logs: the password replaced. */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z]+:\/\/[^:/@]*:)[^@]*@/i, '$1***@');
}

export function describeStoreLocation(location: StoreLocation): string {
  return location.kind === 'sqlite' ? `sqlite:${location.path}` : redactUrl(location.connectionString);
}
