import type { AccessPolicy, Connection } from '@chaperone/api';
import { describe, expect, it } from 'vitest';
import { reconcileAccessPolicy } from './access-policy-reconciler.js';

const NOW = new Date('2030-01-01T12:00:00Z');

function policy(spec: Partial<AccessPolicy['spec']> = {}, status?: AccessPolicy['status']): AccessPolicy {
  return {
    apiVersion: 'chaperone.dev/v1alpha1',
    kind: 'AccessPolicy',
    metadata: { name: 'orders-agents', namespace: 'team-a', generation: 2 },
    spec: {
      subjects: [
        { kind: 'ServiceAccount', name: 'orders-agent' },
        { kind: 'ServiceAccount', name: 'ci', namespace: 'ci' },
        { kind: 'Group', name: 'oncall' },
        { kind: 'User', name: 'bob@example.com' },
      ],
      connections: { names: ['orders-db'] },
      rules: [{ name: 'read', action: 'allow' }],
      guardrails: [],
      ...spec,
    },
    ...(status ? { status } : {}),
  };
}

function connections(...items: [string, Record<string, string>?][]): Pick<Connection, 'metadata'>[] {
  return items.map(([name, labels]) => ({
    metadata: { name, namespace: 'team-a', ...(labels ? { labels } : {}) },
  }));
}

const deps = (conns: Pick<Connection, 'metadata'>[]) => ({
  now: () => NOW,
  connectionsIn: (ns: string) => (ns === 'team-a' ? conns : []),
});

function condition(p: ReturnType<typeof reconcileAccessPolicy>, type: string) {
  return p.status?.conditions?.find((c) => c.type === type);
}

describe('reconcileAccessPolicy', () => {
  it('Ready when every named Connection exists; lists Connections and identities', () => {
    const out = reconcileAccessPolicy(policy(), deps(connections(['orders-db'], ['other'])));
    expect(condition(out, 'Ready')).toMatchObject({ status: 'True', reason: 'Ready', observedGeneration: 2 });
    expect(condition(out, 'ConnectionsResolved')).toMatchObject({ status: 'True' });
    expect(out.status).toMatchObject({
      observedGeneration: 2,
      connections: ['orders-db'],
      ruleCount: 1,
      appliesTo: {
        serviceAccounts: ['ci/ci', 'team-a/orders-agent'],
        groups: ['oncall'],
        users: ['bob@example.com'],
      },
    });
    expect(out.events).toEqual([expect.objectContaining({ type: 'Normal', reason: 'Ready' })]);
  });

  it('Ready=False naming every missing Connection', () => {
    const out = reconcileAccessPolicy(
      policy({ connections: { names: ['orders-db', 'billing-db', 'audit-db'] } }),
      deps(connections(['orders-db'])),
    );
    const ready = condition(out, 'Ready');
    expect(ready).toMatchObject({ status: 'False', reason: 'ConnectionsNotFound' });
    expect(ready?.message).toContain('audit-db, billing-db');
    expect(ready?.message).toContain('"team-a"');
    expect(condition(out, 'ConnectionsResolved')).toMatchObject({
      status: 'False',
      reason: 'ConnectionsNotFound',
    });
    expect(out.status?.connections).toEqual(['orders-db']);
    expect(out.events).toEqual([expect.objectContaining({ type: 'Warning', reason: 'ConnectionsNotFound' })]);
  });

  it('selects by label as well as by name (union), from its own namespace only', () => {
    const out = reconcileAccessPolicy(
      policy({ connections: { names: ['orders-db'], selector: { matchLabels: { tier: 'prod' } } } }),
      deps(connections(['orders-db'], ['billing-db', { tier: 'prod' }], ['dev-db', { tier: 'dev' }])),
    );
    expect(out.status?.connections).toEqual(['billing-db', 'orders-db']);
  });

  it.each([
    { name: 'an approve rule', spec: { rules: [{ name: 'w', action: 'approve' as const }] }, says: 'rule w' },
    {
      name: 'an approve guardrail',
      spec: { guardrails: [{ detector: 'drop' as const, action: 'approve' as const }] },
      says: 'guardrail drop',
    },
    {
      name: 'absent guardrails (the CRD default approves)',
      spec: { guardrails: undefined },
      says: 'default guardrails',
    },
  ])('$name without approvers → Ready=False NoApprovers', ({ spec, says }) => {
    const out = reconcileAccessPolicy(policy(spec), deps(connections(['orders-db'])));
    const ready = condition(out, 'Ready');
    expect(ready).toMatchObject({ status: 'False', reason: 'NoApprovers' });
    expect(ready?.message).toContain(says);
    expect(ready?.message).toContain('spec.approval.approvers');
  });

  it('approve actions with approvers are fine', () => {
    const out = reconcileAccessPolicy(
      policy({ rules: [{ name: 'w', action: 'approve' }], approval: { approvers: { groups: ['dba'] } } }),
      deps(connections(['orders-db'])),
    );
    expect(condition(out, 'Ready')?.status).toBe('True');
  });

  it('a selector that matches nothing is valid and says so', () => {
    const out = reconcileAccessPolicy(
      policy({ connections: { selector: { matchLabels: { tier: 'none' } } } }),
      deps(connections(['orders-db'])),
    );
    expect(condition(out, 'Ready')).toMatchObject({ status: 'True' });
    expect(condition(out, 'Ready')?.message).toContain('selects no Connection');
    expect(out.status?.connections).toEqual([]);
  });

  it('re-running on its own status changes nothing and emits nothing', () => {
    const d = deps(connections(['orders-db']));
    const first = reconcileAccessPolicy(policy(), d);
    const second = reconcileAccessPolicy(policy({}, first.status), {
      ...d,
      now: () => new Date('2031-01-01T00:00:00Z'),
    });
    expect(second.status).toEqual(first.status);
    expect(second.events).toEqual([]);
  });

  it('deduplicates repeated subjects (the status lists are sets)', () => {
    const out = reconcileAccessPolicy(
      policy({
        subjects: [
          { kind: 'ServiceAccount', name: 'a' },
          { kind: 'ServiceAccount', name: 'a', namespace: 'team-a' },
        ],
      }),
      deps(connections(['orders-db'])),
    );
    expect(out.status?.appliesTo?.serviceAccounts).toEqual(['team-a/a']);
  });
});
