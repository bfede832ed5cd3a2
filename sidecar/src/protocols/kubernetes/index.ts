// Kubernetes API gateway (wire layer): see docs/kubernetes-gateway.md.

export type { PolicyVerdict } from './access-review.js';
export type {
  KubeAgentIdentity,
  KubeDecision,
  KubeExecSummary,
  KubeGatewayHooks,
  KubeRecordEvent,
  KubeRequestContext,
} from './hooks.js';
export {
  type KubeGateway,
  type KubeGatewayLimits,
  type KubeGatewayOptions,
  startKubeGateway,
} from './kube-gateway.js';
export { deriveAttributes, describeAttributes, type KubeRequestAttributes } from './request-attributes.js';
export { referencedSecrets, requestRisks } from './request-risks.js';
export { normaliseRequestTarget, type RequestTarget } from './request-target.js';
export {
  REDACTED,
  REDACTED_DATA,
  type RevealSecret,
  redactSecretDocument,
  type SecretIdentity,
} from './secret-redaction.js';
