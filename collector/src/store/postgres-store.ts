import pg from 'pg';
import {
  type ActivityBucket,
  type AppendResult,
  type EventStore,
  type MigrationResult,
  type PreparedEvent,
  type RetentionPolicy,
  type RetentionResult,
  SCHEMA_NEWER_ERROR,
  type SessionPage,
  type SessionQuery,
  type SessionSummary,
  type StoredEvent,
} from './event-store.js';
import { classifyExisting, dedupeBatch, eventRow, statementTextOf, summarize } from './ingest-plan.js';
import { latestVersion } from './migrations/migration.js';
import { POSTGRES_MIGRATIONS } from './migrations/postgres-migrations.js';
import { type SessionRowValues, sessionSearchSql, toSessionSummary } from './session-search-sql.js';

export interface PostgresStoreOptions {
  connectionString: string;
  /** Connections per collector replica (default 10). */
  poolSize?: number;
  /** Called for errors of idle pooled connections (e.g. the server restarted). */
  onPoolError?: (err: Error) => void;
}

type PgSessionRow = Omit<SessionRowValues, 'startMs' | 'endMs'> & { start_time: Date; end_time: Date };

const INT8_OID = 20;
// Any number that fits a safe integer comes back as a number (sequence numbers are validated to).
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID && format !== 'binary'
      ? (v: string) => Number(v)
      : pg.types.getTypeParser(oid, format ?? 'text')) as typeof pg.types.getTypeParser,
};

/** Identifies the migration lock among the database's advisory locks. */
const MIGRATION_LOCK = 0x63686170; // "chap"
const RETENTION_CHUNK = 500;
const RETRYABLE = new Set(['40P01', '40001']); // deadlock detected, serialization failure

/**
 * The shared store for production: several collector replicas write to one database. Ingest is
 * `INSERT … ON CONFLICT (session_id, seq) DO NOTHING` in one transaction per batch; the summary
 * rows are updated only from the rows that insert returned, so two replicas receiving the same
 * retry never count an event twice.
 */
export class PostgresEventStore implements EventStore {
  readonly kind = 'postgres' as const;
  private readonly pool: pg.Pool;

  constructor(opts: PostgresStoreOptions) {
    this.pool = new pg.Pool({ connectionString: opts.connectionString, max: opts.poolSize ?? 10, types });
    this.pool.on('error', (err) => opts.onPoolError?.(err));
  }

  async migrate(): Promise<MigrationResult> {
    const known = latestVersion(POSTGRES_MIGRATIONS);
    const applied: number[] = [];
    await this.transaction(async (c) => {
      // Replicas starting together queue here; the second finds the schema current.
      await c.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
      await c.query(
        'CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())',
      );
      const { rows } = await c.query<{ v: number }>(
        'SELECT coalesce(max(version), 0) AS v FROM schema_migrations',
      );
      const current = rows[0]?.v ?? 0;
      if (current > known) throw new Error(SCHEMA_NEWER_ERROR(current, known));
      for (const m of POSTGRES_MIGRATIONS) {
        if (m.version <= current) continue;
        for (const sql of m.statements) await c.query(sql);
        await c.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
        applied.push(m.version);
      }
    });
    return { applied, version: known };
  }

  async schemaVersion(): Promise<number> {
    const { rows } = await this.pool.query<{ t: string | null }>(
      "SELECT to_regclass('schema_migrations') AS t",
    );
    if (!rows[0]?.t) return 0;
    const v = await this.pool.query<{ v: number }>(
      'SELECT coalesce(max(version), 0) AS v FROM schema_migrations',
    );
    return v.rows[0]?.v ?? 0;
  }

  async ping(): Promise<void> {
    await this.pool.query('SELECT 1');
  }

  async appendBatch(events: readonly PreparedEvent[]): Promise<AppendResult> {
    const { unique, duplicates, conflicts } = dedupeBatch(events);
    if (!unique.length) return { stored: 0, duplicates, conflicts };
    const rows = unique.map(eventRow);
    return this.transaction(async (c) => {
      const result: AppendResult = { stored: 0, duplicates, conflicts: [...conflicts] };
      const col = <K extends keyof (typeof rows)[number]>(k: K) => rows.map((r) => r[k]);
      const ins = await c.query<{ session_id: string; seq: number }>(
        `INSERT INTO events (session_id, seq, time, type, connection, service_account, user_name, groups,
           decision, rule, text, hash, canonical)
         SELECT * FROM unnest($1::text[], $2::bigint[], $3::timestamptz[], $4::text[], $5::text[], $6::text[],
           $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[])
         ON CONFLICT (session_id, seq) DO NOTHING
         RETURNING session_id, seq`,
        [
          col('sessionId'),
          col('seq'),
          rows.map((r) => new Date(r.timeMs).toISOString()),
          col('type'),
          col('connection'),
          col('serviceAccount'),
          col('user'),
          col('groups'),
          col('decision'),
          col('rule'),
          col('text'),
          col('hash'),
          col('canonical'),
        ],
      );
      const insertedKeys = new Set(ins.rows.map((r) => `${r.session_id}\u0000${r.seq}`));
      const inserted: PreparedEvent[] = [];
      const notInserted: PreparedEvent[] = [];
      for (const p of unique) {
        (insertedKeys.has(`${p.event.sessionId}\u0000${p.event.seq}`) ? inserted : notInserted).push(p);
      }
      if (notInserted.length) {
        const existing = await c.query<{ session_id: string; seq: number; hash: string }>(
          `SELECT session_id, seq, hash FROM events
           WHERE (session_id, seq) IN (SELECT * FROM unnest($1::text[], $2::bigint[]))`,
          [notInserted.map((p) => p.event.sessionId), notInserted.map((p) => p.event.seq)],
        );
        const hashes = new Map(existing.rows.map((r) => [`${r.session_id}\u0000${r.seq}`, r.hash]));
        classifyExisting(notInserted, (k) => hashes.get(`${k.sessionId}\u0000${k.seq}`), result);
      }
      const texts = new Map<string, string[]>();
      for (const p of inserted) {
        const text = statementTextOf(p.event);
        if (!text) continue;
        const lines = texts.get(p.event.sessionId);
        if (lines) lines.push(text);
        else texts.set(p.event.sessionId, [text]);
      }
      if (texts.size) {
        await c.query(
          'INSERT INTO statement_chunks (session_id, text) SELECT * FROM unnest($1::text[], $2::text[])',
          [[...texts.keys()], [...texts.values()].map((lines) => lines.join('\n'))],
        );
      }
      const deltas = summarize(inserted);
      if (deltas.length) {
        const d = <K extends keyof (typeof deltas)[number]>(k: K) => deltas.map((x) => x[k]);
        const up = await c.query<{ session_id: string; start_time: Date }>(
          `INSERT INTO sessions (session_id, connection, protocol, client, application, service_account, pod,
             user_name, groups, start_time, end_time, ended, end_reason, events, max_seq, statements, allowed,
             denied, approved, masked_values)
           SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
             $7::text[], $8::text[], $9::text[], $10::timestamptz[], $11::timestamptz[], $12::boolean[],
             $13::text[], $14::integer[], $15::bigint[], $16::integer[], $17::integer[], $18::integer[],
             $19::integer[], $20::bigint[])
           ON CONFLICT (session_id) DO UPDATE SET
             protocol = coalesce(excluded.protocol, sessions.protocol),
             client = coalesce(excluded.client, sessions.client),
             application = coalesce(excluded.application, sessions.application),
             service_account = coalesce(sessions.service_account, excluded.service_account),
             pod = coalesce(sessions.pod, excluded.pod),
             user_name = coalesce(sessions.user_name, excluded.user_name),
             start_time = least(sessions.start_time, excluded.start_time),
             end_time = greatest(sessions.end_time, excluded.end_time),
             ended = sessions.ended OR excluded.ended,
             end_reason = coalesce(excluded.end_reason, sessions.end_reason),
             events = sessions.events + excluded.events,
             max_seq = greatest(sessions.max_seq, excluded.max_seq),
             statements = sessions.statements + excluded.statements,
             allowed = sessions.allowed + excluded.allowed,
             denied = sessions.denied + excluded.denied,
             approved = sessions.approved + excluded.approved,
             masked_values = sessions.masked_values + excluded.masked_values
           RETURNING session_id, start_time`,
          [
            d('sessionId'),
            d('connection'),
            d('protocol'),
            d('client'),
            d('application'),
            d('serviceAccount'),
            d('pod'),
            d('user'),
            deltas.map((x) => JSON.stringify(x.groups)),
            deltas.map((x) => new Date(x.minMs).toISOString()),
            deltas.map((x) => new Date(x.maxMs).toISOString()),
            d('ended'),
            d('endReason'),
            d('events'),
            d('maxSeq'),
            d('statements'),
            d('allowed'),
            d('denied'),
            d('approved'),
            d('maskedValues'),
          ],
        );
        const starts = new Map(up.rows.map((r) => [r.session_id, r.start_time.toISOString()]));
        const subjects = deltas
          .flatMap((x) =>
            x.subjects.map((s) => ({ ...s, sessionId: x.sessionId, start: starts.get(x.sessionId)! })),
          )
          .sort((a, b) =>
            a.kind !== b.kind
              ? a.kind < b.kind
                ? -1
                : 1
              : a.value !== b.value
                ? a.value < b.value
                  ? -1
                  : 1
                : a.sessionId < b.sessionId
                  ? -1
                  : 1,
          );
        if (subjects.length) {
          await c.query(
            `INSERT INTO session_subjects (kind, value, session_id, start_time)
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[])
             ON CONFLICT DO NOTHING`,
            [
              subjects.map((s) => s.kind),
              subjects.map((s) => s.value),
              subjects.map((s) => s.sessionId),
              subjects.map((s) => s.start),
            ],
          );
        }
        // An earlier event of a session arrived late: its search rows move to the new start.
        await c.query(
          `UPDATE session_subjects ss SET start_time = s.start_time FROM sessions s
           WHERE s.session_id = ANY($1::text[]) AND ss.session_id = s.session_id AND ss.start_time > s.start_time`,
          [d('sessionId')],
        );
      }
      result.stored = inserted.length;
      return result;
    });
  }

  async searchSessions(q: SessionQuery): Promise<SessionPage> {
    const params: unknown[] = [];
    const param = (v: unknown) => {
      params.push(v);
      return `$${params.length}`;
    };
    const sql = sessionSearchSql(q, {
      param,
      time: (ms) => new Date(ms),
      startColumn: 'start_time',
      endColumn: 'end_time',
      driverJoin: 'JOIN',
      textPredicate: (text) =>
        `s.session_id IN (SELECT c.session_id FROM statement_chunks c WHERE c.text ILIKE ${param(`%${text.replace(/[\\%_]/g, '\\$&')}%`)})`,
    });
    const { rows } = await this.pool.query<PgSessionRow>(sql, params);
    const more = rows.length > q.limit;
    const sessions = (more ? rows.slice(0, q.limit) : rows).map(toSummary);
    const last = sessions.at(-1);
    return {
      sessions,
      nextCursor: more && last ? { startMs: Date.parse(last.startTime), sessionId: last.sessionId } : null,
    };
  }

  async getSession(sessionId: string): Promise<SessionSummary | undefined> {
    const { rows } = await this.pool.query<PgSessionRow>('SELECT * FROM sessions WHERE session_id = $1', [
      sessionId,
    ]);
    return rows[0] ? toSummary(rows[0]) : undefined;
  }

  async sessionEvents(sessionId: string, opts: { afterSeq?: number; limit: number }): Promise<StoredEvent[]> {
    const { rows } = await this.pool.query<{
      session_id: string;
      seq: number;
      hash: string;
      canonical: string;
    }>(
      'SELECT session_id, seq, hash, canonical FROM events WHERE session_id = $1 AND seq > $2 ORDER BY seq LIMIT $3',
      [sessionId, opts.afterSeq ?? -1, opts.limit],
    );
    return rows.map((r) => ({ sessionId: r.session_id, seq: r.seq, hash: r.hash, canonical: r.canonical }));
  }

  async approvalEvents(opts: { since: Date; limit: number }): Promise<StoredEvent[]> {
    const { rows } = await this.pool.query<{
      session_id: string;
      seq: string;
      hash: string;
      canonical: string;
    }>(
      `SELECT session_id, seq, hash, canonical FROM events
       WHERE type IN ('approval.requested', 'approval.decided') AND time >= $1
       ORDER BY time DESC, session_id, seq DESC LIMIT $2`,
      [opts.since, opts.limit],
    );
    return rows.map((r) => ({
      sessionId: r.session_id,
      seq: Number(r.seq),
      hash: r.hash,
      canonical: r.canonical,
    }));
  }

  async activity(opts: { from: Date; to: Date; bucketMs: number }): Promise<ActivityBucket[]> {
    const from = opts.from.getTime();
    const { rows } = await this.pool.query<{
      bucket: string;
      sessions: string;
      denied: string;
      approved: string;
    }>(
      `SELECT floor((extract(epoch FROM start_time) * 1000 - $1) / $2)::bigint AS bucket, count(*) AS sessions,
              sum(denied) AS denied, sum(approved) AS approved
       FROM sessions WHERE start_time >= $3 AND start_time < $4 GROUP BY bucket ORDER BY bucket`,
      [from, opts.bucketMs, opts.from, opts.to],
    );
    return rows.map((r) => ({
      startMs: from + Number(r.bucket) * opts.bucketMs,
      sessions: Number(r.sessions),
      denied: Number(r.denied),
      approved: Number(r.approved),
    }));
  }

  async applyRetention(policy: RetentionPolicy, now: Date): Promise<RetentionResult> {
    const total: RetentionResult = { sessions: 0, events: 0 };
    const drain = async (select: string, params: unknown[]) => {
      for (;;) {
        const done = await this.transaction(async (c) => {
          // SKIP LOCKED: replicas running retention at the same time split the work.
          const { rows } = await c.query<{ session_id: string }>(select, params);
          if (!rows.length) return true;
          const ids = rows.map((r) => r.session_id);
          total.events +=
            (await c.query('DELETE FROM events WHERE session_id = ANY($1::text[])', [ids])).rowCount ?? 0;
          await c.query('DELETE FROM statement_chunks WHERE session_id = ANY($1::text[])', [ids]);
          await c.query('DELETE FROM session_subjects WHERE session_id = ANY($1::text[])', [ids]);
          total.sessions +=
            (await c.query('DELETE FROM sessions WHERE session_id = ANY($1::text[])', [ids])).rowCount ?? 0;
          return false;
        });
        if (done) return;
      }
    };
    for (const [connection, ageMs] of policy.perConnection) {
      await drain(
        'SELECT session_id FROM sessions WHERE connection = $1 AND end_time < $2 LIMIT $3 FOR UPDATE SKIP LOCKED',
        [connection, new Date(now.getTime() - ageMs), RETENTION_CHUNK],
      );
    }
    if (policy.defaultMs !== undefined) {
      await drain(
        'SELECT session_id FROM sessions WHERE end_time < $1 AND connection <> ALL($2::text[]) LIMIT $3 FOR UPDATE SKIP LOCKED',
        [new Date(now.getTime() - policy.defaultMs), [...policy.perConnection.keys()], RETENTION_CHUNK],
      );
    }
    return total;
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  /** Runs `fn` in a transaction; retried when PostgreSQL aborted it for a deadlock or serialization. */
  private async transaction<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const c = await this.pool.connect();
      let code: string | undefined;
      try {
        await c.query('BEGIN');
        const out = await fn(c);
        await c.query('COMMIT');
        c.release();
        return out;
      } catch (err) {
        code = (err as { code?: string }).code;
        // Without an SQLSTATE the connection itself failed: it must not go back to the pool.
        if (code) await c.query('ROLLBACK').catch(() => {});
        c.release(code ? undefined : true);
        if (!code || !RETRYABLE.has(code) || attempt >= 5) throw err;
      }
      await new Promise((r) => setTimeout(r, 10 * attempt + Math.random() * 20));
    }
  }
}

function toSummary(r: PgSessionRow): SessionSummary {
  return toSessionSummary({ ...r, startMs: r.start_time.getTime(), endMs: r.end_time.getTime() });
}
