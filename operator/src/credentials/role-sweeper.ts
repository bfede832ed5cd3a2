// Carries out role-sweep plans against one PostgreSQL server with the Connection's admin login:
// lists the roles that carry our mark, disables (NOLOGIN, then terminates their sessions) and drops
// them. Holds no state of its own, so any operator replica can run it after a restart or failover.
import pg from 'pg';
import { CredentialError, type CredentialErrorReason } from './credential-error.js';
import {
  connectAdmin,
  describeTarget,
  errorMessage,
  type PostgresAdminLogin,
  type PostgresTarget,
  sqlState,
} from './postgres-admin.js';
import { parseRoleMark, type RoleMark } from './role-mark.js';
import {
  type DisableReason,
  type ObservedRole,
  planPodRevocation,
  planRoleSweep,
  type RoleSweepAction,
  type RoleSweepOptions,
} from './role-sweep-plan.js';

export interface PostgresRoleSweeperOptions {
  target: PostgresTarget;
  admin: PostgresAdminLogin;
  /** Only roles issued for these Connections (`namespace/name`); default every marked role on the server. */
  connections?: (connection: string) => boolean;
  connectTimeoutMs?: number;
  now?: () => Date;
}

/** What one disable or drop did, for Events and metrics (no secrets in here). */
export interface RoleSweepOutcome {
  role: string;
  connection: string;
  pod: string;
  action: 'disable' | 'drop';
  reason: DisableReason | 'disabled-long-enough';
  ok: boolean;
  /** Backends of the role that were signalled to terminate. */
  terminatedSessions: number;
  /** drop: databases where REASSIGN OWNED / DROP OWNED ran. */
  databases?: string[];
  /** The role changed since it was listed (someone else acted on it): nothing was done. */
  skipped?: boolean;
  error?: string;
  errorReason?: CredentialErrorReason;
}

export interface RoleSweepReport {
  server: string;
  at: Date;
  /** Roles of ours still in use. */
  active: number;
  /** Disabled roles waiting for dropAfterMs. */
  awaitingDrop: number;
  outcomes: RoleSweepOutcome[];
}

export type SweepRequest = Omit<RoleSweepOptions, 'now' | 'connections'> & { now?: Date };

const LIST_ROLES = `
SELECT r.oid::text AS oid, r.rolname, r.rolcanlogin, r.rolsuper,
       CASE WHEN r.rolvaliduntil IS NULL OR r.rolvaliduntil = 'infinity' THEN NULL
            WHEN r.rolvaliduntil = '-infinity' THEN 0::float8
            ELSE (extract(epoch FROM r.rolvaliduntil) * 1000)::float8 END AS valid_until_ms,
       d.description
  FROM pg_roles r
  JOIN pg_shdescription d ON d.objoid = r.oid AND d.classoid = 'pg_authid'::regclass
 WHERE d.description LIKE '%"chaperone"%' AND r.rolname <> current_user`;

const TERMINATE = `
SELECT count(*)::int AS n
  FROM (SELECT pg_terminate_backend(pid) AS t FROM pg_stat_activity
         WHERE usesysid = $1::oid AND pid <> pg_backend_pid()) s
 WHERE t`;

/**
 * Retires the login roles the issuer made on one server.
 *
 * Dropping: REASSIGN OWNED BY the role TO the admin (so objects an agent created survive, owned by
 * the admin) and DROP OWNED (revokes its privileges) run in every database pg_shdepend says the role
 * has objects or privileges in, each over its own admin session; then DROP ROLE. Limit: the admin
 * must be able to CONNECT to those databases; if it cannot, the drop fails with the database named
 * and is retried on the next sweep.
 */
export class PostgresRoleSweeper {
  private readonly opts: PostgresRoleSweeperOptions;
  private readonly now: () => Date;

  constructor(opts: PostgresRoleSweeperOptions) {
    this.opts = opts;
    this.now = opts.now ?? (() => new Date());
  }

  get server(): string {
    return describeTarget(this.opts.target);
  }

  /** Every role on the server whose comment mentions chaperone (the plan decides which are really ours). */
  async listRoles(): Promise<ObservedRole[]> {
    const client = await this.connect();
    try {
      return await listRoles(client);
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  /** List, plan, execute: the periodic sweep. */
  async sweep(req: SweepRequest): Promise<RoleSweepReport> {
    const at = req.now ?? this.now();
    const client = await this.connect();
    try {
      const roles = await listRoles(client);
      const plan = planRoleSweep(roles, {
        ...req,
        now: at,
        ...(this.opts.connections ? { connections: this.opts.connections } : {}),
      });
      const outcomes = await this.run(client, plan);
      return {
        server: this.server,
        at,
        active: plan.filter((a) => a.kind === 'keep' && a.state === 'active').length,
        awaitingDrop: plan.filter((a) => a.kind === 'keep' && a.state === 'awaiting-drop').length,
        outcomes,
      };
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  /** Executes a plan made elsewhere (keeps are ignored). */
  async execute(plan: readonly RoleSweepAction[]): Promise<RoleSweepOutcome[]> {
    const client = await this.connect();
    try {
      return await this.run(client, plan);
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  /** The pod is going away: disable all its roles now and end their sessions (drop comes with the sweep). */
  async revokeForPod(podUid: string): Promise<RoleSweepOutcome[]> {
    const client = await this.connect();
    try {
      const plan = planPodRevocation(await listRoles(client), podUid, this.now()).filter(
        (a) => !this.opts.connections || this.opts.connections(a.mark.connection),
      );
      return await this.run(client, plan);
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  private connect(database?: string): Promise<pg.Client> {
    return connectAdmin(this.opts.target, this.opts.admin, {
      ...(database ? { database } : {}),
      timeoutMs: this.opts.connectTimeoutMs ?? 10_000,
    });
  }

  private async run(client: pg.Client, plan: readonly RoleSweepAction[]): Promise<RoleSweepOutcome[]> {
    const out: RoleSweepOutcome[] = [];
    for (const action of plan) {
      if (action.kind === 'keep') continue;
      const base = {
        role: action.role.name,
        connection: action.mark.connection,
        pod: action.mark.pod,
        action: action.kind,
        reason: action.kind === 'disable' ? action.reason : ('disabled-long-enough' as const),
      };
      const outcome: RoleSweepOutcome = { ...base, ok: false, terminatedSessions: 0 };
      try {
        if (action.kind === 'disable') await this.disable(client, action, outcome);
        else await this.drop(client, action, outcome);
        outcome.ok = true;
      } catch (err) {
        const e =
          err instanceof CredentialError
            ? err
            : new CredentialError(
                sqlState(err) === '42501' ? 'AdminLacksPrivilege' : 'ServerRejected',
                `${action.kind} of role ${action.role.name} on ${this.server} failed: ${errorMessage(err)}`,
                { cause: err },
              );
        outcome.error = e.message;
        outcome.errorReason = e.reason;
        // A dead admin session would fail every following action the same way.
        if (e.reason === 'TargetUnreachable' || sqlState(err)?.startsWith('08')) {
          out.push(outcome);
          break;
        }
      }
      out.push(outcome);
    }
    return out;
  }

  private async disable(
    client: pg.Client,
    action: Extract<RoleSweepAction, { kind: 'disable' }>,
    outcome: RoleSweepOutcome,
  ): Promise<void> {
    const id = pg.escapeIdentifier(action.role.name);
    await client.query('BEGIN');
    try {
      if (!(await unchanged(client, action.role, action.mark, undefined))) {
        await client.query('ROLLBACK');
        outcome.skipped = true;
        return;
      }
      // NOLOGIN first and committed: no new session can start before we terminate the open ones.
      await client.query(`ALTER ROLE ${id} NOLOGIN`);
      await client.query(`COMMENT ON ROLE ${id} IS ${pg.escapeLiteral(action.newComment)}`);
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
    outcome.terminatedSessions = await this.terminate(client, action.role);
  }

  private async drop(
    client: pg.Client,
    action: Extract<RoleSweepAction, { kind: 'drop' }>,
    outcome: RoleSweepOutcome,
  ): Promise<void> {
    if (!(await unchanged(client, action.role, action.mark, false))) {
      outcome.skipped = true;
      return;
    }
    const id = pg.escapeIdentifier(action.role.name);
    // Sessions that slipped in before NOLOGIN, or a disable whose termination failed.
    outcome.terminatedSessions = await this.terminate(client, action.role);
    const { rows } = await client.query<{ datname: string; current: boolean }>(
      `SELECT DISTINCT d.datname, d.datname = current_database() AS current
         FROM pg_shdepend s JOIN pg_database d ON d.oid = s.dbid
        WHERE s.refclassid = 'pg_authid'::regclass AND s.refobjid = $1::oid`,
      [String(action.role.oid)],
    );
    const current = (await client.query<{ db: string }>('SELECT current_database() AS db')).rows[0]!.db;
    const databases = [current, ...rows.filter((r) => !r.current).map((r) => r.datname)];
    for (const db of databases) {
      if (db === current) {
        await reassignAndDropOwned(client, id);
        continue;
      }
      let other: pg.Client;
      try {
        other = await this.connect(db);
      } catch (err) {
        throw new CredentialError(
          'AdminLacksPrivilege',
          `cannot drop role ${action.role.name} on ${this.server}: it owns objects or holds privileges in database ${db} and the admin cannot connect there (${errorMessage(err)}). Grant the admin CONNECT on ${db} or run REASSIGN OWNED BY ${id} TO <admin>; DROP OWNED BY ${id}; in ${db} by hand`,
          { cause: err },
        );
      }
      try {
        await reassignAndDropOwned(other, id);
      } finally {
        await other.end().catch(() => undefined);
      }
    }
    outcome.databases = databases;
    try {
      await client.query(`DROP ROLE ${id}`);
    } catch (err) {
      if (sqlState(err) === '2BP01') {
        throw new CredentialError(
          'ServerRejected',
          `cannot drop role ${action.role.name} on ${this.server}: objects still depend on it after REASSIGN/DROP OWNED in ${databases.join(', ')} (${errorMessage(err)}). Retried on the next sweep`,
          { cause: err },
        );
      }
      throw err;
    }
  }

  /** Signals every backend of the role to terminate; the admin needs the role's privileges for that. */
  private async terminate(client: pg.Client, role: ObservedRole): Promise<number> {
    await ensureMember(client, role);
    try {
      const { rows } = await client.query<{ n: number }>(TERMINATE, [String(role.oid)]);
      return rows[0]?.n ?? 0;
    } catch (err) {
      if (sqlState(err) === '42501') {
        throw new CredentialError(
          'AdminLacksPrivilege',
          `role ${role.name} on ${this.server} is disabled but its sessions could not be terminated: ${errorMessage(err)}. Grant the admin pg_signal_backend or membership in the role`,
          { cause: err },
        );
      }
      throw err;
    }
  }
}

async function listRoles(client: pg.Client): Promise<ObservedRole[]> {
  const { rows } = await client.query<{
    oid: string;
    rolname: string;
    rolcanlogin: boolean;
    rolsuper: boolean;
    valid_until_ms: number | null;
    description: string | null;
  }>(LIST_ROLES);
  return rows.map((r) => ({
    oid: Number(r.oid),
    name: r.rolname,
    canLogin: r.rolcanlogin,
    superuser: r.rolsuper,
    validUntil: r.valid_until_ms === null ? null : new Date(r.valid_until_ms),
    comment: r.description,
  }));
}

/**
 * The role is still the one we listed and still ours (same oid and name, not a superuser, same
 * mark; for drops still NOLOGIN with the same disabledAt). Guards against acting on a role that was
 * dropped and re-created, or changed by someone else, between listing and acting.
 */
async function unchanged(
  client: pg.Client,
  role: ObservedRole,
  mark: RoleMark,
  canLogin: boolean | undefined,
): Promise<boolean> {
  const { rows } = await client.query<{ rolcanlogin: boolean; rolsuper: boolean; comment: string | null }>(
    `SELECT rolcanlogin, rolsuper, shobj_description(oid, 'pg_authid') AS comment
       FROM pg_roles WHERE oid = $1::oid AND rolname = $2`,
    [String(role.oid), role.name],
  );
  const row = rows[0];
  if (!row || row.rolsuper) return false;
  if (canLogin !== undefined && row.rolcanlogin !== canLogin) return false;
  const now = parseRoleMark(row.comment);
  return (
    now !== undefined &&
    now.podUid === mark.podUid &&
    now.connection === mark.connection &&
    now.createdAt === mark.createdAt &&
    now.disabledAt === mark.disabledAt
  );
}

/** A non-superuser admin terminates backends and REASSIGNs objects only of roles it is a member of. */
async function ensureMember(client: pg.Client, role: ObservedRole): Promise<void> {
  const { rows } = await client.query<{ ok: boolean }>(
    `SELECT r.rolsuper OR pg_has_role(current_user, $1::oid, 'USAGE') AS ok
       FROM pg_roles r WHERE r.rolname = current_user`,
    [String(role.oid)],
  );
  if (rows[0]?.ok) return;
  await client.query(`GRANT ${pg.escapeIdentifier(role.name)} TO CURRENT_USER`);
}

async function reassignAndDropOwned(client: pg.Client, id: string): Promise<void> {
  await client.query('BEGIN');
  try {
    await client.query(`REASSIGN OWNED BY ${id} TO CURRENT_USER`);
    await client.query(`DROP OWNED BY ${id}`);
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}
