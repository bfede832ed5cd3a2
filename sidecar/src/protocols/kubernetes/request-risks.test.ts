import { describe, expect, it } from 'vitest';
import { parse as parseYamlLike } from 'yaml';
import { deriveAttributes, type KubeRequestAttributes } from './request-attributes.js';
import { referencedSecrets, requestRisks } from './request-risks.js';
import { normaliseRequestTarget } from './request-target.js';

function attrs(method: string, target: string): KubeRequestAttributes {
  const t = normaliseRequestTarget(target);
  if (!t.ok) throw new Error(t.reason);
  const a = deriveAttributes(method, t.target);
  if (!a.ok) throw new Error(a.reason);
  return a.attributes;
}

const detectors = (method: string, target: string, body?: string, type = 'application/json') =>
  requestRisks(attrs(method, target), body === undefined ? undefined : Buffer.from(body), type).map(
    (r) => r.detector,
  );

const POD = {
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'p' },
  spec: {
    imagePullSecrets: [{ name: 'registry' }],
    containers: [
      { name: 'c', image: 'x', env: [{ name: 'A', valueFrom: { secretKeyRef: { name: 'db', key: 'pw' } } }] },
    ],
  },
};

describe('requestRisks', () => {
  it.each([
    ['DELETE', '/api/v1/namespaces/prod', ['delete-namespace']],
    ['DELETE', '/api/v1/namespaces', ['delete-namespace', 'delete-collection']],
    ['DELETE', '/api/v1/namespaces/p/pods', ['delete-collection']],
    ['GET', '/api/v1/namespaces/p/secrets', ['read-secrets']],
    ['GET', '/api/v1/namespaces/p/secrets/s', ['read-secrets']],
    ['GET', '/api/v1/watch/secrets', ['read-secrets']],
    ['POST', '/api/v1/namespaces/p/serviceaccounts/sa/token', ['read-secrets']],
    ['GET', '/api/v1/namespaces/p/pods/x/proxy/metrics', ['read-secrets']],
    ['GET', '/api/v1/namespaces/p/services/web:80/proxy/', ['read-secrets']],
    ['GET', '/api/v1/nodes/n1/proxy/configz', ['read-secrets']],
    ['GET', '/api/v1/proxy/namespaces/p/pods/x', ['read-secrets']],
    ['GET', '/api/v1/namespaces/p/pods/x/exec?command=sh', ['exec']],
    ['POST', '/api/v1/namespaces/p/pods/x/attach', ['exec']],
    ['POST', '/api/v1/namespaces/p/pods/x/portforward', ['exec']],
    ['PATCH', '/api/v1/namespaces/p/pods/x/ephemeralcontainers', ['exec']],
    ['GET', '/api/v1/namespaces/p/pods', []],
    ['GET', '/apis/example.com/v1/namespaces/p/secrets', []],
    ['GET', '/version', []],
  ])('%s %s', (method, target, expected) => {
    expect(detectors(method, target)).toEqual(expected);
  });

  it('flags workloads that mount or inject a Secret, in JSON and YAML', () => {
    const risks = requestRisks(
      attrs('POST', '/api/v1/namespaces/p/pods'),
      Buffer.from(JSON.stringify(POD)),
      'application/json',
    );
    expect(risks).toEqual([{ detector: 'read-secrets', reason: 'pods that mounts or injects Secret db' }]);
    const deploy = [
      'apiVersion: apps/v1',
      'kind: Deployment',
      'spec:',
      '  template:',
      '    spec:',
      '      volumes:',
      '      - name: v',
      '        secret: {secretName: tls}',
      '      - name: p',
      '        projected: {sources: [{secret: {name: extra}}]}',
      '      containers:',
      '      - name: c',
      '        envFrom: [{secretRef: {name: env}}]',
    ].join('\n');
    expect(
      detectors(
        'PATCH',
        '/apis/apps/v1/namespaces/p/deployments/d?fieldManager=x',
        deploy,
        'application/apply-patch+yaml',
      ),
    ).toEqual(['read-secrets']);
    expect(referencedSecrets(parseYamlLike(deploy))).toEqual(['tls', 'extra', 'env']);
  });

  it('does not flag image pull secrets or workloads without Secrets; flags opaque bodies', () => {
    const plain = { ...POD, spec: { ...POD.spec, containers: [{ name: 'c', image: 'x' }] } };
    expect(detectors('POST', '/api/v1/namespaces/p/pods', JSON.stringify(plain))).toEqual([]);
    expect(
      detectors('POST', '/api/v1/namespaces/p/pods', 'k8s\0binary', 'application/vnd.kubernetes.protobuf'),
    ).toEqual(['read-secrets']);
    expect(detectors('POST', '/api/v1/namespaces/p/configmaps', JSON.stringify(POD))).toEqual([]);
  });
});
