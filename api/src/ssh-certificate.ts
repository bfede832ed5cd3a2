// OpenSSH user certificates for the sidecar's key, signed with the Connection's user CA. Pure (no
// I/O): used by the operator's broker and by the sidecar in standalone mode.
//
// The certificate is encoded here by hand (PROTOCOL.certkeys) and signed with node:crypto; sshpk is
// used only to read the CA private key (OpenSSH format as ssh-keygen writes it, or PEM) and to
// validate the subject public key. sshpk's own Certificate.create was not used because it cannot set
// extensions or the key id through its API, always writes serial 1, and signs with ssh-rsa (SHA-1)
// for RSA CAs, which OpenSSH >= 8.2 refuses by default.
//
// Policy (what every certificate carries):
// - type user; principals exactly as given; key id as given (it appears in sshd's log line);
// - valid after = now - backdate (default 60 s, for clock skew), valid before = now + ttl;
// - critical options: none (no force-command: the sidecar checks commands; no source-address: the
//   pod's address as seen by sshd is not known to the operator);
// - extensions: permit-pty (interactive shells go through the sidecar's recorder), and
//   permit-port-forwarding only when asked for (the policy allows port-forward). Never
//   permit-agent-forwarding, permit-X11-forwarding or permit-user-rc: the sidecar needs none of them
//   and each widens what a session can reach beyond what is recorded.
// - serial: 64 random bits (unique across operator replicas without coordination; usable in KRLs).
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  type KeyObject,
  randomBytes,
  sign,
} from 'node:crypto';
import sshpk from 'sshpk';

/** Why a certificate could not be signed: the input, or the CA key. Messages never carry key material. */
export class SshCertificateError extends Error {
  override readonly name = 'SshCertificateError';
  constructor(
    readonly reason: 'InvalidInput' | 'CaKeyInvalid',
    message: string,
  ) {
    super(message);
  }
}

export const MIN_SSH_TTL_MS = 1_000;
export const MAX_SSH_TTL_MS = 24 * 3600_000;
export const DEFAULT_SSH_BACKDATE_MS = 60_000;

export interface SshCertificateRequest {
  /** The user CA's private key: OpenSSH format (`ssh-keygen`), or PEM. Must not be passphrase-protected. */
  caPrivateKeyPem: string;
  /** The sidecar's public key, one authorized_keys line (`ssh-ed25519 AAAA… comment`), no options. */
  publicKey: string;
  principals: readonly string[];
  ttlMs: number;
  /** Identifies the session in sshd's logs, e.g. `chaperone:ns/pod:session`. */
  keyId: string;
  now?: Date;
  backdateMs?: number;
  /** Add permit-port-forwarding (default false). */
  permitPortForwarding?: boolean;
}

export interface IssuedSshCertificate {
  /** `ssh-ed25519-cert-v01@openssh.com AAAA… <keyId>`: write it as `<key>-cert.pub`. */
  certificate: string;
  validAfter: Date;
  expiresAt: Date;
  /** Decimal, as `ssh-keygen -L` prints it. */
  serial: string;
  principals: string[];
  /** SHA256 fingerprint of the certified key, as ssh-keygen prints it. */
  keyFingerprint: string;
  /** Safe to record. */
  description: string;
}

/** Key types we certify and the certificate type OpenSSH expects for each. */
const CERT_TYPE: Record<string, string> = {
  'ssh-ed25519': 'ssh-ed25519-cert-v01@openssh.com',
  'ecdsa-sha2-nistp256': 'ecdsa-sha2-nistp256-cert-v01@openssh.com',
  'ecdsa-sha2-nistp384': 'ecdsa-sha2-nistp384-cert-v01@openssh.com',
  'ecdsa-sha2-nistp521': 'ecdsa-sha2-nistp521-cert-v01@openssh.com',
  'ssh-rsa': 'ssh-rsa-cert-v01@openssh.com',
};
const MIN_RSA_BITS = 2048;
const SSH_CERT_TYPE_USER = 1;

export function signSshUserCertificate(req: SshCertificateRequest): IssuedSshCertificate {
  const now = req.now ?? new Date();
  const backdate = req.backdateMs ?? DEFAULT_SSH_BACKDATE_MS;
  validate(req, now, backdate);
  const subject = parseSubjectKey(req.publicKey);
  const ca = loadCa(req.caPrivateKeyPem);

  const validAfter = Math.max(0, Math.floor((now.getTime() - backdate) / 1000));
  const validBefore = Math.floor((now.getTime() + req.ttlMs) / 1000);
  const serial = randomBytes(8);
  const extensions: Array<[string, Buffer]> = [['permit-pty', Buffer.alloc(0)]];
  if (req.permitPortForwarding) extensions.push(['permit-port-forwarding', Buffer.alloc(0)]);
  // PROTOCOL.certkeys: extensions "must be lexically ordered".
  extensions.sort(([a], [b]) => (a < b ? -1 : 1));

  const certType = CERT_TYPE[subject.type]!;
  const body = Buffer.concat([
    sshString(certType),
    sshString(randomBytes(32)), // nonce
    subject.fields,
    serial,
    u32(SSH_CERT_TYPE_USER),
    sshString(req.keyId),
    sshString(Buffer.concat(req.principals.map((p) => sshString(p)))),
    u64(validAfter),
    u64(validBefore),
    sshString(Buffer.alloc(0)), // critical options: none
    sshString(
      Buffer.concat(extensions.map(([name, data]) => Buffer.concat([sshString(name), sshString(data)]))),
    ),
    sshString(Buffer.alloc(0)), // reserved
    sshString(ca.publicBlob),
  ]);
  const cert = Buffer.concat([body, sshString(ca.sign(body))]);
  const expiresAt = new Date(validBefore * 1000);
  const serialText = serial.readBigUInt64BE(0).toString();
  const keyFingerprint = `SHA256:${createHash('sha256').update(subject.blob).digest('base64').replace(/=+$/, '')}`;
  return {
    certificate: `${certType} ${cert.toString('base64')} ${req.keyId.replace(/\s+/g, '_')}`,
    validAfter: new Date(validAfter * 1000),
    expiresAt,
    serial: serialText,
    principals: [...req.principals],
    keyFingerprint,
    description: `ssh user certificate serial ${serialText} key id ${req.keyId} for ${keyFingerprint} principals ${req.principals.join(',')} valid until ${expiresAt.toISOString()}`,
  };
}

function validate(req: SshCertificateRequest, now: Date, backdate: number): void {
  const bad = (m: string) => new SshCertificateError('InvalidInput', m);
  if (!Number.isFinite(now.getTime())) throw bad('now is not a valid date');
  if (!Number.isFinite(req.ttlMs) || req.ttlMs < MIN_SSH_TTL_MS || req.ttlMs > MAX_SSH_TTL_MS) {
    throw bad(
      `ssh certificate ttl ${req.ttlMs} ms is out of range: use between 1s and 24h (the CRD allows 1m–24h)`,
    );
  }
  if (!Number.isFinite(backdate) || backdate < 0 || backdate > 3600_000) {
    throw bad('backdateMs must be between 0 and 1h');
  }
  if (req.principals.length === 0 || req.principals.length > 256) {
    throw bad(
      'principals must name 1–256 remote users: a certificate without principals is valid for any user',
    );
  }
  for (const p of req.principals) {
    if (typeof p !== 'string' || !/^[^\s,]{1,256}$/.test(p)) {
      throw bad(`principal ${JSON.stringify(p)} is not valid: no spaces or commas, 1–256 characters`);
    }
  }
  if (typeof req.keyId !== 'string' || !/^[\x20-\x7e]{1,256}$/.test(req.keyId)) {
    throw bad('keyId must be 1–256 printable ASCII characters');
  }
}

function parseSubjectKey(line: string): { type: string; blob: Buffer; fields: Buffer } {
  const bad = (m: string) => new SshCertificateError('InvalidInput', `public key: ${m}`);
  if (typeof line !== 'string' || line.length > 16_384) throw bad('expected one authorized_keys line');
  const parts = line.trim().split(/[ \t]+/);
  if (parts.length < 2 || /[\r\n]/.test(line.trim())) {
    throw bad('expected one authorized_keys line "<type> <base64> [comment]" without options');
  }
  const [type, b64] = parts as [string, string];
  if (!(type in CERT_TYPE)) {
    throw bad(
      `key type ${JSON.stringify(type)} is not certified; use ssh-ed25519 (or ecdsa-sha2-nistp*, ssh-rsa ≥ ${MIN_RSA_BITS} bits)`,
    );
  }
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) throw bad('the key is not base64');
  const blob = Buffer.from(b64, 'base64');
  let inner: string;
  let rest: Buffer;
  try {
    const r = readString(blob, 0);
    inner = r.value.toString('latin1');
    rest = blob.subarray(r.next);
  } catch {
    throw bad('the key blob is truncated');
  }
  if (inner !== type) throw bad(`the line says ${type} but the key inside is ${JSON.stringify(inner)}`);
  let key: sshpk.Key;
  try {
    key = sshpk.parseKey(`${type} ${b64}`, 'ssh');
  } catch (err) {
    throw bad(`cannot parse it (${(err as Error).message})`);
  }
  if (type === 'ssh-rsa' && key.size < MIN_RSA_BITS) throw bad(`RSA keys need at least ${MIN_RSA_BITS} bits`);
  // The certificate repeats the public key's fields verbatim after its own type and nonce.
  return { type, blob, fields: rest };
}

interface LoadedCa {
  publicBlob: Buffer;
  /** The certificate's signature field contents: string(algorithm) string(signature blob). */
  sign(data: Buffer): Buffer;
}

function loadCa(pem: string): LoadedCa {
  let key: sshpk.PrivateKey;
  try {
    key = sshpk.parsePrivateKey(pem, 'auto');
  } catch (err) {
    const encrypted = (err as Error).name === 'KeyEncryptedError';
    throw new SshCertificateError(
      'CaKeyInvalid',
      encrypted
        ? 'the SSH user CA key is passphrase-protected: store it unencrypted in the Secret (ssh-keygen -p -N "")'
        : `the SSH user CA key cannot be read (${(err as Error).name}): it must be an OpenSSH private key as ssh-keygen writes it, or PEM`,
    );
  }
  let ko: KeyObject;
  try {
    ko = createPrivateKey(key.toBuffer('pkcs8').toString());
  } catch {
    throw new SshCertificateError(
      'CaKeyInvalid',
      `the SSH user CA key of type ${key.type} cannot be used for signing`,
    );
  }
  const publicBlob = key.toPublic().toBuffer('rfc4253');
  // Sanity: the key node:crypto will sign with is the one whose public half goes into the certificate.
  const derOf = (k: KeyObject) => k.export({ format: 'der', type: 'spki' });
  let consistent = false;
  try {
    consistent = derOf(createPublicKey(ko)).equals(
      derOf(createPublicKey(key.toPublic().toBuffer('pkcs8').toString())),
    );
  } catch {
    consistent = false;
  }
  if (!consistent) {
    throw new SshCertificateError(
      'CaKeyInvalid',
      'the SSH user CA key is inconsistent (public and private halves differ)',
    );
  }
  switch (key.type) {
    case 'ed25519':
      return { publicBlob, sign: (d) => sigBlob('ssh-ed25519', sign(null, d, ko)) };
    case 'ecdsa': {
      const curve = key.curve ?? '';
      const hash = ({ nistp256: 'sha256', nistp384: 'sha384', nistp521: 'sha512' } as Record<string, string>)[
        curve
      ];
      if (!hash)
        throw new SshCertificateError('CaKeyInvalid', `unsupported ECDSA curve ${curve} for the SSH user CA`);
      return {
        publicBlob,
        sign: (d) => {
          const raw = sign(hash, d, { key: ko, dsaEncoding: 'ieee-p1363' });
          const half = raw.length / 2;
          const inner = Buffer.concat([mpint(raw.subarray(0, half)), mpint(raw.subarray(half))]);
          return sigBlob(`ecdsa-sha2-${curve}`, inner);
        },
      };
    }
    case 'rsa':
      if (key.size < MIN_RSA_BITS) {
        throw new SshCertificateError(
          'CaKeyInvalid',
          `the RSA SSH user CA key has ${key.size} bits; use ≥ ${MIN_RSA_BITS} or ed25519`,
        );
      }
      // rsa-sha2-512 (RFC 8332): OpenSSH >= 8.2 no longer accepts ssh-rsa (SHA-1) CA signatures.
      return { publicBlob, sign: (d) => sigBlob('rsa-sha2-512', sign('sha512', d, ko)) };
    default:
      throw new SshCertificateError(
        'CaKeyInvalid',
        `SSH user CA keys of type ${key.type} are not supported; use ed25519`,
      );
  }
}

function sigBlob(alg: string, sig: Buffer): Buffer {
  return Buffer.concat([sshString(alg), sshString(sig)]);
}

function sshString(v: string | Buffer): Buffer {
  const b = typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
  return Buffer.concat([u32(b.length), b]);
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

function u64(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
}

/** RFC 4251 mpint of an unsigned big-endian integer. */
function mpint(unsigned: Buffer): Buffer {
  let i = 0;
  while (i < unsigned.length && unsigned[i] === 0) i++;
  let v = unsigned.subarray(i);
  if (v.length > 0 && (v[0]! & 0x80) !== 0) v = Buffer.concat([Buffer.from([0]), v]);
  return sshString(v);
}

function readString(buf: Buffer, offset: number): { value: Buffer; next: number } {
  if (offset + 4 > buf.length) throw new Error('truncated');
  const len = buf.readUInt32BE(offset);
  if (offset + 4 + len > buf.length) throw new Error('truncated');
  return { value: buf.subarray(offset + 4, offset + 4 + len), next: offset + 4 + len };
}
