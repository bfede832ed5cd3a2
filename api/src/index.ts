import type {
  AccessDecision,
  AccessPolicy,
  AccessRequest,
  AccessRequestStatus,
  ColumnMask,
  Condition,
  Connection,
  ConnectionSpec,
  Guardrail,
  KubernetesMasking,
  PolicyRule,
  PolicySubject,
  PostgresRuleMatch,
  PostgresTLS,
  RecordingSpec,
  SSHRuleMatch,
  ValueDetector,
} from './generated/crds.js';

export * from './broker-api.js';
export * from './crds.js';
export * from './duration.js';
export type * from './generated/crds.js';
export * from './label-selector.js';
export * from './oidc-verifier.js';
export * from './pod-opt-in.js';
export * from './recording-events.js';
export * from './schema-validate.js';
export * from './ssh-certificate.js';

// Names for the enums of the generated types, derived so they cannot drift from the CRDs.
export type ChaperoneObject = Connection | AccessPolicy | AccessRequest;
export type ConnectionType = ConnectionSpec['type'];
export type PostgresTLSMode = NonNullable<PostgresTLS['mode']>;
export type SubjectKind = PolicySubject['kind'];
export type RuleAction = PolicyRule['action'];
export type PostgresOperation = NonNullable<PostgresRuleMatch['operations']>[number];
export type SSHOperation = NonNullable<SSHRuleMatch['operations']>[number];
export type GuardrailDetector = Guardrail['detector'];
export type GuardrailAction = Guardrail['action'];
export type MaskingStrategy = NonNullable<ColumnMask['strategy']>;
export type DetectorType = ValueDetector['type'];
export type SecretDataMasking = NonNullable<KubernetesMasking['secretData']>;
export type RecordedResults = NonNullable<RecordingSpec['results']>;
export type AccessRequestPhase = NonNullable<AccessRequestStatus['phase']>;
export type Verdict = AccessDecision['verdict'];
export type ConditionStatus = Condition['status'];
export { jsonLog, type Logger, type LogLevel } from './json-log.js';
