// Chain verification. Each event carries the sha256 of its predecessor's canonical JSON, so an
// edited, deleted or reordered event breaks a link. Verification recomputes every hash from the
// stored text (never trusting a stored hash column) and also compares it with the hash recorded
// at ingest, which catches an edit of the newest event, which no successor would reveal.
import { createHash } from 'node:crypto';
import { canonicalJson } from '@chaperone/api';
import type { EventStore, SessionCursor, StoredEvent } from '../store/event-store.js';
import { sessionState, silentFor } from '../store/session-state.js';

export type ChainProblem =
  | { kind: 'missing'; fromSeq: number; toSeq: number; message: string }
  | {
      kind: 'broken-link';
      /** The event whose prevHash does not match its predecessor. */
      seq: number;
      expectedPrevHash: string;
      actualPrevHash: string;
      message: string;
    }
  | { kind: 'altered'; seq: number; message: string }
  | { kind: 'after-end'; seq: number; message: string };

export interface SessionVerification {
  sessionId: string;
  ok: boolean;
  events: number;
  lastSeq: number;
  /** A session.end event is present (without one the session may still be running). */
  ended: boolean;
  /** `time` of the event with the highest seq (null without events). */
  lastEventTime: string | null;
  problems: ChainProblem[];
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
const short = (hash: string) => (hash ? `${hash.slice(0, 12)}…` : "''");

/** Feed a session's stored events in seq order, then call result(). */
export class ChainVerifier {
  private events = 0;
  private lastSeq = -1;
  private prevHash: string | undefined;
  private endSeq: number | undefined;
  private lastTime: string | null = null;
  private readonly problems: ChainProblem[] = [];

  constructor(readonly sessionId: string) {}

  push(row: StoredEvent): void {
    const { seq, canonical } = row;
    this.events++;
    const actualHash = sha256(canonical);
    if (actualHash !== row.hash) {
      this.problems.push({
        kind: 'altered',
        seq,
        message: `seq ${seq}: the stored text hashes to ${short(actualHash)}, not to ${short(row.hash)} as recorded when it was ingested`,
      });
    }
    let claimed:
      | { sessionId?: unknown; seq?: unknown; prevHash?: unknown; type?: unknown; time?: unknown }
      | undefined;
    try {
      const parsed: unknown = JSON.parse(canonical);
      if (canonicalJson(parsed) !== canonical) {
        this.problems.push({
          kind: 'altered',
          seq,
          message: `seq ${seq}: the stored text is not canonical JSON`,
        });
      }
      claimed = typeof parsed === 'object' && parsed !== null ? (parsed as typeof claimed) : undefined;
    } catch {
      this.problems.push({ kind: 'altered', seq, message: `seq ${seq}: the stored text is not JSON` });
    }
    if (claimed && (claimed.sessionId !== this.sessionId || claimed.seq !== seq)) {
      this.problems.push({
        kind: 'altered',
        seq,
        message: `seq ${seq}: the stored text claims session ${String(claimed.sessionId)} seq ${String(claimed.seq)}`,
      });
    }
    if (this.endSeq !== undefined) {
      this.problems.push({
        kind: 'after-end',
        seq,
        message: `seq ${seq}: recorded after the session.end event at seq ${this.endSeq}`,
      });
    }
    if (claimed?.type === 'session.end') this.endSeq ??= seq;
    if (typeof claimed?.time === 'string') this.lastTime = claimed.time;

    const expected = seq === 0 ? '' : seq === this.lastSeq + 1 ? this.prevHash : undefined;
    if (seq !== this.lastSeq + 1) {
      const fromSeq = this.lastSeq + 1;
      const toSeq = seq - 1;
      this.problems.push({
        kind: 'missing',
        fromSeq,
        toSeq,
        message:
          fromSeq === toSeq
            ? `seq ${fromSeq} is missing${fromSeq === 0 ? ' (the session start)' : ''}`
            : `seq ${fromSeq}–${toSeq} are missing (${toSeq - fromSeq + 1} events)`,
      });
    }
    const actualPrev = typeof claimed?.prevHash === 'string' ? claimed.prevHash : '';
    if (expected !== undefined && actualPrev !== expected) {
      this.problems.push({
        kind: 'broken-link',
        seq,
        expectedPrevHash: expected,
        actualPrevHash: actualPrev,
        message:
          seq === 0
            ? `seq 0: prevHash is ${short(actualPrev)}, but the first event of a session has none`
            : `link ${seq - 1} → ${seq} is broken: seq ${seq} carries prevHash ${short(actualPrev)}, but the stored seq ${seq - 1} hashes to ${short(expected)}`,
      });
    }
    this.prevHash = actualHash;
    this.lastSeq = seq;
  }

  result(): SessionVerification {
    const problems = [...this.problems];
    if (this.events === 0) {
      problems.push({ kind: 'missing', fromSeq: 0, toSeq: 0, message: 'the session has no stored events' });
    }
    return {
      sessionId: this.sessionId,
      ok: problems.length === 0,
      events: this.events,
      lastSeq: this.lastSeq,
      ended: this.endSeq !== undefined,
      lastEventTime: this.lastTime,
      problems,
    };
  }
}

const PAGE = 2_000;

export async function verifySession(store: EventStore, sessionId: string): Promise<SessionVerification> {
  const verifier = new ChainVerifier(sessionId);
  let afterSeq = -1;
  for (;;) {
    const rows = await store.sessionEvents(sessionId, { afterSeq, limit: PAGE });
    for (const row of rows) verifier.push(row);
    const last = rows.at(-1);
    if (!last || rows.length < PAGE) break;
    afterSeq = last.seq;
  }
  return verifier.result();
}

export interface RangeVerification {
  ok: boolean;
  from: string | null;
  to: string | null;
  sessionsChecked: number;
  eventsChecked: number;
  /** Only the sessions with problems. */
  broken: SessionVerification[];
  /** Sessions without a session.end and silent for longer than abandonedAfterMs (at most 1000 listed). */
  abandoned: string[];
}

/** Verifies every session active in [from, to] (all sessions without bounds), page by page. */
export async function verifyRange(
  store: EventStore,
  range: { from?: Date; to?: Date; now?: Date; abandonedAfterMs?: number },
  onProgress?: (checked: number) => void,
): Promise<RangeVerification> {
  const out: RangeVerification = {
    ok: true,
    from: range.from?.toISOString() ?? null,
    to: range.to?.toISOString() ?? null,
    sessionsChecked: 0,
    eventsChecked: 0,
    broken: [],
    abandoned: [],
  };
  const now = range.now ?? new Date();
  let cursor: SessionCursor | undefined;
  do {
    const page = await store.searchSessions({ from: range.from, to: range.to, limit: 500, cursor });
    for (const s of page.sessions) {
      const v = await verifySession(store, s.sessionId);
      out.sessionsChecked++;
      out.eventsChecked += v.events;
      if (!v.ok) out.broken.push(v);
      if (out.abandoned.length < 1_000 && sessionState(s, now, range.abandonedAfterMs) === 'abandoned')
        out.abandoned.push(s.sessionId);
    }
    onProgress?.(out.sessionsChecked);
    cursor = page.nextCursor ?? undefined;
  } while (cursor);
  out.ok = out.broken.length === 0;
  return out;
}

/** How a session without a session.end reads: still running, or abandoned (see session-state.ts). */
function liveness(v: SessionVerification, opts: LivenessOptions): string {
  if (v.ended) return ', ended';
  const now = opts.now ?? new Date();
  const state = v.lastEventTime
    ? sessionState({ ended: false, endTime: v.lastEventTime }, now, opts.abandonedAfterMs)
    : 'running';
  if (state !== 'abandoned' || !v.lastEventTime) return ', no session.end yet (it may still be running)';
  return `, ABANDONED: no session.end, and no event since ${v.lastEventTime} (${silentFor(now.getTime() - Date.parse(v.lastEventTime))}); its sidecar most likely died before ending it`;
}

export interface LivenessOptions {
  now?: Date;
  abandonedAfterMs?: number;
}

/** Human-readable report lines (CLI output and logs). */
export function describeVerification(v: SessionVerification, opts: LivenessOptions = {}): string[] {
  const head = `session ${v.sessionId}: ${v.ok ? 'OK' : 'BROKEN'} (${v.events} events, last seq ${v.lastSeq}${liveness(v, opts)})`;
  return [head, ...v.problems.map((p) => `  - ${p.message}`)];
}
