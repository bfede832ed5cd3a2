import type { V1Secret } from '@kubernetes/client-node';
import type { ServingCertificateMaterial } from './certificate-source.js';
import type { PreviousCa, StoredServingCertificates } from './serving-certificate-plan.js';

// Keys of the serving Secret. tls.crt/tls.key/ca.crt are the kubernetes.io/tls and cert-manager
// conventions, so the same mount layout works in both modes.
export const TLS_CERT_KEY = 'tls.crt';
export const TLS_KEY_KEY = 'tls.key';
export const CA_CERT_KEY = 'ca.crt';
export const CA_KEY_KEY = 'ca.key';
/** The CA replaced by the last rotation; public only (its key is no longer needed). */
export const PREVIOUS_CA_CERT_KEY = 'ca-previous.crt';
/** RFC 3339 time after which the previous CA leaves the caBundle. */
export const PREVIOUS_CA_RETIRE_ANNOTATION = 'chaperone.dev/previous-ca-retire-after';
export const TLS_SECRET_TYPE = 'kubernetes.io/tls';

export interface ServingSecretState {
  stored: StoredServingCertificates;
  previous?: PreviousCa;
}

function text(data: Record<string, string> | undefined, key: string): string {
  const value = data?.[key];
  return value ? Buffer.from(value, 'base64').toString('utf8') : '';
}

/** Reads what the Secret holds; missing keys read as empty strings (the planner calls those garbage). */
export function decodeServingSecret(secret: V1Secret): ServingSecretState {
  const data = secret.data;
  const stored: StoredServingCertificates = {
    caCert: text(data, CA_CERT_KEY),
    caKey: text(data, CA_KEY_KEY),
    tlsCert: text(data, TLS_CERT_KEY),
    tlsKey: text(data, TLS_KEY_KEY),
  };
  const previousPem = text(data, PREVIOUS_CA_CERT_KEY);
  if (!previousPem) return { stored };
  const retire = secret.metadata?.annotations?.[PREVIOUS_CA_RETIRE_ANNOTATION];
  // No or bad retire time: an invalid date, which isPreviousCaActive treats as retired, so the
  // next ensure() cleans it up rather than trusting an old CA forever.
  return { stored, previous: { certPem: previousPem, retireAfter: new Date(retire ?? Number.NaN) } };
}

/** The serving material a replica should load from the Secret (no validation here). */
export function materialFromSecret(secret: V1Secret): ServingCertificateMaterial {
  const { stored } = decodeServingSecret(secret);
  const previous = text(secret.data, PREVIOUS_CA_CERT_KEY);
  const caPem = [stored.caCert, previous]
    .filter(Boolean)
    .map((p) => `${p.trim()}\n`)
    .join('');
  return { cert: stored.tlsCert, key: stored.tlsKey, caPem: caPem || undefined };
}

/**
 * The Secret for `state`, keeping the metadata of `base` (labels and annotations someone else set,
 * resourceVersion for optimistic concurrency) but owning `data` and `type` entirely.
 */
export function encodeServingSecret(
  name: string,
  namespace: string,
  state: ServingSecretState,
  base?: V1Secret,
): V1Secret {
  const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
  const data: Record<string, string> = {
    [TLS_CERT_KEY]: b64(state.stored.tlsCert),
    [TLS_KEY_KEY]: b64(state.stored.tlsKey),
    [CA_CERT_KEY]: b64(state.stored.caCert),
    [CA_KEY_KEY]: b64(state.stored.caKey),
  };
  const annotations = { ...(base?.metadata?.annotations ?? {}) };
  delete annotations[PREVIOUS_CA_RETIRE_ANNOTATION];
  if (state.previous) {
    data[PREVIOUS_CA_CERT_KEY] = b64(state.previous.certPem);
    annotations[PREVIOUS_CA_RETIRE_ANNOTATION] = state.previous.retireAfter.toISOString();
  }
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name,
      namespace,
      labels: base?.metadata?.labels,
      annotations,
      resourceVersion: base?.metadata?.resourceVersion,
    },
    type: TLS_SECRET_TYPE,
    data,
  };
}
