// AccessRequest reconcile: a Pending request whose spec.expiresAt has passed becomes Expired (the
// paused operation is denied); a Pending one is looked at again when it is due; a decided one is
// final and left alone. The decision itself is the approval webhook's, never this reconciler's.
//
// Nothing here is kept in memory between runs: whichever replica leads lists every AccessRequest
// when it starts, so pending requests survive restarts and leader changes.

import type { AccessRequest, AccessRequestStatus } from '@chaperone/api';
import { setCondition } from '../controller/status.js';
import type { ReconcileOutcome } from './types.js';

export interface AccessRequestReconcileDeps {
  now(): Date;
}

export const ACCESS_REQUEST_CONDITIONS = { decided: 'Decided' } as const;

/** Whether the request is final: a phase other than Pending, or a decision written (the webhook may not have set phase yet). */
export function isDecided(req: AccessRequest): boolean {
  const phase = req.status?.phase ?? 'Pending';
  return phase !== 'Pending' || req.status?.decision !== undefined;
}

export function reconcileAccessRequest(
  req: AccessRequest,
  deps: AccessRequestReconcileDeps,
): ReconcileOutcome<AccessRequestStatus> {
  if (isDecided(req)) return { events: [] };
  const expiresAt = Date.parse(req.spec?.expiresAt ?? '');
  if (Number.isNaN(expiresAt)) {
    // The API server validates the date-time format, so this only happens to objects stored
    // before that: nothing can expire them, and nobody should approve them either.
    return {
      events: [
        {
          type: 'Warning',
          reason: 'InvalidExpiresAt',
          message: `spec.expiresAt ${JSON.stringify(req.spec?.expiresAt)} is not an RFC 3339 time; the request cannot expire, deny it`,
        },
      ],
    };
  }
  const now = deps.now();
  const remaining = expiresAt - now.getTime();
  if (remaining > 0) return { events: [], requeueAfterMs: remaining };

  const generation = req.metadata.generation;
  const gen = generation !== undefined ? { observedGeneration: generation } : {};
  const message = `nobody decided before ${req.spec.expiresAt}; the operation was denied`;
  return {
    // Only the fields this reconciler owns: a merge patch leaves decision and approvals alone, and
    // the CRD's rules refuse Expired if a decision landed in the meantime.
    status: {
      phase: 'Expired',
      ...gen,
      conditions: setCondition(
        req.status?.conditions,
        { type: ACCESS_REQUEST_CONDITIONS.decided, status: 'True', reason: 'Expired', message, ...gen },
        now,
      ),
    },
    events: [{ type: 'Normal', reason: 'Expired', message }],
  };
}
