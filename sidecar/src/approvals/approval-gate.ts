import type { ApprovalOperation } from '@chaperone/api';
import type { Identity } from '../identity/identity.js';

/** One operation that policy paused until a human decides. */
export interface ApprovalRequest {
  sessionId: string;
  connection: string;
  policy: string;
  rule: string;
  identity: Identity;
  operation: ApprovalOperation;
  approvers: { groups: string[]; users: string[] };
  timeoutMs: number;
}

export type ApprovalOutcome =
  | { verdict: 'approved'; by: string; comment?: string }
  | { verdict: 'denied'; by: string; comment?: string }
  | { verdict: 'expired' }
  | { verdict: 'unavailable'; reason: string };

export interface PendingApproval {
  /** Name of the request (an AccessRequest name in a cluster). */
  name: string;
  /** One line telling a human how to approve, shown to the agent while it waits. */
  howToApprove: string;
  decision: Promise<ApprovalOutcome>;
  /** The agent went away: withdraw the request. */
  cancel(): void;
}

/**
 * Where paused operations go to be decided. Standalone: a local queue decided with
 * `chaperone-sidecar approvals …`; in a cluster: AccessRequest CRs through the broker.
 * Implementations must resolve `decision` with 'expired' at timeoutMs (default deny) and never reject.
 */
export interface ApprovalGate {
  open(request: ApprovalRequest): Promise<PendingApproval>;
}
