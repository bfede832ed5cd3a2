// The approval webhook's decision, pure: given the AccessRequest before and after a write to its
// status subresource, the authenticated caller and the deciding AccessPolicy, allow the write
// (stamping who decided) or refuse it. The AdmissionReview plumbing is in approval-webhook.ts.

import type {
  AccessDecision,
  AccessPolicy,
  AccessRequest,
  AccessRequestStatus,
  Approval,
} from '@chaperone/api';
import type { AdmissionVerdict, JsonPatchOperation, UserInfo } from '../admission/admission-review.js';

export interface StatusUpdateInput {
  oldRequest: AccessRequest;
  newRequest: AccessRequest;
  /** The API server's authenticated caller (AdmissionRequest.userInfo), never anything the caller wrote. */
  userInfo: UserInfo;
  /** `spec.policy` of the request, in its namespace; undefined when it no longer exists. */
  policy: AccessPolicy | undefined;
  /** The operator's own identities (e.g. its ServiceAccount user); they write status freely. */
  operatorUsernames: readonly string[];
  now: Date;
}

/** The schema caps decision.groups / approvals[].groups at 64 entries. */
const MAX_RECORDED_GROUPS = 64;

const VERDICTS: ReadonlySet<string> = new Set(['Approved', 'Denied']);

/** True when the caller is one of the operator's identities. */
export function isOperator(userInfo: UserInfo, operatorUsernames: readonly string[]): boolean {
  return operatorUsernames.includes(userInfo.username);
}

/** The Kubernetes username a ServiceAccount token authenticates as. */
export function serviceAccountUsername(namespace: string, name: string): string {
  return `system:serviceaccount:${namespace}:${name}`;
}

export function decideStatusUpdate(input: StatusUpdateInput): AdmissionVerdict {
  const { oldRequest, newRequest, userInfo, policy, now } = input;
  // The operator expires requests and writes conditions and observedGeneration; the CRD's CEL rules
  // still keep it from rewriting a decision.
  if (isOperator(userInfo, input.operatorUsernames)) return { allowed: true };

  const caller = userInfo.username;
  const what = describe(oldRequest);
  const oldStatus: AccessRequestStatus = oldRequest.status ?? {};
  const newStatus: AccessRequestStatus = newRequest.status ?? {};
  const oldPhase = oldStatus.phase ?? 'Pending';

  if (oldStatus.decision || oldPhase !== 'Pending') {
    return refuse(403, finalMessage(what, oldRequest, oldStatus));
  }

  const newDecision: unknown = newStatus.decision;
  const changed = changedStatusFields(oldStatus, newStatus, newDecision);
  if (changed.length > 0) {
    return refuse(
      403,
      `${caller} may not change ${changed.map((f) => `status.${f}`).join(', ')} of ${what}: approvers only ` +
        `set status.decision (verdict and comment), the chaperone operator writes the rest. Use ` +
        `kubectl patch ... --subresource=status --type=merge -p '{"status":{"decision":{"verdict":"Approved"}}}' ` +
        `or kubectl chaperone approve/deny`,
    );
  }
  // Nothing changed (e.g. a no-op patch of a pending request): nothing to decide.
  if (newDecision === undefined) return { allowed: true };

  const parsed = parseDecision(newDecision);
  if (typeof parsed === 'string') return refuse(400, `${parsed} (${what})`);
  const { verdict, comment } = parsed;

  const expiresAt = Date.parse(oldRequest.spec.expiresAt);
  if (!Number.isFinite(expiresAt) || expiresAt <= now.getTime()) {
    return refuse(
      403,
      `${what} expired at ${oldRequest.spec.expiresAt}; it can no longer be decided (the operation ` +
        `was denied). The agent must retry the operation to create a new request`,
    );
  }

  if (!policy) {
    return refuse(
      403,
      `AccessPolicy ${oldRequest.spec.policy} no longer exists; the request cannot be decided (${what})`,
    );
  }
  const policyName = `AccessPolicy ${policy.metadata.namespace ? `${policy.metadata.namespace}/` : ''}${policy.metadata.name}`;

  if (verdict === 'Approved') {
    const self = selfRelation(caller, oldRequest);
    if (self) {
      return refuse(
        403,
        `${caller} cannot approve ${what}: ${self}, and nobody approves their own request; ` +
          `ask another approver of ${policyName}`,
      );
    }
  }

  const approvers = policy.spec.approval?.approvers ?? {};
  const approverUsers = approvers.users ?? [];
  const approverGroups = approvers.groups ?? [];
  const groups = userInfo.groups ?? [];
  if (!approverUsers.includes(caller) && !groups.some((g) => approverGroups.includes(g))) {
    return refuse(
      403,
      approverUsers.length === 0 && approverGroups.length === 0
        ? `${caller} cannot decide ${what}: ${policyName} lists no approvers (spec.approval.approvers), ` +
            `so nobody can; add approvers to the policy`
        : `${caller} is not an approver for ${what}: ${policyName} allows ${listApprovers(approverUsers, approverGroups)}; ` +
            `ask one of them, or ask the policy's owner to add you to spec.approval.approvers`,
    );
  }

  const at = rfc3339Seconds(now);
  const recordedGroups = groups.slice(0, MAX_RECORDED_GROUPS);
  const decision: AccessDecision = { verdict, ...(comment !== undefined ? { comment } : {}) };
  const stamped: AccessDecision = { ...decision, by: caller, groups: recordedGroups, at };

  const patch: JsonPatchOperation[] = [];
  const phaseOp = (phase: 'Pending' | 'Approved' | 'Denied') => {
    if (newStatus.phase === phase) return;
    patch.push({
      op: newStatus.phase === undefined ? 'add' : 'replace',
      path: '/status/phase',
      value: phase,
    });
  };

  const required = Math.max(1, policy.spec.approval?.required ?? 1);
  if (verdict === 'Denied' || required <= 1) {
    // One denial denies; a single required approval decides at once.
    patch.push({ op: 'replace', path: '/status/decision', value: stamped });
    phaseOp(verdict);
    return { allowed: true, patch };
  }

  const previous = oldStatus.approvals ?? [];
  if (previous.some((a) => a.by === caller)) {
    return refuse(
      403,
      `${caller} already approved ${what} (${distinctApprovers(previous)} of ${required} approvals); ` +
        `${policyName} needs ${required} different approvers, so another approver must approve`,
    );
  }
  const approval: Approval = {
    by: caller,
    groups: recordedGroups,
    at,
    ...(comment !== undefined ? { comment } : {}),
  };
  patch.push(
    // Old and new approvals are equal here (any difference was refused above).
    newStatus.approvals === undefined
      ? { op: 'add', path: '/status/approvals', value: [...previous, approval] }
      : { op: 'add', path: '/status/approvals/-', value: approval },
  );
  const count = distinctApprovers([...previous, approval]);
  if (count >= required) {
    patch.push({ op: 'replace', path: '/status/decision', value: stamped });
    phaseOp('Approved');
    return { allowed: true, patch };
  }
  // Not enough yet: record the approval, keep the request open for the next approver.
  patch.push({ op: 'remove', path: '/status/decision' });
  phaseOp('Pending');
  const missing = required - count;
  return {
    allowed: true,
    patch,
    // The API server may truncate warnings over 256 characters; the count comes first.
    warnings: [
      `${count} of ${required} approvals recorded for ${what}; waiting for ${missing} more ` +
        `approver${missing === 1 ? '' : 's'}`,
    ],
  };
}

function refuse(code: 400 | 403, message: string): AdmissionVerdict {
  return { allowed: false, code, message };
}

function describe(request: AccessRequest): string {
  const ns = request.metadata.namespace;
  return `AccessRequest ${ns ? `${ns}/` : ''}${request.metadata.name ?? '(unnamed)'}`;
}

function finalMessage(what: string, request: AccessRequest, status: AccessRequestStatus): string {
  const retry = 'If the operation is still needed, the agent must retry it to create a new request';
  const d = status.decision;
  if (d) {
    const by = d.by ? ` by ${d.by}` : '';
    const at = d.at ? ` at ${d.at}` : '';
    return `${what} was already ${d.verdict}${by}${at}; decisions cannot be changed. ${retry}`;
  }
  if (status.phase === 'Expired') {
    return `${what} expired at ${request.spec.expiresAt} without a decision; it can no longer be decided. ${retry}`;
  }
  return `${what} is already ${status.phase}; decisions cannot be changed. ${retry}`;
}

/**
 * Status fields other than `decision` that differ between old and new. A phase equal to the
 * verdict being set is tolerated (the webhook sets it anyway); any other phase change is not.
 */
function changedStatusFields(
  oldStatus: AccessRequestStatus,
  newStatus: AccessRequestStatus,
  newDecision: unknown,
): string[] {
  const keys = new Set([...Object.keys(oldStatus), ...Object.keys(newStatus)]);
  keys.delete('decision');
  const changed: string[] = [];
  for (const key of [...keys].sort()) {
    const before = (oldStatus as Record<string, unknown>)[key];
    const after = (newStatus as Record<string, unknown>)[key];
    if (key === 'phase') {
      const oldPhase = before ?? 'Pending';
      const newPhase = after ?? 'Pending';
      const verdict = isRecord(newDecision) ? newDecision.verdict : undefined;
      if (newPhase !== oldPhase && newPhase !== verdict) changed.push(key);
      continue;
    }
    if (!jsonEqual(before, after)) changed.push(key);
  }
  return changed;
}

function parseDecision(value: unknown): { verdict: 'Approved' | 'Denied'; comment?: string } | string {
  if (!isRecord(value)) return 'status.decision must be an object such as {"verdict":"Approved"}';
  const { verdict, comment } = value;
  if (typeof verdict !== 'string' || !VERDICTS.has(verdict)) {
    return `status.decision.verdict must be Approved or Denied, got ${JSON.stringify(verdict ?? null)}`;
  }
  if (comment !== undefined && typeof comment !== 'string') {
    return 'status.decision.comment must be a string';
  }
  return { verdict: verdict as 'Approved' | 'Denied', ...(comment !== undefined ? { comment } : {}) };
}

/**
 * Why the caller counts as the requester, or undefined. The on-behalf-of user is the raw OIDC
 * claim while the API server may prefix OIDC usernames (`--oidc-username-prefix`, or `issuer#` by
 * default for non-email claims), so a prefixed match counts too: a false match only refuses.
 */
function selfRelation(caller: string, request: AccessRequest): string | undefined {
  const sa = request.spec.requester.serviceAccount;
  if (caller === serviceAccountUsername(sa.namespace, sa.name)) {
    return `it is the ServiceAccount ${sa.namespace}/${sa.name} that asked for the operation`;
  }
  const user = request.spec.requester.onBehalfOf?.user;
  if (user && (caller === user || caller.endsWith(`:${user}`) || caller.endsWith(`#${user}`))) {
    return `the agent asked on behalf of ${user}`;
  }
  return undefined;
}

function listApprovers(users: readonly string[], groups: readonly string[]): string {
  const parts: string[] = [];
  if (users.length) parts.push(`users ${users.join(', ')}`);
  if (groups.length) parts.push(`members of groups ${groups.join(', ')}`);
  return parts.join(' and ');
}

function distinctApprovers(approvals: readonly Approval[]): number {
  return new Set(approvals.map((a) => a.by)).size;
}

/** Kubernetes timestamps have second precision (metav1.Time). */
function rfc3339Seconds(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Structural equality of JSON values; object key order does not matter. */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((v, i) => jsonEqual(v, b[i]));
  }
  if (isRecord(a) && isRecord(b)) {
    const ka = Object.keys(a).filter((k) => a[k] !== undefined);
    const kb = Object.keys(b).filter((k) => b[k] !== undefined);
    if (ka.length !== kb.length) return false;
    return ka.every((k) => jsonEqual(a[k], b[k]));
  }
  return false;
}
