import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';

export interface MintOptions {
  subject: string;
  audience?: string | string[];
  groups?: string[];
  email?: string;
  /** Seconds until expiry (negative makes an already-expired token). Default 300. */
  expiresIn?: number;
  /** Extra claims (override the defaults). */
  claims?: Record<string, unknown>;
}

export interface TestOidcIssuer {
  /** The issuer URL (`iss`); discovery is at `${issuer}/.well-known/openid-configuration`. */
  readonly issuer: string;
  readonly jwksUri: string;
  /** Default audience (`aud`) of minted tokens: the client id Chaperone is configured with. */
  readonly clientId: string;
  readonly groupsClaim: 'groups';
  mint(opts: MintOptions): Promise<string>;
  /** Replaces the signing key (old tokens stop verifying once a verifier refreshes the JWKS). */
  rotateKey(): Promise<void>;
  /** How many times the JWKS document was fetched (to test verifier caching). */
  jwksFetches(): number;
  stop(): Promise<void>;
}

/**
 * A tiny, real OpenID Connect issuer on 127.0.0.1: discovery document, JWKS and ID-token minting
 * with a groups claim, all with jose. It stands in for a cloud IdP, which cannot run here.
 */
export async function startOidcIssuer(opts: { clientId?: string } = {}): Promise<TestOidcIssuer> {
  const clientId = opts.clientId ?? 'chaperone';
  let key = await newKey();
  let fetches = 0;
  let issuer = '';

  const server: Server = createServer((req, res) => {
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'max-age=60' });
      res.end(JSON.stringify(body));
    };
    if (req.url === '/.well-known/openid-configuration') {
      send(200, {
        issuer,
        jwks_uri: `${issuer}/jwks`,
        authorization_endpoint: `${issuer}/authorize`,
        token_endpoint: `${issuer}/token`,
        response_types_supported: ['id_token'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: ['ES256'],
        claims_supported: ['sub', 'iss', 'aud', 'exp', 'iat', 'email', 'groups'],
      });
    } else if (req.url === '/jwks') {
      fetches++;
      send(200, { keys: [key.publicJwk] });
    } else {
      send(404, { error: 'not_found' });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  if (!addr || typeof addr === 'string') throw new Error('OIDC issuer did not bind a TCP port');
  issuer = `http://127.0.0.1:${addr.port}`;

  return {
    issuer,
    jwksUri: `${issuer}/jwks`,
    clientId,
    groupsClaim: 'groups',
    async mint(m) {
      const now = Math.floor(Date.now() / 1000);
      return new SignJWT({
        ...(m.groups ? { groups: m.groups } : {}),
        ...(m.email ? { email: m.email, email_verified: true } : {}),
        ...m.claims,
      })
        .setProtectedHeader({ alg: 'ES256', kid: key.kid, typ: 'JWT' })
        .setIssuer(issuer)
        .setSubject(m.subject)
        .setAudience(m.audience ?? clientId)
        .setIssuedAt(now)
        .setJti(randomUUID())
        .setExpirationTime(now + (m.expiresIn ?? 300))
        .sign(key.privateKey);
    },
    async rotateKey() {
      key = await newKey();
    },
    jwksFetches: () => fetches,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

type SigningKey = Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];

async function newKey(): Promise<{ kid: string; privateKey: SigningKey; publicJwk: JWK }> {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  const kid = randomUUID();
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' };
  return { kid, privateKey, publicJwk };
}
