// The policy engine: who may do what on a Connection, and what is masked. Pure; see README.md.

export { DurationError, formatDuration, parseDuration } from '@chaperone/api';
export { APPROVAL_DEFAULTS, APPROVAL_LIMITS, DEFAULT_GUARDRAILS, MASKING_DEFAULTS } from './defaults.js';
export { describeOperation, describeWho } from './describe.js';
export { GUARDRAIL_PROTOCOLS, SEVERITY } from './guardrails.js';
export {
  type ColumnRule,
  compileMasking,
  type DetectorMatch,
  type MaskingCompileResult,
  type MaskingPlan,
  STRATEGY_STRENGTH,
} from './masking-plan.js';
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
export { BUILTIN_DETECTORS, luhnValid, MAX_SCAN_CHARS } from './value-detectors.js';
