// asciicast v2 (https://docs.asciinema.org/manual/asciicast/v2/): a JSON header line, then one
// [seconds, code, data] line per terminal event. The sidecar records `output` events whose frames
// carry seconds since the session start, so frames concatenate into one recording.
import type { RecordingEvent } from '@chaperone/api';
import type { SessionSummary } from '../store/event-store.js';

export const ASCIICAST_CONTENT_TYPE = 'application/x-asciicast';

export interface TerminalSize {
  width: number;
  height: number;
}

export function toAsciicast(
  session: SessionSummary,
  events: readonly RecordingEvent[],
  size: TerminalSize = { width: 80, height: 24 },
): string {
  const who = session.identity.user ?? session.identity.serviceAccount ?? 'unknown';
  const header = {
    version: 2,
    width: size.width,
    height: size.height,
    timestamp: Math.floor(Date.parse(session.startTime) / 1000),
    title: `${session.sessionId} — ${who} on ${session.connection}`,
  };
  const lines = [JSON.stringify(header)];
  // Players expect non-decreasing times; a producer's clock step must not make them jump back.
  let last = 0;
  for (const e of events) {
    if (e.type !== 'output') continue;
    for (const [t, code, data] of e.data.asciicast) {
      last = Math.max(last, t);
      lines.push(JSON.stringify([Math.round(last * 1e6) / 1e6, code, data]));
    }
  }
  return `${lines.join('\n')}\n`;
}
