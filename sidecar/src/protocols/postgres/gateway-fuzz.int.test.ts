import { connect, type Socket } from 'node:net';
import {
  type FuzzTarget,
  runFuzzCampaign,
  seedFuzzDatabase,
  startFuzzTarget,
  startPostgres,
  type TestPostgres,
} from '@chaperone/testkit';
import pg from 'pg';
import { serialize } from 'pg-protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// The gateway as its own process (the built CLI) under hostile clients: a short run of the protocol
// fuzzer (`make fuzz` runs a million frames), and the defects a fuzzer found, each as a regression.

describe('protocol fuzzing', () => {
  it('survives 40,000 fuzzed frames: no crash, no hang, descriptors and memory back to baseline', async () => {
    const seed = 20261206;
    const result = await runFuzzCampaign({ frames: 40_000, seed, deadlineMs: 90_000, concurrency: 16 });
    expect(result.problems, `seed ${seed}; sidecar log tail:\n${result.stderrTail}`).toEqual([]);
    expect(Math.round(result.report.frames)).toBeGreaterThanOrEqual(40_000);
    // The fuzzer got past login and provoked protocol-native errors, not just refused connections.
    expect(result.report.errorCodes['08P01'] ?? 0).toBeGreaterThan(0);
    expect(result.report.watchdog.queries).toBeGreaterThan(0);
  }, 180_000);
});

describe('what the fuzzer found', () => {
  let db: TestPostgres;
  let target: FuzzTarget;

  beforeAll(async () => {
    db = await startPostgres();
    await seedFuzzDatabase(db);
    target = await startFuzzTarget(db);
  });
  afterAll(async () => {
    await target?.stop();
    await db?.stop();
  });

  const open = (): Promise<Socket> =>
    new Promise((resolve, reject) => {
      const s = connect(target.port, '127.0.0.1', () => resolve(s));
      s.on('error', reject);
    });

  /** Reads until the peer closes; resolves with what it sent. */
  const untilClosed = (s: Socket, ms = 10_000): Promise<{ data: Buffer; closed: boolean }> =>
    new Promise((resolve) => {
      const got: Buffer[] = [];
      const timer = setTimeout(() => resolve({ data: Buffer.concat(got), closed: false }), ms);
      s.on('data', (d) => got.push(d));
      s.on('close', () => {
        clearTimeout(timer);
        resolve({ data: Buffer.concat(got), closed: true });
      });
    });

  async function settledFds(max: number): Promise<number> {
    for (let i = 0; i < 80 && target.fds() > max; i++) await new Promise((r) => setTimeout(r, 250));
    return target.fds();
  }

  async function healthyQuery(): Promise<unknown> {
    const c = new pg.Client({ host: '127.0.0.1', port: target.port, user: 'agent', database: 'orders' });
    await c.connect();
    try {
      return (await c.query('SELECT 1 AS one')).rows;
    } finally {
      await c.end();
    }
  }

  it('releases a session that was paused for backpressure when its client is refused (slot leak)', async () => {
    expect(await healthyQuery()).toEqual([{ one: 1 }]);
    const baseline = target.fds();
    // Log in, then in one write: 4 MiB of CopyData outside COPY, a frame of unknown type, 1 MiB
    // more. The gateway refuses with 08P01; before the fix the paused socket was never read again
    // and its slot, descriptor and buffers stayed, until every login got 53300.
    const copyData = (n: number) => {
      const b = Buffer.alloc(5 + n, 0x61);
      b[0] = 0x64;
      b.writeInt32BE(4 + n, 1);
      return b;
    };
    const unknown = Buffer.from([0x7e, 0, 0, 0, 4]);
    const hostile = async () => {
      const s = await open();
      s.on('error', () => {});
      s.write(serialize.startup({ user: 'agent', database: 'orders' }));
      s.write(Buffer.concat([copyData(4 << 20), unknown, copyData(1 << 20)]));
      const { data } = await untilClosed(s);
      s.destroy();
      return data.toString('latin1');
    };
    for (let round = 0; round < 30; round++) {
      const answers = await Promise.all(Array.from({ length: 10 }, hostile));
      for (const a of answers) expect(a).not.toContain('53300');
    }
    expect(target.alive()).toBe(true);
    expect(await settledFds(baseline + 2)).toBeLessThanOrEqual(baseline + 2);
    expect(await healthyQuery()).toEqual([{ one: 1 }]);
  }, 180_000);

  it('survives a reset from a client it refuses at the connection limit, and times idle sockets out', async () => {
    const baseline = target.fds();
    const idle: Socket[] = [];
    const closedByGateway: Promise<unknown>[] = [];
    for (let i = 0; i < 256; i++) {
      const s = await open();
      s.on('error', () => {});
      closedByGateway.push(untilClosed(s, 30_000));
      idle.push(s);
    }
    // Connection 257 is refused; it writes and resets at once. Before the fix the refusal's socket
    // had no error listener and the ECONNRESET ended the process.
    for (let i = 0; i < 5; i++) {
      const extra = await open();
      extra.on('error', () => {});
      extra.write(Buffer.alloc(100, 1));
      extra.resetAndDestroy();
    }
    await new Promise((r) => setTimeout(r, 500));
    expect(target.alive()).toBe(true);
    // No startup packet within the startup timeout: the gateway closes them and frees the slots.
    const results = (await Promise.all(closedByGateway)) as { closed: boolean; data: Buffer }[];
    expect(results.filter((r) => r.closed)).toHaveLength(256);
    expect(results.every((r) => r.data.length === 0)).toBe(true);
    for (const s of idle) s.destroy();
    expect(await settledFds(baseline + 2)).toBeLessThanOrEqual(baseline + 2);
    expect(await healthyQuery()).toEqual([{ one: 1 }]);
  }, 60_000);

  it('refuses a second SSLRequest as PostgreSQL does, and says nothing to a malformed startup', async () => {
    const ssl = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]);
    const s = await open();
    s.write(ssl);
    s.write(ssl);
    const twice = await untilClosed(s);
    expect(twice.data[0]).toBe(0x4e); // 'N' to the first
    expect(twice.data.subarray(1).toString('latin1')).toMatch(
      /0A000.*unsupported frontend protocol 1234\.5679/s,
    );
    // A Terminate before any startup packet, or a bad length: closed without a message.
    for (const bytes of [Buffer.from([0x58, 0, 0, 0, 4]), Buffer.from([0, 0, 0, 2, 1, 2, 3, 4])]) {
      const t = await open();
      t.write(bytes);
      const r = await untilClosed(t);
      expect(r.closed).toBe(true);
      expect(r.data.length).toBe(0);
    }
  });
});
