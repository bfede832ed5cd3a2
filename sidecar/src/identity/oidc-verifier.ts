import { createRemoteJWKSet, decodeJwt, type JWTVerifyGetKey, jwtVerify } from 'jose';

export interface OidcIssuerConfig {
  /** Issuer URL exactly as in the tokens' `iss`. */
  issuer: string;
  /** Expected `aud` (the client id Chaperone is registered with). */
  audience: string;
  /** Claim holding the groups list (default `groups`). */
  groupsClaim?: string;
  /** Claim naming the user (default `email`, falling back to `sub`). */
  usernameClaim?: string;
}

export interface VerifiedToken {
  user: string;
  groups: string[];
  issuer: string;
}

/**
 * Verifies OIDC ID tokens against configured issuers: discovery document, then the JWKS it names,
 * cached by jose (refetched on an unknown key id, at most every `cooldownMs`). A token from an
 * issuer that is not configured is refused without any network call.
 */
export class OidcVerifier {
  private readonly jwks = new Map<string, Promise<JWTVerifyGetKey>>();

  constructor(
    private readonly issuers: OidcIssuerConfig[],
    private readonly opts: { cooldownMs?: number; clockToleranceSec?: number } = {},
  ) {}

  async verify(token: string): Promise<VerifiedToken> {
    let iss: string | undefined;
    try {
      iss = decodeJwt(token).iss;
    } catch {
      throw new Error('not a JWT');
    }
    const cfg = this.issuers.find((i) => i.issuer === iss);
    if (!cfg) throw new Error(`issuer ${iss ?? '(none)'} is not trusted`);
    const keys = await this.keysFor(cfg);
    const { payload } = await jwtVerify(token, keys, {
      issuer: cfg.issuer,
      audience: cfg.audience,
      clockTolerance: this.opts.clockToleranceSec ?? 30,
      requiredClaims: ['exp', 'sub'],
    });
    const groupsRaw = payload[cfg.groupsClaim ?? 'groups'];
    const groups = Array.isArray(groupsRaw)
      ? groupsRaw.filter((g): g is string => typeof g === 'string')
      : [];
    const nameClaim = payload[cfg.usernameClaim ?? 'email'];
    const user = typeof nameClaim === 'string' ? nameClaim : (payload.sub as string);
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
