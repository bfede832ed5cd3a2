// A stand-in for the sidecar's shipper: plain HTTP, batches in spool order, retries with backoff
// until a batch is acknowledged, and it fails over between collector replicas.
import type { RecordingEvent } from '@chaperone/api';

export interface ShipperStats {
  acknowledged: number;
  attempts: number;
  failures: number;
  duplicatesReported: number;
}

export interface ShipperOptions {
  urls: readonly string[];
  token: string;
  events: readonly RecordingEvent[];
  batchSize: () => number;
  /** Called after each acknowledged batch (tests use it to time a crash). */
  onAck?: (count: number) => void;
  /** Pause between batches, ms. */
  pauseMs?: number;
  /** Give up after this long without an acknowledgement. */
  stallMs?: number;
}

export async function ship(opts: ShipperOptions): Promise<ShipperStats> {
  const stats: ShipperStats = { acknowledged: 0, attempts: 0, failures: 0, duplicatesReported: 0 };
  let next = 0;
  let target = 0;
  let lastAck = Date.now();
  while (next < opts.events.length) {
    const batch = opts.events.slice(next, next + opts.batchSize());
    const url = opts.urls[target % opts.urls.length]!;
    stats.attempts++;
    let ok = false;
    try {
      const res = await fetch(`${url}/v1/events`, {
        method: 'POST',
        headers: { authorization: `Bearer ${opts.token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ events: batch }),
        signal: AbortSignal.timeout(5_000),
      });
      if (res.ok) {
        const body = (await res.json()) as { stored: number; duplicates: number; conflicts: unknown[] };
        if (body.stored + body.duplicates + body.conflicts.length !== batch.length) {
          throw new Error(`acknowledgement does not cover the batch: ${JSON.stringify(body)}`);
        }
        if (body.conflicts.length) throw new Error(`unexpected conflicts: ${JSON.stringify(body.conflicts)}`);
        stats.duplicatesReported += body.duplicates;
        ok = true;
      } else if (res.status < 500) {
        throw new Error(`collector refused a valid batch: ${res.status} ${await res.text()}`);
      } else {
        await res.body?.cancel();
      }
    } catch (err) {
      if (
        err instanceof Error &&
        /refused a valid batch|acknowledgement|unexpected conflicts/.test(err.message)
      )
        throw err;
    }
    if (ok) {
      next += batch.length;
      stats.acknowledged += batch.length;
      lastAck = Date.now();
      opts.onAck?.(batch.length);
      if (opts.pauseMs) await new Promise((r) => setTimeout(r, opts.pauseMs));
    } else {
      // Unknown outcome (connection reset, 503 while shutting down): the same batch again,
      // against the next replica, after a jittered backoff.
      stats.failures++;
      target++;
      if (Date.now() - lastAck > (opts.stallMs ?? 30_000))
        throw new Error(`no acknowledgement for ${opts.stallMs ?? 30_000} ms`);
      await new Promise((r) => setTimeout(r, 20 + Math.random() * 80));
    }
  }
  return stats;
}
