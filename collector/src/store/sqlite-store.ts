import Database from 'better-sqlite3';
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
import { classifyExisting, dedupeBatch, eventRow, summarize } from './ingest-plan.js';
import { latestVersion } from './migrations/migration.js';
import { SQLITE_MIGRATIONS } from './migrations/sqlite-migrations.js';
import { type SessionRowValues, sessionSearchSql, toSessionSummary } from './session-search-sql.js';

export interface SqliteStoreOptions {
  /** File path, or ':memory:'. */
  path: string;
  /**
   * `full` (default) fsyncs the WAL at every commit, so an acknowledged batch survives a power
   * loss — the sidecar deletes its spool copy once we acknowledge. `normal` survives process
   * crashes only, and is faster.
   */
  synchronous?: 'full' | 'normal';
  /** Refuse to create the file (tools that only read, like `verify`). */
  mustExist?: boolean;
}

type SqliteSessionRow = Omit<SessionRowValues, 'startMs' | 'endMs' | 'ended'> & {
  start_ms: number;
  end_ms: number;
  ended: number;
};

const RETENTION_CHUNK = 500;

/**
 * The embedded store: one file, WAL mode, one writer (this process). better-sqlite3 is
 * synchronous, so each batch runs as one transaction without interleaving — that is the single
 * writer. Other processes (the `verify` CLI) may read the same file concurrently.
 */
export class SqliteEventStore implements EventStore {
  readonly kind = 'sqlite' as const;
  private readonly db: Database.Database;
  private prepared?: ReturnType<SqliteEventStore['prepare']>;
  private readonly searchCache = new Map<string, Database.Statement>();
  private readonly appendTx: (unique: PreparedEvent[], result: AppendResult) => void;

  constructor(opts: SqliteStoreOptions) {
    this.db = new Database(opts.path, { fileMustExist: opts.mustExist ?? false });
    this.db.pragma('journal_mode = WAL');
    this.db.pragma(`synchronous = ${opts.synchronous === 'normal' ? 'NORMAL' : 'FULL'}`);
    // Another process (the verify CLI, a backup) may hold the lock for a moment.
    this.db.pragma('busy_timeout = 5000');
    this.db.pragma('cache_size = -65536');
    this.db.pragma('temp_store = MEMORY');
    this.appendTx = this.db.transaction((unique: PreparedEvent[], result: AppendResult) =>
      this.appendInTransaction(unique, result),
    );
  }

  async migrate(): Promise<MigrationResult> {
    this.db.exec(
      'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_ms INTEGER NOT NULL)',
    );
    const known = latestVersion(SQLITE_MIGRATIONS);
    const applied: number[] = [];
    // IMMEDIATE takes the write lock before reading the version, so two processes starting on the
    // same file cannot both apply a step.
    this.db
      .transaction(() => {
        const current = this.currentVersion();
        if (current > known) throw new Error(SCHEMA_NEWER_ERROR(current, known));
        for (const m of SQLITE_MIGRATIONS) {
          if (m.version <= current) continue;
          for (const sql of m.statements) this.db.exec(sql);
          this.db
            .prepare('INSERT INTO schema_migrations (version, name, applied_ms) VALUES (?, ?, ?)')
            .run(m.version, m.name, Date.now());
          applied.push(m.version);
        }
      })
      .immediate();
    return { applied, version: known };
  }

  async schemaVersion(): Promise<number> {
    const exists = this.db
      .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'")
      .get();
    return exists ? this.currentVersion() : 0;
  }

  private currentVersion(): number {
    const row = this.db.prepare('SELECT max(version) AS v FROM schema_migrations').get() as {
      v: number | null;
    };
    return row.v ?? 0;
  }

  async ping(): Promise<void> {
    this.db.prepare('SELECT 1').get();
  }

  async appendBatch(events: readonly PreparedEvent[]): Promise<AppendResult> {
    const { unique, duplicates, conflicts } = dedupeBatch(events);
    const result: AppendResult = { stored: 0, duplicates, conflicts };
    if (unique.length) this.appendTx(unique, result);
    return result;
  }

  private appendInTransaction(unique: PreparedEvent[], result: AppendResult): void {
    const s = this.statements();
    const now = Date.now();
    const inserted: PreparedEvent[] = [];
    const notInserted: PreparedEvent[] = [];
    const texts = new Map<string, string[]>();
    for (const p of unique) {
      const r = eventRow(p);
      const info = s.insertEvent.run(
        r.sessionId,
        r.seq,
        r.timeMs,
        r.type,
        r.connection,
        r.serviceAccount,
        r.user,
        r.groups,
        r.decision,
        r.rule,
        r.text,
        r.hash,
        r.canonical,
        now,
      );
      if (info.changes === 1) {
        inserted.push(p);
        if (r.text) {
          const lines = texts.get(r.sessionId);
          if (lines) lines.push(r.text);
          else texts.set(r.sessionId, [r.text]);
        }
      } else {
        notInserted.push(p);
      }
    }
    for (const [sessionId, lines] of texts) {
      const chunk = s.insertChunk.run(sessionId).lastInsertRowid;
      s.insertText.run(chunk, lines.join('\n'));
    }
    classifyExisting(
      notInserted,
      (k) => (s.eventHash.get(k.sessionId, k.seq) as { hash: string } | undefined)?.hash,
      result,
    );
    for (const d of summarize(inserted)) {
      const { start_ms } = s.upsertSession.get({
        ...d,
        groups: JSON.stringify(d.groups),
        ended: d.ended ? 1 : 0,
      }) as { start_ms: number };
      for (const subject of d.subjects)
        s.insertSubject.run(subject.kind, subject.value, d.sessionId, start_ms);
      // An earlier event of the session arrived late: its search rows move to the new start.
      s.fixSubjectStart.run(start_ms, d.sessionId, start_ms);
    }
    result.stored = inserted.length;
  }

  async searchSessions(q: SessionQuery): Promise<SessionPage> {
    const params: unknown[] = [];
    const sql = sessionSearchSql(q, {
      param: (v) => {
        params.push(v);
        return '?';
      },
      time: (ms) => ms,
      startColumn: 'start_ms',
      endColumn: 'end_ms',
      driverJoin: 'CROSS JOIN',
      textPredicate: (text) => {
        params.push(`"${text.replaceAll('"', '""')}"`);
        return 's.session_id IN (SELECT c.session_id FROM statement_chunks c WHERE c.id IN (SELECT rowid FROM statement_text WHERE statement_text MATCH ?))';
      },
    });
    let stmt = this.searchCache.get(sql);
    if (!stmt) {
      stmt = this.db.prepare(sql);
      this.searchCache.set(sql, stmt);
    }
    const rows = (stmt.all(...params) as SqliteSessionRow[]).map(toSummary);
    const more = rows.length > q.limit;
    const sessions = more ? rows.slice(0, q.limit) : rows;
    const last = sessions.at(-1);
    return {
      sessions,
      nextCursor: more && last ? { startMs: Date.parse(last.startTime), sessionId: last.sessionId } : null,
    };
  }

  async getSession(sessionId: string): Promise<SessionSummary | undefined> {
    const row = this.statements().getSession.get(sessionId) as SqliteSessionRow | undefined;
    return row ? toSummary(row) : undefined;
  }

  async sessionEvents(sessionId: string, opts: { afterSeq?: number; limit: number }): Promise<StoredEvent[]> {
    const rows = this.statements().sessionEvents.all(sessionId, opts.afterSeq ?? -1, opts.limit) as Array<{
      session_id: string;
      seq: number;
      hash: string;
      canonical: string;
    }>;
    return rows.map((r) => ({ sessionId: r.session_id, seq: r.seq, hash: r.hash, canonical: r.canonical }));
  }

  async approvalEvents(opts: { since: Date; limit: number }): Promise<StoredEvent[]> {
    const rows = this.statements().approvalEvents.all(opts.since.getTime(), opts.limit) as Array<{
      session_id: string;
      seq: number;
      hash: string;
      canonical: string;
    }>;
    return rows.map((r) => ({ sessionId: r.session_id, seq: r.seq, hash: r.hash, canonical: r.canonical }));
  }

  async activity(opts: { from: Date; to: Date; bucketMs: number }): Promise<ActivityBucket[]> {
    const from = opts.from.getTime();
    const rows = this.statements().activity.all(from, opts.bucketMs, from, opts.to.getTime()) as Array<{
      bucket: number;
      sessions: number;
      denied: number;
      approved: number;
    }>;
    return rows.map((r) => ({
      startMs: from + Number(r.bucket) * opts.bucketMs,
      sessions: Number(r.sessions),
      denied: Number(r.denied),
      approved: Number(r.approved),
    }));
  }

  async applyRetention(policy: RetentionPolicy, now: Date): Promise<RetentionResult> {
    const s = this.statements();
    const total: RetentionResult = { sessions: 0, events: 0 };
    const drain = async (select: () => Array<{ session_id: string }>) => {
      for (;;) {
        const ids = select().map((r) => r.session_id);
        if (!ids.length) return;
        this.db.transaction(() => {
          for (const id of ids) {
            s.deleteText.run(id);
            s.deleteChunks.run(id);
            total.events += s.deleteEvents.run(id).changes;
            s.deleteSubjects.run(id);
            total.sessions += s.deleteSession.run(id).changes;
          }
        })();
        // Chunks keep each write transaction short; ingest gets the event loop in between.
        await new Promise((resolve) => setImmediate(resolve));
      }
    };
    for (const [connection, ageMs] of policy.perConnection) {
      const cutoff = now.getTime() - ageMs;
      await drain(
        () => s.expiredOfConnection.all(connection, cutoff, RETENTION_CHUNK) as Array<{ session_id: string }>,
      );
    }
    if (policy.defaultMs !== undefined) {
      const cutoff = now.getTime() - policy.defaultMs;
      const others = JSON.stringify([...policy.perConnection.keys()]);
      await drain(
        () => s.expiredOfOthers.all(cutoff, others, RETENTION_CHUNK) as Array<{ session_id: string }>,
      );
    }
    return total;
  }

  async close(): Promise<void> {
    if (!this.db.open) return;
    // Keeps the planner's statistics fresh for the next start (cheap when nothing changed).
    this.db.pragma('optimize');
    this.db.close();
  }

  /** Refreshes planner statistics; the app calls it periodically. */
  optimize(): void {
    this.db.pragma('optimize');
  }

  private statements() {
    this.prepared ??= this.prepare();
    return this.prepared;
  }

  private prepare() {
    const db = this.db;
    return {
      insertEvent: db.prepare(
        `INSERT INTO events (session_id, seq, time_ms, type, connection, service_account, user_name, groups,
           decision, rule, text, hash, canonical, ingested_ms)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (session_id, seq) DO NOTHING`,
      ),
      insertChunk: db.prepare('INSERT INTO statement_chunks (session_id) VALUES (?)'),
      insertText: db.prepare('INSERT INTO statement_text (rowid, text) VALUES (?, ?)'),
      eventHash: db.prepare('SELECT hash FROM events WHERE session_id = ? AND seq = ?'),
      upsertSession: db.prepare(
        `INSERT INTO sessions (session_id, connection, protocol, client, application, service_account, pod,
           user_name, groups, start_ms, end_ms, ended, end_reason, events, max_seq, statements, allowed,
           denied, approved, masked_values)
         VALUES (@sessionId, @connection, @protocol, @client, @application, @serviceAccount, @pod, @user,
           @groups, @minMs, @maxMs, @ended, @endReason, @events, @maxSeq, @statements, @allowed, @denied,
           @approved, @maskedValues)
         ON CONFLICT (session_id) DO UPDATE SET
           protocol = coalesce(excluded.protocol, protocol),
           client = coalesce(excluded.client, client),
           application = coalesce(excluded.application, application),
           service_account = coalesce(service_account, excluded.service_account),
           pod = coalesce(pod, excluded.pod),
           user_name = coalesce(user_name, excluded.user_name),
           start_ms = min(start_ms, excluded.start_ms),
           end_ms = max(end_ms, excluded.end_ms),
           ended = max(ended, excluded.ended),
           end_reason = coalesce(excluded.end_reason, end_reason),
           events = events + excluded.events,
           max_seq = max(max_seq, excluded.max_seq),
           statements = statements + excluded.statements,
           allowed = allowed + excluded.allowed,
           denied = denied + excluded.denied,
           approved = approved + excluded.approved,
           masked_values = masked_values + excluded.masked_values
         RETURNING start_ms`,
      ),
      insertSubject: db.prepare(
        'INSERT INTO session_subjects (kind, value, session_id, start_ms) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING',
      ),
      fixSubjectStart: db.prepare(
        'UPDATE session_subjects SET start_ms = ? WHERE session_id = ? AND start_ms > ?',
      ),
      getSession: db.prepare('SELECT * FROM sessions WHERE session_id = ?'),
      sessionEvents: db.prepare(
        'SELECT session_id, seq, hash, canonical FROM events WHERE session_id = ? AND seq > ? ORDER BY seq LIMIT ?',
      ),
      approvalEvents: db.prepare(
        `SELECT session_id, seq, hash, canonical FROM events
         WHERE type IN ('approval.requested', 'approval.decided') AND time_ms >= ?
         ORDER BY time_ms DESC, session_id, seq DESC LIMIT ?`,
      ),
      activity: db.prepare(
        `SELECT CAST((start_ms - ?) / ? AS INTEGER) AS bucket, count(*) AS sessions, sum(denied) AS denied, sum(approved) AS approved
         FROM sessions WHERE start_ms >= ? AND start_ms < ? GROUP BY bucket ORDER BY bucket`,
      ),
      expiredOfConnection: db.prepare(
        'SELECT session_id FROM sessions WHERE connection = ? AND end_ms < ? LIMIT ?',
      ),
      expiredOfOthers: db.prepare(
        'SELECT session_id FROM sessions WHERE end_ms < ? AND connection NOT IN (SELECT value FROM json_each(?)) LIMIT ?',
      ),
      deleteText: db.prepare(
        'DELETE FROM statement_text WHERE rowid IN (SELECT id FROM statement_chunks WHERE session_id = ?)',
      ),
      deleteChunks: db.prepare('DELETE FROM statement_chunks WHERE session_id = ?'),
      deleteEvents: db.prepare('DELETE FROM events WHERE session_id = ?'),
      deleteSubjects: db.prepare('DELETE FROM session_subjects WHERE session_id = ?'),
      deleteSession: db.prepare('DELETE FROM sessions WHERE session_id = ?'),
    };
  }
}

function toSummary(r: SqliteSessionRow): SessionSummary {
  return toSessionSummary({ ...r, startMs: r.start_ms, endMs: r.end_ms, ended: r.ended === 1 });
}
