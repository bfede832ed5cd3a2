import { describe, expect, it } from 'vitest';
import {
  canonicalJson,
  RECORDING_EVENT_TYPES,
  type RecordingEventType,
  validateRecordingEvent,
} from './recording-events.js';

describe('canonicalJson', () => {
  it('sorts keys at every level, drops undefined members and matches JSON.stringify for the rest', () => {
    const value = { b: 1, a: { d: [1, 'x', { z: null, y: true }], c: 'é"\n' }, u: undefined, e: [undefined] };
    expect(canonicalJson(value)).toBe(
      '{"a":{"c":"é\\"\\n","d":[1,"x",{"y":true,"z":null}]},"b":1,"e":[null]}',
    );
    const sorted = canonicalJson(value);
    expect(JSON.parse(sorted)).toEqual(JSON.parse(JSON.stringify(value)));
  });

  it('is independent of key insertion order', () => {
    expect(canonicalJson({ x: 1, y: { q: 2, p: 3 } })).toBe(canonicalJson({ y: { p: 3, q: 2 }, x: 1 }));
  });
});

describe('validateRecordingEvent', () => {
  const start = {
    v: 1,
    type: 'session.start',
    sessionId: 'pg-lz1-1-abcd1234',
    seq: 0,
    time: '2025-01-02T03:04:05.678Z',
    identity: { serviceAccount: 'agents/orders', pod: 'orders-0', groups: ['ops'] },
    connection: 'orders-db',
    prevHash: '',
    data: { protocol: 'postgres', client: '127.0.0.1:5000' },
  };
  const hash = 'a'.repeat(64);
  const query = {
    ...start,
    type: 'query',
    seq: 1,
    prevHash: hash,
    rule: 'orders/readers',
    data: {
      text: 'SELECT 1',
      fingerprint: 'f',
      classes: ['read'],
      tables: [],
      risks: [],
      decision: 'allowed',
    },
  };
  const errorsOf = (value: unknown) => {
    const r = validateRecordingEvent(value);
    return r.ok ? [] : r.errors;
  };

  it('accepts every event type in its documented shape', () => {
    const samples: Array<[RecordingEventType, Record<string, unknown>]> = [
      ['session.start', start.data],
      ['session.end', { reason: 'client closed', statements: 3, durationMs: 1200 }],
      ['query', query.data],
      ['result', { rows: 2, bytes: 40, maskedValues: 1, command: 'SELECT 2' }],
      ['command', { text: 'ls -la', decision: 'pending', reason: 'rm' }],
      ['output', { asciicast: [[0.5, 'o', 'hello\r\n']] }],
      ['approval.requested', { request: 'ar-1', text: 'DELETE FROM t', reasons: ['no WHERE'] }],
      ['approval.decided', { request: 'ar-1', verdict: 'approved', by: 'bob' }],
      ['credential.issued', { description: 'role x', expiresAt: '2025-01-02T04:04:05.678+01:00' }],
      ['denied', { operation: 'COPY', reason: 'not allowed' }],
    ];
    expect(samples.map(([t]) => t).sort()).toEqual([...RECORDING_EVENT_TYPES].sort());
    for (const [type, data] of samples) {
      const r = validateRecordingEvent({ ...query, type, data });
      expect(r.ok ? [] : r.errors, type).toEqual([]);
    }
    const r = validateRecordingEvent(start);
    expect(r.ok && r.event.type).toBe('session.start');
  });

  it('refuses unknown schema versions with the version it knows', () => {
    expect(errorsOf({ ...start, v: 2 })).toEqual([
      `v: unsupported schema version 2 (this build knows version 1)`,
    ]);
    expect(errorsOf({ ...start, v: undefined })[0]).toMatch(/^v: required/);
  });

  it('names each bad field', () => {
    const bad = {
      ...query,
      seq: -1,
      sessionId: 'has space',
      time: 'yesterday',
      connection: '',
      rule: 7,
      extra: true,
      identity: { groups: ['ok', 3], role: 'x' },
      data: { ...query.data, decision: 'maybe', tables: 'orders', classes: undefined, colour: 'red' },
    };
    const errors = errorsOf(bad);
    for (const prefix of [
      'seq: must be a non-negative integer, got -1',
      'sessionId: must be',
      'time: must be an ISO 8601 timestamp',
      'connection: must be a non-empty string',
      'rule: must be a string',
      'extra: unknown field',
      'identity.groups[1]: must be a string, got 3',
      'identity.role: unknown field',
      'data.decision: must be one of allowed, denied, approved, pending, got "maybe"',
      'data.tables: must be an array of strings',
      'data.classes: required',
      'data.colour: unknown field for a query event',
    ]) {
      expect(
        errors.some((e) => e.startsWith(prefix)),
        `${prefix} in ${errors.join('\n')}`,
      ).toBe(true);
    }
  });

  it('checks the prevHash rule of the chain and the type of every counter', () => {
    expect(errorsOf({ ...start, prevHash: hash })).toEqual(['prevHash: must be empty for seq 0']);
    expect(errorsOf({ ...query, prevHash: '' })[0]).toMatch(/^prevHash: must be 64 lowercase hex/);
    expect(errorsOf({ ...query, prevHash: hash.toUpperCase() })[0]).toMatch(/^prevHash/);
    expect(errorsOf({ ...query, seq: 1.5 })[0]).toMatch(/^seq/);
    expect(errorsOf({ ...query, type: 'result', data: { rows: '2', bytes: 1, maskedValues: 0 } })).toEqual([
      'data.rows: must be a non-negative integer, got "2"',
    ]);
    expect(errorsOf({ ...query, type: 'output', data: { asciicast: [[1, 'x', 'y']] } })[0]).toMatch(
      /^data\.asciicast\[0\]/,
    );
    expect(errorsOf({ ...query, type: 'nope' })[0]).toMatch(/^type: must be one of session.start/);
    expect(errorsOf(null)).toEqual(['<event>: must be an object, got null']);
    expect(errorsOf({ ...start, time: undefined })).toEqual([
      'time: must be an ISO 8601 timestamp with a zone, got nothing (the field is missing)',
    ]);
    expect(errorsOf({ ...start, toString: 'x' })).toEqual(['toString: unknown field']);
  });

  it('accepts exactly what the producer hashes: a round trip through JSON keeps the canonical text', () => {
    const canonical = canonicalJson({ ...query, rule: undefined });
    const r = validateRecordingEvent(JSON.parse(canonical));
    expect(r.ok && canonicalJson(r.event)).toBe(canonical);
  });
});
