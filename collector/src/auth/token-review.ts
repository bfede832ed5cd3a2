import { createHash } from 'node:crypto';
import * as k8s from '@kubernetes/client-node';
import { decodeJwt } from 'jose';
import { AuthError } from './auth-error.js';

export const COLLECTOR_AUDIENCE = 'chaperone-collector';

export interface ServiceAccountPrincipal {
  kind: 'serviceaccount';
  namespace: string;
  name: string;
  username: string;
}

export interface TokenReviewOptions {
  kubeConfig: k8s.KubeConfig;
  audience?: string;
  /** How long a positive review is reused (default 30 s; never beyond the token's own expiry). */
  cacheTtlMs?: number;
  maxCacheEntries?: number;
  /** Called once per TokenReview sent (cache hits send none). */
  onReview?: (result: 'authenticated' | 'rejected' | 'error') => void;
}

/**
 * Authenticates sidecars by their projected ServiceAccount token: a TokenReview against the API
 * server, for our audience only (a token minted for the broker or the API server is refused).
 * Positive results are cached briefly — every batch of every sidecar would otherwise cost an API
 * server round trip — keyed by a hash of the token, never the token itself.
 */
export class TokenReviewAuthenticator {
  private readonly api: k8s.AuthenticationV1Api;
  private readonly audience: string;
  private readonly cache = new Map<string, { principal: ServiceAccountPrincipal; until: number }>();
  private readonly ttlMs: number;
  private readonly maxEntries: number;
  private readonly onReview: NonNullable<TokenReviewOptions['onReview']>;

  constructor(opts: TokenReviewOptions) {
    this.onReview = opts.onReview ?? (() => {});
    this.api = opts.kubeConfig.makeApiClient(k8s.AuthenticationV1Api);
    this.audience = opts.audience ?? COLLECTOR_AUDIENCE;
    this.ttlMs = opts.cacheTtlMs ?? 30_000;
    this.maxEntries = opts.maxCacheEntries ?? 10_000;
  }

  async authenticate(token: string): Promise<ServiceAccountPrincipal> {
    const key = createHash('sha256').update(token).digest('base64url');
    const now = Date.now();
    const hit = this.cache.get(key);
    if (hit && hit.until > now) return hit.principal;
    if (hit) this.cache.delete(key);

    let status: k8s.V1TokenReviewStatus | undefined;
    try {
      const review = await this.api.createTokenReview({
        body: {
          apiVersion: 'authentication.k8s.io/v1',
          kind: 'TokenReview',
          spec: { token, audiences: [this.audience] },
        },
      });
      status = review.status;
    } catch (err) {
      this.onReview('error');
      // Not the caller's fault: a 503 makes the sidecar retry instead of giving up on its spool.
      throw new AuthError(
        503,
        'auth_unavailable',
        `cannot check the token: TokenReview against the Kubernetes API server failed (${(err as Error).message})`,
        'tokenreview_unavailable',
      );
    }
    this.onReview(status?.authenticated ? 'authenticated' : 'rejected');
    if (!status?.authenticated) {
      throw new AuthError(
        401,
        'unauthorized',
        `ServiceAccount token rejected by the Kubernetes API server${status?.error ? `: ${status.error}` : ''} (tokens must be valid for audience ${this.audience})`,
        'tokenreview_rejected',
      );
    }
    // An audience-unaware authenticator answers with no audiences; that is not good enough.
    if (!status.audiences?.includes(this.audience)) {
      throw new AuthError(
        401,
        'unauthorized',
        `token is not valid for audience ${this.audience}`,
        'audience',
      );
    }
    const username = status.user?.username ?? '';
    const m = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(username);
    if (!m) {
      throw new AuthError(
        403,
        'forbidden',
        `only ServiceAccounts may ship recordings; the token belongs to ${username || 'an unnamed user'}`,
        'not_serviceaccount',
      );
    }
    const principal: ServiceAccountPrincipal = {
      kind: 'serviceaccount',
      namespace: m[1]!,
      name: m[2]!,
      username,
    };
    let until = now + this.ttlMs;
    try {
      const exp = decodeJwt(token).exp;
      if (exp !== undefined) until = Math.min(until, exp * 1000);
    } catch {
      // Opaque tokens are not JWTs; the TTL alone bounds them.
    }
    if (this.cache.size >= this.maxEntries) {
      const oldest = this.cache.keys().next();
      if (!oldest.done) this.cache.delete(oldest.value);
    }
    this.cache.set(key, { principal, until });
    return principal;
  }
}
