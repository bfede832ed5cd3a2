import { INJECT_LABEL, NAMESPACE_INJECTION_LABEL, STATUS_ANNOTATION } from '@chaperone/api';
import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { OPERATOR_COMPONENT_LABEL, SYSTEM_NAMESPACES } from '../operator-constants.js';
import { shouldInject } from './should-inject.js';

const config = { operatorNamespace: 'chaperone-system' };

function pod(labels: Record<string, string> = {}, annotations?: Record<string, string>): V1Pod {
  return {
    metadata: { name: 'agent', labels, ...(annotations ? { annotations } : {}) },
    spec: { containers: [{ name: 'agent', image: 'agent:1' }] },
  };
}
const enabled = { [NAMESPACE_INJECTION_LABEL]: 'enabled' };

describe('shouldInject', () => {
  it('injects pods of a namespace labelled chaperone.dev/injection=enabled', () => {
    expect(shouldInject(pod(), { name: 'shop', labels: enabled }, config)).toEqual({
      inject: true,
      via: 'namespace-label',
    });
  });

  it('injects a pod labelled chaperone.dev/inject=true in any other namespace', () => {
    expect(shouldInject(pod({ [INJECT_LABEL]: 'true' }), { name: 'shop' }, config)).toEqual({
      inject: true,
      via: 'pod-label',
    });
    expect(shouldInject(pod({ [INJECT_LABEL]: 'true' }), { name: 'shop', labels: enabled }, config)).toEqual({
      inject: true,
      via: 'pod-label',
    });
  });

  it('leaves pods that did not opt in alone', () => {
    expect(shouldInject(pod(), { name: 'shop' }, config)).toEqual({ inject: false, reason: 'not-opted-in' });
    expect(
      shouldInject(pod(), { name: 'shop', labels: { [NAMESPACE_INJECTION_LABEL]: 'disabled' } }, config),
    ).toMatchObject({ inject: false, reason: 'not-opted-in' });
    // Only the exact values opt in: a typo must not silently half-work.
    for (const value of ['yes', 'True', 'enabled', ''])
      expect(shouldInject(pod({ [INJECT_LABEL]: value }), { name: 'shop' }, config)).toMatchObject({
        inject: false,
        reason: 'not-opted-in',
      });
  });

  it('honours the pod opt-out label inside an enabled namespace', () => {
    expect(shouldInject(pod({ [INJECT_LABEL]: 'false' }), { name: 'shop', labels: enabled }, config)).toEqual(
      {
        inject: false,
        reason: 'opted-out',
      },
    );
  });

  it('treats unknown values of the pod label as no opt-out in an enabled namespace (fail closed)', () => {
    expect(
      shouldInject(pod({ [INJECT_LABEL]: 'no' }), { name: 'shop', labels: enabled }, config),
    ).toMatchObject({
      inject: true,
    });
  });

  it('never injects in system namespaces, whatever the labels say', () => {
    for (const name of SYSTEM_NAMESPACES)
      expect(shouldInject(pod({ [INJECT_LABEL]: 'true' }), { name, labels: enabled }, config)).toEqual({
        inject: false,
        reason: 'system-namespace',
      });
  });

  it("never injects the operator's namespace or the operator's pods", () => {
    expect(
      shouldInject(pod({ [INJECT_LABEL]: 'true' }), { name: 'chaperone-system', labels: enabled }, config),
    ).toEqual({ inject: false, reason: 'operator-namespace' });
    expect(
      shouldInject(
        pod({ [INJECT_LABEL]: 'true', [OPERATOR_COMPONENT_LABEL]: 'operator' }),
        { name: 'shop', labels: enabled },
        config,
      ),
    ).toEqual({ inject: false, reason: 'operator-pod' });
  });

  it('reports an already-injected pod with the opt-in that applies (the webhook re-checks it)', () => {
    const injected = pod({}, { [STATUS_ANNOTATION]: 'injected' });
    expect(shouldInject(injected, { name: 'shop', labels: enabled }, config)).toEqual({
      inject: false,
      reason: 'already-injected',
      via: 'namespace-label',
    });
    // The annotation does not opt a pod in by itself.
    expect(shouldInject(injected, { name: 'shop' }, config)).toEqual({
      inject: false,
      reason: 'not-opted-in',
    });
    // Other values of the status annotation mean nothing.
    expect(
      shouldInject(pod({}, { [STATUS_ANNOTATION]: 'pending' }), { name: 'shop', labels: enabled }, config),
    ).toEqual({ inject: true, via: 'namespace-label' });
  });

  it('copes with a pod without metadata labels or annotations', () => {
    expect(shouldInject({ spec: { containers: [] } }, { name: 'shop', labels: enabled }, config)).toEqual({
      inject: true,
      via: 'namespace-label',
    });
  });
});
