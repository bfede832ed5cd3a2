import { mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { TokenFile } from './token-file.js';

describe('TokenFile', () => {
  it('matches the token, follows rotation of the file, refuses short tokens', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'chaperone-token-'));
    try {
      const path = join(dir, 'token');
      await writeFile(path, 'first-token-0123456789\n');
      const t = new TokenFile(path, 0);
      expect(t.matches('first-token-0123456789')).toBe(true);
      expect(t.matches('first-token-012345678')).toBe(false);
      await writeFile(path, 'second-token-0123456789');
      await utimes(path, new Date(), new Date(Date.now() + 5_000));
      expect(t.matches('second-token-0123456789')).toBe(true);
      expect(t.matches('first-token-0123456789')).toBe(false);
      await writeFile(join(dir, 'short'), 'abc');
      expect(() => new TokenFile(join(dir, 'short'))).toThrow(/at least 16 characters/);
      expect(() => new TokenFile(join(dir, 'missing'))).toThrow(/cannot read token file/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
