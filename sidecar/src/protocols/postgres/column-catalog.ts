import pg from 'pg';
import { originKey } from './masking/row-masker.js';
import type { PostgresLogin, UpstreamTarget } from './upstream.js';

export interface ColumnOrigin {
  schema: string;
  table: string;
  column: string;
}

/** A relation an agent named, as the catalog sees it (the SQL analysis only sees names). */
export interface RelationFacts {
  /** As named in the statement ('schema.table' or 'table'). */
  named: string;
  exists: boolean;
  schema: string;
  name: string;
  relkind: string;
  /**
   * Base-table columns the relation reads or inherits, transitively: the columns a view's rule
   * references (views over views followed), and '*' for every column of an ancestor table when the
   * relation is an inheritance child or partition.
   */
  exposes: ColumnOrigin[];
}

/** A function an agent called that is not a known built-in. */
export interface FunctionFacts {
  name: string;
  /** Defined outside pg_catalog / information_schema. */
  userDefined: boolean;
  languages: string[];
  /** Bodies of the SQL / PL/pgSQL overloads (to look for table names). */
  sources: string[];
}

const MAX_VIEW_DEPTH = 8;

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
    private readonly credential: () => Promise<PostgresLogin>,
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

  private readonly relationCache = new Map<string, { facts: RelationFacts; at: number }>();
  private readonly functionCache = new Map<string, { facts: FunctionFacts; at: number }>();

  /** Resolves named relations: kind, and the base columns a view or child table exposes. */
  async inspectRelations(named: string[]): Promise<RelationFacts[]> {
    const out: RelationFacts[] = [];
    for (const n of new Set(named)) {
      const hit = this.relationCache.get(n);
      if (hit && Date.now() - hit.at < this.ttlMs) {
        out.push(hit.facts);
        continue;
      }
      const facts = await this.inspectRelation(n);
      this.relationCache.set(n, { facts, at: Date.now() });
      out.push(facts);
    }
    return out;
  }

  private async inspectRelation(named: string): Promise<RelationFacts> {
    const client = await this.connect();
    const rel = await client.query<{ oid: number; relkind: string; nspname: string; relname: string }>(
      `SELECT c.oid::int AS oid, c.relkind::text AS relkind, n.nspname, c.relname
         FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE c.oid = to_regclass($1)`,
      [named],
    );
    const r = rel.rows[0];
    if (!r) return { named, exists: false, schema: '', name: named, relkind: '', exposes: [] };
    const exposes: ColumnOrigin[] = [];
    const seen = new Set<number>([r.oid]);
    let frontier = [r.oid];
    for (let depth = 0; depth < MAX_VIEW_DEPTH && frontier.length; depth++) {
      const deps = await client.query<{
        oid: number;
        relkind: string;
        nspname: string;
        relname: string;
        attname: string | null;
      }>(
        `SELECT DISTINCT d.refobjid::int AS oid, rc.relkind::text AS relkind, rn.nspname, rc.relname, a.attname
           FROM pg_catalog.pg_rewrite rw
           JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::regclass AND d.objid = rw.oid
                                      AND d.refclassid = 'pg_catalog.pg_class'::regclass
           JOIN pg_catalog.pg_class rc ON rc.oid = d.refobjid
           JOIN pg_catalog.pg_namespace rn ON rn.oid = rc.relnamespace
           LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = rc.oid AND a.attnum = d.refobjsubid AND d.refobjsubid > 0
          WHERE rw.ev_class = ANY($1::oid[]) AND d.refobjid <> rw.ev_class`,
        [frontier],
      );
      const next: number[] = [];
      for (const d of deps.rows) {
        exposes.push({ schema: d.nspname, table: d.relname, column: d.attname ?? '*' });
        if ((d.relkind === 'v' || d.relkind === 'm') && !seen.has(d.oid)) {
          seen.add(d.oid);
          next.push(d.oid);
        }
      }
      frontier = next;
    }
    const ancestors = await client.query<{ nspname: string; relname: string }>(
      `WITH RECURSIVE anc(oid, depth) AS (
         SELECT inhparent, 1 FROM pg_catalog.pg_inherits WHERE inhrelid = $1
         UNION SELECT i.inhparent, anc.depth + 1 FROM pg_catalog.pg_inherits i JOIN anc ON i.inhrelid = anc.oid WHERE anc.depth < 16)
       SELECT n.nspname, c.relname FROM anc JOIN pg_catalog.pg_class c ON c.oid = anc.oid
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace`,
      [r.oid],
    );
    for (const a of ancestors.rows) exposes.push({ schema: a.nspname, table: a.relname, column: '*' });
    return { named, exists: true, schema: r.nspname, name: r.relname, relkind: r.relkind, exposes };
  }

  /** Looks up functions by name: whether any overload is user-defined, and the bodies of those. */
  async inspectFunctions(names: string[]): Promise<FunctionFacts[]> {
    const out: FunctionFacts[] = [];
    for (const name of new Set(names)) {
      const hit = this.functionCache.get(name);
      if (hit && Date.now() - hit.at < this.ttlMs) {
        out.push(hit.facts);
        continue;
      }
      const client = await this.connect();
      const dot = name.lastIndexOf('.');
      const schema = dot > 0 ? name.slice(0, dot) : null;
      const proname = dot > 0 ? name.slice(dot + 1) : name;
      const res = await client.query<{ nspname: string; lanname: string; prosrc: string }>(
        `SELECT n.nspname, l.lanname, p.prosrc
           FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
           JOIN pg_catalog.pg_language l ON l.oid = p.prolang
          WHERE p.proname = $1 AND ($2::text IS NULL OR n.nspname = $2)`,
        [proname, schema],
      );
      const user = res.rows.filter((r) => r.nspname !== 'pg_catalog' && r.nspname !== 'information_schema');
      const facts: FunctionFacts = {
        name,
        // An unknown function is treated as user-defined: fail closed.
        userDefined: res.rows.length === 0 || user.length > 0,
        languages: [...new Set(user.map((r) => r.lanname))],
        sources: user.filter((r) => r.lanname === 'sql' || r.lanname === 'plpgsql').map((r) => r.prosrc),
      };
      this.functionCache.set(name, { facts, at: Date.now() });
      out.push(facts);
    }
    return out;
  }

  invalidate(): void {
    this.cache.clear();
    this.relationCache.clear();
    this.functionCache.clear();
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
