import { createHash } from 'node:crypto';
import { canonicalJson, type RecordingEvent } from '@chaperone/api';
import { describe, expect, it } from 'vitest';
import { type RecordingSink, SessionRecorder } from './session-recorder.js';

class MemorySink implements RecordingSink {
  events: Array<{ event: RecordingEvent; canonical: string }> = [];
  write(event: RecordingEvent, canonical: string) {
    this.events.push({ event, canonical });
  }
  async flush() {}
}

describe('SessionRecorder', () => {
  it('writes exactly canonicalJson(event), numbers events and chains their hashes', () => {
    const sink = new MemorySink();
    const r = new SessionRecorder(sink, 'pg-1.a_b:c', 'orders-db "quoted"', {
      serviceAccount: { namespace: 'agents', name: 'orders-agent' },
      user: 'alice@example.com',
      groups: ['dba', 'oncall'],
    });
    r.record('session.start', { protocol: 'postgres', client: '127.0.0.1:5000' });
    r.record(
      'query',
      { text: 'SELECT $1', fingerprint: 'ab', classes: ['read'], tables: [], risks: [], decision: 'allowed' },
      'p/r',
    );
    r.record('result', { rows: 1, bytes: 10, maskedValues: 0, command: 'SELECT 1' });
    expect(sink.events.map((e) => e.event.seq)).toEqual([0, 1, 2]);
    let prev = '';
    for (const { event, canonical } of sink.events) {
      expect(canonical).toBe(canonicalJson(event));
      expect(event.prevHash).toBe(prev);
      prev = createHash('sha256').update(canonical).digest('hex');
    }
  });
});
