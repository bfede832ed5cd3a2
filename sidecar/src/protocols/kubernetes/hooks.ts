// The Kubernetes gateway's contract with whoever runs it (the sidecar pipeline, or a test). The
// gateway owns the wire; identity checks, policy, approvals, credentials and recording are hooks.

import type { Risk } from '../../policy/index.js';
import type { PolicyVerdict } from './access-review.js';
import type { KubeRequestAttributes } from './request-attributes.js';
import type { SecretIdentity } from './secret-redaction.js';

export interface KubeAgentIdentity {
  user: string;
  groups: string[];
}

export interface KubeRequestContext {
  readonly attributes: KubeRequestAttributes;
  /** Canonical path and the query as forwarded (what the API server's audit log calls requestURI). */
  readonly requestUri: string;
  /** Decoded query pairs (exec `command`, `container`, `tty`, ...). */
  readonly query: ReadonlyArray<readonly [string, string]>;
  /** The verified on-behalf-of identity, when the agent sent an OIDC bearer token. */
  readonly identity?: KubeAgentIdentity;
  /** Request body (bounded), for guardrails that look at what is written. */
  readonly body?: Buffer;
  readonly contentType?: string;
  /** Guardrail risks of this request (request-risks.ts), for the policy's detectors. */
  readonly risks: Risk[];
  /** Aborted when the client goes away (e.g. while waiting for an approval). */
  readonly signal: AbortSignal;
}

export type KubeDecision =
  | { action: 'allow'; rule?: string }
  | { action: 'deny'; reason: string; rule?: string; accessRequest?: string };

/** What an exec/attach session did (no content: TTY recording comes with the pipeline). */
export interface KubeExecSummary {
  command: string[];
  container: string;
  tty: boolean;
  subprotocol: string;
  stdinBytes: number;
  stdoutBytes: number;
  stderrBytes: number;
  /** From the error channel's Status; absent if the stream ended without one. */
  exitCode?: number;
}

export interface KubeRecordEvent {
  readonly attributes: KubeRequestAttributes;
  readonly identity?: KubeAgentIdentity;
  /** HTTP status sent to the client; 0 if the connection ended before a status was sent. */
  readonly status: number;
  readonly decision: 'allow' | 'deny' | 'refused' | 'error';
  readonly rule?: string;
  readonly reason?: string;
  /** Secret values replaced in the response. */
  readonly redactedValues: number;
  /** JSON request body of a write, Secret values redacted; absent when not JSON or too large. */
  readonly requestBody?: string;
  readonly requestBytes: number;
  readonly responseBytes: number;
  readonly durationMs: number;
  /** Set for exec/attach sessions. */
  readonly exec?: KubeExecSummary;
}

export interface KubeGatewayHooks {
  /**
   * Allow or deny; an approval waits inside (kubectl's call blocks meanwhile). `notify` reaches the
   * agent at once where the wire allows it (exec: a line on stderr); plain API calls have no such
   * channel, so there it does nothing.
   */
  decide(req: KubeRequestContext, notify: (message: string) => void): Promise<KubeDecision>;
  /** One event per API request, after it ended. Must not throw. */
  record(event: KubeRecordEvent): void;
  /** The gateway's current bearer token for the API server (renewed by the caller). */
  upstreamToken(): Promise<string>;
  /** Verifies the agent's OIDC ID token; absent: bearer tokens are refused. Never forwarded. */
  verifyBearer?(token: string): Promise<KubeAgentIdentity>;
  /**
   * Secret values are redacted unless this returns true for that Secret (e.g. Helm's release
   * Secrets, type `helm.sh/release.v1`, which Helm must read back). Called per Secret in a
   * response, with the on-behalf-of identity of the request (absent: the pod's); it must be
   * synchronous and cheap.
   */
  revealSecret?(secret: SecretIdentity, identity?: KubeAgentIdentity): boolean;
  /**
   * Policy for hypothetical attributes, without approvals or records (for `kubectl auth can-i`:
   * SelfSubjectAccessReviews are answered policy ∧ RBAC). Absent: reviews pass through (RBAC of
   * the gateway's identity only).
   */
  evaluate?(attributes: KubeRequestAttributes, identity?: KubeAgentIdentity): Promise<PolicyVerdict>;
}
