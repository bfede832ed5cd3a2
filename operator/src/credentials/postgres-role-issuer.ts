// Mints a just-in-time PostgreSQL login role for one sidecar: a random password whose SCRAM verifier
// (computed here) is the only thing the server sees, VALID UNTIL the TTL, membership in the
// Connection's grant roles, and an ownership mark in the role's comment for the sweeper.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { CredentialError } from './credential-error.js';
import {
  connectAdmin,
  describeTarget,
  errorMessage,
  type PostgresAdminLogin,
  type PostgresTarget,
  sqlState,
} from './postgres-admin.js';
import { formatRoleMark, jitRoleName, ROLE_PREFIX_PATTERN, type RoleMark, roleSuffix } from './role-mark.js';
import { scramSha256Verifier } from './scram-verifier.js';

export const DEFAULT_USERNAME_PREFIX = 'chaperone_';
/** The CRD allows 1m–24h; shorter is accepted here for tests and tight policies, never longer. */
export const MIN_ROLE_TTL_MS = 1_000;
export const MAX_ROLE_TTL_MS = 24 * 3600_000;
/** Predefined roles that hand out the server's files and programs: never granted (as the CRD says). */
export const FORBIDDEN_GRANT_ROLES: readonly string[] = [
  'pg_execute_server_program',
  'pg_read_server_files',
  'pg_write_server_files',
];

export interface PostgresRoleRequest {
  target: PostgresTarget;
  admin: PostgresAdminLogin;
  connection: { namespace: string; name: string };
  pod: { namespace: string; name: string; uid: string };
  ttlMs: number;
  grantRoles: readonly string[];
  /** Default `chaperone_`. */
  usernamePrefix?: string;
  sessionId?: string;
}

export interface IssuedPostgresRole {
  username: string;
  /** Never log or record this. */
  password: string;
  expiresAt: Date;
  /** Safe to record: role name, grant roles and expiry. */
  description: string;
}

export interface PostgresRoleIssuerOptions {
  now?: () => Date;
  /** Random bytes source (tests); default node:crypto randomBytes. */
  randomBytes?: (n: number) => Buffer;
  connectTimeoutMs?: number;
}

/**
 * Creates login roles with `CREATE ROLE … LOGIN PASSWORD '<SCRAM verifier>' VALID UNTIL … IN ROLE …`
 * and `COMMENT ON ROLE` in one transaction: either the role exists with its mark, or nothing does.
 *
 * The admin needs CREATEROLE and, on PostgreSQL 16+, membership WITH ADMIN OPTION in every grant role.
 */
export class PostgresRoleIssuer {
  private readonly now: () => Date;
  private readonly random: (n: number) => Buffer;
  private readonly connectTimeoutMs: number;

  constructor(opts: PostgresRoleIssuerOptions = {}) {
    this.now = opts.now ?? (() => new Date());
    this.random = opts.randomBytes ?? randomBytes;
    this.connectTimeoutMs = opts.connectTimeoutMs ?? 10_000;
  }

  async issue(req: PostgresRoleRequest): Promise<IssuedPostgresRole> {
    validateRequest(req);
    const prefix = req.usernamePrefix ?? DEFAULT_USERNAME_PREFIX;
    const password = this.random(32).toString('base64url');
    const verifier = scramSha256Verifier(password);
    const createdAt = this.now();
    const expiresAt = new Date(createdAt.getTime() + req.ttlMs);
    const grantRoles = [...new Set(req.grantRoles)];

    const client = await connectAdmin(req.target, req.admin, { timeoutMs: this.connectTimeoutMs });
    try {
      // A name collision (50 random bits) is astronomically unlikely; one retry covers it anyway.
      for (let attempt = 0; ; attempt++) {
        const username = jitRoleName(prefix, req.pod.name, roleSuffix(this.random(10)));
        const mark: RoleMark = {
          v: 1,
          connection: `${req.connection.namespace}/${req.connection.name}`,
          pod: `${req.pod.namespace}/${req.pod.name}`,
          podUid: req.pod.uid,
          createdAt: createdAt.toISOString(),
          expiresAt: expiresAt.toISOString(),
          ...(req.sessionId !== undefined ? { sessionId: req.sessionId } : {}),
        };
        try {
          await createRole(client, username, verifier, expiresAt, grantRoles, mark);
        } catch (err) {
          if (sqlState(err) === '42710' && attempt === 0) continue;
          throw createRoleError(err, username, grantRoles, req);
        }
        return {
          username,
          password,
          expiresAt,
          description: `jit role ${username} (grants ${grantRoles.join(', ')}) valid until ${expiresAt.toISOString()}`,
        };
      }
    } finally {
      await client.end().catch(() => undefined);
    }
  }
}

async function createRole(
  client: pg.Client,
  username: string,
  verifier: string,
  expiresAt: Date,
  grantRoles: readonly string[],
  mark: RoleMark,
): Promise<void> {
  const id = pg.escapeIdentifier(username);
  // Every attribute is spelled out so server or template defaults cannot widen the role.
  const create =
    `CREATE ROLE ${id} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT ` +
    `PASSWORD ${pg.escapeLiteral(verifier)} VALID UNTIL ${pg.escapeLiteral(expiresAt.toISOString())} ` +
    `IN ROLE ${grantRoles.map((r) => pg.escapeIdentifier(r)).join(', ')}`;
  await client.query('BEGIN');
  try {
    await client.query(create);
    await client.query(`COMMENT ON ROLE ${id} IS ${pg.escapeLiteral(formatRoleMark(mark))}`);
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

function createRoleError(
  err: unknown,
  username: string,
  grantRoles: readonly string[],
  req: PostgresRoleRequest,
): CredentialError {
  if (err instanceof CredentialError) return err;
  const where = describeTarget(req.target);
  const state = sqlState(err);
  const msg = errorMessage(err);
  const admin = req.admin.username;
  if (state === '42704') {
    return new CredentialError(
      'GrantRoleMissing',
      `cannot create role ${username} on ${where}: ${msg}. Every grantRoles entry (${grantRoles.join(', ')}) must exist; create it or fix credentials.postgres.grantRoles. Nothing was created`,
      { cause: err },
    );
  }
  if (state === '42501') {
    if (/create role/i.test(msg)) {
      return new CredentialError(
        'AdminLacksCreateRole',
        `cannot create role ${username} on ${where}: admin ${admin} lacks CREATEROLE (${msg}). Run ALTER ROLE ${admin} CREATEROLE as a superuser. Nothing was created`,
        { cause: err },
      );
    }
    return new CredentialError(
      'AdminCannotGrantRole',
      `cannot create role ${username} on ${where}: admin ${admin} may not grant ${grantRoles.join(', ')} (${msg}). Give it membership WITH ADMIN OPTION in each grant role (GRANT <role> TO ${admin} WITH ADMIN OPTION). Nothing was created`,
      { cause: err },
    );
  }
  if (state?.startsWith('08') || state === '57P01') {
    return new CredentialError(
      'TargetUnreachable',
      `lost the admin session to ${where} while creating role ${username}: ${msg}`,
      {
        cause: err,
      },
    );
  }
  return new CredentialError(
    'ServerRejected',
    `cannot create role ${username} on ${where}: ${msg}${state ? ` (SQLSTATE ${state})` : ''}. Nothing was created`,
    { cause: err },
  );
}

function validateRequest(req: PostgresRoleRequest): void {
  const bad = (what: string) => new CredentialError('InvalidInput', what);
  if (!Number.isFinite(req.ttlMs) || req.ttlMs < MIN_ROLE_TTL_MS || req.ttlMs > MAX_ROLE_TTL_MS) {
    throw bad(`ttl ${req.ttlMs} ms is out of range: use between 1s and 24h (the CRD allows 1m–24h)`);
  }
  const prefix = req.usernamePrefix ?? DEFAULT_USERNAME_PREFIX;
  if (!ROLE_PREFIX_PATTERN.test(prefix) || prefix.length > 32) {
    throw bad(
      `usernamePrefix ${JSON.stringify(prefix)} must match ^[a-z_][a-z0-9_]*$ and be at most 32 characters`,
    );
  }
  if (req.grantRoles.length === 0) {
    throw bad('grantRoles is empty: name at least one existing role whose privileges the sessions get');
  }
  for (const r of req.grantRoles) {
    if (typeof r !== 'string' || r.length === 0 || Buffer.byteLength(r) > 63 || r.includes('\0')) {
      throw bad(`grant role ${JSON.stringify(r)} is not a valid PostgreSQL role name (1–63 bytes)`);
    }
    if (FORBIDDEN_GRANT_ROLES.includes(r)) {
      throw bad(`grant role ${r} gives sessions the server's files or programs and is never granted`);
    }
  }
  for (const [what, v] of [
    ['connection.namespace', req.connection.namespace],
    ['connection.name', req.connection.name],
    ['pod.namespace', req.pod.namespace],
    ['pod.name', req.pod.name],
  ] as const) {
    if (typeof v !== 'string' || !/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/.test(v)) {
      throw bad(`${what} ${JSON.stringify(v)} is not a Kubernetes object name`);
    }
  }
  if (typeof req.pod.uid !== 'string' || !/^[-0-9a-zA-Z]{1,128}$/.test(req.pod.uid)) {
    throw bad('pod.uid must be the pod’s metadata.uid');
  }
  if (req.sessionId !== undefined && (req.sessionId.length === 0 || req.sessionId.length > 256)) {
    throw bad('sessionId must be 1–256 characters');
  }
  if (!req.admin.username || typeof req.admin.password !== 'string') {
    throw bad('admin username and password are required (from the Connection’s adminSecretRef)');
  }
}
