import { readFileSync } from 'node:fs';
import {
  CONNECTIONS_ANNOTATION,
  type Connection,
  INJECT_LABEL,
  NAMESPACE_INJECTION_LABEL,
} from '@chaperone/api';
import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import type { AdmissionRequest, AdmissionVerdict } from '../admission/admission-review.js';
import { SIDECAR_CONTAINER_NAME } from '../operator-constants.js';
import { applyJsonPatch } from './apply-json-patch.js';
import { buildPatch, INJECTED_VOLUMES, type InjectionConfig } from './build-patch.js';
import { createInjectionHandler } from './injection-webhook.js';

const testdata = (f: string) => JSON.parse(readFileSync(new URL(`./testdata/${f}`, import.meta.url), 'utf8'));
const config = testdata('config.json') as InjectionConfig;
const connections = testdata('connections.json') as Connection[];

// In-memory lookups stand in for the informer caches; the integration test uses the real API server.
const namespaces: Record<string, Record<string, string>> = {
  shop: { [NAMESPACE_INJECTION_LABEL]: 'enabled' },
  plain: {},
  'chaperone-system': { [NAMESPACE_INJECTION_LABEL]: 'enabled' },
};
const handler = createInjectionHandler({
  config: () => config,
  lookupNamespace: async (name) => namespaces[name],
  lookupConnection: async (namespace, name) =>
    namespace === 'shop' || namespace === 'plain'
      ? connections.find((c) => c.metadata.name === name)
      : undefined,
  operatorNamespace: 'chaperone-system',
});

function podRequest(pod: V1Pod, namespace = 'shop', extra: Partial<AdmissionRequest> = {}): AdmissionRequest {
  return {
    uid: 'u1',
    kind: { group: '', version: 'v1', kind: 'Pod' },
    resource: { group: '', version: 'v1', resource: 'pods' },
    namespace,
    operation: 'CREATE',
    userInfo: { username: 'alice' },
    object: pod,
    ...extra,
  };
}

function agentPod(annotations: Record<string, string> = {}, labels: Record<string, string> = {}): V1Pod {
  return {
    metadata: { name: 'agent', labels, annotations },
    spec: { containers: [{ name: 'agent', image: 'agent:1' }] },
  };
}

function refusal(verdict: AdmissionVerdict): string {
  if (verdict.allowed) throw new Error('expected a refusal');
  expect(verdict.code).toBe(403);
  return verdict.message;
}

describe('injection admission handler', () => {
  it('injects an opted-in pod (namespace from the request when the pod has none)', async () => {
    const pod = agentPod({ [CONNECTIONS_ANNOTATION]: 'orders-db,bastion' });
    const verdict = await handler(podRequest(pod));
    const expected = buildPatch(
      pod,
      connections.filter((c) => ['orders-db', 'bastion'].includes(c.metadata.name ?? '')),
      config,
    );
    expect(verdict).toEqual({ allowed: true, patch: expected });
  });

  it('keeps the annotation order for the Connections', async () => {
    const pod = agentPod({ [CONNECTIONS_ANNOTATION]: 'bastion,orders-db' });
    const verdict = await handler(podRequest(pod));
    if (!verdict.allowed || !verdict.patch) throw new Error('expected a patch');
    const out = applyJsonPatch(pod, verdict.patch);
    const args = out.spec?.initContainers?.[0]?.args ?? [];
    expect(args[args.indexOf('--connections') + 1]).toBe('bastion,orders-db');
  });

  it('lets pods that did not opt in through untouched', async () => {
    expect(await handler(podRequest(agentPod(), 'plain'))).toEqual({ allowed: true });
    expect(await handler(podRequest(agentPod({}, { [INJECT_LABEL]: 'false' })))).toEqual({ allowed: true });
    expect(await handler(podRequest(agentPod({}, { [INJECT_LABEL]: 'true' }), 'chaperone-system'))).toEqual({
      allowed: true,
    });
    // An unknown namespace has no labels: only the pod label could opt in.
    expect(await handler(podRequest(agentPod(), 'gone'))).toEqual({ allowed: true });
  });

  it('refuses an opted-in pod without the connections annotation, saying how to fix or opt out', async () => {
    const byNamespace = refusal(await handler(podRequest(agentPod())));
    expect(byNamespace).toContain(`has no ${CONNECTIONS_ANNOTATION} annotation`);
    expect(byNamespace).toContain(`${INJECT_LABEL}=false`);
    const byLabel = refusal(await handler(podRequest(agentPod({}, { [INJECT_LABEL]: 'true' }), 'plain')));
    expect(byLabel).toContain(`remove the pod label ${INJECT_LABEL}=true`);
  });

  it('refuses unknown Connections, naming them and the namespace', async () => {
    const message = refusal(
      await handler(podRequest(agentPod({ [CONNECTIONS_ANNOTATION]: 'orders-db,nope,gone' }))),
    );
    expect(message).toContain(
      'Connections "nope", "gone" named in chaperone.dev/connections do not exist in namespace "shop"',
    );
    expect(message).toContain('kubectl get connections -n shop');
  });

  it('refuses a pod whose env would bypass the chaperone, with the opt-out hint', async () => {
    const pod = agentPod({ [CONNECTIONS_ANNOTATION]: 'orders-db' });
    pod.spec!.containers[0]!.env = [{ name: 'PGHOST', value: 'db.internal' }];
    const message = refusal(await handler(podRequest(pod)));
    expect(message).toMatch(/cannot inject the sidecar into pod agent: container "agent" sets PGHOST/);
    expect(message).toContain('To run the pod without a chaperone, opt the pod out with the label');
  });

  it('returns no operations for an already injected pod', async () => {
    const pod = testdata('already-injected.pod.json') as V1Pod;
    expect(await handler(podRequest(pod))).toEqual({ allowed: true, patch: [] });
  });

  it('warns when a Connection is not Ready', async () => {
    const notReady = structuredClone(connections.find((c) => c.metadata.name === 'orders-db')) as Connection;
    notReady.status = {
      conditions: [
        {
          type: 'Ready',
          status: 'False',
          reason: 'Unreachable',
          message: 'x',
          lastTransitionTime: '2026-01-01T00:00:00Z',
        },
      ],
    };
    const h = createInjectionHandler({
      config: () => config,
      lookupNamespace: () => namespaces.shop,
      lookupConnection: () => notReady,
      operatorNamespace: 'chaperone-system',
    });
    const verdict = await h(podRequest(agentPod({ [CONNECTIONS_ANNOTATION]: 'orders-db' })));
    expect(verdict.allowed && verdict.warnings).toEqual([
      "Connection orders-db is not Ready (Unreachable): the agent's sessions through it will fail until it is",
    ]);
  });

  it('fails closed when a lookup fails (the server turns the throw into a refusal)', async () => {
    const h = createInjectionHandler({
      config: () => config,
      lookupNamespace: () => {
        throw new Error('informer not synced');
      },
      lookupConnection: () => undefined,
      operatorNamespace: 'chaperone-system',
    });
    await expect(h(podRequest(agentPod()))).rejects.toThrow('informer not synced');
  });

  it("treats the operator's own bad configuration as a webhook failure, not the user's fault", async () => {
    const h = createInjectionHandler({
      config: () => ({ ...config, brokerUrl: 'http://plain-text' }),
      lookupNamespace: () => namespaces.shop,
      lookupConnection: () => connections[0],
      operatorNamespace: 'chaperone-system',
    });
    await expect(h(podRequest(agentPod({ [CONNECTIONS_ANNOTATION]: 'orders-db' })))).rejects.toThrow(
      /invalid sidecar injection configuration: brokerUrl must be an https/,
    );
  });

  it('ignores other kinds and operations', async () => {
    expect(
      await handler({
        ...podRequest(agentPod()),
        kind: { group: 'apps', version: 'v1', kind: 'Deployment' },
      }),
    ).toEqual({ allowed: true });
    expect(await handler(podRequest(agentPod(), 'shop', { operation: 'DELETE' }))).toEqual({ allowed: true });
  });

  describe('ephemeral containers (kubectl debug)', () => {
    const injected = () => testdata('already-injected.pod.json') as V1Pod;
    const debugRequest = (pod: V1Pod) =>
      podRequest(pod, 'shop', { operation: 'UPDATE', subResource: 'ephemeralcontainers' });

    it('allows debugging the agent container', async () => {
      const pod = injected();
      pod.spec!.ephemeralContainers = [{ name: 'debug', image: 'busybox', targetContainerName: 'agent' }];
      expect(await handler(debugRequest(pod))).toEqual({ allowed: true });
    });

    it('refuses targeting the sidecar or mounting its token', async () => {
      const pod = injected();
      pod.spec!.ephemeralContainers = [
        { name: 'peek', image: 'busybox', targetContainerName: SIDECAR_CONTAINER_NAME },
        {
          name: 'grab',
          image: 'busybox',
          volumeMounts: [{ name: INJECTED_VOLUMES.tokens, mountPath: '/t' }],
        },
      ];
      const message = refusal(await handler(debugRequest(pod)));
      expect(message).toContain('ephemeral container "peek" targets the chaperone sidecar');
      expect(message).toContain('ephemeral container "grab" mounts volume "chaperone-tokens"');
    });
  });
});
