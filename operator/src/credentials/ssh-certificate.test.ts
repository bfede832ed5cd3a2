import { generateKeyPairSync } from 'node:crypto';
import sshpk from 'sshpk';
import { describe, expect, it } from 'vitest';
import { CredentialError } from './credential-error.js';
import { signSshUserCertificate } from './ssh-certificate.js';

const NOW = new Date('2030-01-01T00:00:00.000Z');

function rsaKey(bits: number): sshpk.PrivateKey {
  const pem = generateKeyPairSync('rsa', { modulusLength: bits }).privateKey.export({
    format: 'pem',
    type: 'pkcs1',
  });
  return sshpk.parsePrivateKey(pem as string, 'pem');
}

const edCa = sshpk.generatePrivateKey('ed25519');
const subject = sshpk.generatePrivateKey('ed25519');
const base = () => ({
  caPrivateKeyPem: edCa.toString('ssh-private'),
  publicKey: `${subject.toPublic().toString('ssh')} agent@pod`,
  principals: ['deploy', 'ops'],
  ttlMs: 5 * 60_000,
  keyId: 'chaperone:team-a/agent-1:sess-1',
  now: NOW,
});

/** The raw fields of a certificate blob (PROTOCOL.certkeys), read independently of the encoder. */
function fields(line: string) {
  const buf = Buffer.from(line.split(' ')[1]!, 'base64');
  let o = 0;
  const str = () => {
    const n = buf.readUInt32BE(o);
    const v = buf.subarray(o + 4, o + 4 + n);
    o += 4 + n;
    return v;
  };
  const list = (b: Buffer) => {
    const out: string[] = [];
    for (let i = 0; i < b.length; ) {
      const n = b.readUInt32BE(i);
      out.push(b.subarray(i + 4, i + 4 + n).toString());
      i += 4 + n;
    }
    return out;
  };
  const type = str().toString();
  const nonce = str();
  const pk = str(); // ed25519 subjects: one string
  const serial = buf.readBigUInt64BE(o);
  o += 8;
  const certType = buf.readUInt32BE(o);
  o += 4;
  const keyId = str().toString();
  const principals = list(str());
  const after = Number(buf.readBigUInt64BE(o));
  const before = Number(buf.readBigUInt64BE(o + 8));
  o += 16;
  const critical = str();
  const extensions = list(str()).filter((_, i) => i % 2 === 0);
  return { type, nonce, pk, serial, certType, keyId, principals, after, before, critical, extensions };
}

describe('signSshUserCertificate', () => {
  it('issues a user certificate that sshpk verifies against the CA, with our policy', () => {
    const r = signSshUserCertificate(base());
    const cert = sshpk.parseCertificate(r.certificate, 'openssh');
    expect(cert.isSignedByKey(edCa.toPublic())).toBe(true);
    expect(cert.isSignedByKey(sshpk.generatePrivateKey('ed25519').toPublic())).toBe(false);
    expect(cert.subjectKey.fingerprint('sha256').toString()).toBe(subject.fingerprint('sha256').toString());
    expect(r.keyFingerprint).toBe(subject.fingerprint('sha256').toString());

    const f = fields(r.certificate);
    expect(f.type).toBe('ssh-ed25519-cert-v01@openssh.com');
    expect(f.certType).toBe(1); // user
    expect(f.nonce).toHaveLength(32);
    // An ed25519 public key blob ends with the 32 raw key bytes, which the certificate repeats.
    const blob = Buffer.from(subject.toPublic().toString('ssh').split(' ')[1]!, 'base64');
    expect(f.pk.equals(blob.subarray(-32))).toBe(true);
    expect(f.keyId).toBe('chaperone:team-a/agent-1:sess-1');
    expect(f.principals).toEqual(['deploy', 'ops']);
    expect(f.after).toBe(NOW.getTime() / 1000 - 60);
    expect(f.before).toBe(NOW.getTime() / 1000 + 300);
    expect(f.critical).toHaveLength(0);
    expect(f.extensions).toEqual(['permit-pty']);
    expect(r.serial).toBe(f.serial.toString());
    expect(r.expiresAt.toISOString()).toBe('2030-01-01T00:05:00.000Z');
    expect(r.validAfter.toISOString()).toBe('2029-12-31T23:59:00.000Z');
    expect(r.certificate.split(' ')[2]).toBe('chaperone:team-a/agent-1:sess-1');
  });

  it('adds permit-port-forwarding only on request, keeping extensions in lexical order', () => {
    const f = fields(signSshUserCertificate({ ...base(), permitPortForwarding: true }).certificate);
    expect(f.extensions).toEqual(['permit-port-forwarding', 'permit-pty']);
  });

  it('uses a fresh random serial and nonce per certificate', () => {
    const a = fields(signSshUserCertificate(base()).certificate);
    const b = fields(signSshUserCertificate(base()).certificate);
    expect(a.serial).not.toBe(b.serial);
    expect(a.nonce.equals(b.nonce)).toBe(false);
  });

  it.each([
    ['ecdsa nistp256', () => sshpk.generatePrivateKey('ecdsa', { curve: 'nistp256' })],
    ['ecdsa nistp384', () => sshpk.generatePrivateKey('ecdsa', { curve: 'nistp384' })],
    ['ecdsa nistp521', () => sshpk.generatePrivateKey('ecdsa', { curve: 'nistp521' })],
    ['rsa 2048', () => rsaKey(2048)],
  ])('signs with a %s CA', (_name, make) => {
    const ca = make();
    const r = signSshUserCertificate({ ...base(), caPrivateKeyPem: ca.toString('ssh-private') });
    expect(sshpk.parseCertificate(r.certificate, 'openssh').isSignedByKey(ca.toPublic())).toBe(true);
  });

  it('signs RSA CAs with rsa-sha2-512, never SHA-1 ssh-rsa', () => {
    const r = signSshUserCertificate({ ...base(), caPrivateKeyPem: rsaKey(2048).toString('ssh-private') });
    const blob = Buffer.from(r.certificate.split(' ')[1]!, 'base64');
    expect(blob.includes(Buffer.from('rsa-sha2-512'))).toBe(true);
  });

  it('certifies ecdsa and rsa subject keys too', () => {
    for (const key of [sshpk.generatePrivateKey('ecdsa', { curve: 'nistp256' }), rsaKey(2048)]) {
      const r = signSshUserCertificate({ ...base(), publicKey: key.toPublic().toString('ssh') });
      const cert = sshpk.parseCertificate(r.certificate, 'openssh');
      expect(cert.isSignedByKey(edCa.toPublic())).toBe(true);
      expect(cert.subjectKey.fingerprint('sha256').toString()).toBe(key.fingerprint('sha256').toString());
    }
  });

  const invalid = (over: Record<string, unknown>, pattern: RegExp, reason = 'InvalidInput') => {
    let caught: unknown;
    try {
      signSshUserCertificate({ ...base(), ...over } as Parameters<typeof signSshUserCertificate>[0]);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(CredentialError);
    expect((caught as CredentialError).reason).toBe(reason);
    expect((caught as Error).message).toMatch(pattern);
  };

  it('refuses unusable input with errors that say what to fix', () => {
    invalid({ principals: [] }, /principals/);
    invalid({ principals: ['a,b'] }, /principal "a,b"/);
    invalid({ principals: ['has space'] }, /principal/);
    invalid({ ttlMs: 0 }, /ttl/);
    invalid({ ttlMs: 25 * 3600_000 }, /ttl/);
    invalid({ keyId: 'line\nbreak' }, /keyId/);
    invalid({ publicKey: 'ssh-dss AAAAB3NzaC1kc3MAAACBAP== x' }, /ssh-dss/);
    invalid({ publicKey: 'garbage' }, /authorized_keys line/);
    invalid({ publicKey: 'ssh-ed25519 !!!notbase64' }, /not base64/);
    invalid(
      { publicKey: `ssh-ed25519 ${rsaKey(2048).toPublic().toString('ssh').split(' ')[1]}` },
      /inside is "ssh-rsa"/,
    );
    invalid({ publicKey: rsaKey(1024).toPublic().toString('ssh') }, /2048 bits/);
    invalid({ publicKey: `from="10.0.0.1" ${subject.toPublic().toString('ssh')}` }, /not certified/);
    invalid({ caPrivateKeyPem: 'not a key' }, /cannot be read/, 'CaKeyInvalid');
  });

  it('never puts the CA private key in an error message', () => {
    const pem = edCa.toString('ssh-private');
    // Cut the key short: sshpk fails to parse it, and its error would quote the key material.
    const lines = pem.trim().split('\n');
    const broken = [...lines.slice(0, 3), lines.at(-1)].join('\n');
    let message = '';
    try {
      signSshUserCertificate({ ...base(), caPrivateKeyPem: broken });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/cannot be read/);
    for (const line of lines.slice(1, -1)) expect(message).not.toContain(line);
  });
});
