import { describe, expect, it } from 'vitest';
import { decodeCursor, encodeCursor, parseTimeParam } from './cursor.js';

describe('cursor and time parameters', () => {
  it('round-trips cursors and refuses anything else', () => {
    const c = { startMs: 1_740_823_200_000, sessionId: 'pg-x-1' };
    expect(decodeCursor(encodeCursor(c))).toEqual(c);
    for (const bad of [
      '',
      'abc',
      Buffer.from('[1]').toString('base64url'),
      Buffer.from('["1","x"]').toString('base64url'),
    ]) {
      expect(decodeCursor(bad)).toBeUndefined();
    }
  });

  it('accepts dates and zoned date-times only', () => {
    expect(parseTimeParam('2025-03-01')?.toISOString()).toBe('2025-03-01T00:00:00.000Z');
    expect(parseTimeParam('2025-03-01T10:00+02:00')?.toISOString()).toBe('2025-03-01T08:00:00.000Z');
    expect(parseTimeParam('2025-03-01T10:00:00')).toBeUndefined();
    expect(parseTimeParam('2025-13-01')).toBeUndefined();
    expect(parseTimeParam('1740823200000')).toBeUndefined();
  });
});
