import type { RecordingEvent } from '@chaperone/api';
import { describe, expect, it } from 'vitest';
import { prepare, sqlSession } from '../test-support/recordings.js';
import { ChainVerifier, describeVerification } from './chain.js';

const rows = (events: RecordingEvent[]) =>
  prepare(events).map((p) => ({
    sessionId: p.event.sessionId,
    seq: p.event.seq,
    hash: p.hash,
    canonical: p.canonical,
  }));

function verify(sessionId: string, input: ReturnType<typeof rows>) {
  const v = new ChainVerifier(sessionId);
  for (const r of input) v.push(r);
  return v.result();
}

describe('ChainVerifier', () => {
  const events = sqlSession('s');

  it('accepts an intact chain', () => {
    expect(verify('s', rows(events))).toEqual({
      sessionId: 's',
      ok: true,
      events: 11,
      lastSeq: 10,
      ended: true,
      lastEventTime: events.at(-1)?.time,
      problems: [],
    });
  });

  it('says plainly when a session without session.end has been silent too long: abandoned', () => {
    const open = verify('s', rows(events.slice(0, -1)));
    const last = Date.parse(open.lastEventTime ?? '');
    const soon = describeVerification(open, { now: new Date(last + 60_000), abandonedAfterMs: 3_600_000 });
    expect(soon[0]).toContain('no session.end yet (it may still be running)');
    const later = describeVerification(open, {
      now: new Date(last + 3 * 3_600_000),
      abandonedAfterMs: 3_600_000,
    });
    expect(later[0]).toContain('ABANDONED: no session.end, and no event since');
    expect(later[0]).toContain('(3h)');
    expect(describeVerification(verify('s', rows(events)), { now: new Date(last + 9e9) })[0]).toContain(
      ', ended',
    );
  });

  it('reports a missing start, gaps and an empty session', () => {
    const v = verify('s', rows(events.slice(2)));
    expect(v.problems).toEqual([
      { kind: 'missing', fromSeq: 0, toSeq: 1, message: 'seq 0–1 are missing (2 events)' },
    ]);
    expect(verify('s', rows(events.filter((e) => e.seq !== 0))).problems[0]?.message).toBe(
      'seq 0 is missing (the session start)',
    );
    expect(verify('s', []).problems[0]?.message).toBe('the session has no stored events');
  });

  it('names the broken link when an event was removed and the rest renumbered', () => {
    const shifted = events
      .filter((e) => e.seq !== 3)
      .map((e) => (e.seq > 3 ? ({ ...e, seq: e.seq - 1 } as RecordingEvent) : e));
    const v = verify('s', rows(shifted));
    expect(v.ok).toBe(false);
    expect(v.problems[0]).toMatchObject({ kind: 'broken-link', seq: 3 });
    expect(v.problems[0]?.message).toMatch(
      /^link 2 → 3 is broken: seq 3 carries prevHash [0-9a-f]{12}…, but the stored seq 2 hashes to [0-9a-f]{12}…$/,
    );
  });

  it('spots stored text that is not what was ingested, not canonical, or about another event', () => {
    const r = rows(events);
    const edited = r.map((x) =>
      x.seq === 10 ? { ...x, canonical: x.canonical.replace('client closed', 'bye') } : x,
    );
    expect(verify('s', edited).problems.map((p) => p.kind)).toEqual(['altered']);

    const spaced = r.map((x) => (x.seq === 2 ? { ...x, canonical: ` ${x.canonical}` } : x));
    const kinds = verify('s', spaced).problems.map((p) => `${p.kind}@${'seq' in p ? p.seq : ''}`);
    expect(kinds).toEqual(['altered@2', 'altered@2', 'broken-link@3']);

    const other = verify('other', r);
    expect(other.problems[0]?.message).toBe('seq 0: the stored text claims session s seq 0');

    const garbage = r.map((x) => (x.seq === 5 ? { ...x, canonical: '{not json' } : x));
    expect(verify('s', garbage).problems.map((p) => p.message)).toContain(
      'seq 5: the stored text is not JSON',
    );
  });

  it('flags events recorded after session.end', () => {
    const extra = sqlSession('s').concat([]);
    const more = rows(extra);
    const end = more[10]!;
    const after = prepare([{ ...extra[2]!, seq: 11, prevHash: end.hash } as RecordingEvent]).map((p) => ({
      sessionId: 's',
      seq: 11,
      hash: p.hash,
      canonical: p.canonical,
    }));
    const v = verify('s', [...more, ...after]);
    expect(v.problems).toEqual([
      { kind: 'after-end', seq: 11, message: 'seq 11: recorded after the session.end event at seq 10' },
    ]);
    expect(describeVerification(v)).toEqual([
      'session s: BROKEN (12 events, last seq 11, ended)',
      '  - seq 11: recorded after the session.end event at seq 10',
    ]);
  });
});
