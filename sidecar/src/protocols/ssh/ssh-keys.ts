// SSH wire encodings the gateway needs beyond what ssh2 exposes: the session's own key pair,
// authorized_keys lines, fingerprints and the few fields of an OpenSSH certificate (PROTOCOL.certkeys)
// that decide whether it can still be used. Pure functions, no I/O.
import { createHash, generateKeyPairSync, type KeyObject, randomBytes, sign } from 'node:crypto';

/** An ed25519 key pair made in this process. The private half is a KeyObject that is never exported. */
export interface SessionKeyPair {
  /** authorized_keys line `ssh-ed25519 AAAA… comment`: what the CA signs. */
  readonly publicKeyLine: string;
  readonly publicKeyBlob: Buffer;
  readonly fingerprint: string;
  /** Raw ed25519 signature (64 bytes) over data. */
  sign(data: Buffer): Buffer;
}

export function generateSessionKeyPair(comment = 'chaperone-sidecar'): SessionKeyPair {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const raw = ed25519Raw(publicKey);
  const blob = Buffer.concat([sshString('ssh-ed25519'), sshString(raw)]);
  const key: KeyObject = privateKey;
  return {
    publicKeyLine: `ssh-ed25519 ${blob.toString('base64')} ${comment.replace(/\s+/g, '_')}`,
    publicKeyBlob: blob,
    fingerprint: fingerprintOf(blob),
    sign: (data) => sign(null, data, key),
  };
}

/** An ed25519 key pair as ssh-keygen writes it (openssh-key-v1, unencrypted), for ssh2's server. */
export function generateOpenSshEd25519Key(comment: string): { privateKey: string; publicKeyLine: string } {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const pub = ed25519Raw(publicKey);
  const d = privateKey.export({ format: 'jwk' }).d;
  if (typeof d !== 'string') throw new Error('ed25519 private key without d');
  const seed = Buffer.from(d, 'base64url');
  const blob = Buffer.concat([sshString('ssh-ed25519'), sshString(pub)]);
  const check = randomBytes(4);
  let section = Buffer.concat([
    check,
    check,
    sshString('ssh-ed25519'),
    sshString(pub),
    sshString(Buffer.concat([seed, pub])),
    sshString(comment),
  ]);
  const pad = (8 - (section.length % 8)) % 8;
  section = Buffer.concat([section, Buffer.from(Array.from({ length: pad }, (_, i) => i + 1))]);
  const body = Buffer.concat([
    Buffer.from('openssh-key-v1\0', 'latin1'),
    sshString('none'),
    sshString('none'),
    sshString(Buffer.alloc(0)),
    Buffer.from([0, 0, 0, 1]),
    sshString(blob),
    sshString(section),
  ]);
  const b64 = body.toString('base64').replace(/.{1,70}/g, '$&\n');
  return {
    privateKey: `-----BEGIN OPENSSH PRIVATE KEY-----\n${b64}-----END OPENSSH PRIVATE KEY-----\n`,
    publicKeyLine: `ssh-ed25519 ${blob.toString('base64')} ${comment.replace(/\s+/g, '_')}`,
  };
}

function ed25519Raw(publicKey: KeyObject): Buffer {
  const x = publicKey.export({ format: 'jwk' }).x;
  if (typeof x !== 'string') throw new Error('ed25519 public key without x');
  return Buffer.from(x, 'base64url');
}

/** `SHA256:…` as ssh-keygen -l prints it. */
export function fingerprintOf(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

export interface AuthorizedKey {
  readonly type: string;
  readonly blob: Buffer;
}

const KEY_LINE = /^([a-z0-9][-a-z0-9@.]{2,63})[ \t]+([A-Za-z0-9+/]+={0,2})(?:[ \t].*)?$/;

/** Parses `type base64 [comment]`; the type inside the blob must match the one outside. */
export function parseAuthorizedKey(line: string): AuthorizedKey {
  const m = KEY_LINE.exec(line.trim());
  if (!m) throw new Error('expected "<type> <base64> [comment]"');
  const type = m[1] as string;
  const blob = Buffer.from(m[2] as string, 'base64');
  const inner = new SshReader(blob).string().toString('latin1');
  if (inner !== type) throw new Error(`the line says ${type} but the key inside is ${inner}`);
  return { type, blob };
}

export interface CertificateInfo {
  readonly certType: string;
  /** 1 = user, 2 = host. */
  readonly kind: number;
  readonly keyId: string;
  readonly principals: readonly string[];
  readonly validAfter: Date;
  readonly validBefore: Date;
  /** The certified (plain) public key blob, e.g. `ssh-ed25519` + 32 bytes. */
  readonly publicKeyBlob: Buffer;
  readonly signatureKeyBlob: Buffer;
}

/** Fields after the nonce that hold the public key, per base key type. */
const KEY_FIELDS: Record<string, number> = {
  'ssh-ed25519': 1,
  'ecdsa-sha2-nistp256': 2,
  'ecdsa-sha2-nistp384': 2,
  'ecdsa-sha2-nistp521': 2,
  'ssh-rsa': 2,
};

export function parseCertificate(blob: Buffer): CertificateInfo {
  const r = new SshReader(blob);
  const certType = r.string().toString('latin1');
  const base = certType.replace(/-cert-v01@openssh\.com$/, '');
  const fields = KEY_FIELDS[base];
  if (base === certType || fields === undefined) throw new Error(`${certType} is not a certificate type`);
  r.string(); // nonce
  const keyParts: Buffer[] = [sshString(base)];
  for (let i = 0; i < fields; i++) keyParts.push(sshString(r.string()));
  r.skip(8); // serial
  const kind = r.u32();
  const keyId = r.string().toString('utf8');
  const principalsReader = new SshReader(r.string());
  const principals: string[] = [];
  while (!principalsReader.done()) principals.push(principalsReader.string().toString('utf8'));
  const validAfter = r.u64();
  const validBefore = r.u64();
  r.string(); // critical options
  r.string(); // extensions
  r.string(); // reserved
  const signatureKeyBlob = r.string();
  return {
    certType,
    kind,
    keyId,
    principals,
    validAfter: toDate(validAfter),
    validBefore: toDate(validBefore),
    publicKeyBlob: Buffer.concat(keyParts),
    signatureKeyBlob,
  };
}

function toDate(seconds: bigint): Date {
  // 0xffff_ffff_ffff_ffff means "forever"; clamp to what Date can hold.
  const max = 8_640_000_000_000n;
  return new Date(Number(seconds > max ? max : seconds) * 1000);
}

export function sshString(v: string | Buffer): Buffer {
  const b = typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
  const len = Buffer.alloc(4);
  len.writeUInt32BE(b.length);
  return Buffer.concat([len, b]);
}

/** Bounds-checked reader of SSH wire types; throws on truncation. */
export class SshReader {
  private pos = 0;
  constructor(private readonly buf: Buffer) {}
  done(): boolean {
    return this.pos >= this.buf.length;
  }
  u32(): number {
    this.need(4);
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  u64(): bigint {
    this.need(8);
    const v = this.buf.readBigUInt64BE(this.pos);
    this.pos += 8;
    return v;
  }
  string(): Buffer {
    const len = this.u32();
    this.need(len);
    const v = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return v;
  }
  skip(n: number): void {
    this.need(n);
    this.pos += n;
  }
  rest(): Buffer {
    return this.buf.subarray(this.pos);
  }
  private need(n: number): void {
    if (this.pos + n > this.buf.length) throw new Error('truncated SSH data');
  }
}
