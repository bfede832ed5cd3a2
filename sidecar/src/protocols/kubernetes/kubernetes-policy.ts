// The Kubernetes side of policy: the wire layer's request attributes and risks become the policy
// engine's `kubernetes` operation; the masking plan says whether Secret values may be shown. Pure.

import type { AccessPolicy, Connection, SecretDataMasking } from '@chaperone/api';
import type { Identity } from '../../identity/identity.js';
import { compileMasking } from '../../masking/index.js';
import type { PolicyViewFactory } from '../../pipeline/policy-view.js';
import {
  type CompiledApproval,
  compilePolicies,
  type KubernetesRequest,
  type PolicyDecision,
  type Risk,
} from '../../policy/index.js';
import type { KubeRequestAttributes } from './request-attributes.js';

/** What one identity's requests on one Kubernetes Connection are decided by. */
export interface KubernetesView {
  decide(attributes: KubeRequestAttributes, risks: Risk[]): PolicyDecision;
  /** `masking.kubernetes.secretData` of the applicable policies (any `redact` wins). */
  readonly secretData: SecretDataMasking;
  approvalOf(policy: string): CompiledApproval | undefined;
}

/**
 * Non-resource paths every client reads before it does anything (discovery, version, OpenAPI,
 * health): they carry no object data, so they pass without a rule, read-only.
 */
const DISCOVERY = /^\/(api|apis|version|openapi|healthz|livez|readyz)(\/|$)/;
export const DISCOVERY_RULE = '(discovery)';

export function toKubernetesOperation(a: KubeRequestAttributes, risks: Risk[]): KubernetesRequest {
  return {
    type: 'kubernetes',
    verb: a.verb,
    apiGroup: a.apiGroup,
    resource: a.resource,
    ...(a.subresource ? { subresource: a.subresource } : {}),
    ...(a.namespace ? { namespace: a.namespace } : {}),
    ...(a.name ? { name: a.name } : {}),
    risks,
  };
}

/** A decision for a request the policy engine has no shape for (non-resource URLs). */
export function nonResourceDecision(a: KubeRequestAttributes): PolicyDecision {
  if ((a.verb === 'get' || a.verb === 'head') && DISCOVERY.test(a.path)) {
    return { action: 'allow', policy: '', rule: DISCOVERY_RULE };
  }
  return {
    action: 'deny',
    reason: `${a.verb} ${a.path} is not a Kubernetes resource request; only discovery, version and OpenAPI paths are read through the gateway`,
  };
}

export function kubernetesPolicyFactory(
  connection: Connection,
  policies: AccessPolicy[],
): PolicyViewFactory<KubernetesView> {
  const engine = compilePolicies(policies, connection);
  return (identity: Identity) => {
    const view = engine.forIdentity(identity);
    if ('refused' in view) return { refused: view.refused };
    const masking = compileMasking(view.policies);
    if (!masking.ok) {
      return {
        refused: `the masking rules of ${view.names.join(', ')} are invalid: ${masking.errors.join('; ')}`,
      };
    }
    return {
      decide: (attributes, risks) =>
        attributes.isResourceRequest
          ? view.decide(toKubernetesOperation(attributes, risks))
          : nonResourceDecision(attributes),
      secretData: masking.plan.kubernetesSecretData,
      approvalOf: (name) => view.approvalOf(name),
    };
  };
}

/** `policy/rule` as recordings and Status messages name it. */
export function ruleName(d: PolicyDecision): string | undefined {
  if (!d.rule) return undefined;
  return d.policy ? `${d.policy}/${d.rule}` : d.rule;
}
