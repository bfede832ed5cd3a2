import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

export const METRIC_PREFIX = 'chaperone_collector_';

/** One Registry per collector (a test process may build several), never prom-client's global one. */
export function createCollectorMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: METRIC_PREFIX });
  const m = {
    registry,
    ingested: new Counter({
      name: `${METRIC_PREFIX}events_ingested_total`,
      help: 'Recording events stored',
      registers: [registry],
    }),
    duplicates: new Counter({
      name: `${METRIC_PREFIX}events_duplicate_total`,
      help: 'Events received again with identical content (retries); acknowledged, not stored twice',
      registers: [registry],
    }),
    conflicts: new Counter({
      name: `${METRIC_PREFIX}events_conflict_total`,
      help: 'Events whose (session, seq) was already stored with different content; not stored',
      registers: [registry],
    }),
    rejectedEvents: new Counter({
      name: `${METRIC_PREFIX}events_rejected_total`,
      help: 'Events in refused batches',
      registers: [registry],
    }),
    rejectedBatches: new Counter({
      name: `${METRIC_PREFIX}batches_rejected_total`,
      help: 'Ingest requests refused, by reason',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    batchSeconds: new Histogram({
      name: `${METRIC_PREFIX}ingest_batch_duration_seconds`,
      help: 'Time to validate and store one accepted batch',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    batchEvents: new Histogram({
      name: `${METRIC_PREFIX}ingest_batch_events`,
      help: 'Events per accepted batch',
      buckets: [1, 10, 50, 100, 250, 500, 1000, 2500, 5000],
      registers: [registry],
    }),
    authFailures: new Counter({
      name: `${METRIC_PREFIX}auth_failures_total`,
      help: 'Refused authentications, by API and reason',
      labelNames: ['api', 'reason'] as const,
      registers: [registry],
    }),
    tokenReviews: new Counter({
      name: `${METRIC_PREFIX}token_reviews_total`,
      help: 'TokenReviews sent to the API server (cached positive results send none), by result',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
    retentionSessions: new Counter({
      name: `${METRIC_PREFIX}retention_deleted_sessions_total`,
      help: 'Sessions deleted by retention',
      registers: [registry],
    }),
    retentionEvents: new Counter({
      name: `${METRIC_PREFIX}retention_deleted_events_total`,
      help: 'Events deleted by retention',
      registers: [registry],
    }),
    inflight: new Gauge({
      name: `${METRIC_PREFIX}ingest_inflight_batches`,
      help: 'Ingest requests being processed',
      registers: [registry],
    }),
  };
  return m;
}

export type CollectorMetrics = ReturnType<typeof createCollectorMetrics>;
