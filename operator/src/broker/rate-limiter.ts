/**
 * Token buckets keyed by who asks for what (a pod's uid and a Connection). Every credential the
 * broker issues is a new database role, certificate or token, and every AccessRequest a new object
 * in etcd: a sidecar gone wrong, or a stolen pod token, must not be able to mint them without bound.
 * Pure: the caller passes the time. Per replica: with N replicas behind the Service a pod gets at
 * most N times the rate.
 */
export interface RateLimit {
  /** Requests allowed at once (the bucket's size). */
  burst: number;
  /** Sustained rate the bucket refills at. */
  perMinute: number;
}

export type RateDecision = { allowed: true } | { allowed: false; retryAfterSeconds: number };

interface Bucket {
  tokens: number;
  atMs: number;
}

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    readonly limit: RateLimit,
    /** Bound on remembered keys: full buckets are forgotten first, then the least recently used. */
    private readonly maxKeys = 10_000,
  ) {
    if (!(limit.burst >= 1) || !(limit.perMinute > 0)) {
      throw new Error(`a rate limit needs burst >= 1 and perMinute > 0, got ${JSON.stringify(limit)}`);
    }
  }

  take(key: string, nowMs: number): RateDecision {
    const perMs = this.limit.perMinute / 60_000;
    const known = this.buckets.get(key);
    const tokens = known
      ? Math.min(this.limit.burst, known.tokens + Math.max(0, nowMs - known.atMs) * perMs)
      : this.limit.burst;
    // Re-insert so that Map order is least recently used first.
    this.buckets.delete(key);
    if (tokens < 1) {
      this.buckets.set(key, { tokens, atMs: nowMs });
      return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil((1 - tokens) / perMs / 1000)) };
    }
    this.buckets.set(key, { tokens: tokens - 1, atMs: nowMs });
    this.evict(nowMs);
    return { allowed: true };
  }

  get size(): number {
    return this.buckets.size;
  }

  private evict(nowMs: number): void {
    if (this.buckets.size <= this.maxKeys) return;
    const perMs = this.limit.perMinute / 60_000;
    for (const [key, b] of this.buckets) {
      if (b.tokens + (nowMs - b.atMs) * perMs >= this.limit.burst) this.buckets.delete(key);
    }
    for (const key of this.buckets.keys()) {
      if (this.buckets.size <= this.maxKeys) break;
      this.buckets.delete(key);
    }
  }
}
