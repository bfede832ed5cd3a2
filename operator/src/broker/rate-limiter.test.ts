import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RateLimiter } from './rate-limiter.js';

describe('RateLimiter', () => {
  it('allows a burst, then refuses with the seconds until the next token', () => {
    const rl = new RateLimiter({ burst: 3, perMinute: 6 }); // a token every 10 s
    for (let i = 0; i < 3; i++) expect(rl.take('pod-a/db', 0)).toEqual({ allowed: true });
    expect(rl.take('pod-a/db', 0)).toEqual({ allowed: false, retryAfterSeconds: 10 });
    expect(rl.take('pod-a/db', 4_000)).toEqual({ allowed: false, retryAfterSeconds: 6 });
    expect(rl.take('pod-a/db', 10_000)).toEqual({ allowed: true });
    expect(rl.take('pod-a/db', 10_000)).toMatchObject({ allowed: false });
  });

  it('keeps keys apart and refills only up to the burst', () => {
    const rl = new RateLimiter({ burst: 2, perMinute: 60 });
    expect(rl.take('a', 0)).toEqual({ allowed: true });
    expect(rl.take('a', 0)).toEqual({ allowed: true });
    expect(rl.take('a', 0)).toMatchObject({ allowed: false });
    expect(rl.take('b', 0)).toEqual({ allowed: true });
    // An hour idle gives back the burst, not 3,600 requests.
    const later = 3_600_000;
    expect(rl.take('a', later)).toEqual({ allowed: true });
    expect(rl.take('a', later)).toEqual({ allowed: true });
    expect(rl.take('a', later)).toMatchObject({ allowed: false });
  });

  it('never allows more than burst + rate × time, whatever the request pattern', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 10 }),
        fc.integer({ min: 1, max: 120 }),
        fc.array(fc.integer({ min: 0, max: 5_000 }), { minLength: 1, maxLength: 300 }),
        (burst, perMinute, gaps) => {
          const rl = new RateLimiter({ burst, perMinute });
          let now = 0;
          let allowed = 0;
          for (const gap of gaps) {
            now += gap;
            if (rl.take('k', now).allowed) allowed++;
          }
          expect(allowed).toBeLessThanOrEqual(Math.floor(burst + (now * perMinute) / 60_000) + 1e-9);
        },
      ),
    );
  });

  it('remembers a bounded number of keys, forgetting full buckets first', () => {
    const rl = new RateLimiter({ burst: 1, perMinute: 1 }, 3);
    rl.take('busy', 0); // empty bucket: must be kept
    for (let i = 0; i < 10; i++) rl.take(`idle-${i}`, 120_000 + i);
    expect(rl.size).toBeLessThanOrEqual(3);
    // 'busy' was refilled by then (2 min at 1/min), so forgetting it gave nothing away; a key just
    // emptied stays remembered and refused.
    rl.take('hot', 200_000);
    for (let i = 0; i < 2; i++) rl.take(`idle-x${i}`, 200_000);
    expect(rl.take('hot', 200_000)).toMatchObject({ allowed: false });
  });

  it('refuses a nonsensical limit', () => {
    expect(() => new RateLimiter({ burst: 0, perMinute: 1 })).toThrow(/burst >= 1/);
    expect(() => new RateLimiter({ burst: 1, perMinute: 0 })).toThrow(/perMinute > 0/);
  });
});
