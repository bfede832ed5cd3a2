import type { EventSpec, InvolvedObject } from '../controller/events.js';

/**
 * What a reconcile decides. The controller writes `status` (a merge patch of the fields the
 * reconciler owns) only when it differs from the stored status, records `events`, and runs the
 * object again after `requeueAfterMs`.
 */
export interface ReconcileOutcome<S extends object> {
  /** Undefined: nothing of the status is this reconciler's to write. */
  status?: S;
  events: EventSpec[];
  /** Events on other objects (an AccessRequest's agent pod), written with the same status. */
  relatedEvents?: { object: InvolvedObject; event: EventSpec }[];
  requeueAfterMs?: number;
}

export type { EventSpec };
