import type { AccessPolicy, Connection } from '@chaperone/api';
import { describe, expect, it } from 'vitest';
import { kubernetesPolicyFactory } from './kubernetes-policy.js';
import { deriveAttributes, type KubeRequestAttributes } from './request-attributes.js';
import { normaliseRequestTarget } from './request-target.js';

const connection = {
  apiVersion: 'chaperone.dev/v1alpha1',
  kind: 'Connection',
  metadata: { name: 'cluster', namespace: 'shop' },
  spec: { type: 'kubernetes', endpoint: { url: 'https://k' }, listen: { port: 16443 }, credentials: {} },
} as Connection;

const policy = (name: string, spec: Partial<AccessPolicy['spec']>): AccessPolicy =>
  ({
    apiVersion: 'chaperone.dev/v1alpha1',
    kind: 'AccessPolicy',
    metadata: { name, namespace: 'shop' },
    spec: {
      subjects: [{ kind: 'ServiceAccount', name: 'bot' }],
      connections: { names: ['cluster'] },
      approval: { approvers: { groups: ['sre'] } },
      ...spec,
    },
  }) as AccessPolicy;

const bot = { serviceAccount: { namespace: 'shop', name: 'bot' }, groups: [] };

function attrs(method: string, path: string): KubeRequestAttributes {
  const t = normaliseRequestTarget(path);
  if (!t.ok) throw new Error(t.reason);
  const a = deriveAttributes(method, t.target);
  if (!a.ok) throw new Error(a.reason);
  return a.attributes;
}

function viewOf(policies: AccessPolicy[]) {
  const v = kubernetesPolicyFactory(connection, policies)(bot);
  if ('refused' in v) throw new Error(v.refused);
  return v;
}

describe('kubernetes policy view', () => {
  const reader = policy('reader', {
    rules: [
      { name: 'exec', action: 'approve', kubernetes: { resources: ['pods/exec'] } },
      { name: 'reads', action: 'allow', kubernetes: { verbs: ['get', 'list'], resources: ['pods'] } },
    ],
    guardrails: [],
  });

  it('decides resource requests by RBAC attributes, subresources included', () => {
    const v = viewOf([reader]);
    expect(v.decide(attrs('GET', '/api/v1/namespaces/a/pods'), [])).toMatchObject({
      action: 'allow',
      rule: 'reads',
    });
    expect(v.decide(attrs('POST', '/api/v1/namespaces/a/pods/p/exec?command=sh'), [])).toMatchObject({
      action: 'approve',
      rule: 'exec',
    });
    // pods/log is not pods: no rule matches.
    expect(v.decide(attrs('GET', '/api/v1/namespaces/a/pods/p/log'), []).action).toBe('deny');
    expect(v.decide(attrs('DELETE', '/api/v1/namespaces/a/pods/p'), []).action).toBe('deny');
  });

  it('lets discovery reads through and denies every other non-resource request', () => {
    const v = viewOf([reader]);
    for (const p of ['/api', '/apis', '/apis/apps/v1', '/version', '/openapi/v3', '/livez'])
      expect(v.decide(attrs('GET', p), [])).toMatchObject({ action: 'allow', rule: '(discovery)' });
    for (const [m, p] of [
      ['POST', '/api'],
      ['GET', '/logs/kube-apiserver.log'],
      ['GET', '/metrics'],
      ['GET', '/debug/pprof'],
      ['GET', '/apisx'],
    ] as const)
      expect(v.decide(attrs(m, p), []).action, `${m} ${p}`).toBe('deny');
  });

  it('escalates with the guardrails of the policy and its risks', () => {
    const v = viewOf([
      { ...reader, spec: { ...reader.spec, guardrails: [{ detector: 'read-secrets', action: 'deny' }] } },
    ]);
    const risk = [{ detector: 'read-secrets', reason: 'reads Secret values' }];
    expect(v.decide(attrs('GET', '/api/v1/namespaces/a/pods'), risk).action).toBe('deny');
  });

  it('shows Secret values only when every applicable policy says allow', () => {
    const allow = { masking: { kubernetes: { secretData: 'allow' as const } } };
    expect(viewOf([policy('a', allow)]).secretData).toBe('allow');
    expect(viewOf([policy('a', allow), policy('b', {})]).secretData).toBe('redact');
    expect(viewOf([policy('a', {})]).secretData).toBe('redact');
  });

  it('refuses an identity no policy names', () => {
    const v = kubernetesPolicyFactory(connection, [reader])({ groups: [], user: 'mallory' });
    expect(v).toHaveProperty('refused');
  });
});
