import { canonicalJson } from '@chaperone/api';
import { describe, expect, it } from 'vitest';
import { sha256, sqlSession } from '../test-support/recordings.js';
import { prepareBatch } from './prepare-batch.js';

describe('prepareBatch', () => {
  it('computes each event canonical text and its hash', () => {
    const events = sqlSession('s');
    const r = prepareBatch({ events }, 100);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.events[3]!.canonical).toBe(canonicalJson(events[3]));
    expect(r.events[3]!.hash).toBe(sha256(canonicalJson(events[3])));
    // The chain the producer built is over exactly this text.
    expect(r.events[4]!.event.prevHash).toBe(r.events[3]!.hash);
  });

  it('reports at most 20 bad events, with index, session and seq', () => {
    const bad = Array.from({ length: 30 }, (_, i) => ({ ...sqlSession('s')[1]!, seq: i + 1, time: 'now' }));
    const r = prepareBatch({ events: bad }, 100);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.events).toHaveLength(20);
    expect(r.events?.[19]).toMatchObject({ index: 19, sessionId: 's', seq: 20 });
    expect(r.message).toMatch(
      /^event 0 \(session s seq 1\): time: must be an ISO 8601 timestamp with a zone, got "now" \(and 29 more invalid events\); nothing from this batch was stored$/,
    );
  });

  it('refuses bodies that are not a batch', () => {
    for (const body of [null, [], 'x', { events: {} }, { events: [], extra: 1 }]) {
      const r = prepareBatch(body, 10);
      expect(r.ok).toBe(false);
      expect(!r.ok && r.status).toBe(400);
    }
    const big = prepareBatch({ events: Array(11).fill({}) }, 10);
    expect(!big.ok && big.status).toBe(413);
  });
});
