/*
 * The policy engine: pure, no I/O. Shared by the PostgreSQL, SSH and Kubernetes gateways.
 *
 * Which policies apply
 *   A policy applies to a session when
 *   (a) one of its subjects names the identity: ServiceAccount by namespace (default: the policy's
 *       namespace) and name; Group by membership in identity.groups (OIDC groups); User by
 *       identity.user; and
 *   (b) its spec.connections selects the Connection: by names, or by selector (matchLabels plus
 *       matchExpressions In / NotIn / Exists / DoesNotExist over the Connection's labels; {} selects
 *       all), the union of both; and
 *   (c) the policy and the Connection are in the same namespace. Policies never reach across
 *       namespaces. Objects without metadata.namespace are in options.defaultNamespace ('default').
 *   No applicable policy: the session is refused.
 *
 * One policy
 *   Rules are tried in order; the first rule that matches decides. A rule matches when its protocol
 *   block matches the operation's type (no block: every operation) and every filter it sets matches.
 *   Where a filter could mean "every" or "any", allow/approve rules take "every" and deny rules "any",
 *   so an operation only partly in scope is never let through by accident:
 *   - postgres operations: allow/approve need EVERY class of the statement listed (read+write needs
 *     both); deny needs ANY. 'session' is ignored here: a statement whose only class is 'session'
 *     (BEGIN, COMMIT, SET …) is allowed without consulting rules, as rule '(session)' — guardrails still
 *     apply to it. A statement with no class at all is denied (it cannot be checked).
 *   - postgres tables ('schema.table' globs, '*' and '?' within one segment): allow/approve need EVERY
 *     touched table in scope (no tables: vacuously true); deny needs ANY (no tables: never). Deny globs
 *     ignore case; an unqualified table counts as "any schema" for deny and only matches '*.x' for allow.
 *   - ssh: operations; commands (globs over the whole exec line, '*' and '?'; set → only exec matches;
 *     in allow/approve rules the wildcards never match ; & | ` $ ( ) < > or line breaks, in deny rules
 *     they match anything and each simple command of a compound line is tried too); forwardTargets
 *     ('host:port', '*' for any port; set → only port-forward matches; in allow/approve rules '*' in the
 *     host stays within one DNS label, a host of just '*' is any host).
 *   - kubernetes, as RBAC: verbs, apiGroups ('' core), resources ('pods', 'pods/exec', 'pods/*',
 *     '*\/scale', '*'), resourceNames (requests without a name never match), namespaces
 *     (cluster-scoped requests never match). Empty lists and '*' match anything.
 *   No matching rule: the policy contributes nothing.
 *
 * Guardrails
 *   Each risk whose detector the policy lists in spec.guardrails (absent: DEFAULT_GUARDRAILS, the CRD
 *   default; []: none), and whose detector belongs to the operation's protocol, escalates that policy's
 *   result to the guardrail's action when that is more severe. Never the other way.
 *
 * Across policies
 *   Every applicable policy is evaluated; the most severe result wins (deny > approve > allow), ties go
 *   to the policy that sorts first by name. If no policy has a matching rule the operation is denied
 *   with a reason naming the operation and the policies consulted. An approve decision carries the
 *   deciding policy's approval (approvers, required, timeout); approve from a policy that names no
 *   approvers is a deny, since nobody could approve it.
 *
 * Broken policies
 *   A policy the engine cannot fully understand (unknown action, bad glob, bad duration …; things the
 *   API server's validation would refuse) still applies by its subjects and connections, but denies
 *   every operation, naming the problem. One broken policy never widens access.
 */
import {
  type AccessPolicy,
  connectionsSelect,
  formatDuration,
  type PolicySubject,
  parseDuration,
} from '@chaperone/api';
import { APPROVAL_DEFAULTS, APPROVAL_LIMITS } from './defaults.js';
import { describeOperation, describeWho } from './describe.js';
import {
  type CompiledGuardrails,
  compileGuardrails,
  type GuardrailHit,
  SEVERITY,
  strongestGuardrail,
} from './guardrails.js';
import { operationShapeProblem } from './operation-shape.js';
import { type CompiledRule, compileRule, type PreparedOperation, prepareOperation } from './rules.js';
import { anySubjectMatches } from './subjects.js';
import type {
  Approvers,
  ConnectionTarget,
  Identity,
  Operation,
  PolicyDecision,
  PolicyEngineOptions,
} from './types.js';

export const SESSION_RULE = '(session)';
const DEFAULT_NAMESPACE = 'default';

export interface CompiledApproval {
  approvers: Approvers;
  required: number;
  timeoutMs: number;
}

/** One AccessPolicy, compiled: globs are RegExps, durations are numbers, defaults are filled in. */
export interface CompiledPolicy {
  readonly name: string;
  readonly namespace: string;
  readonly source: AccessPolicy;
  readonly subjects: readonly PolicySubject[];
  readonly rules: readonly CompiledRule[];
  readonly guardrails: CompiledGuardrails;
  readonly approval: CompiledApproval;
  /** Why the policy cannot be used; when non-empty it denies every operation. */
  readonly problems: readonly string[];
}

function namespaceOf(
  meta: { namespace?: string } | undefined,
  options: PolicyEngineOptions | undefined,
): string {
  return meta?.namespace || options?.defaultNamespace || DEFAULT_NAMESPACE;
}

function byName(a: { name: string }, b: { name: string }): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

function compileApproval(policy: AccessPolicy, problems: string[]): CompiledApproval {
  const a = policy.spec?.approval ?? {};
  const approvers = { groups: [...(a.approvers?.groups ?? [])], users: [...(a.approvers?.users ?? [])] };
  const required = a.required ?? APPROVAL_DEFAULTS.required;
  if (
    !Number.isInteger(required) ||
    required < APPROVAL_LIMITS.minRequired ||
    required > APPROVAL_LIMITS.maxRequired
  ) {
    problems.push(`spec.approval.required is ${JSON.stringify(required)}; it must be between 1 and 10`);
  }
  let timeoutMs = parseDuration(APPROVAL_DEFAULTS.timeout);
  try {
    timeoutMs = parseDuration(a.timeout ?? APPROVAL_DEFAULTS.timeout);
    if (timeoutMs < APPROVAL_LIMITS.minTimeoutMs || timeoutMs > APPROVAL_LIMITS.maxTimeoutMs) {
      problems.push('spec.approval.timeout must be between 10s and 24h');
    }
  } catch (err) {
    problems.push(`spec.approval.timeout: ${(err as Error).message}`);
  }
  return { approvers, required, timeoutMs };
}

/** Compiles one policy. Never throws: what it cannot use ends up in `problems`. */
export function compilePolicy(policy: AccessPolicy, options?: PolicyEngineOptions): CompiledPolicy {
  const problems: string[] = [];
  const spec = policy?.spec;
  const name = policy?.metadata?.name ?? '(unnamed)';
  if (!policy?.metadata?.name) problems.push('metadata.name is missing');
  if (!spec || typeof spec !== 'object') problems.push('spec is missing');
  const ruleList = Array.isArray(spec?.rules) ? spec.rules : [];
  if (ruleList.length === 0) problems.push('spec.rules is empty');
  const rules = ruleList.map((r, i) => compileRule(r, i, problems));
  const seen = new Set<string>();
  for (const r of rules) {
    if (seen.has(r.name)) problems.push(`rule name ${r.name} is used twice`);
    seen.add(r.name);
  }
  const guardrails = compileGuardrails(spec?.guardrails, problems);
  const approval = compileApproval(policy, problems);
  return {
    name,
    namespace: namespaceOf(policy?.metadata, options),
    source: policy,
    subjects: Array.isArray(spec?.subjects) ? spec.subjects : [],
    rules,
    guardrails,
    approval,
    problems,
  };
}

function selectsConnection(
  policy: CompiledPolicy,
  connection: ConnectionTarget,
  options?: PolicyEngineOptions,
): boolean {
  if (policy.namespace !== namespaceOf(connection.metadata, options)) return false;
  return connectionsSelect(
    policy.source?.spec?.connections,
    connection.metadata.name,
    connection.metadata.labels,
  );
}

/** The policies that apply to this identity on this Connection, sorted by name. */
export function policiesFor(
  identity: Identity,
  connection: ConnectionTarget,
  policies: readonly AccessPolicy[],
  options?: PolicyEngineOptions,
): AccessPolicy[] {
  const ns = namespaceOf(connection.metadata, options);
  return policies
    .filter((p) => {
      const pns = namespaceOf(p?.metadata, options);
      return (
        pns === ns &&
        connectionsSelect(p?.spec?.connections, connection.metadata.name, connection.metadata.labels) &&
        anySubjectMatches(p.spec.subjects, identity, pns)
      );
    })
    .sort((a, b) => byName({ name: a.metadata.name ?? '' }, { name: b.metadata.name ?? '' }));
}

/** Why a session is refused when no policy applies. */
export function noPolicyReason(
  identity: Identity,
  connection: ConnectionTarget,
  options?: PolicyEngineOptions,
): string {
  const ns = namespaceOf(connection.metadata, options);
  const name = connection.metadata.name ?? '(unnamed)';
  return (
    `no AccessPolicy in namespace ${ns} grants ${describeWho(identity)} access to connection ${name}; ` +
    `an AccessPolicy in ${ns} must list this identity in spec.subjects and select ${name} in spec.connections`
  );
}

/** The policies of one identity on one Connection: what a gateway keeps per session. */
export interface ApplicablePolicies {
  /** The applicable AccessPolicy objects, sorted by name (input for compileMasking). */
  readonly policies: readonly AccessPolicy[];
  readonly names: readonly string[];
  decide(operation: Operation): PolicyDecision;
  /** A policy's compiled approval (defaults applied, timeout in ms), e.g. to ask for approval on other grounds. */
  approvalOf(policy: string): Readonly<CompiledApproval> | undefined;
}

export interface PolicyEngine {
  readonly connection: { readonly namespace: string; readonly name: string };
  /** Policies of the Connection's namespace that select it (for any subject), compiled, by name. */
  readonly compiled: readonly CompiledPolicy[];
  /** Problems of those policies; each problem makes its policy deny everything. */
  readonly problems: readonly { policy: string; problem: string }[];
  forIdentity(identity: Identity): ApplicablePolicies | { refused: string };
  /**
   * forIdentity(identity).decide(operation), or deny with the refusal reason. The subject match is
   * remembered per Identity object: treat identities as immutable (a new token → a new object).
   */
  decide(identity: Identity, operation: Operation): PolicyDecision;
}

/** Compiles the policies that select `connection`, once; decide() then only matches. */
export function compilePolicies(
  policies: readonly AccessPolicy[],
  connection: ConnectionTarget,
  options?: PolicyEngineOptions,
): PolicyEngine {
  const compiled = policies
    .map((p) => compilePolicy(p, options))
    .filter((p) => selectsConnection(p, connection, options))
    .sort(byName);
  const target = {
    namespace: namespaceOf(connection.metadata, options),
    name: connection.metadata.name ?? '(unnamed)',
  };
  const connectionType = connection.spec?.type;

  const forIdentity = (identity: Identity): ApplicablePolicies | { refused: string } => {
    const mine = compiled.filter((p) => anySubjectMatches(p.subjects, identity, p.namespace));
    if (mine.length === 0) return { refused: noPolicyReason(identity, connection, options) };
    return {
      policies: mine.map((p) => p.source),
      names: mine.map((p) => p.name),
      decide: (operation) => decideWith(mine, operation, target, connectionType),
      approvalOf: (name) => {
        const a = mine.find((p) => p.name === name)?.approval;
        return (
          a && {
            approvers: { groups: [...a.approvers.groups], users: [...a.approvers.users] },
            required: a.required,
            timeoutMs: a.timeoutMs,
          }
        );
      },
    };
  };

  const views = new WeakMap<Identity, ApplicablePolicies | { refused: string }>();
  return {
    connection: target,
    compiled,
    problems: compiled.flatMap((p) => p.problems.map((problem) => ({ policy: p.name, problem }))),
    forIdentity,
    decide(identity, operation) {
      // Gateways keep one Identity object per session, so this is one subject match per session.
      let view = views.get(identity);
      if (!view) {
        view = forIdentity(identity);
        views.set(identity, view);
      }
      return 'refused' in view ? { action: 'deny', reason: view.refused } : view.decide(operation);
    },
  };
}

// ---- deciding ----------------------------------------------------------------------------------

function decideWith(
  policies: readonly CompiledPolicy[],
  op: Operation,
  connection: { namespace: string; name: string },
  connectionType: string | undefined,
): PolicyDecision {
  const malformed = operationShapeProblem(op);
  if (malformed)
    return { action: 'deny', reason: `the operation is malformed (${malformed}), so it is denied` };
  if (connectionType !== undefined && connectionType !== op.type) {
    return {
      action: 'deny',
      reason: `${describeOperation(op)} is denied: connection ${connection.name} is a ${connectionType} connection`,
    };
  }
  const prepared = prepareOperation(op);
  let sessionOnly = false;
  if ('classes' in prepared && prepared.classes.length === 0) {
    if (!(op.type === 'postgres' && Array.isArray(op.classes) && op.classes.includes('session'))) {
      return {
        action: 'deny',
        reason:
          'the postgres statement has no statement class (read, write, ddl, admin, copy or session), ' +
          'so no rule can be checked and it is denied',
      };
    }
    sessionOnly = true;
  }

  let best: PolicyDecision | undefined;
  for (const policy of policies) {
    const result = evaluatePolicy(policy, prepared, sessionOnly);
    if (result && (!best || SEVERITY[result.action] > SEVERITY[best.action])) best = result;
    if (best?.action === 'deny') break;
  }
  if (best) return best;
  const names = policies.map((p) => p.name).join(', ');
  return {
    action: 'deny',
    reason:
      `no rule allows this ${describeOperation(op)}: AccessPolicy ${names} in namespace ${connection.namespace} ` +
      `${policies.length === 1 ? 'was' : 'were'} consulted and none has a matching rule; ` +
      'ask the policy owners for a rule that covers it',
  };
}

function sentence(text: string): string {
  return text.trim().replace(/[.\s]+$/, '');
}

function describeApprovers(a: CompiledApproval): string {
  const who = [
    a.approvers.groups.length > 0 ? `group ${a.approvers.groups.join(', ')}` : '',
    a.approvers.users.length > 0 ? `${a.approvers.users.join(', ')}` : '',
  ]
    .filter(Boolean)
    .join(' or ');
  const count = a.required > 1 ? `${a.required} approvals from ` : 'approval from ';
  return `${count}${who}`;
}

function evaluatePolicy(
  policy: CompiledPolicy,
  prepared: PreparedOperation,
  sessionOnly: boolean,
): PolicyDecision | undefined {
  const op = prepared.op;
  if (policy.problems.length > 0) {
    const more = policy.problems.length > 1 ? ` (and ${policy.problems.length - 1} more problems)` : '';
    return {
      action: 'deny',
      policy: policy.name,
      reason: `AccessPolicy ${policy.name} cannot be used, so it denies everything: ${policy.problems[0]}${more}; ask its owners to fix it`,
    };
  }
  let rule: CompiledRule | undefined;
  if (!sessionOnly) {
    rule = policy.rules.find((r) => r.matches(prepared));
    if (!rule) return undefined;
  }
  const ruleName = rule?.name ?? SESSION_RULE;
  const base = rule?.action ?? 'allow';
  const hit = strongestGuardrail(policy.guardrails, op.type, op.risks, base);
  const action = hit?.action ?? base;
  if (action === 'allow') return { action, policy: policy.name, rule: ruleName };

  const what = describeOperation(op);
  const source = hit
    ? `guardrail ${hit.detector} of AccessPolicy ${policy.name}`
    : `rule ${ruleName} of AccessPolicy ${policy.name}${rule?.reason ? `: ${sentence(rule.reason)}` : ''}`;
  const subject = hit ? riskPhrase(hit, what) : what;
  const guardrail = hit ? { guardrail: hit.detector } : {};

  if (action === 'deny') {
    const reason = hit
      ? `${subject} is refused (${source}); do it another way, or ask the owners of AccessPolicy ${policy.name} to change its guardrails`
      : `${subject} is denied by ${source}`;
    return { action, policy: policy.name, rule: ruleName, ...guardrail, reason };
  }

  const { approvers, required, timeoutMs } = policy.approval;
  if (approvers.groups.length === 0 && approvers.users.length === 0) {
    return {
      action: 'deny',
      policy: policy.name,
      rule: ruleName,
      ...guardrail,
      reason:
        `${subject} needs approval (${source}), but AccessPolicy ${policy.name} names no approvers in ` +
        'spec.approval.approvers, so nobody could approve it and it is denied; ask its owners to add approvers',
    };
  }
  return {
    action: 'approve',
    policy: policy.name,
    rule: ruleName,
    ...guardrail,
    reason: `${subject} needs approval (${source}); waiting up to ${formatDuration(timeoutMs)} for ${describeApprovers(policy.approval)}`,
    approvers: { groups: [...approvers.groups], users: [...approvers.users] },
    required,
    timeoutMs,
  };
}

function riskPhrase(hit: GuardrailHit, fallback: string): string {
  const r = typeof hit.risk.reason === 'string' ? sentence(hit.risk.reason) : '';
  return r ? r.slice(0, 512) : fallback;
}
