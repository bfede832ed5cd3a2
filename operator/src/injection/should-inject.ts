// Whether a pod gets a chaperone. Pure: the webhook looks the namespace up and passes its labels.
// The webhook configuration's selectors (admission/webhook-configuration.ts) pre-filter the same
// way, but this function is the authority: selectors can be edited by hand, this cannot.
import {
  INJECT_LABEL,
  INJECT_LABEL_DISABLED,
  INJECT_LABEL_VALUE,
  NAMESPACE_INJECTION_ENABLED,
  NAMESPACE_INJECTION_LABEL,
  STATUS_ANNOTATION,
  STATUS_INJECTED,
} from '@chaperone/api';
import type { V1Pod } from '@kubernetes/client-node';
import {
  OPERATOR_COMPONENT_LABEL,
  OPERATOR_COMPONENT_VALUE,
  SYSTEM_NAMESPACES,
} from '../operator-constants.js';

export interface NamespaceInfo {
  name: string;
  /** Labels of the Namespace object; undefined or {} when it has none (or was not found). */
  labels?: Record<string, string> | undefined;
}

export interface ShouldInjectConfig {
  /** The operator's own namespace: never injected, so the webhook never waits on itself. */
  operatorNamespace: string;
}

/** Why a pod is left alone. */
export type SkipReason =
  | 'system-namespace'
  | 'operator-namespace'
  | 'operator-pod'
  | 'opted-out'
  | 'not-opted-in'
  | 'already-injected';

/** Which opt-in applied; error messages use it to tell the user how to opt out. */
export type OptInVia = 'namespace-label' | 'pod-label';

export type InjectDecision =
  | { inject: true; via: OptInVia }
  | { inject: false; reason: 'already-injected'; via: OptInVia }
  | { inject: false; reason: Exclude<SkipReason, 'already-injected'> };

export function shouldInject(
  pod: V1Pod,
  namespace: NamespaceInfo,
  config: ShouldInjectConfig,
): InjectDecision {
  const labels = pod.metadata?.labels ?? {};
  // Order matters only for the reason reported; every path that skips is checked before opt-in.
  if (SYSTEM_NAMESPACES.includes(namespace.name)) return { inject: false, reason: 'system-namespace' };
  if (namespace.name === config.operatorNamespace) return { inject: false, reason: 'operator-namespace' };
  if (labels[OPERATOR_COMPONENT_LABEL] === OPERATOR_COMPONENT_VALUE)
    return { inject: false, reason: 'operator-pod' };
  const podLabel = labels[INJECT_LABEL];
  if (podLabel === INJECT_LABEL_DISABLED) return { inject: false, reason: 'opted-out' };
  const via =
    podLabel === INJECT_LABEL_VALUE
      ? 'pod-label'
      : namespace.labels?.[NAMESPACE_INJECTION_LABEL] === NAMESPACE_INJECTION_ENABLED
        ? 'namespace-label'
        : undefined;
  if (!via) return { inject: false, reason: 'not-opted-in' };
  // The annotation is only a claim (anyone writing the pod spec can set it). The webhook still runs
  // the idempotent buildPatch for such pods: it adds nothing to a complete injection and repairs an
  // incomplete one, so a copied annotation never lets an opted-in pod start without its chaperone.
  if (pod.metadata?.annotations?.[STATUS_ANNOTATION] === STATUS_INJECTED)
    return { inject: false, reason: 'already-injected', via };
  return { inject: true, via };
}
