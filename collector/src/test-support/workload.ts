import type { RecordingEvent } from '@chaperone/api';
import { RecordingBuilder } from './recordings.js';

/** A session as a sidecar records it: start, credential, `queries` × (query, result), end. */
export function workloadSession(
  sessionId: string,
  queries: number,
  startMs: number,
  sa: string,
): RecordingEvent[] {
  const b = new RecordingBuilder(sessionId, {
    startMs,
    connection: queries % 2 ? 'orders-db' : 'billing-db',
    identity: { serviceAccount: sa, pod: `${sa.split('/')[1]}-0`, groups: ['agents'] },
  })
    .add('session.start', { protocol: 'postgres', client: '127.0.0.1:40000' })
    .add('credential.issued', { description: 'JIT role' });
  for (let q = 0; q < queries; q++) {
    const denied = q % 7 === 6;
    b.add(
      'query',
      {
        text: `SELECT * FROM orders WHERE customer_id = ${q} /* ${sessionId} */`,
        fingerprint: `fp-${q % 5}`,
        classes: ['read'],
        tables: ['public.orders'],
        risks: [],
        decision: denied ? 'denied' : 'allowed',
      },
      { rule: denied ? 'orders/deny' : 'orders/read' },
    );
    b.add('result', { rows: q, bytes: q * 40, maskedValues: q % 3, command: `SELECT ${q}` });
  }
  return b.add('session.end', { reason: 'client closed', statements: queries, durationMs: queries * 10 })
    .events;
}

/**
 * Events of several sessions interleaved as one sidecar's spool holds them: each session in seq
 * order, sessions mixed.
 */
export function interleave(sessions: RecordingEvent[][], seed: number): RecordingEvent[] {
  let state = seed;
  const random = () => {
    state = (state * 1_103_515_245 + 12_345) % 2_147_483_648;
    return state / 2_147_483_648;
  };
  const cursors = sessions.map(() => 0);
  const out: RecordingEvent[] = [];
  let live = sessions.map((_, i) => i);
  while (live.length) {
    const pick = live[Math.floor(random() * live.length)]!;
    out.push(sessions[pick]![cursors[pick]!]!);
    cursors[pick]!++;
    if (cursors[pick] === sessions[pick]!.length) live = live.filter((i) => i !== pick);
  }
  return out;
}
