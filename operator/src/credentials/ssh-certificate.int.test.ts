// Certificates from signSshUserCertificate against a REAL OpenSSH sshd that trusts the harness's user
// CA: what we sign logs in, and everything that should not, does not.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run, runOk, sshClientArgs, startSshd, type TestSshd } from '@chaperone/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CredentialError } from './credential-error.js';
import { type SshCertificateRequest, signSshUserCertificate } from './ssh-certificate.js';

let sshd: TestSshd;
let caPem: string;

beforeAll(async () => {
  sshd = await startSshd();
  caPem = await readFile(sshd.userCaKeyPath, 'utf8');
});
afterAll(async () => {
  await sshd?.stop();
});

let n = 0;
async function newKey(): Promise<{ path: string; pub: string }> {
  const path = await sshd.newUserKey(`agent-${++n}`);
  return { path, pub: (await readFile(`${path}.pub`, 'utf8')).trim() };
}

function sign(pub: string, over: Partial<SshCertificateRequest> = {}) {
  return signSshUserCertificate({
    caPrivateKeyPem: caPem,
    publicKey: pub,
    principals: [sshd.loginUser],
    ttlMs: 5 * 60_000,
    keyId: `chaperone:test/agent:${n}`,
    ...over,
  });
}

/** ssh with this key and this certificate file; extra options go before the destination. */
async function ssh(keyPath: string, certPath: string, command: string, extra: string[] = []) {
  const args = sshClientArgs(sshd, keyPath);
  const dest = args.pop()!;
  return run('ssh', [...args, '-o', `CertificateFile=${certPath}`, ...extra, dest, command]);
}

async function writeCert(keyPath: string, certificate: string): Promise<string> {
  const path = `${keyPath}-cert.pub`;
  await writeFile(path, `${certificate}\n`);
  return path;
}

describe('signSshUserCertificate with a real sshd', () => {
  it('logs in with a certificate signed by the trusted CA; ssh-keygen and sshd read back our policy', async () => {
    const key = await newKey();
    const issued = sign(key.pub);
    const cert = await writeCert(key.path, issued.certificate);

    const res = await ssh(key.path, cert, 'id -un');
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(res.stdout.trim()).toBe(sshd.loginUser);

    const info = await runOk('ssh-keygen', ['-L', '-f', cert]);
    expect(info).toContain('Type: ssh-ed25519-cert-v01@openssh.com user certificate');
    expect(info).toContain(`Key ID: "chaperone:test/agent:${n}"`);
    expect(info).toContain(`Serial: ${issued.serial}`);
    expect(info).toMatch(/Critical Options: \(none\)/);
    const extensions = info.split('Extensions:')[1]!.trim().split(/\s+/);
    expect(extensions).toEqual(['permit-pty']);
    const caFingerprint = (await runOk('ssh-keygen', ['-l', '-f', `${sshd.userCaKeyPath}.pub`])).split(
      ' ',
    )[1];
    expect(info).toContain(`Signing CA: ED25519 ${caFingerprint}`);
    expect(info).toContain(`Public key: ED25519-CERT ${issued.keyFingerprint}`);

    // sshd logs which certificate logged in (key id and serial): the audit trail on the target side.
    const log = await readFile(join(sshd.workDir, 'sshd.log'), 'utf8');
    expect(log).toContain(`ID chaperone:test/agent:${n} (serial ${issued.serial})`);
  });

  it('allows a pty (permit-pty)', async () => {
    const key = await newKey();
    const cert = await writeCert(key.path, sign(key.pub).certificate);
    const res = await ssh(key.path, cert, 'tty', ['-tt']);
    expect(res.code).toBe(0);
    expect(res.stdout.trim()).toMatch(/^\/dev\/pts\/\d+$/);
  });

  it('permits port forwarding only when the certificate says so', async () => {
    const forward = ['-o', 'ExitOnForwardFailure=yes', '-R', `0:127.0.0.1:${sshd.port}`];
    const key = await newKey();
    const plain = await writeCert(key.path, sign(key.pub).certificate);
    const refused = await ssh(key.path, plain, 'true', forward);
    expect(refused.code).toBe(255);
    expect(refused.stderr).toMatch(/remote port forwarding failed/i);

    const allowed = await writeCert(key.path, sign(key.pub, { permitPortForwarding: true }).certificate);
    const ok = await ssh(key.path, allowed, 'true', forward);
    expect(ok.code).toBe(0);
  });

  it('refuses a certificate for another principal', async () => {
    const key = await newKey();
    const cert = await writeCert(key.path, sign(key.pub, { principals: ['somebody-else'] }).certificate);
    const res = await ssh(key.path, cert, 'true');
    expect(res.code).toBe(255);
    expect(res.stderr).toContain('Permission denied');
  });

  it('refuses an expired certificate and one not yet valid', async () => {
    const key = await newKey();
    const expired = sign(key.pub, { now: new Date(Date.now() - 3600_000) });
    expect(expired.expiresAt.getTime()).toBeLessThan(Date.now());
    const res = await ssh(key.path, await writeCert(key.path, expired.certificate), 'true');
    expect(res.code).toBe(255);
    expect(res.stderr).toContain('Permission denied');

    const future = sign(key.pub, { now: new Date(Date.now() + 3600_000) });
    const res2 = await ssh(key.path, await writeCert(key.path, future.certificate), 'true');
    expect(res2.code).toBe(255);
    expect(res2.stderr).toContain('Permission denied');
  });

  it('refuses a certificate presented with a key it was not issued for', async () => {
    const a = await newKey();
    const b = await newKey();
    const certForA = sign(a.pub).certificate;
    const res = await ssh(b.path, await writeCert(b.path, certForA), 'true');
    expect(res.code).toBe(255);
    expect(res.stderr).toContain('Permission denied');
  });

  it('refuses a certificate from a CA the server does not trust', async () => {
    const key = await newKey();
    const rogueCa = await sshd.newUserKey('rogue-ca');
    const cert = sign(key.pub, { caPrivateKeyPem: await readFile(rogueCa, 'utf8') }).certificate;
    const res = await ssh(key.path, await writeCert(key.path, cert), 'true');
    expect(res.code).toBe(255);
    expect(res.stderr).toContain('Permission denied');
  });

  it('a passphrase-protected CA key: CaKeyInvalid with what to do', async () => {
    const path = join(sshd.workDir, 'encrypted-ca');
    await runOk('ssh-keygen', ['-q', '-t', 'ed25519', '-N', 'a passphrase', '-f', path]);
    const key = await newKey();
    let err: unknown;
    try {
      sign(key.pub, { caPrivateKeyPem: await readFile(path, 'utf8') });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CredentialError);
    expect((err as CredentialError).reason).toBe('CaKeyInvalid');
    expect((err as Error).message).toMatch(/passphrase-protected.*ssh-keygen -p/);
  });
});
