// The session search query, shared by both adapters: they differ only in placeholders, in how
// time is stored and in the text predicate. Pagination is keyset on (start, session_id) — the
// query never skips rows with OFFSET, so page 1,000 costs what page 1 costs.
import type { SessionQuery, SessionSummary } from './event-store.js';

export interface SearchDialect {
  /** Appends a parameter and returns its placeholder. */
  param(value: unknown): string;
  /** A time parameter (epoch ms for SQLite, a Date for PostgreSQL). */
  time(ms: number): unknown;
  readonly startColumn: string;
  readonly endColumn: string;
  /** A predicate over `s` (sessions) that holds when one of its statements contains `text`. */
  textPredicate(text: string): string;
  /** How to join a driving table so that the planner keeps it as the outer loop. */
  readonly driverJoin: string;
}

const DECISION_COLUMN = {
  allowed: 'allowed',
  denied: 'denied',
  approved: 'approved',
  masked: 'masked_values',
} as const;

export function sessionSearchSql(q: SessionQuery, d: SearchDialect): string {
  // The driving table is the one whose index yields rows already in page order: a subject index
  // when searching by identity or group (each row carries the session's start), else sessions.
  let from = 'sessions s';
  let driver = 's';
  const where: string[] = [];
  const subject = (alias: string, kind: string, value: string) => {
    const cond = `${alias}.kind = '${kind}' AND ${alias}.value = ${d.param(value)}`;
    if (driver === 's') {
      from = `session_subjects ${alias} ${d.driverJoin} sessions s ON s.session_id = ${alias}.session_id`;
      driver = alias;
      where.push(cond);
    } else {
      where.push(
        `EXISTS (SELECT 1 FROM session_subjects ${alias} WHERE ${alias}.session_id = s.session_id AND ${cond})`,
      );
    }
  };
  if (q.identity !== undefined) subject('si', 'identity', q.identity);
  if (q.group !== undefined) subject('sg', 'group', q.group);
  if (q.verb !== undefined) subject('kv', 'kube-verb', q.verb);
  if (q.resource !== undefined) subject('kr', 'kube-resource', q.resource);
  if (q.namespace !== undefined) subject('kn', 'kube-namespace', q.namespace);
  if (q.connection !== undefined) where.push(`s.connection = ${d.param(q.connection)}`);
  if (q.to) where.push(`s.${d.startColumn} <= ${d.param(d.time(q.to.getTime()))}`);
  if (q.from) where.push(`s.${d.endColumn} >= ${d.param(d.time(q.from.getTime()))}`);
  if (q.decision) where.push(`s.${DECISION_COLUMN[q.decision]} > 0`);
  if (q.text !== undefined) where.push(d.textPredicate(q.text));
  const start = `${driver}.${d.startColumn}`;
  if (q.cursor) {
    where.push(
      `(${start}, ${driver}.session_id) < (${d.param(d.time(q.cursor.startMs))}, ${d.param(q.cursor.sessionId)})`,
    );
  }
  return [
    `SELECT s.* FROM ${from}`,
    where.length ? `WHERE ${where.join(' AND ')}` : '',
    `ORDER BY ${start} DESC, ${driver}.session_id DESC`,
    `LIMIT ${d.param(q.limit + 1)}`,
  ].join(' ');
}

/** A sessions row with times already converted to epoch ms. */
export interface SessionRowValues {
  session_id: string;
  connection: string;
  protocol: string | null;
  client: string | null;
  application: string | null;
  service_account: string | null;
  pod: string | null;
  user_name: string | null;
  groups: string;
  startMs: number;
  endMs: number;
  ended: boolean;
  end_reason: string | null;
  events: number;
  max_seq: number;
  statements: number;
  allowed: number;
  denied: number;
  approved: number;
  masked_values: number;
}

export function toSessionSummary(r: SessionRowValues): SessionSummary {
  return {
    sessionId: r.session_id,
    connection: r.connection,
    protocol: r.protocol,
    client: r.client,
    application: r.application,
    identity: {
      serviceAccount: r.service_account,
      pod: r.pod,
      user: r.user_name,
      groups: JSON.parse(r.groups) as string[],
    },
    startTime: new Date(r.startMs).toISOString(),
    endTime: new Date(r.endMs).toISOString(),
    ended: r.ended,
    endReason: r.end_reason,
    events: r.events,
    lastSeq: r.max_seq,
    missingEvents: r.max_seq + 1 - r.events,
    counts: {
      statements: r.statements,
      allowed: r.allowed,
      denied: r.denied,
      approved: r.approved,
      maskedValues: r.masked_values,
    },
  };
}
