// Drives fuzz connections at a PostgreSQL endpoint (the gateway under test) while a watchdog
// session checks that well-behaved clients are still served. Counts what it sent and saw; the
// caller judges the target (process alive, file descriptors and memory back to baseline).
import { connect, type Socket } from 'node:net';
import pg from 'pg';
import { connectionScript, Rng } from './frames.js';

export interface FuzzOptions {
  host: string;
  port: number;
  seed: number;
  /** Stop once this many frames were written (or the deadline passes). */
  frames: number;
  deadlineMs: number;
  /** Fuzz connections open at once (keep below the target's connection limit). */
  concurrency?: number;
  maxFramesPerConnection?: number;
  mutationRate?: number;
  /** Longest a connection may stay open after its script, waiting for the target to close it. */
  lingerMs?: number;
  /** libpq-style settings for the watchdog session (user, database). */
  watchdog: { user: string; database: string };
  onProgress?: (report: FuzzReport) => void;
}

export interface FuzzReport {
  seed: number;
  connections: number;
  frames: number;
  bytesSent: number;
  bytesReceived: number;
  /** Connections the target closed (any reason) before we were done with them. */
  closedByTarget: number;
  /** Connections refused or reset at connect time (e.g. the target's connection limit). */
  connectErrors: number;
  /** SQLSTATEs of ErrorResponses the target sent, with counts (a protocol-native error is expected). */
  errorCodes: Record<string, number>;
  watchdog: { queries: number; failures: number; maxLatencyMs: number; lastError?: string };
  durationMs: number;
}

export async function fuzzPostgres(opts: FuzzOptions): Promise<FuzzReport> {
  const rng = new Rng(opts.seed);
  const started = Date.now();
  const report: FuzzReport = {
    seed: opts.seed,
    connections: 0,
    frames: 0,
    bytesSent: 0,
    bytesReceived: 0,
    closedByTarget: 0,
    connectErrors: 0,
    errorCodes: {},
    watchdog: { queries: 0, failures: 0, maxLatencyMs: 0 },
    durationMs: 0,
  };
  const watchdog = startWatchdog(opts, report);
  const done = () => report.frames >= opts.frames || Date.now() - started > opts.deadlineMs;
  const worker = async () => {
    while (!done()) {
      const script = connectionScript(rng, opts.maxFramesPerConnection ?? 400, opts.mutationRate ?? 0.03);
      await runConnection(opts, script, report);
      if (report.connections % 500 === 0) opts.onProgress?.({ ...report, durationMs: Date.now() - started });
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency ?? 32 }, worker));
  await watchdog.stop();
  report.durationMs = Date.now() - started;
  return report;
}

function runConnection(
  opts: FuzzOptions,
  script: ReturnType<typeof connectionScript>,
  report: FuzzReport,
): Promise<void> {
  report.connections++;
  return new Promise((resolve) => {
    const sock: Socket = connect({ host: opts.host, port: opts.port });
    let finished = false;
    let targetClosed = false;
    let connected = false;
    const inbound = new ServerMessageScanner(report);
    const finish = () => {
      if (finished) return;
      finished = true;
      clearTimeout(hardStop);
      if (!sock.destroyed) sock.destroy();
      resolve();
    };
    // Nothing may keep a fuzz connection open for long, whatever the target does.
    const hardStop = setTimeout(finish, 10_000);
    sock.on('error', () => {
      if (!connected) report.connectErrors++;
      finish();
    });
    sock.on('data', (d: Buffer) => {
      report.bytesReceived += d.length;
      inbound.push(d);
    });
    sock.on('close', () => {
      if (!finished) {
        targetClosed = true;
        report.closedByTarget++;
      }
      finish();
    });
    sock.on('connect', async () => {
      connected = true;
      for (const packet of script.startup) {
        if (targetClosed || sock.destroyed) break;
        report.bytesSent += packet.length;
        report.frames++;
        sock.write(packet);
        // An SSLRequest or GSSENCRequest is answered with one byte before anything else.
        if (packet.length === 8) await inbound.waitFor(() => finished || inbound.sawByteAnswer, 1_000);
      }
      // Pipelining into a login that is still in progress only tests the buffer: wait for it.
      await inbound.waitFor(() => finished || inbound.readyForQuery > 0 || inbound.errors > 0, 3_000);
      const perFrame = script.chunks.length
        ? (script.frames - script.startup.length) / script.chunks.length
        : 0;
      for (const chunk of script.chunks) {
        if (targetClosed || sock.destroyed) break;
        report.bytesSent += chunk.length;
        report.frames += perFrame;
        if (!sock.write(chunk)) {
          const drained = await Promise.race([
            new Promise<boolean>((r) => sock.once('drain', () => r(true))),
            new Promise<boolean>((r) => setTimeout(() => r(false), 2_000)),
          ]);
          if (!drained) break; // the target stopped reading (backpressure): fine, move on
        }
      }
      if (script.finish === 'end') sock.end();
      else if (script.finish === 'reset') sock.resetAndDestroy();
      // Give the target time to answer what it was sent: until it goes quiet or closes.
      if (!finished) await inbound.quiet(100, script.finish === 'linger' ? (opts.lingerMs ?? 2_000) : 500);
      finish();
    });
  });
}

/** Reads server messages just enough to count ErrorResponse codes; stops at anything odd. */
class ServerMessageScanner {
  private buf: Buffer = Buffer.alloc(0);
  private broken = false;
  private lastData = Date.now();
  readyForQuery = 0;
  errors = 0;
  sawByteAnswer = false;

  constructor(private readonly report: FuzzReport) {}

  push(d: Buffer): void {
    this.lastData = Date.now();
    if (this.broken) return;
    this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
    // Single-byte answers to SSLRequest / GSSENCRequest come before any message.
    if (!this.sawByteAnswer && this.readyForQuery === 0 && (this.buf[0] === 0x4e || this.buf[0] === 0x53)) {
      this.sawByteAnswer = true;
      this.buf = this.buf.subarray(1);
    }
    while (this.buf.length >= 5) {
      const len = this.buf.readInt32BE(1);
      if (len < 4 || len > 64 << 20) {
        this.broken = true;
        return;
      }
      if (this.buf.length < 1 + len) return;
      if (this.buf[0] === 0x5a) this.readyForQuery++;
      if (this.buf[0] === 0x45) {
        this.errors++;
        const body = this.buf.subarray(5, 1 + len).toString('latin1');
        const code = /(?:^|\0)C([0-9A-Z]{5})\0/.exec(body)?.[1] ?? '?????';
        this.report.errorCodes[code] = (this.report.errorCodes[code] ?? 0) + 1;
      }
      this.buf = this.buf.subarray(1 + len);
    }
  }

  async waitFor(cond: () => boolean, ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    while (!cond() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  }

  /** Resolves once nothing arrived for quietMs, or after maxMs. */
  async quiet(quietMs: number, maxMs: number): Promise<void> {
    const deadline = Date.now() + maxMs;
    while (Date.now() < deadline && Date.now() - this.lastData < quietMs) {
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

function startWatchdog(opts: FuzzOptions, report: FuzzReport): { stop(): Promise<void> } {
  let stopped = false;
  let client: pg.Client | undefined;
  const loop = (async () => {
    while (!stopped) {
      const t0 = Date.now();
      try {
        if (!client) {
          client = new pg.Client({
            host: opts.host,
            port: opts.port,
            ...opts.watchdog,
            connectionTimeoutMillis: 5_000,
          });
          client.on('error', () => {});
          await client.connect();
        }
        await Promise.race([
          client.query('SELECT 1'),
          new Promise((_, reject) => setTimeout(() => reject(new Error('SELECT 1 took over 5 s')), 5_000)),
        ]);
        report.watchdog.queries++;
        report.watchdog.maxLatencyMs = Math.max(report.watchdog.maxLatencyMs, Date.now() - t0);
      } catch (err) {
        report.watchdog.failures++;
        report.watchdog.lastError = err instanceof Error ? err.message : String(err);
        await client?.end().catch(() => {});
        client = undefined;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      await client?.end().catch(() => {});
    },
  };
}
