// The Events that announce a new AccessRequest, pure: one on the request (what `kubectl get events`
// and `kubectl describe accessrequest` show) and one on the agent pod that waits for it.

import { type AccessRequest, API_GROUP_VERSION } from '@chaperone/api';
import type { EventSpec, InvolvedObject } from '../controller/events.js';
import { requesterPod } from '../reconcilers/access-request-reconciler.js';
import { clip } from './notification-message.js';

export function requestedEvents(ar: AccessRequest): { object: InvolvedObject; event: EventSpec }[] {
  const ns = ar.metadata.namespace ?? '';
  const name = ar.metadata.name ?? '';
  const op = ar.spec.operation;
  const sa = ar.spec.requester.serviceAccount;
  const reasons = op.riskReasons?.length ? ` (${op.riskReasons.join('; ')})` : '';
  const what = `${op.type} ${op.class ?? 'operation'} on ${ar.spec.connection}${reasons}: ${clip(op.text, 200)}`;
  const decide = `kubectl chaperone approve ${name} -n ${ns} | kubectl chaperone deny ${name} -n ${ns} --reason TEXT`;
  const out: { object: InvolvedObject; event: EventSpec }[] = [
    {
      object: {
        apiVersion: API_GROUP_VERSION,
        kind: 'AccessRequest',
        namespace: ns,
        name,
        ...(ar.metadata.uid ? { uid: ar.metadata.uid } : {}),
      },
      event: {
        type: 'Normal',
        reason: 'ApprovalRequested',
        message: `${sa.namespace}/${sa.name} waits for approval of ${what}; expires ${ar.spec.expiresAt}. ${decide}`,
      },
    },
  ];
  const pod = requesterPod(ar);
  if (pod) {
    out.push({
      object: pod,
      event: {
        type: 'Normal',
        reason: 'ApprovalRequested',
        message: `waiting for approval (AccessRequest ${ns}/${name}) of ${what}`,
      },
    });
  }
  return out;
}
