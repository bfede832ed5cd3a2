import { connect } from 'node:net';
import ssh2, { type ClientChannel } from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GatewayHarness, startGatewayHarness } from './gateway-test-harness.js';
import { parseAuthorizedKey, sshString } from './ssh-keys.js';

const MB = 1024 * 1024;

/**
 * Samples this process's RSS (the gateway runs in it) while fn runs: the peak growth overall and
 * within the first `earlyMs` (e.g. while a reader stalls).
 */
async function rssGrowth<T>(
  fn: () => Promise<T>,
  earlyMs = 0,
): Promise<{ result: T; peakMb: number; earlyMb: number }> {
  const base = process.memoryUsage().rss;
  const started = Date.now();
  let peak = base;
  let early = base;
  const timer = setInterval(() => {
    const rss = process.memoryUsage().rss;
    peak = Math.max(peak, rss);
    if (Date.now() - started < earlyMs) early = Math.max(early, rss);
  }, 50);
  try {
    const result = await fn();
    return { result, peakMb: (peak - base) / MB, earlyMb: (early - base) / MB };
  } finally {
    clearInterval(timer);
  }
}

function agentClient(h: GatewayHarness): Promise<ssh2.Client> {
  const pinned = parseAuthorizedKey(h.gatewayHostKey).blob;
  return new Promise((resolve, reject) => {
    const c = new ssh2.Client();
    c.once('ready', () => resolve(c));
    c.once('error', reject);
    c.connect({
      host: h.gateway.host,
      port: h.gateway.port,
      username: 'agent',
      hostVerifier: (k: Buffer) => k.equals(pinned),
    });
  });
}

interface ProtocolInternals {
  _packetRW: { write: { allocStart: number; alloc(n: number): Buffer; finalize(p: Buffer): Buffer } };
  _cipher: { encrypt(p: Buffer): void };
}

/** Sends one raw SSH message (after key exchange) the way ssh2 sends its own. */
function sendRaw(c: ssh2.Client, payload: Buffer): void {
  const proto = (c as unknown as { _protocol: ProtocolInternals })._protocol;
  const w = proto._packetRW.write;
  const packet = w.alloc(payload.length);
  payload.copy(packet, w.allocStart);
  proto._cipher.encrypt(w.finalize(packet));
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

describe('SSH gateway: bounded memory and hostile input', () => {
  let h: GatewayHarness;
  beforeAll(async () => {
    h = await startGatewayHarness({ limits: { maxChannels: 4, maxRefusedOpens: 8, authTimeoutMs: 3000 } });
  });
  afterAll(async () => {
    await h?.stop();
  });

  it('copies 200 MB each way with the gateway memory bounded while either end stalls', async () => {
    const ssh = `ssh ${h.client.options.join(' ')} -p ${h.client.port} ${h.client.destination}`;
    // Each side stalls 8 s first. Without backpressure the fast side keeps sending and the gateway
    // holds it (measured with a pipe() replaced by plain writes: 200-280 MB; with it: under 1 MB); with it, the
    // SSH windows (2 MiB per channel and direction) bound what is in flight.
    // Warm up (module loading, JIT, first login) so it is not counted as buffering.
    await h.client.runAsClient('sh', ['-c', `head -c 20M /dev/zero | ${ssh} 'sleep 1; wc -c'`]);
    const up = await rssGrowth(
      () =>
        h.client.runAsClient('sh', ['-c', `head -c 200M /dev/zero | ${ssh} 'sleep 8; wc -c'`], {
          timeoutMs: 170_000,
        }),
      7500,
    );
    expect(up.result.stdout.trim()).toBe(String(200 * MB));
    const down = await rssGrowth(
      () =>
        h.client.runAsClient('sh', ['-c', `${ssh} 'head -c 200M /dev/zero' | (sleep 8; wc -c)`], {
          timeoutMs: 170_000,
        }),
      7500,
    );
    expect(down.result.stdout.trim()).toBe(String(200 * MB));
    // Measured in the test's own process (the gateway runs in it): a few MB alone, 16 MB once with
    // the whole suite in parallel; without backpressure it is 200 MB and more.
    expect(up.earlyMb).toBeLessThan(50);
    expect(down.earlyMb).toBeLessThan(50);
    // Overall: the windows plus garbage the GC has not returned yet from streaming 200 MB through
    // two encrypted legs in this process.
    expect(up.peakMb).toBeLessThan(150);
    expect(down.peakMb).toBeLessThan(150);
  }, 360_000);

  it('drops a connection that sends garbage instead of SSH; the gateway keeps serving', async () => {
    const started = Date.now();
    await new Promise<void>((resolve) => {
      const s = connect(h.gateway.port, '127.0.0.1');
      s.resume(); // read (and discard) the server's banner and key exchange, so its EOF is seen
      s.on('error', () => resolve());
      s.on('close', () => resolve());
      s.write('SSH-2.0-evil\r\n');
      s.write(Buffer.concat([u32(0xffff_fff0), Buffer.alloc(64, 0x41)]));
    });
    expect(Date.now() - started).toBeLessThan(5000);
    const res = await h.client.ssh([h.client.destination, 'echo still-up']);
    expect(res.stdout).toBe('still-up\n');
  });

  it('closes a connection that never logs in', async () => {
    const started = Date.now();
    await new Promise<void>((resolve) => {
      const s = connect(h.gateway.port, '127.0.0.1');
      s.resume(); // read (and discard) the server's banner and key exchange, so its EOF is seen
      s.on('error', () => resolve());
      s.on('close', () => resolve());
      s.write('SSH-2.0-slow\r\n');
    });
    expect(Date.now() - started).toBeGreaterThan(2500);
    expect(Date.now() - started).toBeLessThan(8000);
  });

  it('refuses unknown channel types and requests, and survives malformed messages', async () => {
    const c = await agentClient(h);
    const closed = new Promise<void>((resolve) => {
      c.on('close', () => resolve());
      setTimeout(resolve, 2000);
    });
    c.on('error', () => {});
    // CHANNEL_OPEN of a type nobody knows: ssh2 answers OPEN_FAILURE.
    sendRaw(
      c,
      Buffer.concat([
        Buffer.from([90]),
        sshString('chaperone-bogus@example'),
        u32(77),
        u32(32768),
        u32(32768),
      ]),
    );
    // A global request of an unknown name, wanting a reply.
    sendRaw(c, Buffer.concat([Buffer.from([80]), sshString('bogus@example'), Buffer.from([1])]));
    // A channel request for a channel that does not exist, then a truncated CHANNEL_OPEN.
    sendRaw(
      c,
      Buffer.concat([Buffer.from([98]), u32(4242), sshString('exec'), Buffer.from([1]), sshString('id')]),
    );
    sendRaw(c, Buffer.from([90, 0, 0]));
    await closed;
    const res = await h.client.ssh([h.client.destination, 'echo after-malformed']);
    expect(res.stdout).toBe('after-malformed\n');
  });

  it('a flood of channel opens ends that connection; another session keeps working', async () => {
    const bystander = await agentClient(h);
    const flooder = await agentClient(h);
    flooder.on('error', () => {});
    const flooderClosed = new Promise<void>((resolve) => flooder.on('close', () => resolve()));
    try {
      const shell = await new Promise<ClientChannel>((resolve, reject) =>
        bystander.exec('cat', (err, ch) => (err ? reject(err) : resolve(ch))),
      );
      let echoed = '';
      shell.on('data', (d: Buffer) => {
        echoed += d.toString();
      });
      const results = await Promise.all(
        Array.from(
          { length: 40 },
          () =>
            new Promise<string>((resolve) => {
              try {
                flooder.exec('sleep 5', (err) => resolve(err ? 'refused' : 'opened'));
              } catch {
                resolve('refused');
              }
            }),
        ),
      );
      expect(results.filter((r) => r === 'opened').length).toBeLessThanOrEqual(4);
      await flooderClosed;
      shell.write('bystander-ok\n');
      const deadline = Date.now() + 30_000;
      while (!echoed.includes('bystander-ok') && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 25));
      expect(echoed).toBe('bystander-ok\n');
      shell.end();
    } finally {
      bystander.end();
      flooder.end();
    }
    expect(h.events.some((e) => e.type === 'session.end' && e.reason === 'too many channel opens')).toBe(
      true,
    );
  });
});

describe('SSH gateway: hostile SFTP requests', () => {
  let h: GatewayHarness;
  beforeAll(async () => {
    h = await startGatewayHarness();
  });
  afterAll(async () => {
    await h?.stop();
  });

  /** SFTP packet: uint32 length, byte type, payload. */
  const packet = (type: number, ...fields: Buffer[]) => {
    const body = Buffer.concat([Buffer.from([type]), ...fields]);
    return Buffer.concat([u32(body.length), body]);
  };

  it('answers empty writes, unknown handles and oversized reads with errors; the process stays up', async () => {
    const c = await agentClient(h);
    try {
      const ch = await new Promise<ClientChannel>((resolve, reject) =>
        c.subsys('sftp', (err, s) => (err ? reject(err) : resolve(s))),
      );
      let inbound = Buffer.alloc(0);
      const replies: Array<{ type: number; id: number; body: Buffer }> = [];
      ch.on('data', (d: Buffer) => {
        inbound = Buffer.concat([inbound, d]);
        while (inbound.length >= 4 && inbound.length >= 4 + inbound.readUInt32BE(0)) {
          const len = inbound.readUInt32BE(0);
          const type = inbound[4] as number;
          replies.push({
            type,
            id: type === 2 ? -1 : inbound.readUInt32BE(5),
            body: inbound.subarray(9, 4 + len),
          });
          inbound = inbound.subarray(4 + len);
        }
      });
      const waitFor = async (id: number) => {
        const deadline = Date.now() + 30_000;
        while (!replies.some((r) => r.id === id)) {
          if (Date.now() > deadline) throw new Error(`no reply to request ${id}`);
          await new Promise((r) => setTimeout(r, 20));
        }
        return replies.find((r) => r.id === id) as { type: number; id: number; body: Buffer };
      };
      ch.write(packet(1, u32(3))); // INIT v3
      const path = h.client.dir.file('hostile.bin');
      // OPEN for write|creat|trunc
      ch.write(packet(3, u32(1), sshString(path), u32(0x02 | 0x08 | 0x10), u32(0)));
      const opened = await waitFor(1);
      expect(opened.type).toBe(102); // HANDLE
      const handle = opened.body.subarray(4, 4 + opened.body.readUInt32BE(0));
      ch.write(packet(6, u32(2), sshString(handle), Buffer.alloc(8), sshString(Buffer.alloc(0)))); // empty WRITE
      ch.write(packet(5, u32(3), sshString(Buffer.from('nope')), Buffer.alloc(8), u32(1))); // READ, unknown handle
      ch.write(packet(5, u32(4), sshString(handle), Buffer.alloc(8), u32(0xffff_ffff))); // READ, write handle, 4 GB
      ch.write(packet(4, u32(5), sshString(Buffer.from('nope')))); // CLOSE, unknown handle
      for (const id of [2, 3, 4, 5]) expect((await waitFor(id)).type).toBe(101); // STATUS
      const codes = [3, 4, 5].map((id) => replies.find((r) => r.id === id)?.body.readUInt32BE(0));
      expect(codes.every((code) => code !== 0)).toBe(true);
      ch.end();
    } finally {
      c.end();
    }
    const res = await h.client.ssh([h.client.destination, 'echo alive']);
    expect(res.stdout).toBe('alive\n');
  });
});
