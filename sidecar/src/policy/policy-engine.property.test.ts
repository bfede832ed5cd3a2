import type { AccessPolicy, Guardrail, PolicyRule } from '@chaperone/api';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileMasking } from '../masking/masking-plan.js';
import { GUARDRAIL_PROTOCOLS, SEVERITY } from './guardrails.js';
import { compilePolicies } from './policy-engine.js';
import { connection } from './test-fixtures.js';
import type { Identity, Operation, PolicyDecision } from './types.js';

// Small vocabularies so that generated rules and operations actually meet, plus arbitrary strings.
const word = (...xs: string[]) =>
  fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...xs) },
    { weight: 1, arbitrary: fc.string({ maxLength: 12 }) },
  );
const table = word(
  'public.orders',
  'public.customers',
  'billing.invoices',
  'orders',
  'Public.Orders',
  'a.b.c',
);
const tableGlob = fc.constantFrom(
  'public.orders',
  'public.*',
  '*.customers',
  'billing.*',
  '*.*',
  'public.order?',
);
const pgClass = fc.constantFrom('read', 'write', 'ddl', 'admin', 'copy', 'session' as const);
const detector = fc.oneof(fc.constantFrom(...Object.keys(GUARDRAIL_PROTOCOLS)), fc.string({ maxLength: 8 }));
const risks = fc.array(fc.record({ detector, reason: fc.string({ maxLength: 20 }) }), { maxLength: 3 });
const command = word('df -h', 'systemctl status nginx', 'ls; rm -rf /', 'sudo reboot', 'cat /etc/shadow', '');

const operation: fc.Arbitrary<Operation> = fc.oneof(
  fc.record({
    type: fc.constant('postgres' as const),
    classes: fc.uniqueArray(pgClass, { maxLength: 3 }),
    tables: fc.array(table, { maxLength: 3 }),
    risks,
  }),
  fc.record(
    {
      type: fc.constant('ssh' as const),
      operation: fc.constantFrom('shell', 'exec', 'port-forward', 'sftp' as const),
      command,
      target: word('db.internal:5432', '10.0.0.7:443', '[::1]:22', 'x', 'evil.example:1'),
      risks,
    },
    { requiredKeys: ['type', 'operation', 'risks'] },
  ),
  fc.record(
    {
      type: fc.constant('kubernetes' as const),
      verb: word('get', 'list', 'create', 'delete', 'deletecollection'),
      apiGroup: word('', 'apps', 'batch'),
      resource: word('pods', 'secrets', 'deployments', 'namespaces'),
      subresource: word('exec', 'log', 'scale'),
      namespace: word('shop', 'billing'),
      name: word('web', 'api'),
      risks,
    },
    { requiredKeys: ['type', 'verb', 'apiGroup', 'resource', 'risks'] },
  ),
);

const ruleMatch = fc.oneof(
  fc.constant({}),
  fc.record({
    postgres: fc.record(
      {
        operations: fc.uniqueArray(fc.constantFrom('read', 'write', 'ddl', 'admin', 'copy' as const), {
          maxLength: 3,
        }),
        tables: fc.uniqueArray(tableGlob, { maxLength: 2 }),
      },
      { requiredKeys: [] },
    ),
  }),
  fc.record({
    ssh: fc.oneof(
      fc.record({
        operations: fc.constant<'exec'[]>(['exec']),
        commands: fc.uniqueArray(fc.constantFrom('df -h', 'systemctl status *', 'rm *', '*'), {
          minLength: 1,
          maxLength: 2,
        }),
      }),
      fc.record({
        forwardTargets: fc.uniqueArray(fc.constantFrom('db.internal:5432', '10.0.0.*:*', '*:*'), {
          minLength: 1,
          maxLength: 2,
        }),
      }),
      fc.record({
        operations: fc.uniqueArray(fc.constantFrom('shell', 'exec', 'port-forward', 'sftp' as const), {
          maxLength: 2,
        }),
      }),
    ),
  }),
  fc.record({
    kubernetes: fc.record(
      {
        verbs: fc.uniqueArray(fc.constantFrom('get', 'list', 'create', 'delete', '*'), { maxLength: 2 }),
        apiGroups: fc.uniqueArray(fc.constantFrom('', 'apps', '*'), { maxLength: 2 }),
        resources: fc.uniqueArray(fc.constantFrom('pods', 'pods/exec', 'secrets', '*', 'pods/*'), {
          maxLength: 2,
        }),
        namespaces: fc.uniqueArray(fc.constantFrom('shop', '*'), { maxLength: 1 }),
        resourceNames: fc.uniqueArray(fc.constantFrom('web'), { maxLength: 1 }),
      },
      { requiredKeys: [] },
    ),
  }),
);

const rule = (name: string): fc.Arbitrary<PolicyRule> =>
  fc
    .tuple(fc.constantFrom('allow', 'deny', 'approve' as const), ruleMatch)
    .map(([action, m]) => ({ name, action, ...m }));

const rules = fc
  .integer({ min: 1, max: 4 })
  .chain((n) => fc.tuple(...Array.from({ length: n }, (_, i) => rule(`r${i}`))));

const guardrails: fc.Arbitrary<Guardrail[] | undefined> = fc.option(
  fc.uniqueArray(
    fc.record({
      detector: fc.constantFrom(...(Object.keys(GUARDRAIL_PROTOCOLS) as Guardrail['detector'][])),
      action: fc.constantFrom('approve', 'deny' as const),
    }),
    { selector: (g) => g.detector, maxLength: 4 },
  ),
  { nil: undefined },
);

const policy = (name: string): fc.Arbitrary<AccessPolicy> =>
  fc
    .record({
      rules,
      guardrails,
      approvers: fc.boolean(),
      timeout: fc.constantFrom(undefined, '10m', '1h', 'bogus'),
    })
    .map(({ rules, guardrails, approvers, timeout }) => ({
      apiVersion: 'chaperone.dev/v1alpha1',
      kind: 'AccessPolicy',
      metadata: { name, namespace: 'shop' },
      spec: {
        subjects: [{ kind: 'ServiceAccount', name: 'agent' }],
        connections: { selector: {} },
        rules,
        ...(guardrails ? { guardrails } : {}),
        approval: {
          ...(approvers ? { approvers: { groups: ['dba'] } } : {}),
          ...(timeout ? { timeout } : {}),
        },
      },
    }));

const policies = fc.tuple(policy('a'), policy('b'), fc.boolean()).map(([a, b, two]) => (two ? [a, b] : [a]));
const who: Identity = { serviceAccount: { namespace: 'shop', name: 'agent' }, groups: [] };
const targetFor = (op: Operation) => connection('c', { type: op.type });

function wellFormed(d: PolicyDecision): void {
  expect(['allow', 'deny', 'approve']).toContain(d.action);
  if (d.action === 'allow') {
    expect(typeof d.policy).toBe('string');
    expect(typeof d.rule).toBe('string');
  } else {
    expect(d.reason.length).toBeGreaterThan(0);
  }
  if (d.action === 'approve') {
    expect(d.approvers.groups.length + d.approvers.users.length).toBeGreaterThan(0);
    expect(Number.isInteger(d.required)).toBe(true);
    expect(d.timeoutMs).toBeGreaterThanOrEqual(10_000);
  }
}

describe('properties', () => {
  it('decide() never throws and always returns a well-formed decision', () => {
    fc.assert(
      fc.property(policies, operation, (ps, op) => {
        wellFormed(compilePolicies(ps, targetFor(op)).decide(who, op));
      }),
      { numRuns: 2000 },
    );
  });

  it('decide() never throws on malformed operations', () => {
    const junk = fc.record(
      {
        type: fc.constantFrom('postgres', 'ssh', 'kubernetes', 'ftp'),
        classes: fc.anything(),
        tables: fc.anything(),
        risks: fc.anything(),
        operation: fc.anything(),
        command: fc.anything(),
      },
      { requiredKeys: ['type'] },
    );
    fc.assert(
      fc.property(policies, junk, (ps, op) => {
        const d = compilePolicies(ps, connection('c', { type: 'postgres' })).decide(
          who,
          op as unknown as Operation,
        );
        expect(['allow', 'deny', 'approve']).toContain(d.action);
      }),
      { numRuns: 1000 },
    );
  });

  it('adding a deny rule at the front of a policy never makes a decision less restrictive', () => {
    fc.assert(
      fc.property(policies, operation, fc.nat(), rule('front-deny'), (ps, op, which, extra) => {
        const target = targetFor(op);
        const before = compilePolicies(ps, target).decide(who, op);
        const i = which % ps.length;
        const changed = ps.map((p, j) =>
          j === i
            ? { ...p, spec: { ...p.spec, rules: [{ ...extra, action: 'deny' as const }, ...p.spec.rules] } }
            : p,
        );
        const after = compilePolicies(changed, target).decide(who, op);
        expect(SEVERITY[after.action]).toBeGreaterThanOrEqual(SEVERITY[before.action]);
        if (before.action === 'deny') expect(after.action).toBe('deny');
      }),
      { numRuns: 2000 },
    );
  });

  it('a session-only statement without risks is allowed by every usable policy set', () => {
    fc.assert(
      fc.property(policies, (ps) => {
        const engine = compilePolicies(ps, connection('c'));
        fc.pre(engine.problems.length === 0);
        expect(
          engine.decide(who, { type: 'postgres', classes: ['session'], tables: [], risks: [] }),
        ).toMatchObject({ action: 'allow', rule: '(session)' });
      }),
      { numRuns: 300 },
    );
  });

  it('masking detect() never throws on arbitrary text', () => {
    const r = compileMasking([
      {
        apiVersion: 'chaperone.dev/v1alpha1',
        kind: 'AccessPolicy',
        metadata: { name: 'm' },
        spec: {
          subjects: [],
          connections: {},
          rules: [],
          masking: {
            detectors: [
              { type: 'email' },
              { type: 'credit-card' },
              { type: 'national-id' },
              { type: 'jwt' },
              { type: 'cloud-key' },
              { type: 'private-key' },
              { type: 'custom', name: 'c', pattern: '[0-9]{3}x' },
            ],
          },
        },
      },
    ]);
    if (!r.ok) throw new Error(r.errors.join());
    const text = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 200 }),
      fc.stringMatching(/^[0-9 @.\-eyJAKIAa-z]{0,200}$/),
    );
    fc.assert(
      fc.property(text, (t) => {
        const s = r.plan.detect(t);
        expect(s === undefined || ['null', 'redact', 'hash', 'partial'].includes(s)).toBe(true);
      }),
      { numRuns: 3000 },
    );
  });
});
