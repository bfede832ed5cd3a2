import { createHash } from 'node:crypto';
import { SIDECAR_TOKEN_AUDIENCE } from '@chaperone/api';
import * as k8s from '@kubernetes/client-node';
import {
  BrokerAuthError,
  boundTokenOf,
  type SidecarIdentity,
  sidecarIdentityOf,
} from './sidecar-identity.js';

export interface SidecarAuthenticatorOptions {
  kubeConfig: k8s.KubeConfig;
  /** How long a verified identity is reused (default 10 s): bounds TokenReview and pod reads per sidecar. */
  cacheTtlMs?: number;
  now?: () => number;
  /**
   * Further checks of the pod spec (injection/verify-injected-pod.ts): the annotation alone proves
   * nothing, since a pod outside any opted-in namespace never meets the webhook and can set it.
   */
  podProblems?: (pod: k8s.V1Pod) => string[];
}

/**
 * Verifies a sidecar's projected token: TokenReview for audience `chaperone`, then the pod the token
 * is bound to must exist with the same uid, run as that ServiceAccount and carry the injection
 * status. Results are cached briefly by a hash of the token (never the token itself).
 */
export class SidecarAuthenticator {
  private readonly auth: k8s.AuthenticationV1Api;
  private readonly core: k8s.CoreV1Api;
  private readonly cache = new Map<string, { identity: SidecarIdentity; until: number }>();
  private readonly ttlMs: number;
  private readonly now: () => number;
  private readonly podProblems?: (pod: k8s.V1Pod) => string[];

  constructor(opts: SidecarAuthenticatorOptions) {
    this.podProblems = opts.podProblems;
    this.auth = opts.kubeConfig.makeApiClient(k8s.AuthenticationV1Api);
    this.core = opts.kubeConfig.makeApiClient(k8s.CoreV1Api);
    this.ttlMs = opts.cacheTtlMs ?? 10_000;
    this.now = opts.now ?? Date.now;
  }

  async authenticate(authorization: string | undefined): Promise<SidecarIdentity> {
    const token = /^Bearer (\S+)$/i.exec(authorization ?? '')?.[1];
    if (!token) {
      throw new BrokerAuthError(
        401,
        'missing bearer token',
        `send Authorization: Bearer <projected ServiceAccount token for audience ${SIDECAR_TOKEN_AUDIENCE}>`,
      );
    }
    const key = createHash('sha256').update(token).digest('base64url');
    const now = this.now();
    const hit = this.cache.get(key);
    if (hit && hit.until > now) return hit.identity;
    this.cache.delete(key);

    let status: k8s.V1TokenReviewStatus | undefined;
    try {
      const review = await this.auth.createTokenReview({
        body: { spec: { token, audiences: [SIDECAR_TOKEN_AUDIENCE] } },
      });
      status = review.status;
    } catch (err) {
      throw new BrokerAuthError(
        503,
        `cannot verify the token: TokenReview failed (${(err as Error).message})`,
      );
    }
    const bound = boundTokenOf(status);
    let pod: k8s.V1Pod | undefined;
    try {
      pod = await this.core.readNamespacedPod({ name: bound.podName, namespace: bound.namespace });
    } catch (err) {
      if ((err as { code?: number }).code !== 404) {
        throw new BrokerAuthError(
          503,
          `cannot read pod ${bound.namespace}/${bound.podName}: ${(err as Error).message}`,
        );
      }
    }
    const identity = sidecarIdentityOf(bound, pod);
    const problems = pod && this.podProblems ? this.podProblems(pod) : [];
    if (problems.length) {
      throw new BrokerAuthError(
        403,
        `pod ${bound.namespace}/${bound.podName} does not run the chaperone sidecar as injected: ${problems.join('; ')}`,
        'recreate the pod so the webhook injects it',
      );
    }
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(key, { identity, until: now + this.ttlMs });
    return identity;
  }
}
