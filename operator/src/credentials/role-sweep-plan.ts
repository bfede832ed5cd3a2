// Pure decisions of the role sweeper: given the roles a server has and which pods are alive, which
// login roles to keep, disable (NOLOGIN + terminate sessions) or drop. The executor
// (role-sweeper.ts) only carries these out, so every rule here is unit- and property-tested.
import { formatRoleMark, parseRoleMark, type RoleMark } from './role-mark.js';

/** A role as listed from pg_roles with its shared comment. */
export interface ObservedRole {
  oid: number;
  name: string;
  canLogin: boolean;
  superuser: boolean;
  /** VALID UNTIL; null when unset or 'infinity'. */
  validUntil: Date | null;
  /** shobj_description(oid, 'pg_authid'), or null. */
  comment: string | null;
}

export interface RoleSweepOptions {
  now: Date;
  /** Pods that still exist, by uid (a Set or a predicate, e.g. over an informer cache). */
  livePodUids: ReadonlySet<string> | ((uid: string) => boolean);
  /** How long a disabled role is kept (for forensics and to let sessions drain) before it is dropped. */
  dropAfterMs: number;
  /**
   * A role younger than this is never treated as orphaned because its pod is missing from
   * livePodUids: a pod cache (informer) can lag behind the broker, which saw the pod live. Expiry
   * still applies. Default 30 s.
   */
  podGoneGraceMs?: number;
  /** Restrict the sweep to roles issued for these Connections (`namespace/name`). Default: all. */
  connections?: (connection: string) => boolean;
}

export type DisableReason =
  /** VALID UNTIL (or the mark's expiresAt) has passed. */
  | 'expired'
  /** The pod the role was issued for no longer exists. */
  | 'pod-gone'
  /** revokeForPod: the pod is being deleted. */
  | 'pod-deleted'
  /** Already NOLOGIN (someone else disabled it) but the mark has no disabledAt: start the drop clock. */
  | 'disabled-without-record';

export type RoleSweepAction =
  | { kind: 'keep'; role: ObservedRole; mark: RoleMark; state: 'active' | 'awaiting-drop' }
  | {
      kind: 'disable';
      role: ObservedRole;
      mark: RoleMark;
      reason: DisableReason;
      /** The comment to write: the mark with disabledAt = now. */
      newComment: string;
    }
  | { kind: 'drop'; role: ObservedRole; mark: RoleMark; disabledAt: string };

export const DEFAULT_POD_GONE_GRACE_MS = 30_000;

/** Our roles only: a valid mark, and never a superuser whatever its comment says. */
export function ownedRoles(roles: readonly ObservedRole[]): Array<{ role: ObservedRole; mark: RoleMark }> {
  const out: Array<{ role: ObservedRole; mark: RoleMark }> = [];
  for (const role of roles) {
    if (role.superuser) continue;
    const mark = parseRoleMark(role.comment);
    if (mark) out.push({ role, mark });
  }
  return out;
}

/** When the role stops letting anyone log in: the earlier of VALID UNTIL and the mark's expiresAt. */
export function roleExpiry(role: ObservedRole, mark: RoleMark): number {
  const fromMark = Date.parse(mark.expiresAt);
  return role.validUntil ? Math.min(role.validUntil.getTime(), fromMark) : fromMark;
}

function disableAction(
  role: ObservedRole,
  mark: RoleMark,
  reason: DisableReason,
  now: Date,
): RoleSweepAction {
  return {
    kind: 'disable',
    role,
    mark,
    reason,
    newComment: formatRoleMark({ ...mark, disabledAt: now.toISOString() }),
  };
}

/** One action per role we own (sorted by name); foreign roles never appear. */
export function planRoleSweep(roles: readonly ObservedRole[], opts: RoleSweepOptions): RoleSweepAction[] {
  const now = opts.now.getTime();
  if (!Number.isFinite(now)) throw new Error('planRoleSweep: now is not a valid date');
  if (!Number.isFinite(opts.dropAfterMs) || opts.dropAfterMs < 0) {
    throw new Error('planRoleSweep: dropAfterMs must be a finite number >= 0');
  }
  const grace = opts.podGoneGraceMs ?? DEFAULT_POD_GONE_GRACE_MS;
  const live = opts.livePodUids;
  const alive = typeof live === 'function' ? live : (uid: string) => live.has(uid);

  const actions: RoleSweepAction[] = [];
  for (const { role, mark } of ownedRoles(roles)) {
    if (opts.connections && !opts.connections(mark.connection)) continue;
    const expired = roleExpiry(role, mark) <= now;
    const podGone = !alive(mark.podUid) && now - Date.parse(mark.createdAt) >= grace;

    if (role.canLogin) {
      if (expired) actions.push(disableAction(role, mark, 'expired', opts.now));
      else if (podGone) actions.push(disableAction(role, mark, 'pod-gone', opts.now));
      else actions.push({ kind: 'keep', role, mark, state: 'active' });
      continue;
    }
    if (mark.disabledAt === undefined) {
      actions.push(disableAction(role, mark, 'disabled-without-record', opts.now));
    } else if (now - Date.parse(mark.disabledAt) >= opts.dropAfterMs) {
      actions.push({ kind: 'drop', role, mark, disabledAt: mark.disabledAt });
    } else {
      actions.push({ kind: 'keep', role, mark, state: 'awaiting-drop' });
    }
  }
  return actions.sort((a, b) => (a.role.name < b.role.name ? -1 : a.role.name > b.role.name ? 1 : 0));
}

/**
 * The pod is being deleted: disable every role issued to it that still logs in or was never recorded
 * as disabled. Nothing else is touched (no drops: the regular sweep does those later).
 */
export function planPodRevocation(
  roles: readonly ObservedRole[],
  podUid: string,
  now: Date,
): Array<Extract<RoleSweepAction, { kind: 'disable' }>> {
  const out: Array<Extract<RoleSweepAction, { kind: 'disable' }>> = [];
  for (const { role, mark } of ownedRoles(roles)) {
    if (mark.podUid !== podUid) continue;
    if (!role.canLogin && mark.disabledAt !== undefined) continue;
    out.push({
      kind: 'disable',
      role,
      mark,
      reason: 'pod-deleted',
      newComment: formatRoleMark({ ...mark, disabledAt: now.toISOString() }),
    });
  }
  return out.sort((a, b) => (a.role.name < b.role.name ? -1 : a.role.name > b.role.name ? 1 : 0));
}
