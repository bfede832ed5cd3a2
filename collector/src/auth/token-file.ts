import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';

const digest = (s: string) => createHash('sha256').update(s).digest();

/**
 * A shared secret read from a file (a mounted Secret). Re-read when the file changes, checked at
 * most every `recheckMs`, so that rotating the Secret needs no restart.
 */
export class TokenFile {
  private token: Buffer;
  private mtimeMs: number;
  private checkedAt = Date.now();

  constructor(
    readonly path: string,
    private readonly recheckMs = 5_000,
  ) {
    [this.token, this.mtimeMs] = TokenFile.read(path);
  }

  private static read(path: string): [Buffer, number] {
    let text: string;
    let mtimeMs: number;
    try {
      text = readFileSync(path, 'utf8').trim();
      mtimeMs = statSync(path).mtimeMs;
    } catch (err) {
      throw new Error(`cannot read token file ${path}: ${(err as Error).message}`);
    }
    if (text.length < 16) throw new Error(`token file ${path} must hold a token of at least 16 characters`);
    return [digest(text), mtimeMs];
  }

  /** Constant-time comparison (of digests, so the lengths match too). */
  matches(candidate: string): boolean {
    this.refresh();
    return timingSafeEqual(digest(candidate), this.token);
  }

  private refresh(): void {
    const now = Date.now();
    if (now - this.checkedAt < this.recheckMs) return;
    this.checkedAt = now;
    try {
      if (statSync(this.path).mtimeMs !== this.mtimeMs)
        [this.token, this.mtimeMs] = TokenFile.read(this.path);
    } catch {
      // A half-written or briefly missing file during rotation keeps the previous token.
    }
  }
}
