import type { SecureContext } from 'node:tls';
import type { AccessPolicy, Connection, ConnectionType, Logger } from '@chaperone/api';
import type { ApprovalGate } from '../approvals/approval-gate.js';
import type { CredentialSource } from '../credentials/credential-source.js';
import type { Identity } from '../identity/identity.js';
import type { TokenVerifier } from '../identity/token-verifier.js';
import type { PolicyViewFactory } from '../pipeline/policy-view.js';
import type { SessionRecorder } from '../recording/session-recorder.js';

/** One Connection a gateway serves, resolved by the mode through the protocol's own module. */
export interface ServedConnection<Target = unknown, View = unknown> {
  type: ConnectionType;
  name: string;
  listenPort: number;
  target: Target;
  /** Sessions start with the policies in force when they are admitted. */
  policyFor: PolicyViewFactory<View>;
}

/** What the runtime hands every gateway, whatever its protocol. */
export interface GatewayContext {
  /** Identity of the pod (ServiceAccount); an OIDC token adds user and groups. */
  podIdentity: Identity;
  credentials: CredentialSource;
  approvals: ApprovalGate;
  recorderFor: (sessionId: string, identity: Identity) => SessionRecorder;
  tokenVerifier?: TokenVerifier;
  /** Ask every client for a token (otherwise only clients that ask to use one, e.g. postgres user `tokenUser`). */
  requireToken: boolean;
  tokenUser: string;
  /** TLS offered to agents, for protocols that negotiate it. */
  clientTls?: SecureContext;
  maxMessageBytes: number;
  /** Key of the 'hash' masking strategy: equal values hash alike within this process only. */
  hashKey: Buffer;
  listenHost: string;
  /** Most concurrent agent connections per listener. */
  maxConnections: number;
  log: Logger;
}

export interface RunningGateway {
  readonly port: number;
  readonly activeSessions: number;
  close(): Promise<void>;
}

/**
 * Everything the sidecar knows about one protocol. The runtime and the modes only talk to a
 * protocol through this; the protocol reaches the shared steps (admit, decide, approval, record)
 * through `pipeline/`. Target and View are the protocol's own: where its gateway dials, and the
 * per-identity policy view its sessions consult.
 */
export interface ProtocolModule<Target = unknown, View = unknown> {
  readonly type: ConnectionType;
  /** False: this build has no gateway for the protocol; its Connections are logged and not served. */
  readonly supported: boolean;
  /** Loads what the gateway needs before the first agent connects (e.g. the SQL parser). */
  prepare(): Promise<void>;
  /** False once the protocol can no longer serve safely (a fault in the SQL parser): not ready. */
  ready(): boolean;
  /** Where a Connection's gateway dials, with the CA its caSecretRef names already resolved. */
  targetOf(connection: Connection, caPem: string | undefined): Target;
  /** Compiles the policies that apply to a Connection into the protocol's per-identity view. */
  policyView(connection: Connection, policies: AccessPolicy[]): PolicyViewFactory<View>;
  startGateway(served: ServedConnection<Target, View>, ctx: GatewayContext): Promise<RunningGateway>;
}

export type ProtocolRegistry = Readonly<Record<ConnectionType, ProtocolModule>>;
