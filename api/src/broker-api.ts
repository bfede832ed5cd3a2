// The credential broker's HTTPS API: the only thing a sidecar in a cluster talks to besides the
// collector. The operator serves it, the sidecar's broker clients call it; both import these types so
// the two ends cannot drift. Every request carries the sidecar's projected ServiceAccount token
// (audience SIDECAR_TOKEN_AUDIENCE) as `Authorization: Bearer …`.
import type { AccessPolicy, Connection } from './generated/crds.js';

export const BROKER_API_PREFIX = '/v1';
export const BROKER_PATHS = {
  /** GET → BrokerConfig: the pod's Connections (no secrets) and the policies that apply to them. */
  config: '/v1/config',
  /** POST BrokerCredentialRequest → BrokerCredential. */
  credentials: '/v1/credentials',
  /** POST BrokerAccessRequestCreate → BrokerAccessRequestCreated. */
  accessRequests: '/v1/access-requests',
  /** GET …/:name/decision?waitSeconds=N → BrokerAccessRequestDecision (long poll); DELETE …/:name withdraws. */
  accessRequest: (name: string) => `/v1/access-requests/${encodeURIComponent(name)}`,
} as const;

/** Longest a decision long-poll is held open by the broker (clients poll again). */
export const BROKER_MAX_WAIT_SECONDS = 30;

/** The pod the broker authenticated, as it saw it in the API server. */
export interface BrokerPodIdentity {
  namespace: string;
  name: string;
  uid: string;
  serviceAccount: string;
}

export interface BrokerConfig {
  pod: BrokerPodIdentity;
  /**
   * The Connections the pod's annotation names, as stored (spec only; Secret references stay
   * references — the sidecar never reads Secrets). A referenced CA is resolved into `caPem`.
   */
  connections: Array<{ connection: Connection; caPem?: string }>;
  /** AccessPolicies in the pod's namespace that select at least one of those Connections. */
  policies: AccessPolicy[];
  /** Where the sidecar ships recordings, if the operator was given a collector. */
  collectorUrl?: string;
}

export type BrokerCredentialRequest =
  | { connection: string; type: 'postgres'; sessionId?: string }
  /** OpenSSH public key line of the key the sidecar will log in with. */
  | { connection: string; type: 'ssh'; publicKey: string; sessionId?: string }
  | { connection: string; type: 'kubernetes'; sessionId?: string };

export type BrokerCredential =
  | { type: 'postgres'; username: string; password: string; expiresAt: string; description: string }
  | { type: 'ssh'; certificate: string; principals: string[]; expiresAt: string; description: string }
  | { type: 'kubernetes'; token: string; expiresAt: string; description: string };

export interface BrokerAccessRequestCreate {
  connection: string;
  policy: string;
  rule: string;
  sessionId: string;
  /** Set when the agent presented a verified OIDC token; the broker adds the pod's ServiceAccount. */
  onBehalfOf?: { user: string; groups: string[] };
  operation: ApprovalOperation;
  timeoutSeconds: number;
}

/**
 * The operation a paused request is about, in the shape AccessRequest.spec.operation stores it. The
 * sidecar's approval gates (local and broker) and the broker take this one shape.
 */
export interface ApprovalOperation {
  type: 'postgres' | 'ssh' | 'kubernetes';
  /** Comma-separated operation classes, e.g. "read,write" (postgres), "exec" (ssh), "delete" (kubernetes). */
  class: string;
  /** Normalized text with literals replaced: safe to show approvers and to record. */
  text: string;
  fingerprint: string;
  riskReasons: string[];
}

export interface BrokerAccessRequestCreated {
  name: string;
  namespace: string;
  expiresAt: string;
  /** A kubectl command an approver can run, shown to the agent while it waits. */
  howToApprove: string;
}

export interface BrokerAccessRequestDecision {
  name: string;
  phase: 'Pending' | 'Approved' | 'Denied' | 'Expired';
  by?: string;
  comment?: string;
}

/** Error body of every non-2xx broker response. */
export interface BrokerError {
  error: string;
  /** What to do about it, for the operator's and the sidecar's logs. */
  hint?: string;
}
