import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GatewayHarness, startGatewayHarness } from './gateway-test-harness.js';
import type { SshRecordEvent } from './hooks.js';
import { DENIED_EXIT_STATUS } from './session-channel.js';

const commands = (events: SshRecordEvent[]) =>
  events.filter((e): e is Extract<SshRecordEvent, { type: 'command' }> => e.type === 'command');

describe('SSH gateway: exec through real ssh', () => {
  let h: GatewayHarness;
  beforeAll(async () => {
    h = await startGatewayHarness();
  });
  afterAll(async () => {
    await h?.stop();
  });

  it('keeps stdout, stderr and the exit status (exit 42) and records the command', async () => {
    h.decide = async () => ({ verdict: 'allow' });
    const res = await h.client.ssh([h.client.destination, 'echo out; echo err >&2; id -un; exit 42']);
    expect(res.stderr).toBe('err\n');
    expect(res.stdout).toBe(`out\n${h.sshd.loginUser}\n`);
    expect(res.code).toBe(42);
    const cmd = commands(h.events).find((e) => e.command.includes('exit 42'));
    expect(cmd).toMatchObject({ exitStatus: 42, pty: false, bytesErr: 4 });
    expect(cmd?.bytesOut).toBe(4 + h.sshd.loginUser.length + 1);
  });

  it('passes stdin through and EOF ends it', async () => {
    const res = await h.client.ssh([h.client.destination, 'wc -c'], { input: 'x'.repeat(1000) });
    expect(res.stdout.trim()).toBe('1000');
    expect(res.code).toBe(0);
    expect(commands(h.events).find((e) => e.command === 'wc -c')?.bytesIn).toBe(1000);
  });

  it('reports a command killed by a signal as OpenSSH does (ssh exits 255) and records the signal', async () => {
    const res = await h.client.ssh([h.client.destination, 'kill -TERM $$']);
    expect(res.code).toBe(255);
    const cmd = commands(h.events).find((e) => e.command === 'kill -TERM $$');
    expect(cmd).toMatchObject({ exitStatus: null, exitSignal: 'TERM' });
  });

  it('denies an exec before the target sees it: stderr says why, exit status 126', async () => {
    const marker = `/tmp/chaperone-denied-${process.pid}-${Date.now()}`;
    h.decide = async (op) =>
      op.kind === 'exec' && op.command.startsWith('touch')
        ? { verdict: 'deny', reason: 'rule no-writes forbids touch', rule: 'no-writes' }
        : { verdict: 'allow' };
    const res = await h.client.ssh([h.client.destination, `touch ${marker}`]);
    expect(res.code).toBe(DENIED_EXIT_STATUS);
    expect(res.stderr).toBe('chaperone: denied: rule no-writes forbids touch\n');
    const check = await h.client.ssh([
      h.client.destination,
      `test -e ${marker} && echo present || echo absent`,
    ]);
    expect(check.stdout.trim()).toBe('absent');
    expect(commands(h.events).some((e) => e.command.startsWith('touch'))).toBe(false);
  });

  it('holds an exec for approval: the notice reaches stderr at once, then the command runs', async () => {
    let release: (() => void) | undefined;
    h.decide = (op, notify) => {
      if (op.kind !== 'exec' || !op.command.includes('sudo-like'))
        return Promise.resolve({ verdict: 'allow' });
      notify('chaperone: waiting for approval: AccessRequest ar-123 (kubectl chaperone approve ar-123)');
      return new Promise((resolve) => {
        release = () => resolve({ verdict: 'allow', rule: 'approve-sudo' });
      });
    };
    const child = h.client.spawn('ssh', [h.client.destination, 'echo sudo-like ran']);
    let stderr = '';
    let stdout = '';
    child.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.stdout?.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const deadline = Date.now() + 30_000;
    while (!stderr.includes('ar-123') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(stderr).toBe(
      'chaperone: waiting for approval: AccessRequest ar-123 (kubectl chaperone approve ar-123)\n',
    );
    expect(stdout).toBe('');
    expect(release).toBeDefined();
    release?.();
    expect(await exited).toBe(0);
    expect(stdout).toBe('sudo-like ran\n');
  });

  it('a decision that fails is a denial (fail closed)', async () => {
    h.decide = async () => {
      throw new Error('broker unreachable');
    };
    const res = await h.client.ssh([h.client.destination, 'true']);
    expect(res.code).toBe(DENIED_EXIT_STATUS);
    expect(res.stderr).toContain('denied: the decision failed (broker unreachable)');
    h.decide = async () => ({ verdict: 'allow' });
  });
});
