import { createHash } from 'node:crypto';
import { closingPoint, type OpenSession } from './open-sessions.js';
import { type RecordingSink, SessionRecorder } from './session-recorder.js';
import type { Spool } from './spool.js';
import { SpoolSink } from './spool-sink.js';

/** The session.end reason of a session whose sidecar died before it could end it. */
export const RESTART_REASON = 'sidecar restarted';

export interface ClosedSession {
  sessionId: string;
  connection: string;
  /** The seq of the session.end that closed it. */
  seq: number;
}

/**
 * At start, before the shipper and the gateways: every session an earlier sidecar process left
 * open in the spool (killed, out of memory, node lost) gets its session.end, chained to its last
 * spooled event, so auditors see it ended and its chain verifies. `durationMs` is from its start
 * to its last recorded event: what happened after that is unknown.
 */
export function closeInterruptedSessions(
  spool: Spool,
  onWrite: () => void = () => {},
): { closed: ClosedSession[]; failed: Array<{ sessionId: string; error: string }> } {
  const closed: ClosedSession[] = [];
  const failed: Array<{ sessionId: string; error: string }> = [];
  for (const [sessionId, open] of spool.recoverOpenSessions().entries()) {
    try {
      closed.push(closeSession(new SpoolSink(spool, onWrite), open));
    } catch (err) {
      // A damaged checkpoint entry must not keep the sidecar from starting; the collector will
      // still mark the session abandoned.
      failed.push({ sessionId, error: (err as Error).message });
    }
  }
  return { closed, failed };
}

/** Appends the session.end that closes `open`, chained to its last event, through `sink`. */
export function closeSession(sink: RecordingSink, open: OpenSession): ClosedSession {
  const at = closingPoint(open);
  const recorder = SessionRecorder.resume(sink, {
    sessionId: at.sessionId,
    connection: at.connection,
    identity: at.identity,
    seq: at.seq + 1,
    prevHash: createHash('sha256').update(open.last).digest('hex'),
  });
  const durationMs = Math.max(0, Date.parse(at.time) - Date.parse(open.start)) || 0;
  recorder.record('session.end', { reason: RESTART_REASON, statements: open.statements, durationMs });
  return { sessionId: at.sessionId, connection: at.connection, seq: at.seq + 1 };
}
