// The broker's routes on the operator's real HTTPS server, over TLS from a real client: bad bodies
// (schema-invalid, unknown fields, malformed JSON, over the size limit) are refused with 400/413 and
// a JSON error before the broker sees them; a bad token gets 401; none of it harms the next request.
import { readFile } from 'node:fs/promises';
import type { Connection } from '@chaperone/api';
import { BROKER_PATHS } from '@chaperone/api';
import { createTestCa, httpsJson, makeWorkDir, type WorkDir } from '@chaperone/testkit';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { OperatorHttpsServer } from '../admission/https-server.js';
import { registerBrokerRoutes } from './broker-routes.js';
import { type BrokerStore, CredentialBroker, type CredentialIssuers } from './credential-broker.js';
import type { SidecarAuthenticator } from './sidecar-authenticator.js';
import { BrokerAuthError, type SidecarIdentity } from './sidecar-identity.js';

const IDENTITY: SidecarIdentity = {
  namespace: 'shop',
  serviceAccount: 'orders-agent',
  pod: { name: 'orders-agent-1', uid: 'uid-1', labels: {} },
  connections: ['orders-db'],
};
const BODY_LIMIT = 64 * 1024;

let work: WorkDir;
let server: OperatorHttpsServer;
let port: number;
let ca: string;
let credentialCalls: unknown[] = [];

/** A POST to the broker as the sidecar sends it (token "good" unless headers say otherwise). */
const call = (path: string, body: unknown, headers: Record<string, string> = {}, to = port) =>
  // The server may answer 413 and close while a big body is still being written: that rejects.
  httpsJson(`https://127.0.0.1:${to}${path}`, { ca, servername: 'localhost', token: 'good', body, headers });

const credential = (body: unknown, headers?: Record<string, string>) =>
  call(BROKER_PATHS.credentials, body, headers);

beforeAll(async () => {
  work = await makeWorkDir('broker-routes');
  const pki = await createTestCa(work.path);
  const cert = await pki.issue('broker', {
    commonName: 'broker',
    altNames: ['DNS:localhost'],
    usage: 'server',
  });
  ca = await readFile(pki.certPath, 'utf8');
  server = new OperatorHttpsServer({
    host: '127.0.0.1',
    port: 0,
    certificate: { cert: await readFile(cert.certPath, 'utf8'), key: await readFile(cert.keyPath, 'utf8') },
    registry: new Registry(),
    bodyLimitBytes: BODY_LIMIT,
  });
  const authenticator = {
    async authenticate(header: string | undefined) {
      if (header !== 'Bearer good') throw new BrokerAuthError(401, 'the token is not valid');
      return IDENTITY;
    },
  } as unknown as SidecarAuthenticator;
  const broker = {
    async credential(_identity: SidecarIdentity, body: unknown) {
      credentialCalls.push(body);
      return { type: 'postgres', username: 'u', password: 'p', expiresAt: new Date(0).toISOString() };
    },
  } as unknown as CredentialBroker;
  registerBrokerRoutes(server.app, { broker, authenticator, registry: new Registry() });
  port = await server.listen();
});

afterAll(async () => {
  await server?.close();
  await work?.remove();
});

beforeEach(() => {
  credentialCalls = [];
});

describe('broker routes over HTTPS', () => {
  it('serves a valid request (the baseline the refusals below differ from)', async () => {
    const res = await credential({ connection: 'orders-db', type: 'postgres' });
    expect(res.status).toBe(200);
    expect(credentialCalls).toEqual([{ connection: 'orders-db', type: 'postgres' }]);
  });

  it.each([
    ['a missing field', { connection: 'orders-db' }, /type/],
    ['an unknown type', { connection: 'orders-db', type: 'mysql' }, /type/],
    ['an unknown field', { connection: 'orders-db', type: 'postgres', role: 'superuser' }, /additional/],
    ['an invalid Connection name', { connection: 'Orders DB', type: 'postgres' }, /connection/],
    [
      'an over-long field',
      { connection: 'orders-db', type: 'postgres', sessionId: 'x'.repeat(129) },
      /sessionId/,
    ],
  ])('refuses %s with 400 before the broker sees it', async (_what, body, message) => {
    const res = await credential(body);
    expect(res.status).toBe(400);
    expect(String(res.json.message)).toMatch(message);
    expect(credentialCalls).toEqual([]);
  });

  it('refuses malformed JSON with 400', async () => {
    const res = await credential('{"connection": "orders-db", ');
    expect(res.status).toBe(400);
    expect(credentialCalls).toEqual([]);
  });

  it('refuses a body over the limit with 413 and keeps serving', async () => {
    const big = JSON.stringify({
      connection: 'orders-db',
      type: 'ssh',
      publicKey: 'A'.repeat(BODY_LIMIT * 4),
    });
    const res = await credential(big).catch((err: NodeJS.ErrnoException) => ({
      status: 0,
      json: { err: err.code },
    }));
    // 413, or a reset if the server closed before the client finished writing: never a 200.
    expect([413, 0]).toContain(res.status);
    expect(credentialCalls).toEqual([]);
    expect((await credential({ connection: 'orders-db', type: 'postgres' })).status).toBe(200);
  });

  it('refuses a bad token with 401 and says why', async () => {
    const res = await credential(
      { connection: 'orders-db', type: 'postgres' },
      { authorization: 'Bearer forged' },
    );
    expect(res.status).toBe(401);
    expect(res.json.error).toBe('the token is not valid');
    expect(credentialCalls).toEqual([]);
  });
});

describe('issuance limits, with the real CredentialBroker behind the routes', () => {
  let limited: OperatorHttpsServer;
  let limitedPort: number;
  let issued: string[] = [];
  let now = Date.parse('2030-01-01T00:00:00Z');

  beforeAll(async () => {
    const pki = await createTestCa(work.path, 'limits-ca');
    const cert = await pki.issue('limits', {
      commonName: 'broker',
      altNames: ['DNS:localhost'],
      usage: 'server',
    });
    limited = new OperatorHttpsServer({
      host: '127.0.0.1',
      port: 0,
      certificate: { cert: await readFile(cert.certPath, 'utf8'), key: await readFile(cert.keyPath, 'utf8') },
      registry: new Registry(),
    });
    ca = `${ca}${await readFile(pki.certPath, 'utf8')}`;
    const connection = {
      apiVersion: 'chaperone.dev/v1alpha1',
      kind: 'Connection',
      metadata: { name: 'orders-db', namespace: 'shop' },
      spec: { type: 'postgres' },
    } as unknown as Connection;
    const broker = new CredentialBroker({
      store: {
        getConnection: async (_ns: string, name: string) => (name === 'orders-db' ? connection : undefined),
      } as unknown as BrokerStore,
      operatorNamespace: 'chaperone-system',
      issuers: {
        async postgres() {
          issued.push('postgres');
          return {
            type: 'postgres',
            username: `r${issued.length}`,
            password: 'p',
            expiresAt: new Date(now + 900_000).toISOString(),
            description: 'role',
          };
        },
      } as unknown as CredentialIssuers,
      now: () => new Date(now),
      limits: { credentials: { burst: 2, perMinute: 6 }, accessRequests: { burst: 1, perMinute: 1 } },
    });
    const authenticator = {
      async authenticate() {
        return IDENTITY;
      },
    } as unknown as SidecarAuthenticator;
    registerBrokerRoutes(limited.app, { broker, authenticator, registry: new Registry() });
    limitedPort = await limited.listen();
  });

  afterAll(async () => {
    await limited?.close();
  });

  it('issues a burst, then answers 429 with Retry-After and issues nothing, until the bucket refills', async () => {
    issued = [];
    const ask = () =>
      call(BROKER_PATHS.credentials, { connection: 'orders-db', type: 'postgres' }, {}, limitedPort);
    expect((await ask()).status).toBe(200);
    expect((await ask()).status).toBe(200);
    const refused = await ask();
    expect(refused.status).toBe(429);
    expect(refused.headers['retry-after']).toBe('10');
    expect(String(refused.json.error)).toContain('too many credentials for orders-db');
    expect(issued).toHaveLength(2);
    now += 10_000; // 6 a minute: one token back after 10 s
    expect((await ask()).status).toBe(200);
    expect((await ask()).status).toBe(429);
    expect(issued).toHaveLength(3);
  });
});
