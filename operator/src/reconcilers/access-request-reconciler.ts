// AccessRequest reconcile: a Pending request whose spec.expiresAt has passed becomes Expired (the
// paused operation is denied); a Pending one is looked at again when it is due; a decided one gets
// its Decided condition once (with an Event on the request and on the agent pod, so that `kubectl
// describe pod` shows why the agent waited) and is then final. The decision itself is the approval
// webhook's, never this reconciler's.
//
// Nothing here is kept in memory between runs: whichever replica leads lists every AccessRequest
// when it starts, so pending requests survive restarts and leader changes.

import type { AccessRequest, AccessRequestStatus } from '@chaperone/api';
import type { InvolvedObject } from '../controller/events.js';
import { getCondition, setCondition } from '../controller/status.js';
import type { EventSpec, ReconcileOutcome } from './types.js';

export interface AccessRequestReconcileDeps {
  now(): Date;
}

export const ACCESS_REQUEST_CONDITIONS = { decided: 'Decided' } as const;

/** Whether the request is final: a phase other than Pending, or a decision written (the webhook may not have set phase yet). */
export function isDecided(req: AccessRequest): boolean {
  const phase = req.status?.phase ?? 'Pending';
  return phase !== 'Pending' || req.status?.decision !== undefined;
}

/** The agent pod that asked, as an Event's involved object; undefined when the spec names none. */
export function requesterPod(req: AccessRequest): InvolvedObject | undefined {
  const pod = req.spec?.requester?.pod;
  const ns = req.spec?.requester?.serviceAccount?.namespace;
  if (!pod?.name || !ns) return undefined;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    namespace: ns,
    name: pod.name,
    ...(pod.uid ? { uid: pod.uid } : {}),
  };
}

/** The same Event on the agent pod, naming the request. */
function onPod(req: AccessRequest, event: EventSpec): ReconcileOutcome<AccessRequestStatus>['relatedEvents'] {
  const pod = requesterPod(req);
  if (!pod) return [];
  const name = `${req.metadata.namespace}/${req.metadata.name}`;
  return [{ object: pod, event: { ...event, message: `AccessRequest ${name}: ${event.message}` } }];
}

function recordDecision(req: AccessRequest, now: Date): ReconcileOutcome<AccessRequestStatus> {
  const phase = req.status?.phase;
  const decision = req.status?.decision;
  // Expired wrote its condition with the phase; a decision without its phase is mid-write.
  if (!decision || (phase !== 'Approved' && phase !== 'Denied')) return { events: [] };
  if (getCondition(req.status?.conditions, ACCESS_REQUEST_CONDITIONS.decided)) return { events: [] };
  const generation = req.metadata.generation;
  const gen = generation !== undefined ? { observedGeneration: generation } : {};
  const by = decision.by ? ` by ${decision.by}` : '';
  const comment = decision.comment ? `: ${JSON.stringify(decision.comment)}` : '';
  const message = `${phase}${by}${comment}; ${req.spec.operation.type} ${req.spec.operation.class ?? 'operation'} on ${req.spec.connection}`;
  const event: EventSpec = { type: phase === 'Approved' ? 'Normal' : 'Warning', reason: phase, message };
  // Decisions from before this operator version (an upgrade) get the condition without Events:
  // an Event about a pod that finished long ago is noise.
  const decidedAt = Date.parse(decision.at ?? '');
  const recent = !Number.isFinite(decidedAt) || now.getTime() - decidedAt < RECENT_DECISION_MS;
  return {
    status: {
      ...gen,
      conditions: setCondition(
        req.status?.conditions,
        { type: ACCESS_REQUEST_CONDITIONS.decided, status: 'True', reason: phase, message, ...gen },
        now,
      ),
    },
    events: recent ? [event] : [],
    relatedEvents: recent ? onPod(req, event) : [],
  };
}

/** A decision older than this when the operator first sees it is recorded without Events. */
export const RECENT_DECISION_MS = 10 * 60_000;

export function reconcileAccessRequest(
  req: AccessRequest,
  deps: AccessRequestReconcileDeps,
): ReconcileOutcome<AccessRequestStatus> {
  if (isDecided(req)) return recordDecision(req, deps.now());
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
  const expired: EventSpec = { type: 'Normal', reason: 'Expired', message };
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
    events: [expired],
    relatedEvents: onPod(req, expired),
  };
}
