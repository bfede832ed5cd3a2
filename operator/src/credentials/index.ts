// Just-in-time credential issuers of the credential broker, and the sweeper that retires JIT
// PostgreSQL roles. The broker's HTTPS layer and the reconcilers call only what is exported here.
export { CredentialError, type CredentialErrorReason, isTransient } from './credential-error.js';
export {
  type IssuedKubernetesToken,
  issueKubernetesToken,
  type KubernetesTokenRequest,
  MAX_TOKEN_TTL_SECONDS,
  MIN_TOKEN_TTL_SECONDS,
} from './kubernetes-token.js';
export {
  ADMIN_APPLICATION_NAME,
  connectAdmin,
  type PostgresAdminLogin,
  type PostgresTarget,
  type PostgresTlsMode,
  pgSslOptions,
} from './postgres-admin.js';
export {
  DEFAULT_USERNAME_PREFIX,
  FORBIDDEN_GRANT_ROLES,
  type IssuedPostgresRole,
  MAX_ROLE_TTL_MS,
  MIN_ROLE_TTL_MS,
  PostgresRoleIssuer,
  type PostgresRoleIssuerOptions,
  type PostgresRoleRequest,
} from './postgres-role-issuer.js';
export { formatRoleMark, jitRoleName, parseRoleMark, type RoleMark } from './role-mark.js';
export {
  DEFAULT_POD_GONE_GRACE_MS,
  type DisableReason,
  type ObservedRole,
  planPodRevocation,
  planRoleSweep,
  type RoleSweepAction,
  type RoleSweepOptions,
} from './role-sweep-plan.js';
export {
  PostgresRoleSweeper,
  type PostgresRoleSweeperOptions,
  type RoleSweepOutcome,
  type RoleSweepReport,
  type SweepRequest,
} from './role-sweeper.js';
export { scramSha256Verifier } from './scram-verifier.js';
export {
  DEFAULT_SSH_BACKDATE_MS,
  type IssuedSshCertificate,
  type SshCertificateRequest,
  signSshUserCertificate,
} from './ssh-certificate.js';
