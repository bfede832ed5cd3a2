import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';

// SCRAM-SHA-256 client (RFC 5802 / RFC 7677) as PostgreSQL speaks it: the user name in the
// client-first message is ignored by the server (it uses the startup user), and we do not offer
// channel binding ('n,,'), so TLS to the server is verified by certificate, not by SCRAM.

export class ScramError extends Error {}

export interface ScramSession {
  clientFirstMessage: string;
  /** Computes the client-final message from the server-first message. */
  clientFinal(serverFirst: string): string;
  /** Checks the server's signature (mutual authentication). Throws when it does not match. */
  verifyServerFinal(serverFinal: string): void;
}

function parseAttrs(msg: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of msg.split(',')) {
    const eq = part.indexOf('=');
    if (eq === 1) out.set(part[0] as string, part.slice(2));
  }
  return out;
}

const hmac = (key: Buffer, data: string) => createHmac('sha256', key).update(data).digest();

// SASLprep is a no-op for ASCII passwords; PostgreSQL falls back to the raw bytes when it fails.
export function startScram(password: string): ScramSession {
  const clientNonce = randomBytes(18).toString('base64');
  const clientFirstBare = `n=*,r=${clientNonce}`;
  let serverSignature: Buffer | undefined;
  return {
    clientFirstMessage: `n,,${clientFirstBare}`,
    clientFinal(serverFirst) {
      const a = parseAttrs(serverFirst);
      const nonce = a.get('r');
      const salt = a.get('s');
      const iterations = Number(a.get('i'));
      if (!nonce?.startsWith(clientNonce) || nonce.length === clientNonce.length) {
        throw new ScramError('server nonce does not extend the client nonce');
      }
      if (!salt || !Number.isInteger(iterations) || iterations < 1 || iterations > 10_000_000) {
        throw new ScramError('invalid SCRAM server-first message');
      }
      const salted = pbkdf2Sync(password, Buffer.from(salt, 'base64'), iterations, 32, 'sha256');
      const clientKey = hmac(salted, 'Client Key');
      const storedKey = createHash('sha256').update(clientKey).digest();
      const withoutProof = `c=biws,r=${nonce}`;
      const authMessage = `${clientFirstBare},${serverFirst},${withoutProof}`;
      const clientSignature = hmac(storedKey, authMessage);
      const proof = Buffer.from(clientKey.map((b, i) => b ^ (clientSignature[i] as number)));
      serverSignature = hmac(hmac(salted, 'Server Key'), authMessage);
      return `${withoutProof},p=${proof.toString('base64')}`;
    },
    verifyServerFinal(serverFinal) {
      const a = parseAttrs(serverFinal);
      if (a.has('e')) throw new ScramError(`server rejected SCRAM: ${a.get('e')}`);
      const v = Buffer.from(a.get('v') ?? '', 'base64');
      if (!serverSignature || v.length !== serverSignature.length || !timingSafeEqual(v, serverSignature)) {
        throw new ScramError('server signature does not match: the server does not know the password');
      }
    },
  };
}

/** PostgreSQL's md5 password hash: 'md5' + md5(md5(password + user) + salt). */
export function md5PasswordResponse(user: string, password: string, salt: Buffer): string {
  const inner = createHash('md5')
    .update(password + user)
    .digest('hex');
  return `md5${createHash('md5')
    .update(Buffer.concat([Buffer.from(inner), salt]))
    .digest('hex')}`;
}
