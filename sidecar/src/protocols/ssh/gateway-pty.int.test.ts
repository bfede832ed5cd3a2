import ssh2, { type ClientChannel } from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GatewayHarness, startGatewayHarness } from './gateway-test-harness.js';
import type { AsciicastFrame, SshRecordEvent } from './hooks.js';
import { parseAuthorizedKey } from './ssh-keys.js';

async function until(check: () => boolean, what: string, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** An ssh2 client as the agent: lets a test send window-change and read exit-signal directly. */
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

function frames(events: SshRecordEvent[], channel: number): AsciicastFrame[] {
  return events.flatMap((e) => (e.type === 'output' && e.channel === channel ? e.frames : []));
}

describe('SSH gateway: terminals', () => {
  let h: GatewayHarness;
  beforeAll(async () => {
    h = await startGatewayHarness();
  });
  afterAll(async () => {
    await h?.stop();
  });

  it('runs an interactive shell through `ssh -tt`: commands, Ctrl-C, exit code', async () => {
    const child = h.client.spawn('ssh', ['-tt', h.client.destination]);
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    child.stdin?.write("PS1='gw> '; echo ready-$((6*7))\n");
    await until(() => out.includes('ready-42'), 'the shell');
    child.stdin?.write('sleep 30; echo not-interrupted\n');
    await new Promise((r) => setTimeout(r, 300));
    child.stdin?.write('\x03');
    child.stdin?.write('echo after-$((1+1))\n');
    await until(() => out.includes('after-2'), 'the shell after Ctrl-C');
    expect(out).not.toMatch(/(^|\n)not-interrupted/);
    child.stdin?.write('exit 7\n');
    expect(await exited).toBe(7);
    await until(() => h.events.some((e) => e.type === 'shell' && e.exitStatus === 7), 'the shell event');
    expect(h.decisions.some((op) => op.kind === 'shell' && op.pty !== undefined)).toBe(true);
  });

  it('forwards window changes to the target and records asciicast output and resizes', async () => {
    const c = await agentClient(h);
    try {
      const ch = await new Promise<ClientChannel>((resolve, reject) =>
        c.shell({ term: 'xterm-256color', rows: 24, cols: 80 }, (err, s) => (err ? reject(err) : resolve(s))),
      );
      let out = '';
      ch.on('data', (d: Buffer) => {
        out += d.toString();
      });
      const exit = new Promise<unknown[]>((resolve) => ch.on('exit', (...a: unknown[]) => resolve(a)));
      ch.write('stty size; echo "term=$TERM"\n');
      await until(() => /24 80/.test(out) && out.includes('term=xterm-256color'), 'stty size 24 80');
      ch.setWindow(50, 132, 0, 0);
      ch.write('stty size\n');
      await until(() => /50 132/.test(out), 'stty size 50 132');
      ch.write('exit 3\n');
      expect(await exit).toEqual([3]);
      await until(() => h.events.some((e) => e.type === 'shell' && e.exitStatus === 3), 'the shell event');
      // Channel numbers are per connection and the harness shares one event list: read from the
      // last terminal's header on.
      const from = h.events.findLastIndex((e) => e.type === 'output.start');
      const start = h.events[from];
      expect(start?.type === 'output.start' && start.header).toMatchObject({
        version: 2,
        width: 80,
        height: 24,
        env: { TERM: 'xterm-256color' },
      });
      const channel = start?.type === 'output.start' ? start.channel : -1;
      const fr = frames(h.events.slice(from), channel);
      expect(fr.some(([, kind, data]) => kind === 'r' && data === '132x50')).toBe(true);
      const text = fr
        .filter(([, kind]) => kind === 'o')
        .map(([, , d]) => d)
        .join('');
      expect(text).toContain('50 132');
      const times = fr.map(([t]) => t);
      expect([...times].sort((a, b) => a - b)).toEqual(times);
    } finally {
      c.end();
    }
  });

  it('forwards exit-signal as a signal, not as a status', async () => {
    const c = await agentClient(h);
    try {
      const ch = await new Promise<ClientChannel>((resolve, reject) =>
        c.exec('kill -KILL $$', (err, s) => (err ? reject(err) : resolve(s))),
      );
      ch.resume();
      const exit = await new Promise<unknown[]>((resolve) => ch.on('exit', (...a: unknown[]) => resolve(a)));
      expect(exit[0]).toBeNull();
      expect(exit[1]).toBe('SIGKILL');
    } finally {
      c.end();
    }
  });

  it('refuses X11 and agent forwarding requests and records them', async () => {
    const c = await agentClient(h);
    try {
      const x11 = await new Promise<Error | undefined>((resolve) =>
        c.exec('true', { x11: true }, (err) => resolve(err)),
      );
      expect(x11?.message).toMatch(/X11/);
      expect(h.events.some((e) => e.type === 'refused' && e.what === 'x11-forwarding')).toBe(true);
    } finally {
      c.end();
    }
  });

  it('passes allowed environment variables and drops others', async () => {
    const c = await agentClient(h);
    try {
      const ch = await new Promise<ClientChannel>((resolve, reject) =>
        c.exec(
          'echo "lang=$LANG secret=$SECRET_TOKEN"',
          { env: { LANG: 'C.UTF-8', SECRET_TOKEN: 'x' } },
          (err, s) => (err ? reject(err) : resolve(s)),
        ),
      );
      let out = '';
      let err = '';
      ch.on('data', (d: Buffer) => {
        out += d.toString();
      });
      ch.stderr.on('data', (d: Buffer) => {
        err += d.toString();
      });
      await new Promise((resolve) => ch.on('close', resolve));
      // The test sshd accepts both (AcceptEnv); only the gateway's allow-list keeps SECRET_TOKEN out.
      expect({ out, err }).toEqual({ out: 'lang=C.UTF-8 secret=\n', err: '' });
    } finally {
      c.end();
    }
  });
});
