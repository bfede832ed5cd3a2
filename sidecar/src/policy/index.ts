// The policy engine: who may do what on a Connection (what is masked: ../masking/). Pure; see README.md.

export { DurationError, formatDuration, parseDuration } from '@chaperone/api';
export { APPROVAL_DEFAULTS, APPROVAL_LIMITS, DEFAULT_GUARDRAILS, MASKING_DEFAULTS } from './defaults.js';
export { describeOperation, describeWho } from './describe.js';
export { GUARDRAIL_PROTOCOLS, SEVERITY } from './guardrails.js';
export {
  type ApplicablePolicies,
  type CompiledApproval,
  type CompiledPolicy,
  compilePolicies,
  compilePolicy,
  noPolicyReason,
  type PolicyEngine,
  policiesFor,
  SESSION_RULE,
} from './policy-engine.js';
export type {
  Approvers,
  ConnectionTarget,
  Identity,
  KubernetesRequest,
  Operation,
  OperationType,
  PolicyAction,
  PolicyDecision,
  PolicyEngineOptions,
  PostgresStatement,
  PostgresStatementClass,
  Risk,
  SshRequest,
} from './types.js';
