import { KubeConfig } from '@kubernetes/client-node';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { ControllerManager, objectKey, parseObjectKey } from './manager.js';

function unreachableKubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  // Port 1 on loopback: connections are refused at once.
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: 'https://127.0.0.1:1', skipTLSVerify: true }],
    users: [{ name: 'u', token: 'x' }],
    contexts: [{ name: 'ctx', cluster: 'c', user: 'u' }],
    currentContext: 'ctx',
  });
  return kc;
}

describe('object keys', () => {
  it('round-trip kind/namespace/name and refuse anything else', () => {
    expect(parseObjectKey(objectKey('AccessRequest', 'team-a', 'r1'))).toEqual({
      kind: 'AccessRequest',
      namespace: 'team-a',
      name: 'r1',
    });
    for (const bad of ['Pod/ns/name', 'Connection/ns', 'Connection/ns/a/b', 'Connection//', '']) {
      expect(parseObjectKey(bad)).toBeUndefined();
    }
  });
});

describe('ControllerManager', () => {
  it('refuses options it cannot work without', () => {
    const base = { kubeConfig: unreachableKubeConfig(), registry: new Registry() };
    expect(() => new ControllerManager({ ...base, operatorNamespace: '', identity: 'a' })).toThrow(
      /operatorNamespace/,
    );
    expect(() => new ControllerManager({ ...base, operatorNamespace: 'ns', identity: '' })).toThrow(
      /identity/,
    );
  });

  it('stops promptly while the API server is unreachable (informers still retrying)', async () => {
    const logs: string[] = [];
    const m = new ControllerManager({
      kubeConfig: unreachableKubeConfig(),
      operatorNamespace: 'chaperone-system',
      identity: 'op-0',
      registry: new Registry(),
      leaderElection: false,
      log: (_level, message) => logs.push(message),
    });
    m.start();
    await new Promise((r) => setTimeout(r, 300));
    expect(m.isLeader).toBe(true);
    expect(m.isSynced).toBe(false);
    await m.stop();
    expect(m.isLeader).toBe(false);
    expect(logs).toContain('informer restarting with a full relist');
    expect(logs).toContain('stopping controllers');
  });
});
