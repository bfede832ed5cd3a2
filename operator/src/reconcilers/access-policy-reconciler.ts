// AccessPolicy reconcile: which Connections and identities the policy applies to, whether every
// Connection it names exists (ConnectionsResolved), and whether it can be served (Ready).

import {
  type AccessPolicy,
  type AccessPolicyStatus,
  type Condition,
  type Connection,
  connectionsSelect,
} from '@chaperone/api';
import { type ConditionStatus, getCondition, setCondition } from '../controller/status.js';
import type { EventSpec, ReconcileOutcome } from './types.js';

export interface AccessPolicyReconcileDeps {
  now(): Date;
  /** Connections in a namespace (from the informer cache). */
  connectionsIn(namespace: string): readonly Pick<Connection, 'metadata'>[];
}

export const ACCESS_POLICY_CONDITIONS = {
  ready: 'Ready',
  connectionsResolved: 'ConnectionsResolved',
} as const;

/** CRD bounds of the status lists. */
const MAX_STATUS_CONNECTIONS = 256;
const MAX_STATUS_SERVICE_ACCOUNTS = 256;
const MAX_STATUS_IDENTITIES = 64;

interface Finding {
  status: ConditionStatus;
  reason: string;
  message: string;
}

function uniqueSorted(values: Iterable<string>, max: number): string[] {
  return [...new Set(values)].sort().slice(0, max);
}

function listText(names: readonly string[], max = 10): string {
  const shown = names.slice(0, max).join(', ');
  return names.length > max ? `${shown} and ${names.length - max} more` : shown;
}

/** Rules and guardrails whose action is approve. An absent guardrails field means the CRD default, which approves. */
function approveSources(spec: AccessPolicy['spec']): string[] {
  const rules = (spec.rules ?? []).filter((r) => r.action === 'approve').map((r) => `rule ${r.name}`);
  const guardrails =
    spec.guardrails === undefined
      ? ['the default guardrails']
      : spec.guardrails.filter((g) => g.action === 'approve').map((g) => `guardrail ${g.detector}`);
  return [...rules, ...guardrails];
}

function hasApprovers(spec: AccessPolicy['spec']): boolean {
  const a = spec.approval?.approvers;
  return (a?.groups?.length ?? 0) > 0 || (a?.users?.length ?? 0) > 0;
}

export function reconcileAccessPolicy(
  policy: AccessPolicy,
  deps: AccessPolicyReconcileDeps,
): ReconcileOutcome<AccessPolicyStatus> {
  const ns = policy.metadata.namespace ?? 'default';
  const spec = policy.spec;
  const existing = deps.connectionsIn(ns);
  const existingNames = new Set(existing.map((c) => c.metadata.name ?? ''));
  const named = spec.connections?.names ?? [];
  const missing = uniqueSorted(
    named.filter((n) => !existingNames.has(n)),
    MAX_STATUS_CONNECTIONS,
  );
  const selected = uniqueSorted(
    existing
      .filter((c) => connectionsSelect(spec.connections, c.metadata.name, c.metadata.labels))
      .map((c) => c.metadata.name ?? '')
      .filter(Boolean),
    MAX_STATUS_CONNECTIONS,
  );
  const subjects = spec.subjects ?? [];
  const serviceAccounts = uniqueSorted(
    subjects.filter((s) => s.kind === 'ServiceAccount').map((s) => `${s.namespace ?? ns}/${s.name}`),
    MAX_STATUS_SERVICE_ACCOUNTS,
  );
  const groups = uniqueSorted(
    subjects.filter((s) => s.kind === 'Group').map((s) => s.name),
    MAX_STATUS_IDENTITIES,
  );
  const users = uniqueSorted(
    subjects.filter((s) => s.kind === 'User').map((s) => s.name),
    MAX_STATUS_IDENTITIES,
  );

  const resolved: Finding =
    missing.length === 0
      ? {
          status: 'True',
          reason: 'ConnectionsFound',
          message:
            named.length > 0
              ? `every Connection in spec.connections.names exists in namespace "${ns}"`
              : 'no Connection named',
        }
      : {
          status: 'False',
          reason: 'ConnectionsNotFound',
          message:
            `Connections not found in namespace "${ns}": ${listText(missing)}; create them there or remove them ` +
            'from spec.connections.names (a policy covers Connections of its own namespace only)',
        };

  const approvals = approveSources(spec);
  let ready: Finding;
  if (resolved.status !== 'True') {
    ready = { status: 'False', reason: resolved.reason, message: resolved.message };
  } else if (approvals.length > 0 && !hasApprovers(spec)) {
    ready = {
      status: 'False',
      reason: 'NoApprovers',
      message:
        `${listText(approvals)} send operations for approval, but spec.approval.approvers names no group or ` +
        'user: add approvers, or change those actions to deny',
    };
  } else {
    const who = [
      serviceAccounts.length ? `ServiceAccounts ${listText(serviceAccounts)}` : '',
      groups.length ? `groups ${listText(groups)}` : '',
      users.length ? `users ${listText(users)}` : '',
    ]
      .filter(Boolean)
      .join('; ');
    ready = {
      status: 'True',
      reason: 'Ready',
      message:
        selected.length > 0
          ? `applies to Connections ${listText(selected)} for ${who}`
          : `valid, but selects no Connection in namespace "${ns}" yet (for ${who})`,
    };
  }

  const now = deps.now();
  const generation = policy.metadata.generation;
  const gen = generation !== undefined ? { observedGeneration: generation } : {};
  const previous = policy.status?.conditions;
  let conditions: Condition[] = setCondition(
    previous,
    { type: ACCESS_POLICY_CONDITIONS.ready, ...ready, ...gen },
    now,
  );
  conditions = setCondition(
    conditions,
    { type: ACCESS_POLICY_CONDITIONS.connectionsResolved, ...resolved, ...gen },
    now,
  );

  const before = getCondition(previous, ACCESS_POLICY_CONDITIONS.ready);
  const events: EventSpec[] = [];
  if (!before || before.status !== ready.status || before.reason !== ready.reason) {
    events.push(
      ready.status === 'True'
        ? { type: 'Normal', reason: 'Ready', message: `AccessPolicy is ready: ${ready.message}` }
        : { type: 'Warning', reason: ready.reason, message: ready.message },
    );
  }
  return {
    status: {
      ...gen,
      conditions,
      connections: selected,
      ruleCount: spec.rules?.length ?? 0,
      // Lists are sent whole (a merge patch replaces arrays), empty ones included, so a subject
      // removed from the spec disappears from the status. `pods` is not computed here.
      appliesTo: { serviceAccounts, groups, users },
    },
    events,
  };
}
