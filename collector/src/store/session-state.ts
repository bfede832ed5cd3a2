// What an auditor is told about a session's liveness, pure. A session without a session.end is
// "running" while events keep arriving; once none has arrived for longer than the configured time
// it is "abandoned": most likely its sidecar died (SIGKILL, OOM, node loss) before it could end it.
// This is a reading of the stored facts at a given time, never stored: a late event makes the
// session running again, and a session.end makes it ended.

export type SessionState = 'running' | 'ended' | 'abandoned';

/** Default of --abandoned-after. */
export const DEFAULT_ABANDONED_AFTER_MS = 60 * 60_000;

export function sessionState(
  s: { ended: boolean; endTime: string },
  now: Date,
  abandonedAfterMs: number = DEFAULT_ABANDONED_AFTER_MS,
): SessionState {
  if (s.ended) return 'ended';
  const last = Date.parse(s.endTime);
  return Number.isFinite(last) && now.getTime() - last > abandonedAfterMs ? 'abandoned' : 'running';
}

/** "3h 5m", coarse: for how long a session has been silent. */
export function silentFor(ms: number): string {
  const m = Math.floor(ms / 60_000);
  if (m < 60) return `${Math.max(1, m)}m`;
  const h = Math.floor(m / 60);
  if (h < 48) return m % 60 ? `${h}h ${m % 60}m` : `${h}h`;
  return `${Math.floor(h / 24)}d`;
}
