import { readFileSync } from 'node:fs';
import { type AccessPolicy, applyDefaults } from '@chaperone/api';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { STRATEGY_STRENGTH } from '../masking/masking-plan.js';
import { BUILTIN_DETECTORS } from '../masking/value-detectors.js';
import { APPROVAL_DEFAULTS, APPROVAL_LIMITS, DEFAULT_GUARDRAILS, MASKING_DEFAULTS } from './defaults.js';
import { GUARDRAIL_PROTOCOLS } from './guardrails.js';
import { compilePolicies } from './policy-engine.js';
import { RULE_ACTIONS } from './rules.js';
import { agent, connection, kube, pg, risk, sshExec } from './test-fixtures.js';

// The engine applies the CRD's defaults itself (standalone YAML never meets an API server). These
// tests read them from the CRD so that the constants cannot drift from it.

interface SchemaNode {
  default?: unknown;
  enum?: unknown[];
  minimum?: number;
  maximum?: number;
  properties?: Record<string, SchemaNode>;
  items?: SchemaNode;
}

const crd = parse(
  readFileSync(new URL('../../../crds/chaperone.dev_accesspolicies.yaml', import.meta.url), 'utf8'),
) as {
  spec: { versions: { schema: { openAPIV3Schema: SchemaNode } }[] };
};
const specSchema = crd.spec.versions[0]?.schema.openAPIV3Schema.properties?.spec;

function at(...path: string[]): SchemaNode {
  let node: SchemaNode | undefined = specSchema;
  for (const step of path) node = step === '[]' ? node?.items : node?.properties?.[step];
  if (!node) throw new Error(`no schema at spec.${path.join('.')}`);
  return node;
}

const sorted = (xs: Iterable<unknown>) => [...xs].map(String).sort();

describe('defaults equal the CRD', () => {
  it('spec.guardrails default', () => {
    expect(DEFAULT_GUARDRAILS).toEqual(at('guardrails').default);
  });
  it('spec.approval.required and timeout defaults and bounds', () => {
    expect(APPROVAL_DEFAULTS.required).toBe(at('approval', 'required').default);
    expect(APPROVAL_DEFAULTS.timeout).toBe(at('approval', 'timeout').default);
    expect(APPROVAL_LIMITS.minRequired).toBe(at('approval', 'required').minimum);
    expect(APPROVAL_LIMITS.maxRequired).toBe(at('approval', 'required').maximum);
  });
  it('spec.masking strategy, leakage and secretData defaults', () => {
    expect(MASKING_DEFAULTS.strategy).toBe(at('masking', 'columns', '[]', 'strategy').default);
    expect(MASKING_DEFAULTS.strategy).toBe(at('masking', 'detectors', '[]', 'strategy').default);
    expect(MASKING_DEFAULTS.leakage).toBe(at('masking', 'leakage').default);
    expect(MASKING_DEFAULTS.secretData).toBe(at('masking', 'kubernetes', 'secretData').default);
  });
});

describe('enums the engine knows equal the CRD', () => {
  it('guardrail detectors', () => {
    expect(sorted(Object.keys(GUARDRAIL_PROTOCOLS))).toEqual(
      sorted(at('guardrails', '[]', 'detector').enum ?? []),
    );
  });
  it('value detectors (built-in + custom)', () => {
    expect(sorted([...Object.keys(BUILTIN_DETECTORS), 'custom'])).toEqual(
      sorted(at('masking', 'detectors', '[]', 'type').enum ?? []),
    );
  });
  it('masking strategies', () => {
    expect(sorted(Object.keys(STRATEGY_STRENGTH))).toEqual(
      sorted(at('masking', 'columns', '[]', 'strategy').enum ?? []),
    );
  });
  it('rule actions', () => {
    expect(sorted(RULE_ACTIONS)).toEqual(sorted(at('rules', '[]', 'action').enum ?? []));
  });
});

describe('a policy decides the same with or without the API server defaults', () => {
  const bare: AccessPolicy = {
    apiVersion: 'chaperone.dev/v1alpha1',
    kind: 'AccessPolicy',
    metadata: { name: 'bare', namespace: 'shop' },
    spec: {
      subjects: [{ kind: 'ServiceAccount', name: 'agent' }],
      connections: { names: ['orders-db', 'bastion', 'cluster-api'] },
      rules: [
        { name: 'write', action: 'approve', postgres: { operations: ['write'] } },
        { name: 'everything', action: 'allow' },
      ],
      approval: { approvers: { groups: ['dba'] } },
    },
  };
  const defaulted = applyDefaults(bare);
  it('applyDefaults really fills in what the engine defaults', () => {
    expect(defaulted.spec.guardrails).toBeDefined();
    expect(defaulted.spec.approval?.timeout).toBeDefined();
  });
  it.each([
    ['orders-db', 'postgres', pg(['write'], ['public.orders'], [risk('delete-without-where')])],
    ['orders-db', 'postgres', pg(['read'], ['public.orders'], [risk('file-access')])],
    ['orders-db', 'postgres', pg(['session'], [], [risk('set-role')])],
    ['orders-db', 'postgres', pg(['write'], ['public.orders'])],
    ['orders-db', 'postgres', pg(['read'], ['public.orders'], [risk('unbounded-select')])],
    ['bastion', 'ssh', sshExec('rm -rf /', [risk('rm-rf')])],
    [
      'cluster-api',
      'kubernetes',
      kube('get', 'secrets', { namespace: 'shop', risks: [risk('read-secrets')] }),
    ],
    [
      'cluster-api',
      'kubernetes',
      kube('create', 'pods', { subresource: 'exec', namespace: 'shop', risks: [risk('exec')] }),
    ],
  ] as const)('%s: %j', (name, type, op) => {
    const target = connection(name, { type });
    expect(compilePolicies([bare], target).decide(agent(), op)).toEqual(
      compilePolicies([defaulted], target).decide(agent(), op),
    );
  });
});
