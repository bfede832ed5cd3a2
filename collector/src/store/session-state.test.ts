import { describe, expect, it } from 'vitest';
import { sessionState, silentFor } from './session-state.js';

describe('sessionState', () => {
  const now = new Date('2030-01-01T12:00:00Z');
  it.each([
    [{ ended: true, endTime: '2020-01-01T00:00:00Z' }, 'ended'],
    [{ ended: false, endTime: '2030-01-01T11:30:00Z' }, 'running'],
    [{ ended: false, endTime: '2030-01-01T10:59:59Z' }, 'abandoned'],
    [{ ended: false, endTime: 'garbage' }, 'running'],
  ] as const)('%j → %s', (s, state) => {
    expect(sessionState(s, now, 3_600_000)).toBe(state);
  });
  it('a late event makes an abandoned session running again (nothing is stored)', () => {
    expect(sessionState({ ended: false, endTime: '2030-01-01T11:59:00Z' }, now, 3_600_000)).toBe('running');
  });
  it('silentFor', () => {
    expect([30_000, 5 * 60_000, 3 * 3_600_000 + 60_000, 72 * 3_600_000].map(silentFor)).toEqual([
      '1m',
      '5m',
      '3h 1m',
      '3d',
    ]);
  });
});
