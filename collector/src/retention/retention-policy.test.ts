import { describe, expect, it } from 'vitest';
import { describeRetention, parseDuration, parseRetention } from './retention-policy.js';

describe('retention policy', () => {
  it('parses durations', () => {
    expect(parseDuration('45s')).toBe(45_000);
    expect(parseDuration('30m')).toBe(1_800_000);
    expect(parseDuration('12h')).toBe(43_200_000);
    expect(parseDuration('90d')).toBe(90 * 86_400_000);
    expect(parseDuration('2w')).toBe(14 * 86_400_000);
    expect(() => parseDuration('0d')).toThrow(/must be positive/);
    expect(() => parseDuration('1y')).toThrow(/use a number and one of s, m, h, d, w/);
  });

  it('parses per-connection ages with a * default', () => {
    const p = parseRetention('orders-db=30d, billing=7d,*=90d');
    expect(p).toEqual({
      perConnection: new Map([
        ['orders-db', 30 * 86_400_000],
        ['billing', 7 * 86_400_000],
      ]),
      defaultMs: 90 * 86_400_000,
    });
    expect(describeRetention(p)).toBe('orders-db=30d,billing=7d,*=90d');
    expect(parseRetention('*=1d')).toEqual({ perConnection: new Map(), defaultMs: 86_400_000 });
    expect(() => parseRetention('orders-db')).toThrow(/expected CONNECTION=AGE/);
    expect(() => parseRetention('a=1d,a=2d')).toThrow(/given twice/);
    expect(() => parseRetention(' , ')).toThrow(/no entries/);
  });
});
