import type { ConnectionType } from '@chaperone/api';

interface CredentialCommon {
  /** When it stops working (JIT roles, certificates, tokens), if known. */
  expiresAt?: Date;
  /** Safe to record: how it was made (e.g. "static secret orders-db-admin", "jit role chaperone_x"). */
  description: string;
}

/**
 * A credential for one upstream login, by protocol. The agent never sees it; it is never logged or
 * recorded (only `description` and `expiresAt` are).
 */
export type UpstreamCredential =
  | ({ type: 'postgres'; username: string; password: string } & CredentialCommon)
  /** An OpenSSH certificate for the public key the request named (the gateway keeps the private key). */
  | ({ type: 'ssh'; certificate: string; principals: string[] } & CredentialCommon)
  | ({ type: 'kubernetes'; token: string } & CredentialCommon);

/** What a gateway asks for: the protocol, and what that protocol's issuer needs from the gateway. */
export type CredentialRequest =
  | { type: 'postgres' }
  /** OpenSSH public key line of the key the gateway will log in with. */
  | { type: 'ssh'; publicKey: string }
  | { type: 'kubernetes' };

export type CredentialOf<T extends ConnectionType> = Extract<UpstreamCredential, { type: T }>;

/**
 * Supplies upstream credentials per Connection. Standalone: a Kubernetes Secret YAML from the
 * config folder; in a cluster: just-in-time credentials minted by the operator's broker.
 */
export interface CredentialSource {
  credentialFor<R extends CredentialRequest>(
    connection: string,
    request: R,
  ): Promise<CredentialOf<R['type']>>;
}

/** Fails closed when a source answers a credential of another protocol than the one asked for. */
export function expectCredential<T extends ConnectionType>(
  connection: string,
  type: T,
  credential: UpstreamCredential,
): CredentialOf<T> {
  if (credential.type !== type) {
    throw new Error(`a ${credential.type} credential was answered for the ${type} connection ${connection}`);
  }
  return credential as CredentialOf<T>;
}
