import type { RecordingEvent } from '@chaperone/api';
import type { EventStore } from '../store/event-store.js';

const PAGE = 5_000;

/** Every event of a session in seq order (for the replay exports, which need the whole session). */
export async function loadSessionEvents(store: EventStore, sessionId: string): Promise<RecordingEvent[]> {
  const events: RecordingEvent[] = [];
  let afterSeq = -1;
  for (;;) {
    const rows = await store.sessionEvents(sessionId, { afterSeq, limit: PAGE });
    for (const r of rows) events.push(JSON.parse(r.canonical) as RecordingEvent);
    const last = rows.at(-1);
    if (!last || rows.length < PAGE) return events;
    afterSeq = last.seq;
  }
}

/** Frames and the time of the last one, for the player's poster. */
export function terminalStats(events: readonly RecordingEvent[]): { frames: number; lastSeconds: number } {
  let frames = 0;
  let lastSeconds = 0;
  for (const e of events) {
    if (e.type !== 'output') continue;
    for (const [t] of e.data.asciicast) {
      frames++;
      lastSeconds = Math.max(lastSeconds, t);
    }
  }
  return { frames, lastSeconds };
}
