import { createHash } from 'node:crypto';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canonicalJson, type RecordingEvent } from '@chaperone/api';
import { afterAll, describe, expect, it } from 'vitest';
import { closeInterruptedRecordings } from './jsonl-recovery.js';
import { SessionRecorder } from './session-recorder.js';

const dir = mkdtempSync(join(tmpdir(), 'chaperone-jsonl-recovery-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Records like JsonLinesSink, but synchronously: the test controls where the "crash" happens. */
function session(id: string): SessionRecorder {
  const path = join(dir, `${id}.jsonl`);
  return new SessionRecorder(
    {
      write: (_e, canonical) => appendFileSync(path, `${canonical}\n`, { mode: 0o600 }),
      flush: async () => {},
    },
    id,
    'orders-db',
    { serviceAccount: { namespace: 'agents', name: 'orders-agent' }, groups: [] },
  );
}
const query = (r: SessionRecorder, text: string) =>
  r.record('query', {
    text,
    fingerprint: 'f',
    classes: ['read'],
    tables: [],
    risks: [],
    decision: 'allowed',
  });
const events = (id: string) =>
  readFileSync(join(dir, `${id}.jsonl`), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as RecordingEvent);

describe('closing JSON-lines recordings left open by a killed sidecar', () => {
  it('appends one chained session.end to open sessions only, after cutting a torn last line', () => {
    const open = session('pg-open');
    open.record('session.start', { protocol: 'postgres', client: '127.0.0.1:5000' });
    query(open, `SELECT '${'x'.repeat(6000)}'`); // a line longer than the tail first read
    query(open, 'SELECT 2');
    appendFileSync(join(dir, 'pg-open.jsonl'), '{"connection":"orders-db","data":{"te');
    const ended = session('pg-ended');
    ended.record('session.start', { protocol: 'postgres', client: '127.0.0.1:5001' });
    ended.record('session.end', { reason: 'client closed', statements: 0, durationMs: 1 });
    const endedBefore = readFileSync(join(dir, 'pg-ended.jsonl'), 'utf8');
    appendFileSync(join(dir, 'notes.txt'), 'not a recording\n');

    const { closed, failed } = closeInterruptedRecordings(dir);
    expect(failed).toEqual([]);
    expect(closed).toEqual([{ sessionId: 'pg-open', connection: 'orders-db', seq: 3 }]);
    expect(readFileSync(join(dir, 'pg-ended.jsonl'), 'utf8')).toBe(endedBefore);
    const all = events('pg-open');
    let prev = '';
    all.forEach((e, i) => {
      expect(e.seq).toBe(i);
      expect(e.prevHash).toBe(prev);
      prev = createHash('sha256').update(canonicalJson(e)).digest('hex');
    });
    expect(all.at(-1)).toMatchObject({
      type: 'session.end',
      data: { reason: 'sidecar restarted', statements: 2 },
      identity: { serviceAccount: 'agents/orders-agent', groups: [] },
    });
    expect(statSync(join(dir, 'pg-open.jsonl')).mode & 0o777).toBe(0o600);
    // Idempotent: a second start changes nothing.
    expect(closeInterruptedRecordings(dir).closed).toEqual([]);
    expect(closeInterruptedRecordings(join(dir, 'missing')).closed).toEqual([]);
  });
});
