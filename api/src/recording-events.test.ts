import { describe, expect, it } from 'vitest';
import { canonicalJson } from './recording-events.js';

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
