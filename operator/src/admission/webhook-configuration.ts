// The MutatingWebhookConfiguration, built in one place: the operator applies it and patches the
// caBundle, the Helm chart's rendering is tested against it, the integration tests install it.
import {
  INJECT_LABEL,
  INJECT_LABEL_DISABLED,
  INJECT_LABEL_VALUE,
  NAMESPACE_INJECTION_ENABLED,
  NAMESPACE_INJECTION_LABEL,
} from '@chaperone/api';
import type {
  AdmissionregistrationV1WebhookClientConfig,
  V1LabelSelector,
  V1LabelSelectorRequirement,
  V1MutatingWebhook,
  V1MutatingWebhookConfiguration,
} from '@kubernetes/client-node';
import {
  APPROVAL_WEBHOOK_PATH,
  INJECTION_WEBHOOK_PATH,
  OPERATOR_COMPONENT_LABEL,
  OPERATOR_COMPONENT_VALUE,
  SYSTEM_NAMESPACES,
} from '../operator-constants.js';

/** Webhook names (the API server quotes them in every refusal: "admission webhook "…" denied …"). */
export const WEBHOOK_NAMES = {
  namespaceInjection: 'namespace.inject.chaperone.dev',
  podInjection: 'pod.inject.chaperone.dev',
  approval: 'approval.chaperone.dev',
} as const;

/** Label the API server sets on every Namespace (since 1.21); selectors use it to name namespaces. */
const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';

export interface WebhookConfigurationOptions {
  /** Usually MUTATING_WEBHOOK_CONFIGURATION. */
  name: string;
  /** Base64 of the PEM CA that signs the operator's serving certificate ('' until the leader patches it). */
  caBundle: string;
  /** `url` is the base (https://host:port), `service` the operator's Service; paths are appended here. */
  clientConfig: { url: string } | { service: { name: string; namespace: string; port: number } };
  /**
   * Never sent to the webhook: the operator's pods must be able to start while the webhook is down
   * (failurePolicy Fail would otherwise deadlock a restart). Default: the Service's namespace.
   */
  operatorNamespace?: string;
  /** Extra labels (the chart's standard labels). */
  labels?: Record<string, string>;
}

export function mutatingWebhookConfiguration(
  opts: WebhookConfigurationOptions,
): V1MutatingWebhookConfiguration {
  const client = (path: string): AdmissionregistrationV1WebhookClientConfig => {
    const base =
      'url' in opts.clientConfig
        ? { url: `${opts.clientConfig.url.replace(/\/+$/, '')}${path}` }
        : {
            service: { ...opts.clientConfig.service, path },
          };
    return opts.caBundle ? { ...base, caBundle: opts.caBundle } : base;
  };
  const operatorNamespace =
    opts.operatorNamespace ??
    ('service' in opts.clientConfig ? opts.clientConfig.service.namespace : undefined);
  const excludedNamespaces = [...SYSTEM_NAMESPACES, ...(operatorNamespace ? [operatorNamespace] : [])];
  const notExcludedNamespace: V1LabelSelectorRequirement = {
    key: NAMESPACE_NAME_LABEL,
    operator: 'NotIn',
    values: excludedNamespaces,
  };
  const notOperatorPod: V1LabelSelectorRequirement = {
    key: OPERATOR_COMPONENT_LABEL,
    operator: 'NotIn',
    values: [OPERATOR_COMPONENT_VALUE],
  };
  const podRules: V1MutatingWebhook['rules'] = [
    {
      apiGroups: [''],
      apiVersions: ['v1'],
      operations: ['CREATE'],
      resources: ['pods'],
      scope: 'Namespaced',
    },
    // kubectl debug: refuse ephemeral containers that would reach the sidecar's token.
    {
      apiGroups: [''],
      apiVersions: ['v1'],
      operations: ['UPDATE'],
      resources: ['pods/ephemeralcontainers'],
      scope: 'Namespaced',
    },
  ];
  const injection = (
    name: string,
    namespaceSelector: V1LabelSelector,
    objectSelector: V1LabelSelector,
  ): V1MutatingWebhook => ({
    name,
    admissionReviewVersions: ['v1'],
    clientConfig: client(INJECTION_WEBHOOK_PATH),
    rules: podRules,
    namespaceSelector,
    objectSelector,
    // An opted-in pod never starts without its chaperone.
    failurePolicy: 'Fail',
    matchPolicy: 'Equivalent',
    sideEffects: 'None',
    // Another webhook may add a container after us; we are called again and give it the agent env.
    reinvocationPolicy: 'IfNeeded',
    timeoutSeconds: 10,
  });
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: { name: opts.name, ...(opts.labels ? { labels: { ...opts.labels } } : {}) },
    webhooks: [
      injection(
        WEBHOOK_NAMES.namespaceInjection,
        {
          matchExpressions: [
            { key: NAMESPACE_INJECTION_LABEL, operator: 'In', values: [NAMESPACE_INJECTION_ENABLED] },
            notExcludedNamespace,
          ],
        },
        {
          matchExpressions: [
            { key: INJECT_LABEL, operator: 'NotIn', values: [INJECT_LABEL_DISABLED] },
            notOperatorPod,
          ],
        },
      ),
      injection(
        WEBHOOK_NAMES.podInjection,
        {
          // Enabled namespaces are the other webhook's: one call per pod, not two.
          matchExpressions: [
            { key: NAMESPACE_INJECTION_LABEL, operator: 'NotIn', values: [NAMESPACE_INJECTION_ENABLED] },
            notExcludedNamespace,
          ],
        },
        {
          matchExpressions: [
            { key: INJECT_LABEL, operator: 'In', values: [INJECT_LABEL_VALUE] },
            notOperatorPod,
          ],
        },
      ),
      {
        name: WEBHOOK_NAMES.approval,
        admissionReviewVersions: ['v1'],
        clientConfig: client(APPROVAL_WEBHOOK_PATH),
        rules: [
          {
            apiGroups: ['chaperone.dev'],
            apiVersions: ['v1alpha1'],
            operations: ['UPDATE'],
            resources: ['accessrequests/status'],
            scope: 'Namespaced',
          },
        ],
        // A decision nobody checked must not stand.
        failurePolicy: 'Fail',
        matchPolicy: 'Equivalent',
        sideEffects: 'None',
        // It stamps who decided; running it twice on one request adds nothing.
        reinvocationPolicy: 'Never',
        timeoutSeconds: 10,
      },
    ],
  };
}
