import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { secretScanner } from './scanner.js';

const SECRET = 'K7Q2-ZX91-PLM4';
const scan = secretScanner([SECRET]);

describe('secretScanner', () => {
  it.each([
    ['plain', `row: ${SECRET}`],
    ['case-folded', `x ${SECRET.toLowerCase()} y`],
    ['reversed', `${[...SECRET].reverse().join('')}`],
    ['separated', 'K,7,Q,2,Z,X,9,1,P,L,M,4'],
    ['separated', 'k 7 q 2 - z x 9 1 - p l m 4'],
    ['hex', `\\x${Buffer.from(SECRET).toString('hex')}`],
    ['md5', createHash('md5').update(SECRET).digest('hex')],
    ['sha256', createHash('sha256').update(SECRET).digest('hex').toUpperCase()],
  ])('finds the secret %s', (encoding, output) => {
    expect(scan(output)?.encoding).toBe(encoding);
  });

  it('finds a URL-encoded value', () => {
    const email = 'k7q2.zx91@plm4.example';
    expect(secretScanner([email])(`?to=${encodeURIComponent(email)}`)?.encoding).toBe('url');
  });

  it('finds base64 of the secret at every alignment inside longer data', () => {
    for (const prefix of ['', 'a', 'ab', 'abc', 'abcd']) {
      const b64 = Buffer.from(`${prefix}${SECRET}tail`).toString('base64');
      expect(scan(`encoded: ${b64}`)?.encoding, prefix).toMatch(/^base64@/);
    }
  });

  it('finds it in binary protocol bytes', () => {
    const frame = Buffer.concat([Buffer.from([0x44, 0, 0, 0, 30, 0, 1, 0, 0, 0, 14]), Buffer.from(SECRET)]);
    expect(scan(frame)?.encoding).toBe('plain');
  });

  it('does not fire on masked output or on other values', () => {
    for (const out of [
      '[REDACTED]',
      'K7Q2-****-****',
      '***********.com',
      'SELECT ssn FROM customers',
      'K7Q2ZX9',
    ]) {
      expect(scan(out), out).toBeUndefined();
    }
  });
});
