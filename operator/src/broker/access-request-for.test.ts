import type { BrokerAccessRequestCreate } from '@chaperone/api';
import { describe, expect, it } from 'vitest';
import {
  accessRequestFor,
  MAX_APPROVAL_TIMEOUT_SECONDS,
  MIN_APPROVAL_TIMEOUT_SECONDS,
} from './access-request-for.js';
import type { SidecarIdentity } from './sidecar-identity.js';

const identity: SidecarIdentity = {
  namespace: 'agents',
  serviceAccount: 'orders-agent',
  pod: { name: 'orders-agent-5d9c7b6f4-x2x7k', uid: 'uid-1', labels: {} },
  connections: ['orders-db'],
};

const body = (over: Partial<BrokerAccessRequestCreate> = {}): BrokerAccessRequestCreate => ({
  connection: 'orders-db',
  policy: 'orders-agents',
  rule: 'write-needs-approval',
  sessionId: 'S1',
  operation: {
    type: 'postgres',
    class: 'write',
    text: 'DELETE FROM orders WHERE id = $1',
    fingerprint: 'f',
    riskReasons: ['r'],
  },
  timeoutSeconds: 600,
  ...over,
});

const now = new Date('2030-01-01T12:00:00Z');

describe('accessRequestFor', () => {
  it('takes the requester from the verified identity and sets expiresAt from the timeout', () => {
    const ar = accessRequestFor(identity, body({ onBehalfOf: { user: 'bob', groups: ['oncall'] } }), now);
    expect(ar.metadata.namespace).toBe('agents');
    expect(ar.metadata.generateName).toBe('orders-db-');
    expect(ar.metadata.labels).toEqual({
      'chaperone.dev/connection': 'orders-db',
      'chaperone.dev/policy': 'orders-agents',
      'chaperone.dev/pod': 'orders-agent-5d9c7b6f4-x2x7k',
    });
    expect(ar.spec.requester).toEqual({
      serviceAccount: { namespace: 'agents', name: 'orders-agent' },
      pod: { name: 'orders-agent-5d9c7b6f4-x2x7k', uid: 'uid-1' },
      onBehalfOf: { user: 'bob', groups: ['oncall'] },
    });
    expect(ar.spec.expiresAt).toBe('2030-01-01T12:10:00.000Z');
  });

  it('clamps the timeout', () => {
    expect(
      new Date(accessRequestFor(identity, body({ timeoutSeconds: 1 }), now).spec.expiresAt).getTime() -
        now.getTime(),
    ).toBe(MIN_APPROVAL_TIMEOUT_SECONDS * 1000);
    expect(
      new Date(accessRequestFor(identity, body({ timeoutSeconds: 1e9 }), now).spec.expiresAt).getTime() -
        now.getTime(),
    ).toBe(MAX_APPROVAL_TIMEOUT_SECONDS * 1000);
  });

  it('truncates very long statement text and keeps label values valid', () => {
    const ar = accessRequestFor(
      identity,
      body({ policy: 'p'.repeat(70), operation: { ...body().operation, text: 'x'.repeat(10_000) } }),
      now,
    );
    expect(ar.spec.operation.text.length).toBeLessThanOrEqual(4097);
    expect(ar.metadata.labels?.['chaperone.dev/policy']).toHaveLength(63);
  });
});
