// An AccessRequest as the broker creates it, for the notification tests.
import type { AccessRequest } from '@chaperone/api';

export function sampleRequest(
  over: Partial<AccessRequest['status']> = {},
  text = 'UPDATE orders SET status = $1 WHERE id = $2',
): AccessRequest {
  return {
    apiVersion: 'chaperone.dev/v1alpha1',
    kind: 'AccessRequest',
    metadata: { name: 'orders-db-7f3a9c', namespace: 'shop', uid: '0b5c-uid' },
    spec: {
      requester: {
        serviceAccount: { namespace: 'shop', name: 'orders-agent' },
        pod: { name: 'orders-agent-1', uid: 'pod-uid' },
        onBehalfOf: { user: 'bob@example.com' },
      },
      connection: 'orders-db',
      policy: 'orders-agents',
      rule: 'write-needs-approval',
      sessionId: 'sess-1',
      operation: { type: 'postgres', class: 'write', text, riskReasons: ['rule write-needs-approval'] },
      expiresAt: '2030-01-01T12:10:00Z',
    },
    status: { phase: 'Pending', ...over },
  };
}
