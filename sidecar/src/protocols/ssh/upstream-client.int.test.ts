import { startSshd, type TestSshd } from '@chaperone/testkit';
import type { Client } from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSessionKeyPair } from './ssh-keys.js';
import { connectUpstream, SshUpstreamError, type SshUpstreamTarget } from './upstream-client.js';

function execOut(
  client: Client,
  command: string,
): Promise<{ out: string; err: string; code: number | null }> {
  return new Promise((resolve, reject) => {
    client.exec(command, (err, ch) => {
      if (err) return reject(err);
      let out = '';
      let errOut = '';
      let code: number | null = null;
      ch.on('data', (d: Buffer) => {
        out += d.toString();
      });
      ch.stderr.on('data', (d: Buffer) => {
        errOut += d.toString();
      });
      ch.on('exit', (c: number | null) => {
        code = c;
      });
      ch.on('close', () => resolve({ out, err: errOut, code }));
    });
  });
}

describe('upstream SSH client with an OpenSSH user certificate', () => {
  let sshd: TestSshd;
  beforeAll(async () => {
    sshd = await startSshd();
  });
  afterAll(async () => {
    await sshd?.stop();
  });

  async function target(
    overrides: Partial<SshUpstreamTarget> = {},
    validity = '-1m:+5m',
  ): Promise<SshUpstreamTarget> {
    const keyPair = generateSessionKeyPair();
    const certificate = await sshd.signPublicKey(keyPair.publicKeyLine, { validity, identity: 'wire-test' });
    return {
      host: sshd.host,
      port: sshd.port,
      username: sshd.loginUser,
      credential: { keyPair, certificate },
      hostKeys: [sshd.hostPublicKey],
      ...overrides,
    };
  }

  it('logs in with a certificate for an in-process key and keeps stdout, stderr and exit status apart', async () => {
    const client = await connectUpstream(await target());
    try {
      const res = await execOut(client, 'id -un; echo oops >&2; exit 3');
      expect(res).toEqual({ out: `${sshd.loginUser}\n`, err: 'oops\n', code: 3 });
    } finally {
      client.end();
    }
  });

  it('refuses a host key that is not pinned, naming the key seen and where to pin it', async () => {
    const other = generateSessionKeyPair().publicKeyLine;
    const err = await connectUpstream(await target({ hostKeys: [other] })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SshUpstreamError);
    expect((err as SshUpstreamError).code).toBe('HostKeyRejected');
    expect((err as Error).message).toMatch(/presented ssh-ed25519 SHA256:[A-Za-z0-9+/]{43}/);
    expect((err as Error).message).toContain('spec.endpoint.hostKeys');
    expect((err as Error).message).toContain(sshd.hostPublicKey.split(' ')[1]);
  });

  it('fails closed when only host certificate authorities are configured', async () => {
    const err = await connectUpstream(
      await target({ hostKeys: [], hostCertificateAuthorities: [sshd.userCaPublicKey] }),
    ).catch((e: unknown) => e);
    expect((err as SshUpstreamError).code).toBe('HostKeyRejected');
    expect((err as Error).message).toContain('hostCertificateAuthorities cannot vouch');
  });

  it('refuses an expired certificate before connecting, with the expiry time', async () => {
    const err = await connectUpstream(await target({}, '-10m:-5m')).catch((e: unknown) => e);
    expect((err as SshUpstreamError).code).toBe('CertificateExpired');
    expect((err as Error).message).toMatch(/expired at \d{4}-\d\d-\d\dT/);
  });

  it('reports a certificate the server refuses (wrong principal) as an authentication failure', async () => {
    const keyPair = generateSessionKeyPair();
    const certificate = await sshd.signPublicKey(keyPair.publicKeyLine, { principals: ['nobody-here'] });
    const err = await connectUpstream({
      ...(await target()),
      username: 'nobody-here',
      credential: { keyPair, certificate },
    }).catch((e: unknown) => e);
    expect((err as SshUpstreamError).code).toBe('AuthenticationFailed');
    expect((err as Error).message).toContain('TrustedUserCAKeys');
  });

  it('reports an unreachable target', async () => {
    const err = await connectUpstream(await target({ port: 1 })).catch((e: unknown) => e);
    expect((err as SshUpstreamError).code).toBe('Unreachable');
  });
});
