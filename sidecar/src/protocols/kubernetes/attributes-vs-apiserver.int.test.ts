// The gateway's request attributes against the API server's own derivation: the same requests go
// through the gateway, and the audit log (Metadata level) says which verb and objectRef the API
// server attributed to each. Raw requests are matched by a unique User-Agent, kubectl's by URI.

import { request } from 'node:http';
import type { KubeAuditEvent } from '@chaperone/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KubeRequestContext } from './hooks.js';
import type { KubeRequestAttributes } from './request-attributes.js';
import { type KubeFixture, startKubeFixture } from './test-fixture.js';

let fx: KubeFixture;
const seen: KubeRequestContext[] = [];

beforeAll(async () => {
  fx = await startKubeFixture();
  fx.decide = async (ctx) => {
    seen.push(ctx);
    return { action: 'allow', rule: 'all' };
  };
  await fx.cp.kubectl(['create', 'namespace', 'attrs']);
  await fx.cp.kubectl(['-n', 'attrs', 'create', 'configmap', 'c1', '--from-literal=a=b']);
});
afterAll(async () => {
  await fx?.stop();
});

function send(method: string, target: string, ua: string, body?: string, type?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${fx.gateway.url}${target}`,
      {
        method,
        headers: {
          'user-agent': ua,
          ...(body
            ? { 'content-type': type ?? 'application/json', 'content-length': Buffer.byteLength(body) }
            : {}),
        },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * The audit log's view of a request. For a create, the audit layer fills objectRef.name from the
 * decoded object after RequestInfo was derived (RBAC never sees it), so it is not compared.
 */
function auditView(e: KubeAuditEvent) {
  const o = e.objectRef ?? {};
  return {
    verb: e.verb,
    apiGroup: o.apiGroup ?? '',
    apiVersion: o.apiVersion ?? '',
    resource: o.resource ?? '',
    subresource: o.subresource ?? '',
    namespace: o.namespace ?? '',
    name: e.verb === 'create' ? '' : (o.name ?? ''),
  };
}

function ourView(a: KubeRequestAttributes) {
  return {
    verb: a.verb,
    apiGroup: a.apiGroup,
    apiVersion: a.apiVersion,
    resource: a.resource,
    subresource: a.subresource,
    namespace: a.namespace,
    name: a.name,
  };
}

const CM = JSON.stringify({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name: 'c2' },
  data: { x: 'y' },
});
const RAW: Array<[string, string, string?, string?]> = [
  ['GET', '/api/v1/namespaces/attrs/configmaps'],
  ['GET', '/api/v1/namespaces/attrs/configmaps/c1'],
  ['HEAD', '/api/v1/namespaces/attrs/configmaps/c1'],
  ['GET', '/api/v1/namespaces/attrs/configmaps?watch=1&timeoutSeconds=1'],
  ['GET', '/api/v1/namespaces/attrs/configmaps?watch=&timeoutSeconds=1'],
  ['GET', '/api/v1/namespaces/attrs/configmaps?watch=FALSE'],
  ['GET', '/api/v1/watch/namespaces/attrs/configmaps/c1?timeoutSeconds=1'],
  ['GET', '/api/v1/namespaces/attrs/configmaps?fieldSelector=metadata.name%3Dc1'],
  ['GET', '/api/v1/namespaces/attrs/configmaps?fieldSelector=metadata.name%3Dc1%2Cmetadata.name%3Da0'],
  ['GET', '/api/v1/namespaces/attrs/configmaps?fieldSelector=metadata.name!%3Dc1'],
  ['GET', '/api/v1/namespaces/attrs/configmaps?fieldSelector=metadata.name%3Dc1&limit=abc'],
  ['GET', '/api/v1/configmaps?limit=1'],
  ['GET', '/api/v1/namespaces/attrs'],
  ['GET', '/api/v1/namespaces/attrs/status'],
  ['GET', '/api/v1/namespaces'],
  ['GET', '/api/v1/namespaces/attrs/pods/nope/log'],
  ['GET', '/api/v1/namespaces/attrs/pods/nope/proxy/some/path'],
  ['GET', '/api/v1/namespaces/attrs/services/nope:80/proxy/'],
  ['POST', '/api/v1/namespaces/attrs/configmaps', CM],
  ['PUT', '/api/v1/namespaces/attrs/configmaps/c2', CM],
  ['PATCH', '/api/v1/namespaces/attrs/configmaps/c2', '{"data":{"x":"z"}}', 'application/merge-patch+json'],
  ['DELETE', '/api/v1/namespaces/attrs/configmaps/c2'],
  ['DELETE', '/api/v1/namespaces/attrs/configmaps?labelSelector=none%3Dnone'],
  ['DELETE', '/api/v1/namespaces/attrs/configmaps?fieldSelector=metadata.name%3Dnone'],
  ['GET', '/apis/apps/v1/namespaces/attrs/deployments/nope/scale'],
  ['GET', '/apis/rbac.authorization.k8s.io/v1/clusterroles/system:basic-user'],
  [
    'POST',
    '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews',
    '{"apiVersion":"authorization.k8s.io/v1","kind":"SelfSubjectAccessReview","spec":{"resourceAttributes":{"verb":"get","resource":"pods"}}}',
  ],
  ['GET', '//api/v1//namespaces/attrs/configmaps/c1/'],
  ['GET', '/api/v1/namespaces/other/../attrs/./configmaps/%63%31'],
  ['GET', '/version'],
  ['GET', '/api'],
  ['GET', '/apis/apps/v1'],
  ['GET', '/openapi/v3'],
  ['GET', '/healthz'],
];

describe('request attributes match the API server (audit log)', () => {
  it('for raw requests through the gateway', async () => {
    const ours = new Map<string, KubeRequestAttributes>();
    for (const [i, [method, target, body, type]] of RAW.entries()) {
      const before = seen.length;
      await send(method, target, `attr-test/${i}`, body, type);
      expect(seen.length, `${method} ${target} reached decide`).toBe(before + 1);
      ours.set(`attr-test/${i}`, seen[seen.length - 1]!.attributes);
    }
    const events = await fx.audit.events();
    const mismatches: unknown[] = [];
    for (const [i, [method, target]] of RAW.entries()) {
      const ev = events.filter((e) => e.userAgent === `attr-test/${i}`);
      expect(ev, `audit events for ${method} ${target}`).toHaveLength(1);
      const [mine, theirs] = [ourView(ours.get(`attr-test/${i}`)!), auditView(ev[0]!)];
      if (JSON.stringify(mine) !== JSON.stringify(theirs)) mismatches.push({ method, target, mine, theirs });
    }
    expect(mismatches).toEqual([]);
  });

  it('for what kubectl sends (get, list, watch, apply, patch, delete, auth can-i)', async () => {
    const start = seen.length;
    const steps: string[][] = [
      ['-n', 'attrs', 'get', 'configmaps'],
      ['-n', 'attrs', 'get', 'configmap', 'c1', '-o', 'yaml'],
      ['-n', 'attrs', 'get', 'configmaps', '--watch-only', '--request-timeout=2s'],
      ['-n', 'attrs', 'create', 'configmap', 'k1', '--from-literal=a=b'],
      ['-n', 'attrs', 'patch', 'configmap', 'k1', '-p', '{"data":{"a":"c"}}'],
      ['-n', 'attrs', 'label', 'configmap', 'k1', 'x=y'],
      ['-n', 'attrs', 'delete', 'configmap', 'k1'],
      ['-n', 'attrs', 'delete', 'configmaps', '--all'],
      ['auth', 'can-i', 'list', 'pods'],
      ['get', 'namespaces', 'attrs'],
    ];
    for (const args of steps) await fx.kubectl(args);
    const ours = seen.slice(start);
    const events = (await fx.audit.events()).filter((e) => e.userAgent?.startsWith('kubectl'));
    const byUri = new Map<string, KubeAuditEvent[]>();
    for (const e of events) byUri.set(e.requestURI, [...(byUri.get(e.requestURI) ?? []), e]);
    let compared = 0;
    for (const ctx of ours) {
      const candidates = (byUri.get(ctx.requestUri) ?? []).map(auditView);
      expect(candidates.length, `audit event for ${ctx.requestUri}`).toBeGreaterThan(0);
      expect(candidates, ctx.requestUri).toContainEqual(ourView(ctx.attributes));
      compared++;
    }
    const verbs = new Set(ours.map((c) => c.attributes.verb));
    for (const v of ['get', 'list', 'watch', 'create', 'patch', 'delete']) {
      expect(verbs, `kubectl produced a ${v}`).toContain(v);
    }
    expect(compared).toBeGreaterThan(10);
  });
});
