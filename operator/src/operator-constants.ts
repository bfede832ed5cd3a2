// Names the operator gives to things in the cluster. Pod opt-in keys live in @chaperone/api
// (pod-opt-in.ts) because the docs, the webhook and the sidecar share them; these are the operator's.

/** Field manager for every server-side apply and status patch the operator makes. */
export const FIELD_MANAGER = 'chaperone-operator';

/** coordination.k8s.io Lease that elects the one replica that reconciles, sweeps roles and rotates certs. */
export const LEADER_LEASE_NAME = 'chaperone-operator-leader';

/** Secret (operator namespace) holding the self-managed CA and the serving certificate. */
export const SERVING_TLS_SECRET = 'chaperone-operator-tls';

/** The MutatingWebhookConfiguration the chart installs and the leader patches the caBundle into. */
export const MUTATING_WEBHOOK_CONFIGURATION = 'chaperone';
export const INJECTION_WEBHOOK_PATH = '/mutate-pods';
export const APPROVAL_WEBHOOK_PATH = '/mutate-accessrequest-status';

/** One HTTPS port serves the admission webhooks and the credential broker. */
export const DEFAULT_HTTPS_PORT = 9443;
/** Plain HTTP: /metrics, /healthz, /readyz. */
export const DEFAULT_METRICS_PORT = 8080;

/** Labels on AccessRequests the broker creates, so approvers can filter with -l. */
export const ACCESS_REQUEST_CONNECTION_LABEL = 'chaperone.dev/connection';
export const ACCESS_REQUEST_POLICY_LABEL = 'chaperone.dev/policy';
export const ACCESS_REQUEST_POD_LABEL = 'chaperone.dev/pod';

/** Label on the operator's own pods; the injection webhook never injects into them. */
export const OPERATOR_COMPONENT_LABEL = 'app.kubernetes.io/component';
export const OPERATOR_COMPONENT_VALUE = 'operator';

/** Namespaces whose pods are never injected, whatever their labels say. */
export const SYSTEM_NAMESPACES: readonly string[] = ['kube-system', 'kube-public', 'kube-node-lease'];

/** Audience of the projected token the sidecar shows the collector (the collector's TokenReview audience). */
export const COLLECTOR_TOKEN_AUDIENCE = 'chaperone-collector';

/** Paths inside the injected sidecar container. */
export const SIDECAR_PATHS = {
  brokerToken: '/var/run/secrets/chaperone.dev/tokens/broker-token',
  collectorToken: '/var/run/secrets/chaperone.dev/tokens/collector-token',
  tokenDir: '/var/run/secrets/chaperone.dev/tokens',
  spool: '/var/spool/chaperone',
  /** Shared with the agent containers (read-only there): kubeconfig and ssh_config the sidecar writes. */
  agentConfig: '/var/run/chaperone.dev/agent',
  tmp: '/tmp',
} as const;

export const SIDECAR_CONTAINER_NAME = 'chaperone-sidecar';
export const SIDECAR_ADMIN_PORT = 15020;
