import { OidcUnavailableError, type OidcVerifier } from '@chaperone/api';
import { AuthError, bearerToken, missingToken } from './auth-error.js';
import type { TokenFile } from './token-file.js';

export interface Auditor {
  user: string;
  groups: string[];
  via: 'oidc' | 'dev-token';
}

export interface AuditorAuthOptions {
  /** Standalone/dev only: a shared token that grants auditor access. */
  devTokenFile?: TokenFile;
  oidc?: OidcVerifier;
  /** An OIDC user needs at least one of these groups. */
  auditorGroups: readonly string[];
}

/**
 * Auditors: an OIDC ID token whose groups include an auditor group, or the dev token. With
 * neither configured every auditor request is refused (fail closed), never let through.
 */
export class AuditorAuthenticator {
  constructor(private readonly opts: AuditorAuthOptions) {
    if (opts.oidc && opts.auditorGroups.length === 0) {
      throw new Error('OIDC auditor login needs at least one auditor group (--auditor-group)');
    }
  }

  get configured(): boolean {
    return Boolean(this.opts.devTokenFile || this.opts.oidc);
  }

  async authenticate(authorization: string | undefined): Promise<Auditor> {
    if (!this.configured) {
      throw new AuthError(
        401,
        'unauthorized',
        'auditor access is not configured on this collector (--oidc-issuer with --auditor-group, or --auditor-token-file)',
        'not_configured',
      );
    }
    const token = bearerToken(authorization);
    if (!token) throw missingToken('OIDC ID token');
    if (this.opts.devTokenFile?.matches(token)) return { user: 'dev-token', groups: [], via: 'dev-token' };
    if (!this.opts.oidc) throw new AuthError(401, 'unauthorized', 'invalid auditor token', 'invalid_token');
    let verified: Awaited<ReturnType<OidcVerifier['verify']>>;
    try {
      verified = await this.opts.oidc.verify(token);
    } catch (err) {
      if (err instanceof OidcUnavailableError) {
        throw new AuthError(
          503,
          'auth_unavailable',
          `cannot check the ID token: ${err.message}`,
          'oidc_unavailable',
        );
      }
      throw new AuthError(
        401,
        'unauthorized',
        `invalid ID token: ${(err as Error).message}`,
        'invalid_token',
      );
    }
    if (!verified.groups.some((g) => this.opts.auditorGroups.includes(g))) {
      throw new AuthError(
        403,
        'forbidden',
        `${verified.user} is not an auditor: membership in one of the groups ${this.opts.auditorGroups.join(', ')} is required`,
        'not_auditor',
      );
    }
    return { user: verified.user, groups: verified.groups, via: 'oidc' };
  }
}
