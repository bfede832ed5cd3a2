import { AuthError, bearerToken, missingToken } from './auth-error.js';
import type { TokenFile } from './token-file.js';
import type { ServiceAccountPrincipal, TokenReviewAuthenticator } from './token-review.js';

/** Who shipped a batch: the holder of the shared standalone token, or a ServiceAccount. */
export type IngestPrincipal = { kind: 'static-token' } | ServiceAccountPrincipal;

export interface IngestAuthOptions {
  tokenFile?: TokenFile;
  tokenReview?: TokenReviewAuthenticator;
}

/** Sidecar authentication: the standalone token file first (no network), then TokenReview. */
export class IngestAuthenticator {
  constructor(private readonly opts: IngestAuthOptions) {
    if (!opts.tokenFile && !opts.tokenReview) {
      throw new Error('ingest needs authentication: an ingest token file, TokenReview, or both');
    }
  }

  async authenticate(authorization: string | undefined): Promise<IngestPrincipal> {
    const token = bearerToken(authorization);
    if (!token) throw missingToken('sidecar token');
    if (this.opts.tokenFile?.matches(token)) return { kind: 'static-token' };
    if (this.opts.tokenReview) return this.opts.tokenReview.authenticate(token);
    throw new AuthError(401, 'unauthorized', 'invalid ingest token', 'invalid_token');
  }
}
