import { canonicalJson } from '@chaperone/api';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { sqlSession } from '../test-support/recordings.js';
import { canonicalText } from './canonical-text.js';

describe('canonicalText', () => {
  it('equals canonicalJson for any parsed JSON, sorted or not', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        // Through JSON, as the collector receives it (this also turns -0 into 0).
        const parsed: unknown = JSON.parse(JSON.stringify(value));
        expect(canonicalText(parsed)).toBe(canonicalJson(parsed));
        const sorted: unknown = JSON.parse(canonicalJson(parsed));
        expect(canonicalText(sorted)).toBe(canonicalJson(parsed));
      }),
      { numRuns: 2_000 },
    );
  });

  it('handles the cases where insertion order and code-unit order differ', () => {
    for (const text of [
      '{"9":1,"10":2}',
      '{"b":1,"a":2}',
      '{"a":{"é":1,"z":2}}',
      '{"Z":1,"a":2}',
      '[{"b":1,"a":[{"d":1,"c":2}]}]',
    ]) {
      const parsed: unknown = JSON.parse(text);
      expect(canonicalText(parsed)).toBe(canonicalJson(parsed));
    }
    const event = sqlSession('s')[2]!;
    expect(canonicalText(JSON.parse(JSON.stringify(event)))).toBe(canonicalJson(event));
  });
});
