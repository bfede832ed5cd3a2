// What the adapters write for a batch, computed once and independent of SQL dialect: the indexed
// columns of each event row and, per session, the change to its summary row. Summaries are updated
// only from events that were actually inserted, with commutative operations (min, max, +), so that
// duplicates, retries and out-of-order arrival all converge on the same summary.
import type { RecordingEvent } from '@chaperone/api';
import type { AppendResult, EventKey, PreparedEvent } from './event-store.js';

export interface EventRow {
  sessionId: string;
  seq: number;
  timeMs: number;
  type: string;
  connection: string;
  serviceAccount: string | null;
  user: string | null;
  /** JSON array text. */
  groups: string;
  decision: string | null;
  rule: string | null;
  /** Statement text, the target of text search. */
  text: string | null;
  hash: string;
  canonical: string;
}

/**
 * 'identity' and 'group' come from every event; the `kube-*` kinds from Kubernetes API requests
 * (command events that carry RBAC attributes), so sessions can be found by what they did.
 */
export type SubjectKind = 'identity' | 'group' | 'kube-verb' | 'kube-resource' | 'kube-namespace';

export interface SessionDelta {
  sessionId: string;
  connection: string;
  protocol: string | null;
  client: string | null;
  application: string | null;
  serviceAccount: string | null;
  pod: string | null;
  user: string | null;
  groups: string[];
  minMs: number;
  maxMs: number;
  events: number;
  maxSeq: number;
  statements: number;
  allowed: number;
  denied: number;
  approved: number;
  maskedValues: number;
  ended: boolean;
  endReason: string | null;
  /** Values a session can be found by: its ServiceAccount and user ('identity'), its groups. */
  subjects: Array<{ kind: SubjectKind; value: string }>;
}

/** The decision an event records, as session search facets see it. */
export function decisionOf(event: RecordingEvent): string | null {
  switch (event.type) {
    case 'query':
    case 'command':
      return event.data.decision;
    case 'denied':
      return 'denied';
    case 'approval.decided':
      // An approval that ran out is a denial as far as the agent is concerned.
      return event.data.verdict === 'approved' ? 'approved' : 'denied';
    case 'result':
      return event.data.maskedValues > 0 ? 'masked' : null;
    default:
      return null;
  }
}

export function statementTextOf(event: RecordingEvent): string | null {
  switch (event.type) {
    case 'query':
    case 'command':
    case 'approval.requested':
      return event.data.text;
    case 'denied':
      return event.data.operation;
    default:
      return null;
  }
}

export function eventRow(p: PreparedEvent): EventRow {
  const e = p.event;
  return {
    sessionId: e.sessionId,
    seq: e.seq,
    timeMs: Date.parse(e.time),
    type: e.type,
    connection: e.connection,
    serviceAccount: e.identity.serviceAccount ?? null,
    user: e.identity.user ?? null,
    groups: JSON.stringify(e.identity.groups),
    decision: decisionOf(e),
    rule: e.rule ?? null,
    text: statementTextOf(e),
    hash: p.hash,
    canonical: p.canonical,
  };
}

const keyOf = (k: EventKey) => `${k.sessionId}\u0000${k.seq}`;

/**
 * Drops repeats inside one batch (a shipper may resend a range it is unsure about) and orders the
 * rest by (session, seq). The fixed order matters for PostgreSQL: replicas that insert overlapping
 * batches take row locks in the same order and so cannot deadlock each other.
 */
export function dedupeBatch(events: readonly PreparedEvent[]): {
  unique: PreparedEvent[];
  duplicates: number;
  conflicts: EventKey[];
} {
  const byKey = new Map<string, PreparedEvent>();
  let duplicates = 0;
  const conflicts: EventKey[] = [];
  for (const p of events) {
    const key = keyOf(p.event);
    const seen = byKey.get(key);
    if (!seen) byKey.set(key, p);
    else if (seen.hash === p.hash) duplicates++;
    else conflicts.push({ sessionId: p.event.sessionId, seq: p.event.seq });
  }
  const unique = [...byKey.values()].sort(compareEvents);
  return { unique, duplicates, conflicts };
}

function compareEvents(a: PreparedEvent, b: PreparedEvent): number {
  const s = a.event.sessionId < b.event.sessionId ? -1 : a.event.sessionId > b.event.sessionId ? 1 : 0;
  return s || a.event.seq - b.event.seq;
}

/** Classifies events that were not inserted: same content (duplicate) or different (conflict). */
export function classifyExisting(
  notInserted: readonly PreparedEvent[],
  existingHash: (key: EventKey) => string | undefined,
  into: AppendResult,
): void {
  for (const p of notInserted) {
    const found = existingHash(p.event);
    if (found === p.hash) into.duplicates++;
    else into.conflicts.push({ sessionId: p.event.sessionId, seq: p.event.seq });
  }
}

/** Per-session summary changes for the events this batch inserted, ordered by session id. */
export function summarize(inserted: readonly PreparedEvent[]): SessionDelta[] {
  const bySession = new Map<string, SessionDelta>();
  const subjectKeys = new Map<string, Set<string>>();
  for (const { event: e } of inserted) {
    const timeMs = Date.parse(e.time);
    let d = bySession.get(e.sessionId);
    if (!d) {
      d = {
        sessionId: e.sessionId,
        connection: e.connection,
        protocol: null,
        client: null,
        application: null,
        serviceAccount: e.identity.serviceAccount ?? null,
        pod: e.identity.pod ?? null,
        user: e.identity.user ?? null,
        groups: e.identity.groups,
        minMs: timeMs,
        maxMs: timeMs,
        events: 0,
        maxSeq: e.seq,
        statements: 0,
        allowed: 0,
        denied: 0,
        approved: 0,
        maskedValues: 0,
        ended: false,
        endReason: null,
        subjects: [],
      };
      bySession.set(e.sessionId, d);
      subjectKeys.set(e.sessionId, new Set());
    }
    d.events++;
    d.minMs = Math.min(d.minMs, timeMs);
    d.maxMs = Math.max(d.maxMs, timeMs);
    d.maxSeq = Math.max(d.maxSeq, e.seq);
    const decision = decisionOf(e);
    if (e.type === 'query' || e.type === 'command') d.statements++;
    if (decision === 'allowed') d.allowed++;
    else if (decision === 'denied') d.denied++;
    else if (decision === 'approved') d.approved++;
    if (e.type === 'result') d.maskedValues += e.data.maskedValues;
    if (e.type === 'session.start') {
      d.protocol = e.data.protocol;
      d.client = e.data.client;
      d.application = e.data.application ?? null;
    }
    if (e.type === 'session.end') {
      d.ended = true;
      d.endReason = e.data.reason;
    }
    // Identity is fixed per session by the producer; collecting it from every event still makes
    // search find a session by anything any of its events claims.
    const keys = subjectKeys.get(e.sessionId)!;
    const add = (kind: SubjectKind, value: string | undefined) => {
      if (value === undefined || keys.has(`${kind}:${value}`)) return;
      keys.add(`${kind}:${value}`);
      d.subjects.push({ kind, value });
    };
    add('identity', e.identity.serviceAccount);
    add('identity', e.identity.user);
    for (const g of e.identity.groups) add('group', g);
    if (e.type === 'command') {
      add('kube-verb', e.data.verb);
      add('kube-resource', e.data.resource);
      add('kube-namespace', e.data.namespace);
    }
  }
  return [...bySession.values()].sort((a, b) => (a.sessionId < b.sessionId ? -1 : 1));
}
