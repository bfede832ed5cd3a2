import {
  BROKER_MAX_WAIT_SECONDS,
  BROKER_PATHS,
  type BrokerAccessRequestCreate,
  type BrokerCredentialRequest,
  type BrokerError,
  type Logger,
} from '@chaperone/api';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Counter, type Registry } from 'prom-client';
import { BrokerRequestError, type CredentialBroker } from './credential-broker.js';
import type { SidecarAuthenticator } from './sidecar-authenticator.js';
import { BrokerAuthError, type SidecarIdentity } from './sidecar-identity.js';

const NAME = '^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$';

const credentialBody = {
  type: 'object',
  required: ['connection', 'type'],
  additionalProperties: false,
  properties: {
    connection: { type: 'string', pattern: NAME },
    type: { enum: ['postgres', 'ssh', 'kubernetes'] },
    sessionId: { type: 'string', maxLength: 128 },
    publicKey: { type: 'string', maxLength: 16384 },
  },
} as const;

const accessRequestBody = {
  type: 'object',
  required: ['connection', 'policy', 'rule', 'sessionId', 'operation', 'timeoutSeconds'],
  additionalProperties: false,
  properties: {
    connection: { type: 'string', pattern: NAME },
    policy: { type: 'string', pattern: NAME },
    rule: { type: 'string', maxLength: 253 },
    sessionId: { type: 'string', maxLength: 128 },
    onBehalfOf: {
      type: 'object',
      required: ['user', 'groups'],
      additionalProperties: false,
      properties: {
        user: { type: 'string', maxLength: 512 },
        groups: { type: 'array', maxItems: 256, items: { type: 'string', maxLength: 512 } },
      },
    },
    operation: {
      type: 'object',
      required: ['type', 'class', 'text', 'fingerprint', 'riskReasons'],
      additionalProperties: false,
      properties: {
        type: { enum: ['postgres', 'ssh', 'kubernetes'] },
        class: { type: 'string', maxLength: 64 },
        text: { type: 'string', maxLength: 65536 },
        fingerprint: { type: 'string', maxLength: 256 },
        riskReasons: { type: 'array', maxItems: 64, items: { type: 'string', maxLength: 1024 } },
      },
    },
    timeoutSeconds: { type: 'number', minimum: 1 },
  },
} as const;

export interface BrokerRoutesOptions {
  broker: CredentialBroker;
  authenticator: SidecarAuthenticator;
  registry: Registry;
  log?: Logger;
}

/** The broker's HTTP face on the operator's HTTPS server. Every route authenticates first. */
export function registerBrokerRoutes(app: FastifyInstance, opts: BrokerRoutesOptions): void {
  const requests = new Counter({
    name: 'chaperone_operator_broker_requests_total',
    help: 'Broker requests by route and HTTP status.',
    labelNames: ['route', 'status'],
    registers: [opts.registry],
  });

  const handle =
    <B>(
      route: string,
      fn: (
        identity: SidecarIdentity,
        req: FastifyRequest<{ Body: B }>,
        reply: FastifyReply,
      ) => Promise<unknown>,
    ) =>
    async (req: FastifyRequest<{ Body: B }>, reply: FastifyReply) => {
      let status = 200;
      try {
        const identity = await opts.authenticator.authenticate(req.headers.authorization);
        const body = await fn(identity, req, reply);
        if (body === undefined) status = 204;
        return reply.code(status).send(body);
      } catch (err) {
        const e = err as Error & { status?: number; hint?: string };
        status =
          err instanceof BrokerAuthError || err instanceof BrokerRequestError ? (e.status ?? 500) : 502;
        if (err instanceof BrokerRequestError && err.retryAfterSeconds !== undefined) {
          reply.header('retry-after', String(err.retryAfterSeconds));
        }
        if (status >= 500) opts.log?.('warn', 'broker request failed', { route, error: e.message });
        const payload: BrokerError = { error: e.message, ...(e.hint ? { hint: e.hint } : {}) };
        return reply.code(status).send(payload);
      } finally {
        requests.inc({ route, status: String(status) });
      }
    };

  app.get(
    BROKER_PATHS.config,
    handle('config', (identity) => opts.broker.config(identity)),
  );
  app.post<{ Body: BrokerCredentialRequest }>(
    BROKER_PATHS.credentials,
    { schema: { body: credentialBody } },
    handle<BrokerCredentialRequest>('credentials', (identity, req) => {
      const body = req.body;
      if (body.type === 'ssh' && !body.publicKey) {
        throw new BrokerRequestError(400, 'an ssh credential needs publicKey (an OpenSSH public key line)');
      }
      return opts.broker.credential(identity, body);
    }),
  );
  app.post<{ Body: BrokerAccessRequestCreate }>(
    BROKER_PATHS.accessRequests,
    { schema: { body: accessRequestBody } },
    handle<BrokerAccessRequestCreate>('access-requests', async (identity, req) =>
      opts.broker.createAccessRequest(identity, req.body),
    ),
  );
  app.get(
    `${BROKER_PATHS.accessRequests}/:name/decision`,
    handle('decision', (identity, req, reply) => {
      const { name } = req.params as { name: string };
      const wait = Number((req.query as { waitSeconds?: string }).waitSeconds ?? 0);
      const waitSeconds = Number.isFinite(wait) ? Math.min(Math.max(wait, 0), BROKER_MAX_WAIT_SECONDS) : 0;
      const abort = new AbortController();
      // The response's close, not the request's: the request closes as soon as its body is read.
      reply.raw.once('close', () => abort.abort());
      return opts.broker.decision(identity, name, waitSeconds, abort.signal);
    }),
  );
  app.delete(
    `${BROKER_PATHS.accessRequests}/:name`,
    handle('withdraw', async (identity, req) => {
      const { name } = req.params as { name: string };
      await opts.broker.withdraw(identity, name);
      return undefined;
    }),
  );
}
