import { describe, expect, it } from 'vitest';
import type { SessionSummary } from '../store/event-store.js';
import { RecordingBuilder, sqlSession } from '../test-support/recordings.js';
import { toAsciicast } from './asciicast.js';
import { toSqlTranscript } from './sql-transcript.js';

const summary = (over: Partial<SessionSummary> = {}): SessionSummary => ({
  sessionId: 's',
  connection: 'orders-db',
  protocol: 'postgres',
  client: '127.0.0.1:1',
  application: 'psql',
  identity: { serviceAccount: 'agents/a', pod: 'a-0', user: 'alice', groups: ['ops'] },
  startTime: '2025-03-01T10:00:00.010Z',
  endTime: '2025-03-01T10:00:05.110Z',
  ended: true,
  endReason: 'client closed',
  events: 11,
  lastSeq: 10,
  missingEvents: 0,
  counts: { statements: 3, allowed: 1, denied: 1, approved: 1, maskedValues: 9 },
  ...over,
});

describe('SQL transcript', () => {
  it('reads top to bottom: header, decisions with rules, results, approvals with who', () => {
    const text = toSqlTranscript(summary(), sqlSession('s'));
    expect(text.split('\n').slice(0, 8)).toEqual([
      '# Chaperone session s',
      '# connection  orders-db (postgres), client 127.0.0.1:1, application psql',
      '# identity    ServiceAccount agents/a, pod a-0, on behalf of alice, groups ops',
      '# started     2025-03-01T10:00:00.010Z',
      '# last event  2025-03-01T10:00:05.110Z, ended: client closed',
      '# statements  3 (1 allowed, 1 denied, 1 approved); 9 values masked',
      '# times are UTC',
      '',
    ]);
    expect(text).toContain('10:00:00.010 [0]    session started (postgres) from 127.0.0.1:41000, psql');
    expect(text).toContain(
      '10:00:00.050 [4]    PENDING  DELETE FROM orders WHERE id = 3 — rule orders/writers',
    );
    expect(text).toContain('10:00:00.060 [5]    approval requested: ar-1 (write)');
    expect(text).toContain('10:00:05.060 [6]    approval ar-1 APPROVED by bob@example.com: "ticket 42"');
    expect(text).toContain('    → error: chaperone: DDL is not allowed (0 rows, 0 bytes)');
    expect(text).toContain('session ended: client closed (3 statements, 6.0 s)');
  });

  it('shows gaps, day changes and multi-line statements', () => {
    const events = new RecordingBuilder('s', { startMs: Date.parse('2025-03-01T23:59:59.000Z') })
      .add('session.start', { protocol: 'postgres', client: 'x' })
      .add('query', {
        text: 'SELECT 1\nFROM t',
        fingerprint: 'f',
        classes: [],
        tables: [],
        risks: [],
        decision: 'allowed',
      })
      .add('denied', { operation: 'COPY', reason: 'no' }, { afterMs: 2_000 })
      .add('result', { rows: 0, bytes: 0, maskedValues: 0 }).events;
    const text = toSqlTranscript(summary({ missingEvents: 1 }), [events[0]!, events[1]!, events[3]!]);
    expect(text).toContain('# WARNING     1 event missing');
    expect(text).toContain('23:59:59.020 [1]    ALLOWED  SELECT 1\n                    FROM t');
    expect(text).toContain('… seq 2 is missing …');
    expect(text).toContain('--- 2025-03-02 ---');
  });
});

describe('asciicast', () => {
  it('keeps frame times from going backwards', () => {
    const events = new RecordingBuilder('t', { connection: 'bastion' })
      .add('session.start', { protocol: 'ssh', client: 'x' })
      .add('output', { asciicast: [[2, 'o', 'a']] })
      .add('output', {
        asciicast: [
          [1.5, 'o', 'b'],
          [3.25, 'o', 'c'],
        ],
      }).events;
    const lines = toAsciicast(summary({ sessionId: 't', connection: 'bastion' }), events)
      .trim()
      .split('\n');
    expect(JSON.parse(lines[0]!)).toEqual({
      version: 2,
      width: 80,
      height: 24,
      timestamp: 1740823200,
      title: 't — alice on bastion',
    });
    expect(lines.slice(1)).toEqual(['[2,"o","a"]', '[2,"o","b"]', '[3.25,"o","c"]']);
  });
});
