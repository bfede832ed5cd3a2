import { RECORDING_EVENT_TYPES, SESSION_ID_PATTERN } from '@chaperone/api';
import type { FastifyInstance } from 'fastify';
import { AuthError } from '../auth/auth-error.js';
import type { IngestAuthenticator, IngestPrincipal } from '../auth/ingest-auth.js';
import { errorBodySchema } from '../http/errors.js';
import type { CollectorMetrics } from '../metrics.js';
import type { EventStore, PreparedEvent } from '../store/event-store.js';
import { describeEvent, prepareBatch, type RejectedEvent } from './prepare-batch.js';

export interface IngestRouteOptions {
  store: EventStore;
  auth: IngestAuthenticator;
  metrics: CollectorMetrics;
  maxBodyBytes: number;
  maxBatchEvents: number;
  /**
   * With TokenReview, a sidecar may only ship events that name its own ServiceAccount: a
   * compromised pod cannot write another agent's record. (The standalone token has no identity.)
   */
  bindServiceAccount: boolean;
}

declare module 'fastify' {
  interface FastifyRequest {
    ingestPrincipal?: IngestPrincipal;
  }
}

const eventSchema = {
  type: 'object',
  description:
    'A recording event (schema version 1, see api/src/recording-events.ts). Validated by the collector itself so that errors name the event index and field.',
  required: ['v', 'type', 'sessionId', 'seq', 'time', 'identity', 'connection', 'prevHash', 'data'],
  properties: {
    v: { type: 'integer', enum: [1] },
    type: {
      type: 'string',
      enum: [...RECORDING_EVENT_TYPES],
    },
    sessionId: { type: 'string', pattern: SESSION_ID_PATTERN.source },
    seq: { type: 'integer', minimum: 0 },
    time: { type: 'string', format: 'date-time' },
    identity: {
      type: 'object',
      properties: {
        serviceAccount: { type: 'string' },
        pod: { type: 'string' },
        user: { type: 'string' },
        groups: { type: 'array', items: { type: 'string' } },
      },
    },
    connection: { type: 'string' },
    rule: { type: 'string' },
    prevHash: {
      type: 'string',
      description: "sha256 hex of the previous event's canonical JSON; '' for seq 0",
    },
    data: { type: 'object', additionalProperties: true },
  },
} as const;

export function registerIngestRoutes(app: FastifyInstance, opts: IngestRouteOptions): void {
  const { store, metrics } = opts;
  const reject = (reason: string, events = 0) => {
    metrics.rejectedBatches.inc({ reason });
    metrics.rejectedEvents.inc(events);
  };

  app.post(
    '/v1/events',
    {
      bodyLimit: opts.maxBodyBytes,
      schema: {
        summary: 'Ingest a batch of recording events (sidecars)',
        description: `Idempotent on (sessionId, seq) and tolerant of order: a retried or reordered batch stores each event once. All or nothing: one invalid event refuses the whole batch (4xx) and nothing of it is stored. At most ${opts.maxBatchEvents} events and ${opts.maxBodyBytes} bytes per request. A 200 acknowledges every event of the batch: stored now, already stored (duplicates), or refused for good because its (sessionId, seq) holds different content (conflicts).`,
        tags: ['ingest'],
        security: [{ sidecarToken: [] }],
        body: {
          type: 'object',
          required: ['events'],
          properties: { events: { type: 'array', maxItems: opts.maxBatchEvents, items: eventSchema } },
        },
        response: {
          200: {
            type: 'object',
            required: ['stored', 'duplicates', 'conflicts'],
            properties: {
              stored: { type: 'integer' },
              duplicates: { type: 'integer' },
              conflicts: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: { sessionId: { type: 'string' }, seq: { type: 'integer' } },
                },
              },
            },
          },
          400: errorBodySchema,
          401: errorBodySchema,
          403: errorBodySchema,
          413: errorBodySchema,
          503: errorBodySchema,
        },
      },
      // The body schema above is documentation; prepareBatch validates, with errors that name the
      // event index and field (ajv's would not).
      validatorCompiler: () => () => true,
      // Authenticate before the body is read: an unauthenticated client cannot make us parse MBs.
      onRequest: async (req, reply) => {
        try {
          req.ingestPrincipal = await opts.auth.authenticate(req.headers.authorization);
        } catch (err) {
          if (!(err instanceof AuthError)) throw err;
          metrics.authFailures.inc({ api: 'ingest', reason: err.reason });
          reject(err.status === 503 ? 'auth_unavailable' : 'unauthorized');
          if (err.status === 401) reply.header('www-authenticate', 'Bearer realm="chaperone-collector"');
          return reply.code(err.status).send({ error: err.code, message: err.message });
        }
      },
    },
    async (req, reply) => {
      const started = process.hrtime.bigint();
      metrics.inflight.inc();
      try {
        const batch = prepareBatch(req.body, opts.maxBatchEvents);
        if (!batch.ok) {
          const count = Array.isArray((req.body as { events?: unknown })?.events)
            ? (req.body as { events: unknown[] }).events.length
            : 0;
          reject(batch.error, count);
          return reply.code(batch.status).send({
            error: batch.error,
            message: batch.message,
            ...(batch.events ? { events: batch.events } : {}),
          });
        }
        const principal = req.ingestPrincipal;
        if (opts.bindServiceAccount && principal?.kind === 'serviceaccount') {
          const foreign = foreignEvents(batch.events, `${principal.namespace}/${principal.name}`);
          const first = foreign[0];
          if (first) {
            reject('foreign_identity', batch.events.length);
            return reply.code(403).send({
              error: 'forbidden',
              message: `${describeEvent(first)}: ${first.errors[0]}; nothing from this batch was stored`,
              events: foreign,
            });
          }
        }
        const result = await store.appendBatch(batch.events);
        metrics.ingested.inc(result.stored);
        metrics.duplicates.inc(result.duplicates);
        metrics.conflicts.inc(result.conflicts.length);
        metrics.batchEvents.observe(batch.events.length);
        metrics.batchSeconds.observe(Number(process.hrtime.bigint() - started) / 1e9);
        if (result.conflicts.length) {
          req.log.warn(
            { conflicts: result.conflicts.slice(0, 20), principal },
            'events conflict with stored events of the same (session, seq); the stored ones were kept',
          );
        }
        return result;
      } finally {
        metrics.inflight.dec();
      }
    },
  );
}

function foreignEvents(events: readonly PreparedEvent[], serviceAccount: string): RejectedEvent[] {
  const out: RejectedEvent[] = [];
  events.forEach(({ event }, index) => {
    if (event.identity.serviceAccount !== serviceAccount && out.length < 20) {
      out.push({
        index,
        sessionId: event.sessionId,
        seq: event.seq,
        errors: [
          `identity.serviceAccount is ${event.identity.serviceAccount ?? '(none)'}, but the token belongs to ServiceAccount ${serviceAccount}`,
        ],
      });
    }
  });
  return out;
}
