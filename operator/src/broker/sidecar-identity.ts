// Pure checks that turn a TokenReview answer and the pod it names into the identity of a sidecar.
// The broker hands out credentials on the strength of this, so every step fails closed.
import {
  CONNECTIONS_ANNOTATION,
  parseConnectionsAnnotation,
  SIDECAR_TOKEN_AUDIENCE,
  STATUS_ANNOTATION,
  STATUS_INJECTED,
} from '@chaperone/api';
import type { V1Pod, V1TokenReviewStatus } from '@kubernetes/client-node';
import { SIDECAR_CONTAINER_NAME } from '../operator-constants.js';

export const POD_NAME_EXTRA = 'authentication.kubernetes.io/pod-name';
export const POD_UID_EXTRA = 'authentication.kubernetes.io/pod-uid';

export class BrokerAuthError extends Error {
  constructor(
    readonly status: 401 | 403 | 503,
    message: string,
    readonly hint?: string,
  ) {
    super(message);
  }
}

/** What a valid token says about its bearer, before the pod is looked at. */
export interface BoundToken {
  namespace: string;
  serviceAccount: string;
  podName: string;
  podUid: string;
}

export interface SidecarIdentity {
  namespace: string;
  serviceAccount: string;
  pod: { name: string; uid: string; labels: Record<string, string> };
  /** Connections the pod's annotation lists: the only ones the broker serves it. */
  connections: string[];
}

/** A TokenReview answer for our audience → the ServiceAccount and the pod the token is bound to. */
export function boundTokenOf(
  status: V1TokenReviewStatus | undefined,
  audience = SIDECAR_TOKEN_AUDIENCE,
): BoundToken {
  if (!status?.authenticated) {
    throw new BrokerAuthError(
      401,
      `the token was rejected by the Kubernetes API server for audience ${audience}${status?.error ? `: ${status.error}` : ''}`,
      `send the projected ServiceAccount token for audience ${audience} that the injected volume provides`,
    );
  }
  // An API server that ignores audiences answers with none; a token for another audience must not pass.
  if (!status.audiences?.includes(audience)) {
    throw new BrokerAuthError(401, `the token is not valid for audience ${audience}`);
  }
  const username = status.user?.username ?? '';
  const m = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(username);
  if (!m) {
    throw new BrokerAuthError(
      403,
      `only pod ServiceAccounts may use the broker; the token belongs to ${username || 'nobody'}`,
    );
  }
  const extra = status.user?.extra ?? {};
  const podName = extra[POD_NAME_EXTRA]?.[0];
  const podUid = extra[POD_UID_EXTRA]?.[0];
  if (!podName || !podUid) {
    throw new BrokerAuthError(
      403,
      'the token is not bound to a pod',
      'use the projected token of the injected volume (or TokenRequest with --bound-object-kind Pod)',
    );
  }
  return { namespace: m[1] as string, serviceAccount: m[2] as string, podName, podUid };
}

/** The pod the token is bound to must be the live, injected pod of that ServiceAccount. */
export function sidecarIdentityOf(token: BoundToken, pod: V1Pod | undefined): SidecarIdentity {
  const where = `pod ${token.namespace}/${token.podName}`;
  if (!pod || pod.metadata?.uid !== token.podUid) {
    throw new BrokerAuthError(403, `${where} (uid ${token.podUid}) no longer exists`);
  }
  if (pod.metadata?.deletionTimestamp) {
    throw new BrokerAuthError(403, `${where} is being deleted; no new credentials are issued to it`);
  }
  const podSa = pod.spec?.serviceAccountName ?? 'default';
  if (podSa !== token.serviceAccount) {
    throw new BrokerAuthError(403, `${where} runs as ServiceAccount ${podSa}, not ${token.serviceAccount}`);
  }
  const annotations = pod.metadata?.annotations ?? {};
  if (annotations[STATUS_ANNOTATION] !== STATUS_INJECTED) {
    throw new BrokerAuthError(
      403,
      `${where} was not injected by the chaperone webhook`,
      'opt the pod in (label chaperone.dev/inject=true or namespace label chaperone.dev/injection=enabled) and recreate it',
    );
  }
  return {
    namespace: token.namespace,
    serviceAccount: token.serviceAccount,
    pod: { name: token.podName, uid: token.podUid, labels: pod.metadata?.labels ?? {} },
    connections: injectedConnections(pod),
  };
}

/**
 * The Connections the webhook injected the sidecar for: its `--connections` argument. Container
 * args cannot change after creation, unlike the annotation, which anyone who may patch the pod
 * could extend; a pod whose annotation no longer matches gets only what it was injected with.
 */
export function injectedConnections(pod: V1Pod): string[] {
  const sidecar = pod.spec?.initContainers?.find((c) => c.name === SIDECAR_CONTAINER_NAME);
  const args = sidecar?.args ?? [];
  const i = args.indexOf('--connections');
  const injected = i >= 0 ? parseConnectionsAnnotation(args[i + 1]) : [];
  const annotated = new Set(parseConnectionsAnnotation(pod.metadata?.annotations?.[CONNECTIONS_ANNOTATION]));
  return injected.filter((name) => annotated.has(name));
}

/** The one check before anything is issued for a Connection. */
export function requireConnection(identity: SidecarIdentity, connection: string): void {
  if (!identity.connections.includes(connection)) {
    throw new BrokerAuthError(
      403,
      `pod ${identity.namespace}/${identity.pod.name} does not list Connection ${connection} in its ${CONNECTIONS_ANNOTATION} annotation`,
      'add it to the annotation and recreate the pod',
    );
  }
}
