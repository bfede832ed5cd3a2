import { createRemoteJWKSet, decodeJwt, type JWTVerifyGetKey, errors as joseErrors, jwtVerify } from 'jose';

// Verifies OIDC ID tokens for the sidecar (agents on whose behalf it acts) and the collector
// (auditors): discovery, then the JWKS it names, cached by jose.

export interface OidcIssuerConfig {
  /** Issuer URL exactly as in the tokens' `iss`. */
  issuer: string;
  /** Expected `aud`. */
  audience: string;
  /** Claim holding the groups list (default `groups`). */
  groupsClaim?: string;
  /** Claim naming the user (default `email`, falling back to `sub`). */
  usernameClaim?: string;
}

export interface VerifiedIdToken {
  user: string;
  groups: string[];
  issuer: string;
}

/** The issuer could not be reached: not the token's fault, so not a 401. */
export class OidcUnavailableError extends Error {}

export class OidcVerifier {
  private readonly jwks = new Map<string, Promise<JWTVerifyGetKey>>();

  constructor(
    private readonly issuers: readonly OidcIssuerConfig[],
    private readonly opts: { cooldownMs?: number; clockToleranceSec?: number } = {},
  ) {}

  /** Throws an Error whose message says why the token is refused. */
  async verify(token: string): Promise<VerifiedIdToken> {
    let iss: string | undefined;
    try {
      iss = decodeJwt(token).iss;
    } catch {
      throw new Error('not a JWT');
    }
    const cfg = this.issuers.find((i) => i.issuer === iss);
    if (!cfg) throw new Error(`issuer ${iss ?? '(none)'} is not trusted`);
    let keys: JWTVerifyGetKey;
    try {
      keys = await this.keysFor(cfg);
    } catch (err) {
      throw new OidcUnavailableError((err as Error).message);
    }
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(token, keys, {
        issuer: cfg.issuer,
        audience: cfg.audience,
        clockTolerance: this.opts.clockToleranceSec ?? 30,
        requiredClaims: ['exp', 'sub'],
      }));
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired) throw new Error('token expired');
      if (err instanceof joseErrors.JWKSTimeout || !(err instanceof joseErrors.JOSEError)) {
        throw new OidcUnavailableError(
          `fetching the keys of ${cfg.issuer} failed: ${(err as Error).message}`,
        );
      }
      if (err instanceof joseErrors.JWTClaimValidationFailed) {
        throw new Error(`claim ${err.claim} is not acceptable: ${err.reason}`);
      }
      throw new Error(`signature check failed: ${(err as Error).message}`);
    }
    const groupsRaw = payload[cfg.groupsClaim ?? 'groups'];
    const groups = Array.isArray(groupsRaw)
      ? groupsRaw.filter((g): g is string => typeof g === 'string')
      : [];
    const nameClaim = payload[cfg.usernameClaim ?? 'email'];
    const user = typeof nameClaim === 'string' ? nameClaim : String(payload.sub);
    return { user, groups, issuer: cfg.issuer };
  }

  private keysFor(cfg: OidcIssuerConfig): Promise<JWTVerifyGetKey> {
    let p = this.jwks.get(cfg.issuer);
    if (!p) {
      p = (async () => {
        const res = await fetch(`${cfg.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`);
        if (!res.ok) throw new Error(`OIDC discovery for ${cfg.issuer} failed: HTTP ${res.status}`);
        const doc = (await res.json()) as { issuer?: string; jwks_uri?: string };
        if (doc.issuer !== cfg.issuer || !doc.jwks_uri) {
          throw new Error(
            `OIDC discovery for ${cfg.issuer} returned issuer ${doc.issuer} / jwks_uri ${doc.jwks_uri}`,
          );
        }
        return createRemoteJWKSet(new URL(doc.jwks_uri), {
          cooldownDuration: this.opts.cooldownMs ?? 30_000,
        });
      })();
      // A failed discovery is retried on the next token rather than cached forever.
      p.catch(() => this.jwks.delete(cfg.issuer));
      this.jwks.set(cfg.issuer, p);
    }
    return p;
  }
}
