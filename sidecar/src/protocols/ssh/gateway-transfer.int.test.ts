import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { startEchoServer } from '@chaperone/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GatewayHarness, startGatewayHarness } from './gateway-test-harness.js';

async function until(check: () => boolean, what: string, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('SSH gateway: scp, sftp and forwarding with real OpenSSH clients', () => {
  let h: GatewayHarness;
  let echo: Awaited<ReturnType<typeof startEchoServer>>;
  beforeAll(async () => {
    h = await startGatewayHarness();
    echo = await startEchoServer();
  });
  afterAll(async () => {
    await echo?.close();
    await h?.stop();
  });

  async function localFile(name: string, size: number): Promise<Buffer> {
    const data = randomBytes(size);
    await writeFile(h.client.dir.file(name), data);
    await h.client.runAsClient('chmod', ['644', h.client.dir.file(name)]);
    return data;
  }

  it.each([
    ['SFTP (the default)', [] as string[]],
    ['the legacy scp protocol (-O)', ['-O']],
  ])('copies both ways with scp over %s', async (_mode, flags) => {
    const tag = flags.length ? 'legacy' : 'sftp';
    const data = await localFile(`${tag}-src.bin`, 300_000);
    const remote = h.client.dir.file(`${tag}-remote.bin`);
    const up = await h.client.scp([
      ...flags,
      h.client.dir.file(`${tag}-src.bin`),
      `${h.client.destination}:${remote}`,
    ]);
    expect(up.stderr).toBe('');
    expect(up.code).toBe(0);
    expect((await readFile(remote)).equals(data)).toBe(true);
    const back = h.client.dir.file(`${tag}-back.bin`);
    const down = await h.client.scp([...flags, `${h.client.destination}:${remote}`, back]);
    expect(down.code).toBe(0);
    expect((await readFile(back)).equals(data)).toBe(true);
    if (flags.includes('-O')) {
      expect(h.decisions).toContainEqual({ kind: 'exec', command: `scp -t ${remote}` });
      expect(h.decisions).toContainEqual({ kind: 'exec', command: `scp -f ${remote}` });
    } else {
      expect(h.decisions).toContainEqual({ kind: 'sftp', op: 'write', path: remote });
      expect(h.decisions).toContainEqual({ kind: 'sftp', op: 'read', path: remote });
      expect(h.events).toContainEqual({
        type: 'sftp',
        channel: expect.any(Number),
        op: 'write',
        path: remote,
        bytes: 300_000,
        outcome: 'ok',
      });
      expect(h.events).toContainEqual({
        type: 'sftp',
        channel: expect.any(Number),
        op: 'read',
        path: remote,
        bytes: 300_000,
        outcome: 'ok',
      });
    }
  });

  it('runs an sftp batch (put, ls, rename, get, rm)', async () => {
    const data = await localFile('batch.bin', 5000);
    const dir = h.client.dir.path;
    const batch = [
      `put ${dir}/batch.bin ${dir}/batch-up.bin`,
      `rename ${dir}/batch-up.bin ${dir}/batch-renamed.bin`,
      `ls -1 ${dir}`,
      `get ${dir}/batch-renamed.bin ${dir}/batch-got.bin`,
      `rm ${dir}/batch-renamed.bin`,
    ].join('\n');
    await writeFile(h.client.dir.file('batch.txt'), `${batch}\n`, { mode: 0o644 });
    const res = await h.client.sftp(['-b', h.client.dir.file('batch.txt'), h.client.destination]);
    expect(res.code).toBe(0);
    expect(res.stdout).toContain('batch-renamed.bin');
    expect((await readFile(h.client.dir.file('batch-got.bin'))).equals(data)).toBe(true);
    await expect(readFile(h.client.dir.file('batch-renamed.bin'))).rejects.toThrow();
  });

  it('decides each SFTP request: a denied remove fails with the reason, the file stays, the denial is recorded', async () => {
    await localFile('keep.bin', 10);
    const path = h.client.dir.file('keep.bin');
    h.decide = async (op) =>
      op.kind === 'sftp' && op.op === 'remove'
        ? { verdict: 'deny', reason: 'removing files needs approval' }
        : { verdict: 'allow' };
    try {
      await writeFile(h.client.dir.file('rm.txt'), `rm ${path}\n`, { mode: 0o644 });
      const res = await h.client.sftp(['-b', h.client.dir.file('rm.txt'), h.client.destination]);
      expect(res.code).not.toBe(0);
      // OpenSSH's sftp prints its own text for the status code, not the server's message.
      expect(res.stderr).toContain('Permission denied');
      expect((await readFile(path)).length).toBe(10);
      expect(h.events).toContainEqual({
        type: 'sftp',
        channel: expect.any(Number),
        op: 'remove',
        path,
        outcome: 'denied',
      });
    } finally {
      h.decide = async () => ({ verdict: 'allow' });
    }
  });

  it('forwards `ssh -W` to a loopback echo server and records target and bytes', async () => {
    const res = await h.client.ssh(['-W', `127.0.0.1:${echo.port}`, h.client.destination], {
      input: 'hello through -W',
    });
    expect(res.stdout).toBe('hello through -W');
    expect(res.code).toBe(0);
    expect(h.decisions).toContainEqual(
      expect.objectContaining({ kind: 'port-forward', host: '127.0.0.1', port: echo.port }),
    );
    await until(
      () => h.events.some((e) => e.type === 'forward' && e.port === echo.port),
      'the forward event',
    );
    const fwd = h.events.find((e) => e.type === 'forward' && e.port === echo.port);
    expect(fwd).toMatchObject({ bytesIn: 16, bytesOut: 16 });
  });

  it('forwards `ssh -L`, and a denied target is refused while the session goes on', async () => {
    const listenPort = 20_000 + Math.floor(Math.random() * 20_000);
    h.decide = async (op) =>
      op.kind === 'port-forward' && op.port === 1
        ? { verdict: 'deny', reason: 'not a forward target' }
        : { verdict: 'allow' };
    const child = h.client.spawn('ssh', [
      '-N',
      '-o',
      'ExitOnForwardFailure=yes',
      '-L',
      `127.0.0.1:${listenPort}:127.0.0.1:${echo.port}`,
      '-L',
      `127.0.0.1:${listenPort + 1}:127.0.0.1:1`,
      h.client.destination,
    ]);
    try {
      const talk = (port: number) =>
        new Promise<string>((resolve) => {
          const s = connect(port, '127.0.0.1');
          let got = '';
          s.on('data', (d) => {
            got += d.toString();
            if (got === 'ping') s.end();
          });
          s.on('error', () => resolve(`error:${got}`));
          s.on('close', () => resolve(got));
          s.write('ping');
        });
      let answer = '';
      const deadline = Date.now() + 30_000;
      while (answer !== 'ping' && Date.now() < deadline) {
        answer = await talk(listenPort);
        if (answer !== 'ping') await new Promise((r) => setTimeout(r, 100));
      }
      expect(answer).toBe('ping');
      expect(await talk(listenPort + 1)).not.toBe('ping');
      expect(await talk(listenPort)).toBe('ping');
    } finally {
      child.kill('SIGTERM');
      h.decide = async () => ({ verdict: 'allow' });
    }
  });

  it('refuses remote forwarding (ssh -R) and records the refusal', async () => {
    const res = await h.client.ssh([
      '-o',
      'ExitOnForwardFailure=yes',
      '-R',
      '127.0.0.1:0:127.0.0.1:22',
      h.client.destination,
      'true',
    ]);
    expect(res.code).toBe(255);
    expect(res.stderr).toMatch(/remote port forwarding failed/i);
    await until(
      () => h.events.some((e) => e.type === 'refused' && e.what === 'remote-forwarding'),
      'refused -R',
    );
  });
});

describe('SSH gateway: SFTP bridged as a raw subsystem', () => {
  let h: GatewayHarness;
  beforeAll(async () => {
    h = await startGatewayHarness({ gateway: { sftp: 'raw' } });
  });
  afterAll(async () => {
    await h?.stop();
  });

  it('decides the subsystem as a whole: allowed copies work, a denial refuses the session', async () => {
    await writeFile(h.client.dir.file('raw.bin'), 'raw-data');
    await h.client.runAsClient('chmod', ['644', h.client.dir.file('raw.bin')]);
    const ok = await h.client.scp([
      h.client.dir.file('raw.bin'),
      `${h.client.destination}:${h.client.dir.file('raw-up.bin')}`,
    ]);
    expect(ok.code).toBe(0);
    expect(await readFile(h.client.dir.file('raw-up.bin'), 'utf8')).toBe('raw-data');
    expect(h.decisions).toContainEqual({ kind: 'subsystem', name: 'sftp' });
    expect(h.decisions.some((op) => op.kind === 'sftp')).toBe(false);
    h.decide = async (op) =>
      op.kind === 'subsystem'
        ? { verdict: 'deny', reason: 'file transfer is not allowed' }
        : { verdict: 'allow' };
    const denied = await h.client.sftp(['-b', '/dev/null', h.client.destination]);
    expect(denied.code).not.toBe(0);
  });
});
