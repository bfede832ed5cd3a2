import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import { describe, expect, it } from 'vitest';
import { rewriteSignatureAlgorithm } from './certificate-login.js';
import { checkHostKey } from './host-key-trust.js';
import {
  fingerprintOf,
  generateOpenSshEd25519Key,
  generateSessionKeyPair,
  parseAuthorizedKey,
  parseCertificate,
  sshString,
} from './ssh-keys.js';

describe('ssh keys', () => {
  it('writes host keys that ssh2 and ssh-keygen read, every time (ssh2 own generator fails ~1/256)', () => {
    for (let i = 0; i < 600; i++) {
      const k = generateOpenSshEd25519Key('gw');
      const parsed = ssh2.utils.parseKey(k.privateKey);
      if (parsed instanceof Error) throw parsed;
      expect(parsed.getPublicSSH().equals(parseAuthorizedKey(k.publicKeyLine).blob)).toBe(true);
    }
    const dir = mkdtempSync(join(tmpdir(), 'keys-'));
    try {
      const k = generateOpenSshEd25519Key('gw');
      writeFileSync(join(dir, 'k'), k.privateKey, { mode: 0o600 });
      expect(
        execFileSync('ssh-keygen', ['-y', '-f', join(dir, 'k')])
          .toString()
          .trim(),
      ).toBe(k.publicKeyLine);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('fingerprints like ssh-keygen -l', () => {
    const pair = generateSessionKeyPair();
    const dir = mkdtempSync(join(tmpdir(), 'keys-'));
    try {
      writeFileSync(join(dir, 'k.pub'), `${pair.publicKeyLine}\n`);
      const out = execFileSync('ssh-keygen', ['-l', '-f', join(dir, 'k.pub')]).toString();
      expect(out).toContain(pair.fingerprint);
      expect(pair.fingerprint).toBe(fingerprintOf(pair.publicKeyBlob));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reads the validity, principals and key of a certificate made by ssh-keygen; refuses truncation', () => {
    const dir = mkdtempSync(join(tmpdir(), 'keys-'));
    try {
      execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'ca')]);
      const pair = generateSessionKeyPair();
      writeFileSync(join(dir, 'u.pub'), `${pair.publicKeyLine}\n`);
      execFileSync('ssh-keygen', [
        '-q',
        '-s',
        join(dir, 'ca'),
        '-I',
        'id-1',
        '-n',
        'alice,bob',
        '-V',
        '20300101:20300102',
        join(dir, 'u.pub'),
      ]);
      const line = execFileSync('cat', [join(dir, 'u-cert.pub')])
        .toString()
        .trim();
      const blob = Buffer.from(line.split(' ')[1] as string, 'base64');
      const info = parseCertificate(blob);
      expect(info).toMatchObject({
        certType: 'ssh-ed25519-cert-v01@openssh.com',
        kind: 1,
        keyId: 'id-1',
        principals: ['alice', 'bob'],
      });
      expect(info.publicKeyBlob.equals(pair.publicKeyBlob)).toBe(true);
      expect(info.validBefore.getTime() - info.validAfter.getTime()).toBe(24 * 3600_000);
      expect(() => parseCertificate(blob.subarray(0, 120))).toThrow(/truncated/);
      expect(() => parseCertificate(pair.publicKeyBlob)).toThrow(/not a certificate/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('rewrites the signature algorithm of a signed certificate login request', () => {
    const algo = 'ssh-ed25519-cert-v01@openssh.com';
    const sig = Buffer.alloc(64, 7);
    const payload = Buffer.concat([
      Buffer.from([50]),
      sshString('u'),
      sshString('ssh-connection'),
      sshString('publickey'),
      Buffer.from([1]),
      sshString(algo),
      sshString(Buffer.from('certblob')),
      sshString(Buffer.concat([sshString(algo), sshString(sig)])),
    ]);
    const out = rewriteSignatureAlgorithm(Buffer.concat([payload, Buffer.alloc(9)]));
    expect(out.toString('latin1')).toContain(algo);
    expect(
      out
        .subarray(out.length - 4 - 11 - 4 - 64 - 4)
        .equals(sshString(Buffer.concat([sshString('ssh-ed25519'), sshString(sig)]))),
    ).toBe(true);
  });

  it('trusts only pinned host keys and names the key it saw', () => {
    const pinned = generateSessionKeyPair();
    const other = generateSessionKeyPair();
    const target = { host: 'db.example', port: 22 };
    expect(checkHostKey(pinned.publicKeyBlob, { hostKeys: [pinned.publicKeyLine] }, target)).toEqual({
      ok: true,
    });
    const bad = checkHostKey(other.publicKeyBlob, { hostKeys: [pinned.publicKeyLine, 'garbage'] }, target);
    expect(bad.ok).toBe(false);
    expect(!bad.ok && bad.message).toContain(other.fingerprint);
    expect(checkHostKey(Buffer.from([0, 0]), { hostKeys: [] }, target).ok).toBe(false);
  });
});
