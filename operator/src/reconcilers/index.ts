// One reconciler per kind: pure decisions over the object and injected deps (kubebuilder style).
export {
  ACCESS_POLICY_CONDITIONS,
  type AccessPolicyReconcileDeps,
  reconcileAccessPolicy,
} from './access-policy-reconciler.js';
export {
  ACCESS_REQUEST_CONDITIONS,
  type AccessRequestReconcileDeps,
  isDecided,
  reconcileAccessRequest,
} from './access-request-reconciler.js';
export {
  type ConnectionDepsOptions,
  createConnectionDeps,
  isTlsError,
  type ProbeTimeouts,
  probeKubernetesApi,
  probePostgres,
  probeSsh,
  probeTcp,
} from './connection-probes.js';
export {
  CONNECTION_CONDITIONS,
  type ConnectionReconcileDeps,
  canGrantRole,
  checkSshCaKey,
  type GrantRoleInfo,
  type PostgresProbeInput,
  type PostgresProbeResult,
  type PostgresRoleInfo,
  type ProbeResult,
  reconcileConnection,
  type SecretData,
  type SshCaKeyCheck,
  type StoredSecret,
} from './connection-reconciler.js';
export type { EventSpec, ReconcileOutcome } from './types.js';
