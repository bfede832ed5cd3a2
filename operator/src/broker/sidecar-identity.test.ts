import type { V1Pod, V1TokenReviewStatus } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import {
  BrokerAuthError,
  boundTokenOf,
  POD_NAME_EXTRA,
  POD_UID_EXTRA,
  requireConnection,
  sidecarIdentityOf,
} from './sidecar-identity.js';

const review = (over: Partial<V1TokenReviewStatus> = {}): V1TokenReviewStatus => ({
  authenticated: true,
  audiences: ['chaperone'],
  user: {
    username: 'system:serviceaccount:agents:orders-agent',
    extra: { [POD_NAME_EXTRA]: ['orders-agent-1'], [POD_UID_EXTRA]: ['uid-1'] },
  },
  ...over,
});

const pod = (
  over: {
    annotations?: Record<string, string>;
    uid?: string;
    sa?: string;
    deleting?: boolean;
    injected?: string;
  } = {},
): V1Pod => ({
  metadata: {
    name: 'orders-agent-1',
    namespace: 'agents',
    uid: over.uid ?? 'uid-1',
    labels: { app: 'orders' },
    annotations: over.annotations ?? {
      'chaperone.dev/status': 'injected',
      'chaperone.dev/connections': 'orders-db, bastion',
    },
    ...(over.deleting ? { deletionTimestamp: new Date() } : {}),
  },
  spec: {
    serviceAccountName: over.sa ?? 'orders-agent',
    initContainers: [
      {
        name: 'chaperone-sidecar',
        image: 'sidecar',
        args: ['--broker', 'https://b', '--connections', over.injected ?? 'orders-db,bastion'],
      },
    ],
    containers: [],
  },
});

function refusal(fn: () => unknown): { status: number; message: string } {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(BrokerAuthError);
    return { status: (err as BrokerAuthError).status, message: (err as Error).message };
  }
  throw new Error('expected a refusal');
}

describe('boundTokenOf', () => {
  it('reads the ServiceAccount and the bound pod', () => {
    expect(boundTokenOf(review())).toEqual({
      namespace: 'agents',
      serviceAccount: 'orders-agent',
      podName: 'orders-agent-1',
      podUid: 'uid-1',
    });
  });

  it.each<[string, V1TokenReviewStatus | undefined, number, RegExp]>([
    ['no answer', undefined, 401, /rejected/],
    [
      'not authenticated, with the reason',
      review({ authenticated: false, error: 'token expired' }),
      401,
      /token expired/,
    ],
    ['an audience-unaware answer', review({ audiences: undefined }), 401, /audience chaperone/],
    [
      'another audience',
      review({ audiences: ['https://kubernetes.default.svc'] }),
      401,
      /audience chaperone/,
    ],
    [
      'a human user',
      review({ user: { username: 'alice', extra: {} } }),
      403,
      /only pod ServiceAccounts.*alice/,
    ],
    [
      'a token not bound to a pod',
      review({ user: { username: 'system:serviceaccount:agents:orders-agent' } }),
      403,
      /not bound to a pod/,
    ],
    [
      'a pod name without its uid',
      review({ user: { username: 'system:serviceaccount:agents:x', extra: { [POD_NAME_EXTRA]: ['p'] } } }),
      403,
      /not bound to a pod/,
    ],
  ])('refuses %s', (_name, status, code, message) => {
    const r = refusal(() => boundTokenOf(status));
    expect(r.status).toBe(code);
    expect(r.message).toMatch(message);
  });
});

describe('sidecarIdentityOf', () => {
  const token = boundTokenOf(review());

  it('accepts the live injected pod of that ServiceAccount and lists its connections', () => {
    expect(sidecarIdentityOf(token, pod())).toEqual({
      namespace: 'agents',
      serviceAccount: 'orders-agent',
      pod: { name: 'orders-agent-1', uid: 'uid-1', labels: { app: 'orders' } },
      connections: ['orders-db', 'bastion'],
    });
  });

  it.each<[string, V1Pod | undefined, RegExp]>([
    ['a deleted pod', undefined, /no longer exists/],
    ['a pod of the same name recreated (other uid)', pod({ uid: 'uid-2' }), /no longer exists/],
    ['a pod being deleted', pod({ deleting: true }), /being deleted/],
    ['a pod running as another ServiceAccount', pod({ sa: 'admin' }), /runs as ServiceAccount admin/],
    [
      'a pod that was not injected',
      pod({ annotations: { 'chaperone.dev/connections': 'orders-db' } }),
      /not injected/,
    ],
  ])('refuses %s', (_name, p, message) => {
    const r = refusal(() => sidecarIdentityOf(token, p));
    expect(r.status).toBe(403);
    expect(r.message).toMatch(message);
  });

  it('serves only connections the sidecar was injected for and the annotation still lists', () => {
    const widened = pod({
      annotations: {
        'chaperone.dev/status': 'injected',
        'chaperone.dev/connections': 'orders-db,bastion,payments-db',
      },
    });
    expect(sidecarIdentityOf(token, widened).connections).toEqual(['orders-db', 'bastion']);
    const narrowed = pod({
      annotations: { 'chaperone.dev/status': 'injected', 'chaperone.dev/connections': 'bastion' },
    });
    expect(sidecarIdentityOf(token, narrowed).connections).toEqual(['bastion']);
    const noSidecar = { ...pod(), spec: { containers: [], serviceAccountName: 'orders-agent' } };
    expect(sidecarIdentityOf(token, noSidecar).connections).toEqual([]);
  });

  it('serves only the connections the annotation lists', () => {
    const identity = sidecarIdentityOf(token, pod());
    expect(() => requireConnection(identity, 'orders-db')).not.toThrow();
    expect(refusal(() => requireConnection(identity, 'payments-db')).message).toMatch(
      /does not list Connection payments-db/,
    );
  });
});
