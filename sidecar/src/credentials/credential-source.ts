/** A credential for one upstream login. The agent never sees it; it is never logged or recorded. */
export interface UpstreamCredential {
  username: string;
  password: string;
  /** When it stops working (JIT roles), if known. */
  expiresAt?: Date;
  /** Safe to record: how it was made (e.g. "static secret orders-db-admin", "jit role chaperone_x"). */
  description: string;
}

/**
 * Supplies upstream credentials per Connection. Standalone: a Kubernetes Secret YAML from the
 * config folder; in a cluster: just-in-time roles minted by the operator's broker.
 */
export interface CredentialSource {
  credentialFor(connection: string): Promise<UpstreamCredential>;
}
