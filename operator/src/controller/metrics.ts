// Controller metrics on the process's one prom-client Registry. A second ControllerManager on the
// same Registry (a restart inside one process, tests) reuses the registered metrics instead of
// failing on a duplicate name.

import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export type ReconcileResult = 'success' | 'error' | 'requeue';

export interface ControllerMetrics {
  /** chaperone_operator_reconcile_total{kind,result} */
  reconcileTotal: Counter<'kind' | 'result'>;
  /** chaperone_operator_reconcile_duration_seconds{kind} */
  reconcileDuration: Histogram<'kind'>;
  /** chaperone_operator_workqueue_depth{kind} */
  queueDepth: Gauge<'kind'>;
  /** chaperone_operator_workqueue_retries_total{kind} */
  retries: Counter<'kind'>;
  /** chaperone_operator_informer_restarts_total{kind,reason} */
  informerRestarts: Counter<'kind' | 'reason'>;
  /** chaperone_operator_leader (1 while this replica leads) */
  leader: Gauge;
  /** chaperone_operator_status_updates_total{kind,result} */
  statusUpdates: Counter<'kind' | 'result'>;
  /** chaperone_operator_events_total{kind,type,reason} */
  events: Counter<'kind' | 'type' | 'reason'>;
}

function getOrCreate<T>(registry: Registry, name: string, create: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? create();
}

export function createControllerMetrics(registry: Registry): ControllerMetrics {
  const registers = [registry];
  return {
    reconcileTotal: getOrCreate(
      registry,
      'chaperone_operator_reconcile_total',
      () =>
        new Counter({
          name: 'chaperone_operator_reconcile_total',
          help: 'Reconciles run, by kind and result (success, error, requeue).',
          labelNames: ['kind', 'result'],
          registers,
        }),
    ),
    reconcileDuration: getOrCreate(
      registry,
      'chaperone_operator_reconcile_duration_seconds',
      () =>
        new Histogram({
          name: 'chaperone_operator_reconcile_duration_seconds',
          help: 'Time one reconcile took, status write included, by kind.',
          labelNames: ['kind'],
          buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
          registers,
        }),
    ),
    queueDepth: getOrCreate(
      registry,
      'chaperone_operator_workqueue_depth',
      () =>
        new Gauge({
          name: 'chaperone_operator_workqueue_depth',
          help: 'Keys waiting in the work queue, by kind.',
          labelNames: ['kind'],
          registers,
        }),
    ),
    retries: getOrCreate(
      registry,
      'chaperone_operator_workqueue_retries_total',
      () =>
        new Counter({
          name: 'chaperone_operator_workqueue_retries_total',
          help: 'Keys scheduled again with backoff after a failed reconcile, by kind.',
          labelNames: ['kind'],
          registers,
        }),
    ),
    informerRestarts: getOrCreate(
      registry,
      'chaperone_operator_informer_restarts_total',
      () =>
        new Counter({
          name: 'chaperone_operator_informer_restarts_total',
          help: 'Informer restarts (full relist), by kind and reason (error, watchdog).',
          labelNames: ['kind', 'reason'],
          registers,
        }),
    ),
    leader: getOrCreate(
      registry,
      'chaperone_operator_leader',
      () =>
        new Gauge({
          name: 'chaperone_operator_leader',
          help: '1 while this replica holds the leader Lease and runs the reconcilers, else 0.',
          registers,
        }),
    ),
    statusUpdates: getOrCreate(
      registry,
      'chaperone_operator_status_updates_total',
      () =>
        new Counter({
          name: 'chaperone_operator_status_updates_total',
          help: 'Status merge patches sent, by kind and result (success, conflict, error).',
          labelNames: ['kind', 'result'],
          registers,
        }),
    ),
    events: getOrCreate(
      registry,
      'chaperone_operator_events_total',
      () =>
        new Counter({
          name: 'chaperone_operator_events_total',
          help: 'Kubernetes Events asked for by reconcilers (before aggregation), by kind, type and reason.',
          labelNames: ['kind', 'type', 'reason'],
          registers,
        }),
    ),
  };
}
