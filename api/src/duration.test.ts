import { describe, expect, it } from 'vitest';
import { DurationError, formatDuration, parseDuration } from './duration.js';

describe('parseDuration', () => {
  it.each([
    ['0', 0],
    ['45s', 45_000],
    ['10m', 600_000],
    ['1h', 3_600_000],
    ['1h30m', 5_400_000],
    ['1h30m15s', 5_415_000],
    ['2h45m30.5s', 9_930_500],
    ['1.5h', 5_400_000],
    ['.5s', 500],
    ['1.s', 1000],
    ['250ms', 250],
    ['1500us', 1.5],
    ['1500µs', 1.5],
    ['2000000ns', 2],
    ['24h', 86_400_000],
    ['0s', 0],
    ['10s10s', 20_000],
  ])('%s → %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each([
    '',
    '10',
    '1',
    'm',
    '.s',
    '10x',
    '10 m',
    ' 10m',
    '10m ',
    '-10m',
    '+10m',
    '1d',
    '1H',
    '10mh',
    '1h-5m',
    'PT10M',
    '10m\n',
    '1e3s',
    'abc',
    '1..5s',
    `${'9'.repeat(400)}h`,
  ])('rejects %j', (text) => {
    expect(() => parseDuration(text)).toThrow(DurationError);
  });

  it('names the bad input and the expected form', () => {
    expect(() => parseDuration('ten minutes')).toThrow(
      /invalid duration "ten minutes".*such as 45s, 10m or 1h30m/,
    );
  });

  it('rejects non-strings without crashing', () => {
    expect(() => parseDuration(600 as unknown as string)).toThrow(DurationError);
    expect(() => parseDuration(undefined as unknown as string)).toThrow(DurationError);
  });
});

describe('formatDuration', () => {
  it.each([
    [600_000, '10m'],
    [5_400_000, '1h30m'],
    [45_000, '45s'],
    [1500, '1.5s'],
    [250, '250ms'],
    [86_400_000, '24h'],
    [3_661_000, '1h1m1s'],
  ])('%d → %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });
});
