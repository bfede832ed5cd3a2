import type { AccessRequest } from '@chaperone/api';
import { describe, expect, it } from 'vitest';
import { isDecided, reconcileAccessRequest } from './access-request-reconciler.js';

const NOW = new Date('2030-01-01T12:00:00Z');

function request(status?: AccessRequest['status'], expiresAt = '2030-01-01T12:00:30Z'): AccessRequest {
  return {
    apiVersion: 'chaperone.dev/v1alpha1',
    kind: 'AccessRequest',
    metadata: { name: 'orders-db-7f3a9c', namespace: 'team-a', generation: 1 },
    spec: {
      requester: { serviceAccount: { namespace: 'team-a', name: 'orders-agent' } },
      connection: 'orders-db',
      policy: 'orders-agents',
      operation: { type: 'postgres', text: 'DELETE FROM orders' },
      expiresAt,
    },
    ...(status ? { status } : {}),
  };
}

const deps = { now: () => NOW };

describe('reconcileAccessRequest', () => {
  it.each([
    { name: 'no status yet', status: undefined },
    { name: 'Pending', status: { phase: 'Pending' as const } },
  ])('$name and not yet due → no write, requeue exactly when due', ({ status }) => {
    const out = reconcileAccessRequest(request(status), deps);
    expect(out.status).toBeUndefined();
    expect(out.events).toEqual([]);
    expect(out.requeueAfterMs).toBe(30_000);
  });

  it.each([
    { name: 'exactly at expiresAt', expiresAt: '2030-01-01T12:00:00Z' },
    { name: 'past expiresAt', expiresAt: '2029-12-31T00:00:00Z' },
    { name: 'fractional seconds', expiresAt: '2030-01-01T11:59:59.500Z' },
  ])('Pending $name → Expired with a Decided condition and an Event', ({ expiresAt }) => {
    const out = reconcileAccessRequest(request({ phase: 'Pending' }, expiresAt), deps);
    expect(out.status?.phase).toBe('Expired');
    expect(out.status?.observedGeneration).toBe(1);
    expect(out.status?.conditions).toEqual([
      expect.objectContaining({ type: 'Decided', status: 'True', reason: 'Expired', observedGeneration: 1 }),
    ]);
    expect(out.status?.conditions?.[0]?.message).toContain(expiresAt);
    // Only owned fields: a merge patch must not touch decision or approvals.
    expect(Object.keys(out.status ?? {}).sort()).toEqual(['conditions', 'observedGeneration', 'phase']);
    expect(out.events).toEqual([expect.objectContaining({ type: 'Normal', reason: 'Expired' })]);
    // No pod in the spec: no Event for one.
    expect(out.relatedEvents).toEqual([]);
    expect(out.requeueAfterMs).toBeUndefined();
  });

  it.each([
    { name: 'Expired', status: { phase: 'Expired' as const } },
    {
      name: 'decision without phase yet',
      status: { phase: 'Pending' as const, decision: { verdict: 'Approved' as const } },
    },
  ])('$name, even long past expiresAt → nothing', ({ status }) => {
    const out = reconcileAccessRequest(request(status, '2000-01-01T00:00:00Z'), deps);
    expect(isDecided(request(status))).toBe(true);
    expect(out).toEqual({ events: [] });
  });

  it.each([
    { verdict: 'Approved' as const, type: 'Normal' },
    { verdict: 'Denied' as const, type: 'Warning' },
  ])(
    '$verdict → a Decided condition once, with an Event on the request and on the agent pod',
    ({ verdict, type }) => {
      const req = request(
        { phase: verdict, decision: { verdict, by: 'alice', comment: 'ok <b>' } },
        '2000-01-01T00:00:00Z',
      );
      req.spec.requester.pod = { name: 'agent-1', uid: 'pod-uid' };
      const out = reconcileAccessRequest(req, deps);
      expect(Object.keys(out.status ?? {}).sort()).toEqual(['conditions', 'observedGeneration']);
      expect(out.status?.conditions).toEqual([
        expect.objectContaining({ type: 'Decided', status: 'True', reason: verdict }),
      ]);
      expect(out.events).toEqual([expect.objectContaining({ type, reason: verdict })]);
      expect(out.events[0]?.message).toContain('by alice');
      expect(out.relatedEvents).toEqual([
        {
          object: { apiVersion: 'v1', kind: 'Pod', namespace: 'team-a', name: 'agent-1', uid: 'pod-uid' },
          event: expect.objectContaining({
            reason: verdict,
            message: expect.stringContaining('team-a/orders-db-7f3a9c'),
          }),
        },
      ]);
      // Once written, nothing more: a restart does not repeat the Events.
      const again = reconcileAccessRequest({ ...req, status: { ...req.status, ...out.status } }, deps);
      expect(again).toEqual({ events: [] });
    },
  );

  it('an unparseable expiresAt warns and never writes', () => {
    const out = reconcileAccessRequest(request({ phase: 'Pending' }, 'soon'), deps);
    expect(out.status).toBeUndefined();
    expect(out.requeueAfterMs).toBeUndefined();
    expect(out.events).toEqual([expect.objectContaining({ type: 'Warning', reason: 'InvalidExpiresAt' })]);
  });

  it('keeps conditions others set (Notified)', () => {
    const notified = {
      type: 'Notified',
      status: 'True' as const,
      lastTransitionTime: '2030-01-01T11:59:00Z',
      reason: 'Sent',
      message: 'approvers notified',
    };
    const out = reconcileAccessRequest(
      request({ phase: 'Pending', conditions: [notified] }, '2030-01-01T11:00:00Z'),
      deps,
    );
    expect(out.status?.conditions?.map((c) => c.type)).toEqual(['Notified', 'Decided']);
    expect(out.status?.conditions?.[0]).toEqual(notified);
  });
});
