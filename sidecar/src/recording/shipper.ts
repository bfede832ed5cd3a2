import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '@chaperone/api';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Spool } from './spool.js';

export interface ShipperOptions {
  spool: Spool;
  spoolDir: string;
  /** Collector base URL, e.g. http://chaperone-collector:8080 */
  url: string;
  /** Bearer token for the collector (re-read for every request: projected tokens rotate). */
  token: () => Promise<string>;
  registry: Registry;
  batchLines?: number;
  batchBytes?: number;
  log: Logger;
}

const BACKOFF_BASE_MS = 200;
const BACKOFF_MAX_MS = 30_000;
const IDLE_POLL_MS = 100;

/**
 * Ships spooled events to the collector in batches, in order, at least once: the spool cursor
 * moves only after the collector acknowledged a batch (its ingest is idempotent on session+seq).
 * Network errors, 401/403 and 5xx are retried with exponential backoff and full jitter. A batch
 * the collector refuses as invalid (400/413/422) would block shipping forever: it is moved to a
 * dead-letter file in the spool folder and counted as dropped (which should stay 0).
 */
export class CollectorShipper {
  private stopping = false;
  private running?: Promise<void>;
  private wake?: () => void;
  private readonly shipped: Counter;
  private readonly retried: Counter;
  private readonly dropped: Counter;

  constructor(private readonly opts: ShipperOptions) {
    const registers = [opts.registry];
    this.shipped = new Counter({
      name: 'chaperone_sidecar_events_shipped_total',
      help: 'Events acknowledged by the collector',
      registers,
    });
    this.retried = new Counter({
      name: 'chaperone_sidecar_ship_retries_total',
      help: 'Batches retried after an error',
      registers,
    });
    this.dropped = new Counter({
      name: 'chaperone_sidecar_events_dropped_total',
      help: 'Events the collector refused as invalid (dead-lettered); must stay 0',
      registers,
    });
    new Gauge({
      name: 'chaperone_sidecar_spool_pending_bytes',
      help: 'Recorded bytes not yet acknowledged by the collector',
      registers,
      collect() {
        this.set(opts.spool.pendingBytes());
      },
    });
  }

  start(): void {
    this.running ??= this.loop();
  }

  /** New events were spooled: ship without waiting for the idle poll. */
  notify(): void {
    this.wake?.();
  }

  /** Stops after the batch in flight; `drainMs` > 0 first tries to ship what is left. */
  async stop(drainMs = 0): Promise<void> {
    const deadline = Date.now() + drainMs;
    while (drainMs > 0 && Date.now() < deadline && this.opts.spool.pendingBytes() > 0) {
      await new Promise((r) => setTimeout(r, 50));
    }
    this.stopping = true;
    this.wake?.();
    await this.running;
  }

  private async loop(): Promise<void> {
    let failures = 0;
    while (!this.stopping) {
      const batch = this.opts.spool.read(this.opts.batchLines ?? 500, this.opts.batchBytes ?? 512 * 1024);
      if (batch.lines.length === 0) {
        await this.sleep(IDLE_POLL_MS);
        continue;
      }
      const outcome = await this.send(batch.lines);
      if (outcome === 'ok' || outcome === 'rejected') {
        this.opts.spool.acknowledge(batch.next);
        failures = 0;
        continue;
      }
      failures++;
      this.retried.inc();
      // Full jitter: a fleet of sidecars does not retry in lockstep after a collector restart.
      const cap = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** Math.min(failures, 10));
      await this.sleep(Math.random() * cap);
    }
  }

  private async send(lines: string[]): Promise<'ok' | 'rejected' | 'retry'> {
    let status = 0;
    let body = '';
    try {
      const res = await fetch(`${this.opts.url.replace(/\/$/, '')}/v1/events`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${await this.opts.token()}` },
        // Lines are canonical JSON already: no re-serialization, the hash input is shipped as is.
        body: `{"events":[${lines.join(',')}]}`,
        signal: AbortSignal.timeout(15_000),
      });
      status = res.status;
      body = await res.text();
    } catch (err) {
      this.opts.log('warn', 'collector unreachable, will retry', { error: (err as Error).message });
      return 'retry';
    }
    if (status >= 200 && status < 300) {
      this.shipped.inc(lines.length);
      return 'ok';
    }
    if (status === 400 || status === 413 || status === 422) {
      appendFileSync(join(this.opts.spoolDir, 'rejected.jsonl'), `${lines.join('\n')}\n`, { mode: 0o600 });
      this.dropped.inc(lines.length);
      this.opts.log('error', 'collector refused a batch; moved to rejected.jsonl', {
        status,
        body: body.slice(0, 500),
      });
      return 'rejected';
    }
    this.opts.log('warn', 'collector error, will retry', { status, body: body.slice(0, 200) });
    return 'retry';
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        resolve();
      }
      this.wake = done;
    });
  }
}
