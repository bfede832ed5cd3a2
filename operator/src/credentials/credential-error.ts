// One error type for every credential issuer, so the broker can turn a failure into an HTTP status,
// a Connection condition and an Event without parsing messages. Messages name the role, key or
// ServiceAccount and what failed; they never carry a password, verifier, private key or token.

/** Why an issuance or sweep step failed; stable strings, usable as condition/Event reasons. */
export type CredentialErrorReason =
  /** The caller passed something unusable (bad TTL, prefix, key line, …): fix the input. */
  | 'InvalidInput'
  /** The target could not be reached (TCP, DNS, timeout). */
  | 'TargetUnreachable'
  /** TLS toward the target failed (no TLS offered, untrusted or mismatched certificate). */
  | 'TargetTlsFailed'
  /** The admin credentials were refused. */
  | 'AdminLoginFailed'
  /** The admin role may not create roles (no CREATEROLE). */
  | 'AdminLacksCreateRole'
  /** The admin may not grant one of grantRoles (needs membership WITH ADMIN OPTION). */
  | 'AdminCannotGrantRole'
  /** One of grantRoles does not exist on the server. */
  | 'GrantRoleMissing'
  /** The admin lacks a privilege needed to disable or drop a role. */
  | 'AdminLacksPrivilege'
  /** The SSH CA key cannot be used (unparseable, encrypted, unsupported type). */
  | 'CaKeyInvalid'
  /** The ServiceAccount named by the Connection does not exist. */
  | 'ServiceAccountMissing'
  /** The operator's own Kubernetes identity may not request tokens. */
  | 'TokenRequestForbidden'
  /** The API server or database refused for another reason (message has the server's words). */
  | 'ServerRejected';

export class CredentialError extends Error {
  override readonly name = 'CredentialError';
  constructor(
    readonly reason: CredentialErrorReason,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** True for errors worth retrying later without changing anything (network, server busy). */
export function isTransient(err: unknown): boolean {
  return err instanceof CredentialError && err.reason === 'TargetUnreachable';
}
