// The operator's notification configuration: the named targets approvers are told through, from
// the Helm values (a JSON file the chart renders into a ConfigMap). The platform team owns it:
// each target names a Secret in the operator's namespace that holds the webhook URL (and, for the
// generic webhook, the HMAC key). AccessPolicies only pick targets by name (spec.approval.notify),
// so nobody who may write a policy can point the operator at a Secret or a URL of their choosing.

export const NOTIFICATION_TYPES = ['slack', 'teams', 'webhook'] as const;
export type NotificationType = (typeof NOTIFICATION_TYPES)[number];

export interface NotificationTarget {
  name: string;
  type: NotificationType;
  /** Secret in the operator's namespace. */
  secretName: string;
  /** Key of the webhook URL in that Secret. Default `url`. */
  urlKey: string;
  /** webhook only: key of the HMAC-SHA256 signing key in that Secret. Default `signingKey`. */
  signingKeyKey: string;
  /** Notified of every AccessRequest, whether or not its policy names it. */
  allPolicies: boolean;
}

export interface RetrySettings {
  /** HTTP attempts per notification, first included. */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** Per attempt. */
  timeoutMs: number;
}

export interface NotificationConfig {
  /** External base URL of the collector's web UI, for the link to the session; empty: no link. */
  collectorUrl: string;
  targets: NotificationTarget[];
  retry: RetrySettings;
  /** Accept http:// webhook URLs (local receivers in tests and demos); https only otherwise. */
  allowHttp: boolean;
}

export const DEFAULT_RETRY: RetrySettings = {
  attempts: 6,
  baseDelayMs: 1_000,
  maxDelayMs: 60_000,
  timeoutMs: 10_000,
};

export const EMPTY_NOTIFICATION_CONFIG: NotificationConfig = {
  collectorUrl: '',
  targets: [],
  retry: DEFAULT_RETRY,
  allowHttp: false,
};

const NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const SECRET_NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;
const SECRET_KEY = /^[-._a-zA-Z0-9]{1,253}$/;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function intIn(v: unknown, field: string, min: number, max: number, fallback: number): number {
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
    throw new Error(`notifications: ${field} must be an integer from ${min} to ${max}`);
  return v;
}

function parseTarget(raw: unknown, i: number): NotificationTarget {
  const where = `notifications.targets[${i}]`;
  if (!isObject(raw)) throw new Error(`${where} must be an object`);
  const { name, type, secretName, urlKey, signingKeyKey, allPolicies } = raw;
  if (typeof name !== 'string' || name.length > 63 || !NAME.test(name))
    throw new Error(
      `${where}.name must be a DNS label (lowercase letters, digits, '-'), at most 63 characters`,
    );
  if (typeof type !== 'string' || !(NOTIFICATION_TYPES as readonly string[]).includes(type))
    throw new Error(`${where}.type must be one of ${NOTIFICATION_TYPES.join(', ')}`);
  if (typeof secretName !== 'string' || secretName.length > 253 || !SECRET_NAME.test(secretName))
    throw new Error(`${where}.secretName must name a Secret in the operator's namespace`);
  const key = (v: unknown, field: string, fallback: string) => {
    if (v === undefined) return fallback;
    if (typeof v !== 'string' || !SECRET_KEY.test(v))
      throw new Error(`${where}.${field} must be a Secret key`);
    return v;
  };
  if (allPolicies !== undefined && typeof allPolicies !== 'boolean')
    throw new Error(`${where}.allPolicies must be true or false`);
  return {
    name,
    type: type as NotificationType,
    secretName,
    urlKey: key(urlKey, 'urlKey', 'url'),
    signingKeyKey: key(signingKeyKey, 'signingKeyKey', 'signingKey'),
    allPolicies: allPolicies ?? false,
  };
}

/** Parses and checks the configuration; throws a message naming the field at fault. */
export function parseNotificationConfig(raw: unknown): NotificationConfig {
  if (raw === undefined || raw === null) return EMPTY_NOTIFICATION_CONFIG;
  if (!isObject(raw)) throw new Error('notifications: the configuration must be a JSON object');
  const { collectorUrl, targets, retry, allowHttp } = raw;
  let base = '';
  if (collectorUrl !== undefined && collectorUrl !== '') {
    if (typeof collectorUrl !== 'string') throw new Error('notifications.collectorUrl must be a URL');
    let u: URL;
    try {
      u = new URL(collectorUrl);
    } catch {
      throw new Error('notifications.collectorUrl must be an absolute http(s) URL');
    }
    if (u.protocol !== 'https:' && u.protocol !== 'http:')
      throw new Error('notifications.collectorUrl must be an absolute http(s) URL');
    base = collectorUrl.replace(/\/+$/, '');
  }
  if (targets !== undefined && !Array.isArray(targets))
    throw new Error('notifications.targets must be a list');
  const parsed = (targets ?? []).map(parseTarget);
  const seen = new Set<string>();
  for (const t of parsed) {
    if (seen.has(t.name)) throw new Error(`notifications.targets: the name ${t.name} is used twice`);
    seen.add(t.name);
  }
  if (retry !== undefined && !isObject(retry)) throw new Error('notifications.retry must be an object');
  const r = retry ?? {};
  const settings: RetrySettings = {
    attempts: intIn(r.attempts, 'retry.attempts', 1, 20, DEFAULT_RETRY.attempts),
    baseDelayMs: intIn(r.baseDelayMs, 'retry.baseDelayMs', 1, 600_000, DEFAULT_RETRY.baseDelayMs),
    maxDelayMs: intIn(r.maxDelayMs, 'retry.maxDelayMs', 1, 3_600_000, DEFAULT_RETRY.maxDelayMs),
    timeoutMs: intIn(r.timeoutMs, 'retry.timeoutMs', 100, 120_000, DEFAULT_RETRY.timeoutMs),
  };
  if (allowHttp !== undefined && typeof allowHttp !== 'boolean')
    throw new Error('notifications.allowHttp must be true or false');
  return { collectorUrl: base, targets: parsed, retry: settings, allowHttp: allowHttp ?? false };
}
