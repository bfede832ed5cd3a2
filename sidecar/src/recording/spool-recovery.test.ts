import { createHash } from 'node:crypto';
import {
  appendFileSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canonicalJson, type RecordingEvent, validateRecordingEvent } from '@chaperone/api';
import { afterAll, describe, expect, it } from 'vitest';
import { OpenSessions } from './open-sessions.js';
import { SessionRecorder } from './session-recorder.js';
import { Spool } from './spool.js';
import { closeInterruptedSessions, RESTART_REASON } from './spool-recovery.js';
import { SpoolSink } from './spool-sink.js';

const dirs: string[] = [];
const fresh = () => {
  const d = mkdtempSync(join(tmpdir(), 'chaperone-recovery-'));
  dirs.push(d);
  return d;
};
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const open = (dir: string) => new Spool({ dir, maxBytes: 1 << 24, segmentBytes: 2000, fsync: 'never' });
const recorder = (spool: Spool, id: string) =>
  new SessionRecorder(new SpoolSink(spool, () => {}), id, 'orders-db', {
    serviceAccount: { namespace: 'agents', name: 'orders-agent' },
    user: 'alice@example.com',
    groups: ['dba'],
  });
const query = (r: SessionRecorder, i: number) =>
  r.record(
    'query',
    { text: `SELECT ${i}`, fingerprint: 'f', classes: ['read'], tables: [], risks: [], decision: 'allowed' },
    'agents/rw',
  );

/** Ships everything there is (as the shipper does after the collector acknowledged), keeping the lines. */
function shipAll(spool: Spool, into: string[]): void {
  for (let b = spool.read(10, 1 << 20); b.lines.length; b = spool.read(10, 1 << 20)) {
    into.push(...b.lines);
    spool.acknowledge(b.next);
  }
}

/** Every spooled line still on disk, in order. */
function spooled(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.seg'))
    .sort()
    .flatMap((f) => readFileSync(join(dir, f), 'utf8').split('\n').filter(Boolean));
}

/** What the collector checks: contiguous seq from 0, each prevHash the sha256 of the previous canonical event. */
function chainOf(lines: string[], sessionId: string): RecordingEvent[] {
  const events = lines.map((l) => JSON.parse(l) as RecordingEvent).filter((e) => e.sessionId === sessionId);
  let prev = '';
  events.forEach((e, i) => {
    expect(e.seq).toBe(i);
    expect(e.prevHash).toBe(prev);
    expect(validateRecordingEvent(e).ok).toBe(true);
    prev = createHash('sha256').update(canonicalJson(e)).digest('hex');
  });
  return events;
}

describe('closing sessions left open by a killed sidecar', () => {
  it('closes a session whose beginning was shipped and deleted, chained to its last spooled event', () => {
    const dir = fresh();
    const spool = open(dir);
    const shipped: string[] = [];
    const a = recorder(spool, 'pg-a');
    a.record('session.start', { protocol: 'postgres', client: '127.0.0.1:5000' });
    for (let i = 0; i < 20; i++) query(a, i);
    const b = recorder(spool, 'pg-b');
    b.record('session.start', { protocol: 'postgres', client: '127.0.0.1:5001' });
    query(b, 1);
    b.record('session.end', { reason: 'client closed', statements: 1, durationMs: 3 });
    shipAll(spool, shipped);
    // session.start of A is gone from the disk: only the checkpoint knows A.
    expect(spooled(dir).some((l) => l.includes('"pg-a"') && l.includes('session.start'))).toBe(false);
    expect(readdirSync(dir)).toContain('open-sessions.json');
    for (let i = 20; i < 25; i++) query(a, i);
    // The process dies here (SIGKILL): no close, no session.end.

    const restarted = open(dir);
    const { closed, failed } = closeInterruptedSessions(restarted);
    expect(failed).toEqual([]);
    expect(closed).toEqual([{ sessionId: 'pg-a', connection: 'orders-db', seq: 26 }]);
    restarted.close();

    const all = [...shipped, ...spooled(dir).filter((l) => !shipped.includes(l))];
    const events = chainOf(all, 'pg-a');
    const end = events.at(-1);
    expect(end?.type).toBe('session.end');
    expect(end?.data).toMatchObject({ reason: RESTART_REASON, statements: 25 });
    expect(end?.identity).toEqual(events[0]?.identity);
    expect(end?.rule).toBeUndefined();
    expect(events.filter((e) => e.type === 'session.end')).toHaveLength(1);
    // B had ended: nothing added for it.
    expect(chainOf(all, 'pg-b').filter((e) => e.type === 'session.end')).toHaveLength(1);

    // A second restart finds nothing open.
    const again = open(dir);
    expect(closeInterruptedSessions(again).closed).toEqual([]);
    again.close();
  });

  it('ignores a torn last line: the end follows the last complete event', () => {
    const dir = fresh();
    const spool = open(dir);
    const a = recorder(spool, 'pg-torn');
    a.record('session.start', { protocol: 'postgres', client: '127.0.0.1:5000' });
    query(a, 1);
    const active =
      readdirSync(dir)
        .filter((f) => f.endsWith('.seg'))
        .sort()
        .at(-1) ?? '';
    appendFileSync(join(dir, active), '{"connection":"orders-db","data":{"text":"SELECT 2"');

    const restarted = open(dir);
    expect(closeInterruptedSessions(restarted).closed).toEqual([
      { sessionId: 'pg-torn', connection: 'orders-db', seq: 2 },
    ]);
    restarted.close();
    const events = chainOf(spooled(dir), 'pg-torn');
    expect(events.map((e) => e.type)).toEqual(['session.start', 'query', 'session.end']);
  });

  it('starts when the checkpoint is damaged, and keeps spool files owner-only', () => {
    const dir = fresh();
    const spool = open(dir);
    const a = recorder(spool, 'pg-c');
    a.record('session.start', { protocol: 'postgres', client: '127.0.0.1:5000' });
    shipAll(spool, []);
    query(a, 1);
    writeFileSync(join(dir, 'cursor.json.tmp'), 'stale', { mode: 0o644 });
    shipAll(spool, []);
    for (let i = 0; i < 30; i++) query(a, i); // rotates, so the next ack deletes a segment
    shipAll(spool, []);
    expect(readdirSync(dir)).toContain('open-sessions.json');
    for (const f of readdirSync(dir)) expect(statSync(join(dir, f)).mode & 0o777, f).toBe(0o600);
    expect(statSync(dir).mode & 0o777).toBe(0o700);

    writeFileSync(
      join(dir, 'open-sessions.json'),
      '{"v":1,"sessions":{"x":{"last":"not json","seq":1,"start":"t","statements":0}}}',
    );
    const restarted = open(dir);
    const { closed, failed } = closeInterruptedSessions(restarted);
    restarted.close();
    // Its checkpoint entry is lost, but its later events are still spooled: it is closed all the same.
    expect(closed.map((c) => c.sessionId)).toEqual(['pg-c']);
    expect(failed.map((f) => f.sessionId)).toEqual(['x']);
  });
});

describe('OpenSessions', () => {
  it('keeps the latest event of a session, ignores older re-read ones, and forgets ended sessions', () => {
    const s = new OpenSessions();
    const ev = (type: RecordingEvent['type'], sessionId: string, seq: number) => ({
      type,
      sessionId,
      seq,
      time: `2026-01-01T00:00:0${seq}.000Z`,
    });
    s.note(ev('query', 'a', 5), 'a5');
    s.load({ v: 1, sessions: { b: { last: 'b9', seq: 9, start: 'x', statements: 4 }, bad: { last: 1 } } });
    s.note(ev('session.start', 'a', 0), 'a0'); // re-read from an older segment
    s.note(ev('query', 'b', 3), 'b3');
    s.note(ev('command', 'b', 10), 'b10');
    s.note(ev('session.start', 'c', 0), 'c0');
    s.note(ev('session.end', 'c', 1), 'c1');
    expect(s.entries()).toEqual([
      ['a', { last: 'a5', seq: 5, start: '2026-01-01T00:00:05.000Z', statements: 1 }],
      ['b', { last: 'b10', seq: 10, start: 'x', statements: 5 }],
    ]);
    expect(s.noteLine('{"type":"query","sessionId":"a"')).toBe(false);
    expect(s.noteLine('[1,2]')).toBe(false);
    expect(s.noteLine('null')).toBe(false);
  });
});
