import { describe, expect, it } from 'vitest';
import {
  jsonEqual,
  MAX_CONDITION_MESSAGE,
  mergePatchChanges,
  setCondition,
  statusChanged,
} from './status.js';

const T0 = new Date('2030-01-01T00:00:00.123Z');
const T1 = new Date('2030-01-01T01:00:00Z');

describe('setCondition', () => {
  it('adds a condition with lastTransitionTime now (seconds precision)', () => {
    const list = setCondition(
      undefined,
      { type: 'Ready', status: 'True', reason: 'Ok', message: 'fine' },
      T0,
    );
    expect(list).toEqual([
      {
        type: 'Ready',
        status: 'True',
        lastTransitionTime: '2030-01-01T00:00:00Z',
        reason: 'Ok',
        message: 'fine',
      },
    ]);
  });

  it('keeps lastTransitionTime when the status stays, even if reason and message change', () => {
    const a = setCondition(undefined, { type: 'Ready', status: 'False', reason: 'A', message: 'a' }, T0);
    const b = setCondition(
      a,
      { type: 'Ready', status: 'False', reason: 'B', message: 'b', observedGeneration: 4 },
      T1,
    );
    expect(b[0]).toEqual({
      type: 'Ready',
      status: 'False',
      observedGeneration: 4,
      lastTransitionTime: '2030-01-01T00:00:00Z',
      reason: 'B',
      message: 'b',
    });
  });

  it('moves lastTransitionTime when the status changes and keeps the others in place', () => {
    let list = setCondition(undefined, { type: 'Ready', status: 'False', reason: 'A', message: 'a' }, T0);
    list = setCondition(list, { type: 'Reachable', status: 'True', reason: 'R', message: 'r' }, T0);
    const next = setCondition(list, { type: 'Ready', status: 'True', reason: 'Ok', message: 'ok' }, T1);
    expect(next.map((c) => [c.type, c.lastTransitionTime])).toEqual([
      ['Ready', '2030-01-01T01:00:00Z'],
      ['Reachable', '2030-01-01T00:00:00Z'],
    ]);
    expect(list[0]?.status).toBe('False');
  });

  it('caps the message at the CRD limit', () => {
    const list = setCondition(
      undefined,
      { type: 'X', status: 'True', reason: 'R', message: 'x'.repeat(40_000) },
      T0,
    );
    expect(list[0]!.message.length).toBeLessThanOrEqual(MAX_CONDITION_MESSAGE);
    expect(list[0]!.message).toMatch(/truncated\)$/);
  });
});

describe('statusChanged / mergePatchChanges', () => {
  it.each([
    {
      name: 'identical',
      cur: { phase: 'Pending', x: [1] },
      next: { phase: 'Pending', x: [1] },
      changed: false,
    },
    {
      name: 'key order differs',
      cur: { a: 1, b: { c: 2, d: 3 } },
      next: { b: { d: 3, c: 2 }, a: 1 },
      changed: false,
    },
    {
      name: 'fields only in current are left alone',
      cur: { phase: 'Pending', decision: { verdict: 'Approved' } },
      next: { phase: 'Pending' },
      changed: false,
    },
    {
      name: 'nested fields only in current',
      cur: { appliesTo: { pods: 3, users: [] } },
      next: { appliesTo: { users: [] } },
      changed: false,
    },
    { name: 'scalar differs', cur: { phase: 'Pending' }, next: { phase: 'Expired' }, changed: true },
    { name: 'array differs (replaced whole)', cur: { list: [1, 2] }, next: { list: [1] }, changed: true },
    { name: 'no current status', cur: undefined, next: { phase: 'Expired' }, changed: true },
    { name: 'undefined values are not sent', cur: {}, next: { a: undefined }, changed: false },
  ])('$name → $changed', ({ cur, next, changed }) => {
    expect(statusChanged(cur, next)).toBe(changed);
  });

  it('null deletes', () => {
    expect(mergePatchChanges({ a: 1 }, { a: null })).toBe(true);
    expect(mergePatchChanges({}, { a: null })).toBe(false);
  });

  it('jsonEqual', () => {
    expect(jsonEqual([{ a: 1 }], [{ a: 1 }])).toBe(true);
    expect(jsonEqual([1, 2], [2, 1])).toBe(false);
    expect(jsonEqual({ a: 1 }, [1])).toBe(false);
    expect(jsonEqual(null, {})).toBe(false);
  });
});
