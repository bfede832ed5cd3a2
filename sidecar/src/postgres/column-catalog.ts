import pg from 'pg';
import type { UpstreamCredential } from '../credentials/credential-source.js';
import { originKey } from './masking/row-masker.js';
import type { UpstreamTarget } from './upstream.js';

export interface ColumnOrigin {
  schema: string;
  table: string;
  column: string;
}

/**
 * Resolves RowDescription column origins (table OID + attribute number) to names, over a separate
 * metadata connection so that catalog lookups never interleave with the agent's protocol stream.
 * Cached per session; DDL passing through the gateway flushes the cache (an ALTER ... RENAME may
 * change what an OID means), and entries expire after a minute in any case.
 */
export class ColumnCatalog {
  private client: pg.Client | undefined;
  private connecting: Promise<pg.Client> | undefined;
  private readonly cache = new Map<string, { origin: ColumnOrigin | null; at: number }>();

  constructor(
    private readonly target: UpstreamTarget,
    private readonly credential: () => Promise<UpstreamCredential>,
    private readonly ttlMs = 60_000,
  ) {}

  async resolve(keys: Array<{ tableOid: number; attnum: number }>): Promise<Map<string, ColumnOrigin>> {
    const out = new Map<string, ColumnOrigin>();
    const missing: Array<{ tableOid: number; attnum: number }> = [];
    const now = Date.now();
    for (const k of keys) {
      const key = originKey(k.tableOid, k.attnum);
      const hit = this.cache.get(key);
      if (hit && now - hit.at < this.ttlMs) {
        if (hit.origin) out.set(key, hit.origin);
      } else if (!missing.some((m) => m.tableOid === k.tableOid && m.attnum === k.attnum)) {
        missing.push(k);
      }
    }
    if (missing.length === 0) return out;
    const client = await this.connect();
    const res = await client.query<{
      oid: number;
      attnum: number;
      nspname: string;
      relname: string;
      attname: string;
    }>(
      `SELECT c.oid::int AS oid, a.attnum::int AS attnum, n.nspname, c.relname, a.attname
         FROM unnest($1::oid[], $2::int2[]) AS k(oid, attnum)
         JOIN pg_catalog.pg_class c ON c.oid = k.oid
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
         JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum`,
      [missing.map((m) => m.tableOid), missing.map((m) => m.attnum)],
    );
    for (const m of missing) this.cache.set(originKey(m.tableOid, m.attnum), { origin: null, at: now });
    for (const r of res.rows) {
      const origin = { schema: r.nspname, table: r.relname, column: r.attname };
      this.cache.set(originKey(r.oid, r.attnum), { origin, at: now });
      out.set(originKey(r.oid, r.attnum), origin);
    }
    return out;
  }

  /** Column names of a table in attribute order (for COPY, which has no RowDescription). */
  async tableColumns(
    qualifiedName: string,
  ): Promise<Array<{ tableOid: number; attnum: number; name: string; typeOid: number }>> {
    const client = await this.connect();
    const res = await client.query<{ oid: number; attnum: number; attname: string; atttypid: number }>(
      `SELECT c.oid::int AS oid, a.attnum::int AS attnum, a.attname, a.atttypid::int AS atttypid
         FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
        WHERE c.oid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
      [qualifiedName],
    );
    return res.rows.map((r) => ({ tableOid: r.oid, attnum: r.attnum, name: r.attname, typeOid: r.atttypid }));
  }

  invalidate(): void {
    this.cache.clear();
  }

  async close(): Promise<void> {
    const c = this.client ?? (this.connecting ? await this.connecting.catch(() => undefined) : undefined);
    this.client = undefined;
    this.connecting = undefined;
    await c?.end().catch(() => {});
  }

  private connect(): Promise<pg.Client> {
    if (this.client) return Promise.resolve(this.client);
    this.connecting ??= (async () => {
      const cred = await this.credential();
      const t = this.target;
      const client = new pg.Client({
        host: t.host,
        port: t.port,
        database: t.database,
        user: cred.username,
        password: cred.password,
        application_name: 'chaperone-catalog',
        ssl:
          t.tls.mode === 'disable'
            ? false
            : {
                ca: t.tls.ca,
                rejectUnauthorized: t.tls.mode !== 'require',
                servername: t.tls.serverName,
                ...(t.tls.mode === 'verify-ca' ? { checkServerIdentity: () => undefined } : {}),
              },
      });
      client.on('error', () => {
        // A broken metadata connection is reopened on next use.
        this.client = undefined;
        this.connecting = undefined;
      });
      await client.connect();
      this.client = client;
      return client;
    })();
    const p = this.connecting;
    p.catch(() => {
      this.connecting = undefined;
    });
    return p;
  }
}
