import { createRemoteJWKSet, decodeJwt, errors, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOidcIssuer, type TestOidcIssuer } from './oidc-issuer.js';

describe('local OIDC issuer', () => {
  let idp: TestOidcIssuer;
  beforeAll(async () => {
    idp = await startOidcIssuer({ clientId: 'chaperone-test' });
  });
  afterAll(async () => {
    await idp?.stop();
  });

  const verifier = async () => {
    const discovery = (await (await fetch(`${idp.issuer}/.well-known/openid-configuration`)).json()) as {
      issuer: string;
      jwks_uri: string;
    };
    expect(discovery.issuer).toBe(idp.issuer);
    // cooldown 0: refetch at once on an unknown kid (jose waits 30 s by default).
    const jwks = createRemoteJWKSet(new URL(discovery.jwks_uri), { cooldownDuration: 0 });
    return (token: string) => jwtVerify(token, jwks, { issuer: discovery.issuer, audience: idp.clientId });
  };

  it('mints ID tokens that verify with jose through discovery + JWKS, carrying groups', async () => {
    const verify = await verifier();
    const token = await idp.mint({
      subject: 'alice',
      email: 'alice@example.test',
      groups: ['dba', 'oncall'],
    });
    const { payload, protectedHeader } = await verify(token);
    expect(protectedHeader.alg).toBe('ES256');
    expect(payload.sub).toBe('alice');
    expect(payload[idp.groupsClaim]).toEqual(['dba', 'oncall']);
  });

  it('rejects a tampered token', async () => {
    const verify = await verifier();
    const token = await idp.mint({ subject: 'mallory', groups: ['dev'] });
    const [h, p, s] = token.split('.');
    const claims = decodeJwt(token);
    const forged = Buffer.from(JSON.stringify({ ...claims, groups: ['dba'] })).toString('base64url');
    expect(forged).not.toBe(p);
    await expect(verify(`${h}.${forged}.${s}`)).rejects.toBeInstanceOf(errors.JWSSignatureVerificationFailed);
  });

  it('rejects expired tokens and tokens for another audience', async () => {
    const verify = await verifier();
    await expect(verify(await idp.mint({ subject: 'bob', expiresIn: -120 }))).rejects.toBeInstanceOf(
      errors.JWTExpired,
    );
    await expect(verify(await idp.mint({ subject: 'bob', audience: 'someone-else' }))).rejects.toBeInstanceOf(
      errors.JWTClaimValidationFailed,
    );
  });

  it('rotates its signing key: new tokens verify after the JWKS refresh, old ones no longer do', async () => {
    const verify = await verifier();
    const old = await idp.mint({ subject: 'carol' });
    await verify(old);
    const fetchesBefore = idp.jwksFetches();
    await idp.rotateKey();
    const fresh = await idp.mint({ subject: 'carol' });
    await expect(verify(fresh)).resolves.toBeTruthy();
    expect(idp.jwksFetches()).toBeGreaterThan(fetchesBefore);
    await expect(verify(old)).rejects.toBeInstanceOf(errors.JWKSNoMatchingKey);
  });
});
