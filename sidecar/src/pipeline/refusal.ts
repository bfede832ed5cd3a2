/**
 * Why the pipeline refused a session or an operation. Each protocol maps the kind to its native
 * error (PostgreSQL: an SQLSTATE; SSH: stderr and an exit status; Kubernetes: a Status 403/503);
 * `message` is what the agent reads, `rule` the policy rule that decided, when one did.
 */
export type RefusalKind =
  | 'no-policy'
  | 'recording-unavailable'
  | 'no-credential'
  | 'upstream-failed'
  | 'denied'
  | 'approval-denied'
  | 'approval-expired'
  | 'approval-unavailable';

export interface Refusal {
  kind: RefusalKind;
  message: string;
  rule?: string;
}

export function isRefusal(value: unknown): value is Refusal {
  return typeof value === 'object' && value !== null && 'kind' in value && 'message' in value;
}
