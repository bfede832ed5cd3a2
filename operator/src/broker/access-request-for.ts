// Pure: what the broker writes to the API server when a sidecar asks for approval. The requester
// comes from the verified token and pod, never from the request body.
import type { AccessRequest, BrokerAccessRequestCreate } from '@chaperone/api';
import {
  ACCESS_REQUEST_CONNECTION_LABEL,
  ACCESS_REQUEST_POD_LABEL,
  ACCESS_REQUEST_POLICY_LABEL,
} from '../operator-constants.js';
import type { SidecarIdentity } from './sidecar-identity.js';

export const MIN_APPROVAL_TIMEOUT_SECONDS = 10;
export const MAX_APPROVAL_TIMEOUT_SECONDS = 24 * 3600;
const MAX_TEXT = 4096;

/** Label values are ≤ 63 characters of [A-Za-z0-9._-], starting and ending alphanumeric. */
function labelValue(value: string): string {
  return value
    .replace(/[^A-Za-z0-9._-]/g, '-')
    .slice(0, 63)
    .replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, '');
}

export function accessRequestFor(
  identity: SidecarIdentity,
  body: BrokerAccessRequestCreate,
  now: Date,
): AccessRequest {
  const timeout = Math.min(
    MAX_APPROVAL_TIMEOUT_SECONDS,
    Math.max(MIN_APPROVAL_TIMEOUT_SECONDS, Math.floor(body.timeoutSeconds)),
  );
  const text =
    body.operation.text.length > MAX_TEXT
      ? `${body.operation.text.slice(0, MAX_TEXT)}…`
      : body.operation.text;
  return {
    apiVersion: 'chaperone.dev/v1alpha1',
    kind: 'AccessRequest',
    metadata: {
      generateName: `${body.connection.slice(0, 40)}-`,
      namespace: identity.namespace,
      labels: {
        [ACCESS_REQUEST_CONNECTION_LABEL]: labelValue(body.connection),
        [ACCESS_REQUEST_POLICY_LABEL]: labelValue(body.policy),
        [ACCESS_REQUEST_POD_LABEL]: labelValue(identity.pod.name),
      },
    },
    spec: {
      requester: {
        serviceAccount: { namespace: identity.namespace, name: identity.serviceAccount },
        pod: { name: identity.pod.name, uid: identity.pod.uid },
        ...(body.onBehalfOf
          ? { onBehalfOf: { user: body.onBehalfOf.user, groups: body.onBehalfOf.groups } }
          : {}),
      },
      connection: body.connection,
      policy: body.policy,
      rule: body.rule,
      sessionId: body.sessionId,
      operation: {
        type: body.operation.type,
        class: body.operation.class,
        text,
        fingerprint: body.operation.fingerprint,
        riskReasons: body.operation.riskReasons,
      },
      expiresAt: new Date(now.getTime() + timeout * 1000).toISOString(),
    },
  } as AccessRequest;
}

/** One line for the agent while it waits. */
export function howToApprove(namespace: string, name: string): string {
  return `an approver runs: kubectl chaperone approve ${name} -n ${namespace}  (or kubectl patch accessrequest ${name} -n ${namespace} --subresource=status --type=merge -p '{"status":{"decision":{"verdict":"Approved"}}}')`;
}
