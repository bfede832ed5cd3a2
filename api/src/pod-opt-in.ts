// Pod opt-in keys (Istio / Linkerd / Vault injector conventions). The one place they are spelled:
// the webhook, the operator and the docs use these.

/** Pod label that opts a single pod in: `chaperone.dev/inject: "true"`. */
export const INJECT_LABEL = 'chaperone.dev/inject';
export const INJECT_LABEL_VALUE = 'true';
/**
 * The same label set to `"false"` opts a pod out inside a namespace that has injection enabled
 * (e.g. a one-off maintenance pod that does not use any Connection). Any other value does not.
 */
export const INJECT_LABEL_DISABLED = 'false';

/** Namespace label that opts every pod of the namespace in: `chaperone.dev/injection: enabled`. */
export const NAMESPACE_INJECTION_LABEL = 'chaperone.dev/injection';
export const NAMESPACE_INJECTION_ENABLED = 'enabled';

/** Pod annotation naming the Connections (same namespace) the sidecar serves: `orders-db,bastion`. */
export const CONNECTIONS_ANNOTATION = 'chaperone.dev/connections';

/** Pod annotation the webhook sets after injecting; makes injection idempotent. */
export const STATUS_ANNOTATION = 'chaperone.dev/status';
export const STATUS_INJECTED = 'injected';

/** Audience of the projected ServiceAccount token the sidecar shows the broker. */
export const SIDECAR_TOKEN_AUDIENCE = 'chaperone';

/** Connection names from a `chaperone.dev/connections` value: comma-separated, trimmed, deduplicated. */
export function parseConnectionsAnnotation(value: string | undefined): string[] {
  if (!value) return [];
  const names = value
    .split(',')
    .map((name) => name.trim())
    .filter((name) => name !== '');
  return [...new Set(names)];
}

/**
 * Annotation on an admin Secret in the operator's namespace (database admin login, SSH user CA key)
 * naming the namespaces whose Connections may use it: `shop,billing`, or `*` for all. Without it no
 * Connection may: whoever can create a Connection must not thereby borrow another team's admin.
 */
export const ALLOWED_NAMESPACES_ANNOTATION = 'chaperone.dev/allowed-namespaces';

/** Why a Connection in `namespace` may not use the admin Secret, or undefined when it may. */
export function adminSecretRefusal(
  secret: { namespace: string; name: string; annotations?: Readonly<Record<string, string>> },
  namespace: string,
): string | undefined {
  const value = secret.annotations?.[ALLOWED_NAMESPACES_ANNOTATION];
  const allowed = (value ?? '')
    .split(',')
    .map((n) => n.trim())
    .filter(Boolean);
  if (allowed.includes('*') || allowed.includes(namespace)) return undefined;
  const fix = `kubectl -n ${secret.namespace} annotate secret ${secret.name} ${ALLOWED_NAMESPACES_ANNOTATION}=${[...allowed, namespace].join(',')} --overwrite`;
  return value === undefined
    ? `admin Secret ${secret.namespace}/${secret.name} has no ${ALLOWED_NAMESPACES_ANNOTATION} annotation, so no Connection may use it; to let namespace ${namespace} use it: ${fix}`
    : `admin Secret ${secret.namespace}/${secret.name} may be used by Connections in ${allowed.join(', ') || 'no namespace'}, not ${namespace}; to allow it: ${fix}`;
}
