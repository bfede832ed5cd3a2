import type { RecordedIdentity, RecordingEvent } from '@chaperone/api';

/**
 * What is needed to close a session whose sidecar died: its last event exactly as it was hashed
 * (so the next prevHash is sha256 of it), when it started and how many statements it ran.
 */
export interface OpenSession {
  /** Canonical JSON of the session's last event. */
  last: string;
  seq: number;
  start: string;
  statements: number;
}

/** The checkpoint file's content: sessions open when acknowledged segments were deleted. */
export interface OpenSessionsCheckpoint {
  v: 1;
  sessions: Record<string, OpenSession>;
}

type Noted = Pick<RecordingEvent, 'type' | 'sessionId' | 'seq' | 'time'>;

const STATEMENT_TYPES = new Set(['query', 'command']);

/**
 * The sessions the spool holds open, one entry each (memory bounded by the number of open
 * sessions). Noting an event is a map update: no hashing, no I/O on the data path.
 */
export class OpenSessions {
  private readonly open = new Map<string, OpenSession>();

  /**
   * Applies one event in spool order. An event older than what is known (a segment re-read after
   * the checkpoint already counted it) changes nothing; session.end forgets the session.
   */
  note(e: Noted, canonical: string): void {
    if (e.type === 'session.end') {
      this.open.delete(e.sessionId);
      return;
    }
    const statement = STATEMENT_TYPES.has(e.type) ? 1 : 0;
    const known = this.open.get(e.sessionId);
    if (!known) {
      // A session first seen mid-way (its start was shipped before any checkpoint existed): its
      // own time is the best start known.
      this.open.set(e.sessionId, { last: canonical, seq: e.seq, start: e.time, statements: statement });
      return;
    }
    if (e.seq <= known.seq) return;
    // Updated in place: this runs for every recorded event.
    known.last = canonical;
    known.seq = e.seq;
    known.statements += statement;
  }

  get size(): number {
    return this.open.size;
  }

  entries(): Array<[string, OpenSession]> {
    return [...this.open];
  }

  toCheckpoint(): OpenSessionsCheckpoint {
    return { v: 1, sessions: Object.fromEntries([...this.open].map(([id, s]) => [id, { ...s }])) };
  }

  /** Loads a checkpoint; malformed entries are skipped (the scan of the segments may still find them). */
  load(checkpoint: unknown): void {
    const sessions = (checkpoint as Partial<OpenSessionsCheckpoint> | null)?.sessions;
    if (!sessions || typeof sessions !== 'object') return;
    for (const [id, s] of Object.entries(sessions)) {
      if (
        typeof s?.last === 'string' &&
        Number.isInteger(s.seq) &&
        typeof s.start === 'string' &&
        Number.isInteger(s.statements)
      ) {
        this.open.set(id, { last: s.last, seq: s.seq, start: s.start, statements: s.statements });
      }
    }
  }

  /** Applies one spooled line read back at start; a torn or foreign line is ignored (false). */
  noteLine(line: string): boolean {
    let e: Partial<Noted>;
    try {
      e = JSON.parse(line) as Partial<Noted>;
    } catch {
      return false;
    }
    if (
      typeof e?.type !== 'string' ||
      typeof e.sessionId !== 'string' ||
      !Number.isInteger(e.seq) ||
      typeof e.time !== 'string'
    )
      return false;
    this.note(e as Noted, line);
    return true;
  }
}

/** The parts of a session's last event a closing session.end repeats. */
export interface ClosingPoint {
  sessionId: string;
  connection: string;
  identity: RecordedIdentity;
  seq: number;
  time: string;
}

export function closingPoint(s: OpenSession): ClosingPoint {
  const e = JSON.parse(s.last) as RecordingEvent;
  return { sessionId: e.sessionId, connection: e.connection, identity: e.identity, seq: e.seq, time: e.time };
}
