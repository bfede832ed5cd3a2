import { describe, expect, it } from 'vitest';
import { fieldSelectorExactName } from './field-selector.js';
import { deriveAttributes, describeAttributes, type KubeRequestAttributes } from './request-attributes.js';
import { normaliseRequestTarget } from './request-target.js';

function attrs(method: string, target: string): KubeRequestAttributes {
  const t = normaliseRequestTarget(target);
  if (!t.ok) throw new Error(`refused: ${t.reason}`);
  const a = deriveAttributes(method, t.target);
  if (!a.ok) throw new Error(`no attributes: ${a.reason}`);
  return a.attributes;
}

type Row = [
  method: string,
  target: string,
  verb: string,
  group: string,
  resource: string,
  sub: string,
  ns: string,
  name: string,
];

// Expectations follow k8s.io/apiserver requestinfo_test.go semantics.
const RESOURCE_ROWS: Row[] = [
  ['GET', '/api/v1/namespaces', 'list', '', 'namespaces', '', '', ''],
  ['GET', '/api/v1/namespaces/other', 'get', '', 'namespaces', '', 'other', 'other'],
  ['PUT', '/api/v1/namespaces/other/status', 'update', '', 'namespaces', 'status', 'other', 'other'],
  ['PUT', '/api/v1/namespaces/other/finalize', 'update', '', 'namespaces', 'finalize', 'other', 'other'],
  ['GET', '/api/v1/namespaces/other/pods', 'list', '', 'pods', '', 'other', ''],
  ['GET', '/api/v1/namespaces/other/pods/foo', 'get', '', 'pods', '', 'other', 'foo'],
  ['HEAD', '/api/v1/namespaces/other/pods/foo', 'get', '', 'pods', '', 'other', 'foo'],
  ['GET', '/api/v1/pods', 'list', '', 'pods', '', '', ''],
  ['GET', '/api/v1/namespaces/other/pods/foo/log', 'get', '', 'pods', 'log', 'other', 'foo'],
  ['POST', '/api/v1/namespaces/other/pods/foo/exec', 'create', '', 'pods', 'exec', 'other', 'foo'],
  ['GET', '/api/v1/namespaces/other/pods/foo/exec', 'get', '', 'pods', 'exec', 'other', 'foo'],
  ['GET', '/api/v1/namespaces/other/pods?watch=true', 'watch', '', 'pods', '', 'other', ''],
  ['GET', '/api/v1/namespaces/other/pods?watch=1', 'watch', '', 'pods', '', 'other', ''],
  ['GET', '/api/v1/namespaces/other/pods?watch=', 'watch', '', 'pods', '', 'other', ''],
  ['GET', '/api/v1/namespaces/other/pods?watch=FALSE', 'list', '', 'pods', '', 'other', ''],
  ['GET', '/api/v1/namespaces/other/pods?watch=0', 'list', '', 'pods', '', 'other', ''],
  ['GET', '/api/v1/namespaces/other/pods?watch=0&watch=1', 'list', '', 'pods', '', 'other', ''],
  ['GET', '/api/v1/watch/namespaces/other/pods', 'watch', '', 'pods', '', 'other', ''],
  ['GET', '/api/v1/watch/namespaces/other/pods/foo', 'watch', '', 'pods', '', 'other', 'foo'],
  ['GET', '/api/v1/watch/pods', 'watch', '', 'pods', '', '', ''],
  ['GET', '/api/v1/proxy/namespaces/other/pods/foo/a/b', 'proxy', '', 'pods', '', 'other', 'foo'],
  ['GET', '/api/v1/namespaces/other/pods/foo/proxy/a/b', 'get', '', 'pods', 'proxy', 'other', 'foo'],
  ['POST', '/api/v1/namespaces/other/pods', 'create', '', 'pods', '', 'other', ''],
  ['PUT', '/api/v1/namespaces/other/pods/foo', 'update', '', 'pods', '', 'other', 'foo'],
  ['PATCH', '/api/v1/namespaces/other/pods/foo', 'patch', '', 'pods', '', 'other', 'foo'],
  ['DELETE', '/api/v1/namespaces/other/pods/foo', 'delete', '', 'pods', '', 'other', 'foo'],
  ['DELETE', '/api/v1/namespaces/other/pods', 'deletecollection', '', 'pods', '', 'other', ''],
  ['DELETE', '/api/v1/namespaces/other', 'delete', '', 'namespaces', '', 'other', 'other'],
  ['GET', '/apis/apps/v1/namespaces/other/deployments', 'list', 'apps', 'deployments', '', 'other', ''],
  [
    'PATCH',
    '/apis/apps/v1/namespaces/o/deployments/d/scale',
    'patch',
    'apps',
    'deployments',
    'scale',
    'o',
    'd',
  ],
  [
    'GET',
    '/apis/rbac.authorization.k8s.io/v1/clusterroles',
    'list',
    'rbac.authorization.k8s.io',
    'clusterroles',
    '',
    '',
    '',
  ],
  [
    'GET',
    '/apis/rbac.authorization.k8s.io/v1/clusterroles/system:basic-user',
    'get',
    'rbac.authorization.k8s.io',
    'clusterroles',
    '',
    '',
    'system:basic-user',
  ],
  [
    'POST',
    '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews',
    'create',
    'authorization.k8s.io',
    'selfsubjectaccessreviews',
    '',
    '',
    '',
  ],
  ['OPTIONS', '/api/v1/namespaces/other/pods', '', '', 'pods', '', 'other', ''],
  // fieldSelector metadata.name narrows a list to a name (only for list/watch)
  [
    'GET',
    '/api/v1/namespaces/o/secrets?fieldSelector=metadata.name%3Ds1',
    'list',
    '',
    'secrets',
    '',
    'o',
    's1',
  ],
  [
    'GET',
    '/api/v1/namespaces/o/secrets?fieldSelector=metadata.name%3D%3Ds1&watch=1',
    'watch',
    '',
    'secrets',
    '',
    'o',
    's1',
  ],
  [
    'GET',
    '/api/v1/namespaces/o/secrets?fieldSelector=metadata.name!%3Ds1',
    'list',
    '',
    'secrets',
    '',
    'o',
    '',
  ],
  [
    'GET',
    '/api/v1/namespaces/o/secrets?fieldSelector=metadata.name%3Ds1&limit=x',
    'list',
    '',
    'secrets',
    '',
    'o',
    '',
  ],
  [
    'GET',
    '/api/v1/namespaces/o/secrets?fieldSelector=metadata.name%3D..',
    'list',
    '',
    'secrets',
    '',
    'o',
    '',
  ],
  [
    'DELETE',
    '/api/v1/namespaces/o/secrets?fieldSelector=metadata.name%3Ds1',
    'deletecollection',
    '',
    'secrets',
    '',
    'o',
    '',
  ],
  // normalisation happens first
  ['GET', '/api/v1//namespaces/other/pods/', 'list', '', 'pods', '', 'other', ''],
  ['GET', '/api/v1/namespaces/x/../other/pods/./foo', 'get', '', 'pods', '', 'other', 'foo'],
  ['GET', '/api/v1/namespaces/other/%70ods/foo', 'get', '', 'pods', '', 'other', 'foo'],
];

describe('deriveAttributes (resource requests)', () => {
  it.each(RESOURCE_ROWS)('%s %s -> %s', (method, target, verb, group, resource, sub, ns, name) => {
    const a = attrs(method, target);
    expect(a).toMatchObject({ isResourceRequest: true, verb, apiGroup: group, resource });
    expect({ subresource: a.subresource, namespace: a.namespace, name: a.name }).toEqual({
      subresource: sub,
      namespace: ns,
      name,
    });
  });

  it('keeps the proxied path in parts and the canonical path', () => {
    const a = attrs('GET', '/api/v1/namespaces/o/services/web:80/proxy/x/');
    expect(a).toMatchObject({ verb: 'get', resource: 'services', name: 'web:80', subresource: 'proxy' });
    expect(a.path).toBe('/api/v1/namespaces/o/services/web:80/proxy/x');
    expect(a.parts).toEqual(['services', 'web:80', 'proxy', 'x']);
  });

  it('refuses /api/v1/watch without a resource, as the API server does', () => {
    const t = normaliseRequestTarget('/api/v1/watch');
    expect(t.ok && deriveAttributes('GET', t.target).ok).toBe(false);
  });
});

describe('deriveAttributes (non-resource requests)', () => {
  it.each([
    ['GET', '/', 'get'],
    ['GET', '/version', 'get'],
    ['GET', '/api', 'get'],
    ['GET', '/api/v1', 'get'],
    ['GET', '/apis', 'get'],
    ['GET', '/apis/apps', 'get'],
    ['GET', '/apis/apps/v1', 'get'],
    ['GET', '/openapi/v3/apis/apps/v1', 'get'],
    ['HEAD', '/healthz', 'head'],
    ['POST', '/logs/x', 'post'],
    ['GET', '/other/a/b/c', 'get'],
  ])('%s %s', (method, target, verb) => {
    const a = attrs(method, target);
    expect(a.isResourceRequest).toBe(false);
    expect(a.verb).toBe(verb);
    expect(a.resource).toBe('');
  });
});

describe('normaliseRequestTarget', () => {
  it.each([
    ['/api/v1/namespaces/o/pods/a%2Fb', 'encoded "/"'],
    ['/api/v1/namespaces/o/pods/a%2fb', 'encoded "/"'],
    ['/api/v1/namespaces/o/pods/a%252Fb', 'double percent'],
    ['/api/v1/namespaces/o/pods/a%zz', 'invalid percent'],
    ['/api/v1/namespaces/o/pods/a%C0', 'invalid percent'],
    ['/api/v1/namespaces/o/pods/a\\b', 'backslash'],
    ['/api/v1/namespaces/o/pods/a%5Cb', 'backslash'],
    ['/api/v1/namespaces/o/pods/a%00', 'control'],
    ['/../etc', 'escapes'],
    ['/api/%2E%2E/%2E%2E/x', 'escapes'],
    ['http://evil/api/v1/pods', 'must be a path'],
    ['*', 'must be a path'],
    ['/api/v1/pods#x', 'fragment'],
    ['/api/v1/pods?watch=1;x=2', 'semicolon'],
    ['/api/v1/pods?watch=%zz', 'invalid percent'],
    [`/api/${'a'.repeat(9000)}`, 'too long'],
  ])('refuses %s', (target, reason) => {
    const r = normaliseRequestTarget(target);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toContain(reason);
  });

  it('canonicalises and keeps the raw query', () => {
    const r = normaliseRequestTarget('//api//v1/./namespaces/a/../b/pods/?limit=500&fieldSelector=a%3Db+c');
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.target.path).toBe('/api/v1/namespaces/b/pods');
    expect(r.target.rawQuery).toBe('limit=500&fieldSelector=a%3Db+c');
    expect(r.target.query).toEqual([
      ['limit', '500'],
      ['fieldSelector', 'a=b c'],
    ]);
  });

  it('re-encodes what must be encoded in a segment', () => {
    const r = normaliseRequestTarget('/api/v1/namespaces/o/configmaps/a%20b%3Fc');
    expect(r.ok && r.target.path).toBe('/api/v1/namespaces/o/configmaps/a%20b%3Fc');
  });
});

describe('fieldSelectorExactName', () => {
  it.each([
    ['metadata.name=a', 'a'],
    ['metadata.name==a', 'a'],
    ['metadata.name!=a', undefined],
    ['metadata.namespace=x,metadata.name=a', 'a'],
    ['metadata.name=b,metadata.name=a', 'a'], // sorted terms: the smaller wins
    ['metadata.name=a\\,b', 'a,b'],
    ['metadata.name=a,,status.phase=x', 'a'],
    ['metadata.name=a=b', undefined], // unescaped "=" in a value is an error
    ['metadata.name=a\\x', undefined],
    ['bogus', undefined],
    ['', undefined],
  ])('%s -> %s', (sel, name) => {
    expect(fieldSelectorExactName(sel, 'metadata.name')).toBe(name);
  });
});

describe('describeAttributes', () => {
  it('names the request', () => {
    expect(describeAttributes(attrs('GET', '/apis/apps/v1/namespaces/p/deployments/w/scale'))).toBe(
      'get deployments.apps/scale "w" in namespace "p"',
    );
    expect(describeAttributes(attrs('GET', '/version'))).toBe('get /version');
  });
});
