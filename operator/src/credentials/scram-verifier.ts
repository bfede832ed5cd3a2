// SCRAM-SHA-256 password verifier in PostgreSQL's storage format, computed on our side so that
// CREATE ROLE … PASSWORD carries only the verifier: the plaintext never reaches the server, its
// statement log, pg_stat_statements or a replica.
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';

/** PostgreSQL's default (scram_iterations before 16, and its default since). */
export const SCRAM_ITERATIONS = 4096;
const SALT_BYTES = 16;

/**
 * `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` (RFC 5802 / RFC 7677), the form
 * PostgreSQL stores in pg_authid.rolpassword and accepts verbatim in CREATE/ALTER ROLE … PASSWORD.
 *
 * The password must be ASCII without control characters: SASLprep (RFC 4013) is then the identity,
 * so the server's normalisation and ours agree. The issuers' passwords are base64url, which is.
 */
export function scramSha256Verifier(
  password: string,
  opts: { salt?: Buffer; iterations?: number } = {},
): string {
  if (!/^[\x21-\x7e]+$/.test(password)) {
    throw new Error('scramSha256Verifier needs a non-empty printable ASCII password (no SASLprep here)');
  }
  const salt = opts.salt ?? randomBytes(SALT_BYTES);
  const iterations = opts.iterations ?? SCRAM_ITERATIONS;
  const salted = pbkdf2Sync(password, salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}
