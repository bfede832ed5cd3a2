import { type OidcIssuerConfig, OidcVerifier } from '@chaperone/api';
import swagger from '@fastify/swagger';
import type * as k8s from '@kubernetes/client-node';
import Fastify, { type FastifyInstance, type FastifyServerOptions, LogController } from 'fastify';
import { registerAuditorRoutes } from './auditor/routes.js';
import { AuditorAuthenticator } from './auth/auditor-auth.js';
import { IngestAuthenticator } from './auth/ingest-auth.js';
import { TokenFile } from './auth/token-file.js';
import { installErrorHandler } from './http/errors.js';
import { registerIngestRoutes } from './ingest/routes.js';
import { type CollectorMetrics, createCollectorMetrics } from './metrics.js';
import type { EventStore, RetentionPolicy, RetentionResult } from './store/event-store.js';
import { openStore, parseStoreLocation } from './store/open-store.js';
import { DEFAULT_ABANDONED_AFTER_MS } from './store/session-state.js';
import { registerUi } from './ui/index.js';

export const COLLECTOR_VERSION = '0.1.0';

export interface CollectorConfig {
  /** `sqlite:PATH`, a `postgres://` URL, or an open store (the collector closes it on close()). */
  db: string | EventStore;
  /** Apply schema migrations before serving (default true). */
  migrate?: boolean;
  /** Standalone sidecar authentication: a file holding the shared bearer token. */
  ingestTokenFile?: string;
  /** In-cluster sidecar authentication: projected ServiceAccount tokens checked by TokenReview. */
  tokenReview?: { kubeConfig: k8s.KubeConfig; audience?: string; cacheTtlMs?: number };
  /** With TokenReview, refuse events whose identity.serviceAccount is not the caller's (default true). */
  bindServiceAccount?: boolean;
  /** Dev/standalone auditor access: a file holding a shared bearer token. */
  auditorTokenFile?: string;
  oidc?: OidcIssuerConfig[];
  /** OIDC users need one of these groups to use the auditor API. */
  auditorGroups?: string[];
  /** Per ingest request (default 8 MiB). */
  maxBodyBytes?: number;
  /** Per ingest request (default 1000). */
  maxBatchEvents?: number;
  retention?: RetentionPolicy;
  /** How often retention runs (default 1 h; the first run is right after start). */
  retentionIntervalMs?: number;
  /** A session without session.end and without an event for this long shows as abandoned (default 1 h). */
  abandonedAfterMs?: number;
  logger?: FastifyServerOptions['logger'];
}

export interface Collector {
  readonly app: FastifyInstance;
  readonly store: EventStore;
  readonly metrics: CollectorMetrics;
  /** Runs retention now (also what the timer calls); resolves with what was deleted. */
  runRetention(now?: Date): Promise<RetentionResult>;
  /** Stops accepting requests, lets in-flight batches finish, then closes the store. */
  close(): Promise<void>;
}

export const DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024;
export const DEFAULT_MAX_BATCH_EVENTS = 1000;

export async function buildCollector(config: CollectorConfig): Promise<Collector> {
  // Auth first: a missing token file should fail the start before anything else happens.
  const metrics = createCollectorMetrics();
  const ingestAuth = new IngestAuthenticator({
    tokenFile: config.ingestTokenFile ? new TokenFile(config.ingestTokenFile) : undefined,
    // Imported on demand: @kubernetes/client-node takes about a second to load.
    tokenReview: config.tokenReview
      ? new (await import('./auth/token-review.js')).TokenReviewAuthenticator({
          ...config.tokenReview,
          onReview: (result) => metrics.tokenReviews.inc({ result }),
        })
      : undefined,
  });
  const auditorAuth = new AuditorAuthenticator({
    devTokenFile: config.auditorTokenFile ? new TokenFile(config.auditorTokenFile) : undefined,
    oidc: config.oidc?.length ? new OidcVerifier(config.oidc) : undefined,
    auditorGroups: config.auditorGroups ?? [],
  });

  const app = Fastify({
    logger: config.logger ?? false,
    // One line per ingest batch would drown the log; failures are logged where they happen.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 64 * 1024,
    return503OnClosing: true,
    // An unknown query parameter (a typo like `decison=denied`) must fail, not be dropped
    // silently and widen the search.
    ajv: { customOptions: { removeAdditional: false } },
  });
  // JSON only: a text/plain body gets a 415 instead of reaching a handler as a string.
  app.removeContentTypeParser('text/plain');
  const store =
    typeof config.db === 'string'
      ? openStore(parseStoreLocation(config.db), {
          onPoolError: (err) => app.log.warn({ err: err.message }, 'idle database connection failed'),
        })
      : config.db;
  try {
    if (config.migrate ?? true) {
      const m = await store.migrate();
      if (m.applied.length) app.log.info({ applied: m.applied, version: m.version }, 'schema migrated');
    }
  } catch (err) {
    await store.close().catch(() => {});
    throw err;
  }

  let closing = false;

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Chaperone collector',
        version: COLLECTOR_VERSION,
        description:
          'Ingests recording events from Chaperone sidecars and serves auditors: session search, detail, replay export and hash-chain verification.',
      },
      components: {
        securitySchemes: {
          sidecarToken: {
            type: 'http',
            scheme: 'bearer',
            description:
              'The projected ServiceAccount token of the sidecar (audience chaperone-collector, checked by TokenReview), or the standalone ingest token.',
          },
          auditorToken: {
            type: 'http',
            scheme: 'bearer',
            bearerFormat: 'JWT',
            description: 'An OIDC ID token of a member of an auditor group, or the standalone dev token.',
          },
        },
      },
      tags: [
        { name: 'ingest', description: 'For sidecars' },
        { name: 'auditor', description: 'For auditors' },
        { name: 'operations', description: 'Health, readiness, metrics' },
      ],
    },
  });
  installErrorHandler(app, (url, reason) => {
    if (url === '/v1/events') {
      metrics.rejectedBatches.inc({ reason });
    }
  });

  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  app.get('/healthz', { schema: { summary: 'Liveness', tags: ['operations'] } }, async () => ({
    status: 'ok',
  }));
  app.get(
    '/readyz',
    { schema: { summary: 'Readiness: serving and the database reachable', tags: ['operations'] } },
    async (_req, reply) => {
      if (closing) return reply.code(503).send({ status: 'shutting down' });
      try {
        await withTimeout(store.ping(), 2_000, 'database ping timed out');
        return { status: 'ready', store: store.kind };
      } catch (err) {
        return reply.code(503).send({ status: 'database unreachable', error: (err as Error).message });
      }
    },
  );
  app.get(
    '/metrics',
    { schema: { summary: 'Prometheus metrics', tags: ['operations'] } },
    async (_req, reply) => {
      reply.type(metrics.registry.contentType);
      return metrics.registry.metrics();
    },
  );

  registerIngestRoutes(app, {
    store,
    auth: ingestAuth,
    metrics,
    maxBodyBytes: config.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
    maxBatchEvents: config.maxBatchEvents ?? DEFAULT_MAX_BATCH_EVENTS,
    bindServiceAccount: config.bindServiceAccount ?? true,
  });
  const abandonedAfterMs = config.abandonedAfterMs ?? DEFAULT_ABANDONED_AFTER_MS;
  registerAuditorRoutes(app, { store, auth: auditorAuth, metrics, abandonedAfterMs });
  registerUi(app, { store, auth: auditorAuth, metrics, abandonedAfterMs });
  if (!auditorAuth.configured) {
    app.log.warn('no auditor authentication configured: the auditor API refuses every request');
  }

  let retentionRun: Promise<RetentionResult> | undefined;
  const runRetention = (now = new Date()): Promise<RetentionResult> => {
    const policy = config.retention;
    if (!policy) return Promise.resolve({ sessions: 0, events: 0 });
    // One run at a time; a timer tick during a long run joins it.
    retentionRun ??= store
      .applyRetention(policy, now)
      .then((r) => {
        metrics.retentionSessions.inc(r.sessions);
        metrics.retentionEvents.inc(r.events);
        if (r.sessions) app.log.info(r, 'retention deleted expired sessions');
        return r;
      })
      .finally(() => {
        retentionRun = undefined;
      });
    return retentionRun;
  };
  let timer: NodeJS.Timeout | undefined;
  if (config.retention) {
    const tick = () =>
      void runRetention().catch((err: Error) => app.log.error({ err: err.message }, 'retention failed'));
    timer = setInterval(tick, config.retentionIntervalMs ?? 3_600_000);
    timer.unref();
    setImmediate(tick);
  }

  app.addHook('preClose', async () => {
    closing = true;
  });
  // Responses finished during shutdown close their connection: a keep-alive connection that
  // turns idle after close() began would otherwise hold the server open until its timeout.
  app.addHook('onSend', async (_req, reply) => {
    if (closing) reply.header('connection', 'close');
  });
  app.addHook('onClose', async () => {
    if (timer) clearInterval(timer);
    await retentionRun?.catch(() => {});
    await store.close();
  });

  return { app, store, metrics, runRetention, close: () => app.close() };
}

function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(message)), ms);
    }),
  ]);
}
