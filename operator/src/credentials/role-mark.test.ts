import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  formatRoleMark,
  jitRoleName,
  MAX_ROLE_NAME_BYTES,
  parseRoleMark,
  ROLE_PREFIX_PATTERN,
  type RoleMark,
  roleSuffix,
} from './role-mark.js';

const mark: RoleMark = {
  v: 1,
  connection: 'team-a/orders-db',
  pod: 'team-a/agent-7d9f8-abcde',
  podUid: '0b6c1f7e-3d7a-4c1e-9a55-5f3f1e2b9c11',
  createdAt: '2030-01-01T00:00:00.000Z',
  expiresAt: '2030-01-01T00:15:00.000Z',
};

describe('role mark', () => {
  it('round-trips through the comment text, with and without the optional fields', () => {
    expect(parseRoleMark(formatRoleMark(mark))).toEqual(mark);
    const full = { ...mark, sessionId: 's-1', disabledAt: '2030-01-01T00:20:00.000Z' };
    expect(parseRoleMark(formatRoleMark(full))).toEqual(full);
    expect(JSON.parse(formatRoleMark(mark))).toEqual({ chaperone: mark });
  });

  it('drops unknown fields when formatting, so a mark never carries anything else', () => {
    const withExtra = { ...mark, password: 'nope' } as RoleMark;
    expect(formatRoleMark(withExtra)).not.toContain('nope');
  });

  it.each([
    ['no comment', null],
    ['empty', ''],
    ['plain text', 'reporting role, do not drop'],
    ['other JSON', '{"owner":"dba"}'],
    ['array', '[{"chaperone":{}}]'],
    ['chaperone not an object', '{"chaperone":"yes"}'],
    ['other version', JSON.stringify({ chaperone: { ...mark, v: 2 } })],
    ['missing podUid', JSON.stringify({ chaperone: { ...mark, podUid: undefined } })],
    ['bad expiresAt', JSON.stringify({ chaperone: { ...mark, expiresAt: 'soon' } })],
    ['bad disabledAt', JSON.stringify({ chaperone: { ...mark, disabledAt: 42 } })],
    ['pod without namespace', JSON.stringify({ chaperone: { ...mark, pod: 'agent' } })],
    ['connection with spaces', JSON.stringify({ chaperone: { ...mark, connection: 'a b/c' } })],
    ['empty sessionId', JSON.stringify({ chaperone: { ...mark, sessionId: '' } })],
    ['truncated JSON', formatRoleMark(mark).slice(0, -2)],
    ['huge', JSON.stringify({ chaperone: mark, pad: 'x'.repeat(5000) })],
  ])('is not ours: %s', (_what, comment) => {
    expect(parseRoleMark(comment)).toBeUndefined();
  });
});

describe('jitRoleName', () => {
  it('joins prefix, a readable part of the pod name and the suffix', () => {
    expect(jitRoleName('chaperone_', 'Orders-Agent-7d9f8c6b5-xk2lp', 'abcdefgh23')).toBe(
      'chaperone_orders_agent_7d9f8c6_abcdefgh23',
    );
    expect(jitRoleName('jit', 'agent', 'abcdefgh23')).toBe('jit_agent_abcdefgh23');
    expect(jitRoleName('chaperone_', '---', 'abcdefgh23')).toBe('chaperone_abcdefgh23');
  });

  it('refuses prefixes that are not plain lower-case identifiers', () => {
    expect(() => jitRoleName('Chaperone', 'p', 'abcdefgh23')).toThrow(/usernamePrefix/);
    expect(() => jitRoleName('1x', 'p', 'abcdefgh23')).toThrow(/usernamePrefix/);
    expect(() => jitRoleName('a"; drop role x; --', 'p', 'abcdefgh23')).toThrow(/usernamePrefix/);
    expect(() => jitRoleName('a'.repeat(33), 'p', 'abcdefgh23')).toThrow(/usernamePrefix/);
  });

  it('always yields a valid identifier of at most 63 bytes that starts with the prefix', () => {
    fc.assert(
      fc.property(
        fc.stringMatching(/^[a-z_][a-z0-9_]{0,31}$/),
        fc.string({ maxLength: 300 }),
        fc.uint8Array({ minLength: 10, maxLength: 10 }),
        (prefix, podName, random) => {
          const name = jitRoleName(prefix, podName, roleSuffix(random));
          expect(name.startsWith(prefix)).toBe(true);
          expect(ROLE_PREFIX_PATTERN.test(name)).toBe(true);
          expect(Buffer.byteLength(name)).toBeLessThanOrEqual(MAX_ROLE_NAME_BYTES);
          expect(name.endsWith(roleSuffix(random))).toBe(true);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('roleSuffix spreads over its alphabet and needs enough bytes', () => {
    expect(roleSuffix(new Uint8Array(10))).toBe('aaaaaaaaaa');
    expect(roleSuffix(Uint8Array.from([0, 1, 25, 26, 31, 32, 255, 7, 8, 9]))).toBe('abz27a7hij');
    expect(() => roleSuffix(new Uint8Array(3))).toThrow(/random bytes/);
  });
});
