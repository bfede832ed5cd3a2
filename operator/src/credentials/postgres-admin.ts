// The operator's admin session to a Connection's PostgreSQL server: TLS exactly as the sidecar does
// it (libpq sslmode semantics, fail closed), and errors turned into CredentialErrors that say what to
// fix. Shared by the role issuer and the sweeper.
import { type ConnectionOptions, checkServerIdentity, type PeerCertificate } from 'node:tls';
import pg from 'pg';
import { CredentialError } from './credential-error.js';

export type PostgresTlsMode = 'disable' | 'require' | 'verify-ca' | 'verify-full';

/** Where the server is, as a Connection describes it (same shape as the sidecar's UpstreamTarget). */
export interface PostgresTarget {
  host: string;
  port: number;
  /** The database the admin session uses (credentials.postgres.database → endpoint.database → postgres). */
  database: string;
  tls: { mode: PostgresTlsMode; ca?: string; serverName?: string };
}

export interface PostgresAdminLogin {
  username: string;
  password: string;
}

/** What shows in pg_stat_activity for the operator's sessions. */
export const ADMIN_APPLICATION_NAME = 'chaperone-operator';

/** node-postgres `ssl` for a libpq sslmode; never falls back to plain TCP when TLS is asked for. */
export function pgSslOptions(tls: PostgresTarget['tls']): false | ConnectionOptions {
  switch (tls.mode) {
    case 'disable':
      return false;
    case 'require':
      return { rejectUnauthorized: false };
    case 'verify-ca':
      // The chain must verify; the name is not checked (libpq verify-ca).
      return { rejectUnauthorized: true, ca: tls.ca, checkServerIdentity: () => undefined };
    case 'verify-full': {
      const serverName = tls.serverName;
      return {
        rejectUnauthorized: true,
        ca: tls.ca,
        // node-postgres sets SNI to the host; an explicit serverName is what the certificate must name.
        ...(serverName
          ? {
              checkServerIdentity: (_host: string, cert: PeerCertificate) =>
                checkServerIdentity(serverName, cert),
            }
          : {}),
      };
    }
    default:
      throw new CredentialError('InvalidInput', `unknown tls.mode ${JSON.stringify(tls.mode)}`);
  }
}

export function describeTarget(t: Pick<PostgresTarget, 'host' | 'port'>): string {
  return t.host.includes(':') ? `[${t.host}]:${t.port}` : `${t.host}:${t.port}`;
}

const TLS_ERROR =
  /self[- ]signed|certificate|unable to verify|SSL|TLS|altnames|Hostname\/IP does not match|does not support SSL/i;
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'ETIMEDOUT',
  'EAI_AGAIN',
]);

/** Opens an admin session; the password is only ever handed to node-postgres. */
export async function connectAdmin(
  target: PostgresTarget,
  admin: PostgresAdminLogin,
  opts: { database?: string; timeoutMs?: number } = {},
): Promise<pg.Client> {
  const database = opts.database ?? target.database;
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const client = new pg.Client({
    host: target.host,
    port: target.port,
    user: admin.username,
    password: admin.password,
    database,
    ssl: pgSslOptions(target.tls),
    application_name: ADMIN_APPLICATION_NAME,
    connectionTimeoutMillis: timeoutMs,
    statement_timeout: 30_000,
    lock_timeout: 10_000,
  });
  // A server-side disconnect after connect must not crash the process; the next query fails instead.
  client.on('error', () => undefined);
  try {
    await client.connect();
    return client;
  } catch (err) {
    await client.end().catch(() => undefined);
    throw adminConnectError(err, target, admin.username, database);
  }
}

function adminConnectError(
  err: unknown,
  target: PostgresTarget,
  user: string,
  database: string,
): CredentialError {
  const where = describeTarget(target);
  const e = err as { code?: string; message?: string };
  const msg = e.message ?? String(err);
  if (e.code === '28P01' || e.code === '28000') {
    return new CredentialError(
      'AdminLoginFailed',
      `admin login as ${user} to ${where}/${database} was refused (${msg}): check the admin Secret's username and password and pg_hba.conf`,
      { cause: err },
    );
  }
  if (e.code === '3D000') {
    return new CredentialError(
      'InvalidInput',
      `database ${database} does not exist on ${where}: fix credentials.postgres.database or endpoint.database`,
      { cause: err },
    );
  }
  if (e.code && NETWORK_CODES.has(e.code)) {
    return new CredentialError('TargetUnreachable', `cannot reach PostgreSQL at ${where}: ${msg}`, {
      cause: err,
    });
  }
  if (TLS_ERROR.test(msg)) {
    return new CredentialError(
      'TargetTlsFailed',
      `TLS to PostgreSQL at ${where} failed with tls.mode=${target.tls.mode}: ${msg}. Check endpoint.tls (caSecretRef, serverName) or the server's certificate`,
      { cause: err },
    );
  }
  if (/timeout/i.test(msg)) {
    return new CredentialError(
      'TargetUnreachable',
      `timed out connecting to PostgreSQL at ${where}: ${msg}`,
      {
        cause: err,
      },
    );
  }
  return new CredentialError('ServerRejected', `admin session to ${where}/${database} failed: ${msg}`, {
    cause: err,
  });
}

/** SQLSTATE of a node-postgres error, if any. */
export function sqlState(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
