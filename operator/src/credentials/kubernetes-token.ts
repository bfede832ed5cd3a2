// Short-lived tokens for the Connection's ServiceAccount via the TokenRequest API. The operator's
// own identity needs `create` on `serviceaccounts/token` in the ServiceAccount's namespace; nothing
// is stored, so a token exists only in the response handed to the sidecar.
import * as k8s from '@kubernetes/client-node';
import { CredentialError } from './credential-error.js';

/** TokenRequest refuses less than 10 minutes. */
export const MIN_TOKEN_TTL_SECONDS = 600;
/** The CRD's upper bound. */
export const MAX_TOKEN_TTL_SECONDS = 24 * 3600;
/**
 * The API server silently extends pod-bound tokens requested for exactly 3607 s (kubelet's
 * "warn-only" value) to a year when --service-account-extend-token-expiration is on; never ask for it.
 */
const KUBELET_WARN_ONLY_SECONDS = 3607;

export interface KubernetesTokenRequest {
  coreApi: Pick<k8s.CoreV1Api, 'createNamespacedServiceAccountToken'>;
  serviceAccount: { namespace: string; name: string };
  ttlSeconds: number;
  /** Default: the API server's own audiences (right for talking to that API server). */
  audiences?: readonly string[];
  /**
   * Bind the token to the agent pod: it stops authenticating as soon as the pod is deleted. Only
   * possible when the pod is in the ServiceAccount's namespace (a TokenRequest rule).
   */
  boundPod?: { namespace: string; name: string; uid: string };
}

export interface IssuedKubernetesToken {
  /** Never log or record this. */
  token: string;
  /** As the API server set it (it may shorten the request to its --service-account-max-token-expiration). */
  expiresAt: Date;
  /** Safe to record. */
  description: string;
}

export async function issueKubernetesToken(req: KubernetesTokenRequest): Promise<IssuedKubernetesToken> {
  const { namespace, name } = req.serviceAccount;
  const sa = `${namespace}/${name}`;
  if (
    !Number.isInteger(req.ttlSeconds) ||
    req.ttlSeconds < MIN_TOKEN_TTL_SECONDS ||
    req.ttlSeconds > MAX_TOKEN_TTL_SECONDS
  ) {
    throw new CredentialError(
      'InvalidInput',
      `token ttl ${req.ttlSeconds}s for ServiceAccount ${sa} is out of range: TokenRequest needs whole seconds between ${MIN_TOKEN_TTL_SECONDS} (10m) and ${MAX_TOKEN_TTL_SECONDS} (24h); fix credentials.kubernetes.ttl`,
    );
  }
  if (!namespace || !name) {
    throw new CredentialError('InvalidInput', 'serviceAccount needs a namespace and a name');
  }
  if (req.boundPod && req.boundPod.namespace !== namespace) {
    throw new CredentialError(
      'InvalidInput',
      `cannot bind a token of ServiceAccount ${sa} to pod ${req.boundPod.namespace}/${req.boundPod.name}: TokenRequest binds only to objects in the ServiceAccount's namespace`,
    );
  }
  const expirationSeconds =
    req.ttlSeconds === KUBELET_WARN_ONLY_SECONDS ? req.ttlSeconds - 1 : req.ttlSeconds;
  const body: k8s.AuthenticationV1TokenRequest = {
    apiVersion: 'authentication.k8s.io/v1',
    kind: 'TokenRequest',
    spec: {
      audiences: [...(req.audiences ?? [])],
      expirationSeconds,
      ...(req.boundPod
        ? {
            boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: req.boundPod.name, uid: req.boundPod.uid },
          }
        : {}),
    },
  };

  let res: k8s.AuthenticationV1TokenRequest;
  try {
    res = await req.coreApi.createNamespacedServiceAccountToken({ name, namespace, body });
  } catch (err) {
    throw tokenRequestError(err, sa, req.boundPod);
  }
  const token = res.status?.token;
  const exp = res.status?.expirationTimestamp;
  const expiresAt = exp ? new Date(exp) : undefined;
  if (!token || !expiresAt || !Number.isFinite(expiresAt.getTime())) {
    throw new CredentialError(
      'ServerRejected',
      `TokenRequest for ServiceAccount ${sa} returned no token or expiry`,
    );
  }
  const aud = req.audiences?.length ? ` audiences ${req.audiences.join(',')}` : '';
  const bound = req.boundPod ? ` bound to pod ${req.boundPod.namespace}/${req.boundPod.name}` : '';
  return {
    token,
    expiresAt,
    description: `token for ServiceAccount ${sa}${aud}${bound} valid until ${expiresAt.toISOString()}`,
  };
}

function tokenRequestError(
  err: unknown,
  sa: string,
  boundPod: KubernetesTokenRequest['boundPod'],
): CredentialError {
  const code = err instanceof k8s.ApiException ? err.code : undefined;
  const status = statusOf(err);
  const serverMessage = status?.message ?? (err instanceof Error ? err.message : String(err));
  if (code === 404) {
    if (status?.details?.kind === 'pods' && boundPod) {
      return new CredentialError(
        'InvalidInput',
        `cannot bind a token of ServiceAccount ${sa} to pod ${boundPod.namespace}/${boundPod.name}: the pod does not exist (${serverMessage})`,
        { cause: err },
      );
    }
    return new CredentialError(
      'ServiceAccountMissing',
      `ServiceAccount ${sa} does not exist: create it or fix credentials.kubernetes.serviceAccountRef (${serverMessage})`,
      { cause: err },
    );
  }
  if (code === 403) {
    return new CredentialError(
      'TokenRequestForbidden',
      `the operator may not request tokens for ServiceAccount ${sa}: grant it create on serviceaccounts/token in that namespace (${serverMessage})`,
      { cause: err },
    );
  }
  if (code !== undefined && code >= 400 && code < 500) {
    return new CredentialError(
      'ServerRejected',
      `TokenRequest for ServiceAccount ${sa} was rejected: ${serverMessage}`,
      {
        cause: err,
      },
    );
  }
  return new CredentialError(
    'TargetUnreachable',
    `TokenRequest for ServiceAccount ${sa} failed${code ? ` (HTTP ${code})` : ''}: ${serverMessage}`,
    { cause: err },
  );
}

/** The Kubernetes Status object in an ApiException body (a JSON string or already parsed). */
function statusOf(err: unknown): { message?: string; details?: { kind?: string } } | undefined {
  if (!(err instanceof k8s.ApiException)) return undefined;
  const body: unknown = err.body;
  let parsed: unknown = body;
  if (typeof body === 'string') {
    try {
      parsed = JSON.parse(body);
    } catch {
      return undefined;
    }
  }
  return typeof parsed === 'object' && parsed !== null
    ? (parsed as { message?: string; details?: { kind?: string } })
    : undefined;
}
