import { INJECT_LABEL, type LabelSelector, NAMESPACE_INJECTION_LABEL, selectorMatches } from '@chaperone/api';
import type { V1LabelSelector, V1MutatingWebhook } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { shouldInject } from '../injection/should-inject.js';
import {
  APPROVAL_WEBHOOK_PATH,
  INJECTION_WEBHOOK_PATH,
  OPERATOR_COMPONENT_LABEL,
  SYSTEM_NAMESPACES,
} from '../operator-constants.js';
import { mutatingWebhookConfiguration, WEBHOOK_NAMES } from './webhook-configuration.js';

const serviceConfig = mutatingWebhookConfiguration({
  name: 'chaperone',
  caBundle: 'Q0E=',
  clientConfig: { service: { name: 'chaperone-operator', namespace: 'chaperone-system', port: 443 } },
});
const byName = (name: string) => serviceConfig.webhooks?.find((w) => w.name === name) as V1MutatingWebhook;

describe('mutatingWebhookConfiguration', () => {
  it('has the three webhooks, all failing closed without side effects', () => {
    expect(serviceConfig.apiVersion).toBe('admissionregistration.k8s.io/v1');
    expect(serviceConfig.kind).toBe('MutatingWebhookConfiguration');
    expect(serviceConfig.metadata?.name).toBe('chaperone');
    expect(serviceConfig.webhooks?.map((w) => w.name)).toEqual([
      'namespace.inject.chaperone.dev',
      'pod.inject.chaperone.dev',
      'approval.chaperone.dev',
    ]);
    for (const w of serviceConfig.webhooks ?? []) {
      expect(w).toMatchObject({
        failurePolicy: 'Fail',
        sideEffects: 'None',
        timeoutSeconds: 10,
        admissionReviewVersions: ['v1'],
      });
      expect(w.clientConfig.caBundle).toBe('Q0E=');
    }
  });

  it('sends pod creations (and ephemeral-container updates) to the injection path, reinvoked if needed', () => {
    for (const name of [WEBHOOK_NAMES.namespaceInjection, WEBHOOK_NAMES.podInjection]) {
      const w = byName(name);
      expect(w.reinvocationPolicy).toBe('IfNeeded');
      expect(w.clientConfig.service).toEqual({
        name: 'chaperone-operator',
        namespace: 'chaperone-system',
        port: 443,
        path: INJECTION_WEBHOOK_PATH,
      });
      expect(w.rules).toContainEqual({
        apiGroups: [''],
        apiVersions: ['v1'],
        operations: ['CREATE'],
        resources: ['pods'],
        scope: 'Namespaced',
      });
      expect(w.rules).toContainEqual(
        expect.objectContaining({ operations: ['UPDATE'], resources: ['pods/ephemeralcontainers'] }),
      );
    }
  });

  it('sends AccessRequest status updates to the approval path', () => {
    const w = byName(WEBHOOK_NAMES.approval);
    expect(w.rules).toEqual([
      {
        apiGroups: ['chaperone.dev'],
        apiVersions: ['v1alpha1'],
        operations: ['UPDATE'],
        resources: ['accessrequests/status'],
        scope: 'Namespaced',
      },
    ]);
    expect(w.clientConfig.service?.path).toBe(APPROVAL_WEBHOOK_PATH);
    expect(w.namespaceSelector).toBeUndefined();
    expect(w.objectSelector).toBeUndefined();
  });

  it('appends the paths to a URL client config and omits an empty caBundle', () => {
    const c = mutatingWebhookConfiguration({
      name: 'x',
      caBundle: '',
      clientConfig: { url: 'https://127.0.0.1:9443/' },
    });
    expect(c.webhooks?.map((w) => w.clientConfig)).toEqual([
      { url: `https://127.0.0.1:9443${INJECTION_WEBHOOK_PATH}` },
      { url: `https://127.0.0.1:9443${INJECTION_WEBHOOK_PATH}` },
      { url: `https://127.0.0.1:9443${APPROVAL_WEBHOOK_PATH}` },
    ]);
  });

  it("excludes the operator's namespace (the Service's, or the one given) so it never waits on itself", () => {
    const values = (w: V1MutatingWebhook) =>
      w.namespaceSelector?.matchExpressions?.find((e) => e.key === 'kubernetes.io/metadata.name')?.values;
    expect(values(byName(WEBHOOK_NAMES.podInjection))).toEqual([...SYSTEM_NAMESPACES, 'chaperone-system']);
    const url = mutatingWebhookConfiguration({
      name: 'x',
      caBundle: '',
      clientConfig: { url: 'https://127.0.0.1:1' },
      operatorNamespace: 'ops',
    });
    expect(values(url.webhooks?.[0] as V1MutatingWebhook)).toEqual([...SYSTEM_NAMESPACES, 'ops']);
  });

  // The selectors are a pre-filter for shouldInject. They must agree with it, and at most one of
  // the two injection webhooks may match a pod (else it would be injected twice per request).
  it('selects exactly the pods shouldInject injects, each by one webhook', () => {
    const injectionHooks = [byName(WEBHOOK_NAMES.namespaceInjection), byName(WEBHOOK_NAMES.podInjection)];
    const namespaces = ['shop', 'chaperone-system', ...SYSTEM_NAMESPACES];
    const namespaceLabels: Array<Record<string, string>> = [
      {},
      { [NAMESPACE_INJECTION_LABEL]: 'enabled' },
      { [NAMESPACE_INJECTION_LABEL]: 'disabled' },
    ];
    const podLabels: Array<Record<string, string>> = [
      {},
      { [INJECT_LABEL]: 'true' },
      { [INJECT_LABEL]: 'false' },
      { [INJECT_LABEL]: 'yes' },
      { [OPERATOR_COMPONENT_LABEL]: 'operator' },
      { [OPERATOR_COMPONENT_LABEL]: 'operator', [INJECT_LABEL]: 'true' },
    ];
    const matches = (selector: V1LabelSelector | undefined, labels: Record<string, string>) =>
      selectorMatches((selector ?? {}) as LabelSelector, labels);
    let injected = 0;
    for (const ns of namespaces)
      for (const nsLabels of namespaceLabels)
        for (const labels of podLabels) {
          const apiServerNsLabels = { ...nsLabels, 'kubernetes.io/metadata.name': ns };
          const called = injectionHooks.filter(
            (w) => matches(w.namespaceSelector, apiServerNsLabels) && matches(w.objectSelector, labels),
          );
          const decision = shouldInject(
            { metadata: { labels } },
            { name: ns, labels: nsLabels },
            { operatorNamespace: 'chaperone-system' },
          );
          const where = `namespace ${ns} ${JSON.stringify(nsLabels)}, pod ${JSON.stringify(labels)}`;
          expect(called.length, where).toBeLessThanOrEqual(1);
          expect(called.length === 1, where).toBe(decision.inject);
          if (decision.inject) injected++;
        }
    expect(injected).toBeGreaterThan(0);
  });
});
