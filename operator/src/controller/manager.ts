// ControllerManager: runs the Connection, AccessPolicy and AccessRequest controllers on the replica
// that holds the leader Lease, and nothing on the others. Leading means: informers over all
// namespaces feed per-kind work queues; each key is reconciled by its kind's pure reconciler;
// status is merge-patched only when it changed; Events are recorded. Losing the Lease or stopping
// tears all of that down and waits for reconciles in flight.

import {
  type AccessPolicy,
  type AccessRequest,
  API_GROUP,
  API_GROUP_VERSION,
  API_VERSION,
  type ChaperoneKind,
  type Connection,
  KINDS,
  type Logger,
  PLURALS,
} from '@chaperone/api';
import {
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
} from '@kubernetes/client-node';
import type { Registry } from 'prom-client';
import type { NotificationConfig } from '../notifications/notification-config.js';
import { Notifier } from '../notifications/notifier.js';
import { reconcileAccessPolicy } from '../reconcilers/access-policy-reconciler.js';
import { reconcileAccessRequest } from '../reconcilers/access-request-reconciler.js';
import { createConnectionDeps } from '../reconcilers/connection-probes.js';
import { type ConnectionReconcileDeps, reconcileConnection } from '../reconcilers/connection-reconciler.js';
import type { ReconcileOutcome } from '../reconcilers/types.js';
import { apiErrorCode, describeApiError } from './api-errors.js';
import { coreV1EventSink, EventRecorder, type EventSink, type InvolvedObject } from './events.js';
import { ResilientInformer } from './informer.js';
import { LeaderElector } from './leader-election.js';
import { type ControllerMetrics, createControllerMetrics } from './metrics.js';
import { StatusWriter, statusChanged } from './status.js';
import { WorkQueue, type WorkResult } from './work-queue.js';

export interface LeaderElectionSettings {
  /** Default LEADER_LEASE_NAME. */
  leaseName?: string;
  /** Default 15 s. */
  leaseDurationMs?: number;
  /** Default 10 s. */
  renewDeadlineMs?: number;
  /** Default 2 s. */
  retryPeriodMs?: number;
}

export interface ControllerManagerOptions {
  kubeConfig: KubeConfig;
  /** The operator's namespace: the leader Lease and the admin Secrets live here. */
  operatorNamespace: string;
  /** This replica, e.g. the pod name (POD_NAME from the downward API). */
  identity: string;
  /** The process's one Registry; metrics are chaperone_operator_*. */
  registry: Registry;
  log?: Logger;
  /** Lease settings, or false to lead without a Lease (a single replica, some tests). Default {}. */
  leaderElection?: LeaderElectionSettings | false;
  /** Reconciles of one kind at the same time. Defaults: Connection 2, AccessPolicy 2, AccessRequest 4. */
  concurrency?: Partial<Record<ChaperoneKind, number>>;
  /** Re-check a Ready Connection this often. Default 5 min. */
  connectionRecheckAfterMs?: number;
  /** Re-check a Connection that is not Ready this often. Default 1 min. */
  connectionNotReadyRecheckAfterMs?: number;
  /** Replaces the real probes of the Connection reconcile (tests of other parts). */
  connectionDeps?: ConnectionReconcileDeps;
  /** Informers relist when nothing arrived for this long. Default 10 min. */
  informerWatchdogMs?: number;
  /** Backoff of failed reconciles. Defaults 500 ms doubling up to 5 min. */
  retry?: { baseDelayMs?: number; maxDelayMs?: number };
  /** Replaces the API server as the Events' destination (tests). */
  eventSink?: EventSink;
  /** Approver notifications (targets, retry); none when absent. */
  notifications?: NotificationConfig;
  /**
   * Other leader-only work of the process (certificate rotation, JIT role sweeps): called with true
   * after the controllers started and with false after they stopped, in order.
   */
  onLeadershipChange?: (leading: boolean) => void | Promise<void>;
  now?: () => Date;
}

type AnyObject = Connection | AccessPolicy | AccessRequest;

interface Running {
  informers: Record<ChaperoneKind, ResilientInformer<KubernetesObject>>;
  queues: Record<ChaperoneKind, WorkQueue>;
  recorder: EventRecorder;
  notifier?: Notifier;
}

const DEFAULT_CONCURRENCY: Record<ChaperoneKind, number> = {
  Connection: 2,
  AccessPolicy: 2,
  AccessRequest: 4,
};

function involvedObject(kind: ChaperoneKind, obj: AnyObject): InvolvedObject {
  return {
    apiVersion: API_GROUP_VERSION,
    kind,
    namespace: obj.metadata.namespace ?? '',
    name: obj.metadata.name ?? '',
    ...(obj.metadata.uid ? { uid: obj.metadata.uid } : {}),
    ...(obj.metadata.resourceVersion ? { resourceVersion: obj.metadata.resourceVersion } : {}),
  };
}

export function objectKey(kind: ChaperoneKind, namespace: string, name: string): string {
  return `${kind}/${namespace}/${name}`;
}

export function parseObjectKey(
  key: string,
): { kind: ChaperoneKind; namespace: string; name: string } | undefined {
  const [kind, namespace, name, ...rest] = key.split('/');
  if (!kind || namespace === undefined || !name || rest.length > 0) return undefined;
  if (!(KINDS as readonly string[]).includes(kind)) return undefined;
  return { kind: kind as ChaperoneKind, namespace, name };
}

export class ControllerManager {
  private readonly opts: ControllerManagerOptions;
  private readonly metrics: ControllerMetrics;
  private readonly log: Logger;
  private readonly custom: CustomObjectsApi;
  private readonly statusWriter: StatusWriter;
  private readonly connectionDeps: ConnectionReconcileDeps;
  private readonly elector?: LeaderElector;
  private readonly now: () => Date;
  private running?: Running;
  private started = false;
  /** Start/stop of the controllers, one after another. */
  private transitions: Promise<void> = Promise.resolve();
  private syncedWaiters: (() => void)[] = [];

  constructor(opts: ControllerManagerOptions) {
    if (!opts.operatorNamespace)
      throw new Error('ControllerManager needs operatorNamespace (the namespace it runs in)');
    if (!opts.identity) throw new Error('ControllerManager needs identity (e.g. the pod name)');
    this.opts = opts;
    this.metrics = createControllerMetrics(opts.registry);
    this.log = opts.log ?? (() => undefined);
    this.now = opts.now ?? (() => new Date());
    this.custom = opts.kubeConfig.makeApiClient(CustomObjectsApi);
    this.statusWriter = new StatusWriter(this.custom);
    this.connectionDeps =
      opts.connectionDeps ??
      createConnectionDeps({
        kubeConfig: opts.kubeConfig,
        operatorNamespace: opts.operatorNamespace,
        now: this.now,
        ...(opts.connectionRecheckAfterMs !== undefined
          ? { recheckAfterMs: opts.connectionRecheckAfterMs }
          : {}),
        ...(opts.connectionNotReadyRecheckAfterMs !== undefined
          ? { notReadyRecheckAfterMs: opts.connectionNotReadyRecheckAfterMs }
          : {}),
      });
    if (opts.leaderElection !== false) {
      const le = opts.leaderElection ?? {};
      this.elector = new LeaderElector({
        kubeConfig: opts.kubeConfig,
        namespace: opts.operatorNamespace,
        identity: opts.identity,
        ...(le.leaseName !== undefined ? { leaseName: le.leaseName } : {}),
        ...(le.leaseDurationMs !== undefined ? { leaseDurationMs: le.leaseDurationMs } : {}),
        ...(le.renewDeadlineMs !== undefined ? { renewDeadlineMs: le.renewDeadlineMs } : {}),
        ...(le.retryPeriodMs !== undefined ? { retryPeriodMs: le.retryPeriodMs } : {}),
        onStartedLeading: () => this.startControllers(),
        onStoppedLeading: () => this.stopControllers(),
        log: this.log,
      });
    }
    this.metrics.leader.set(0);
  }

  /** Whether this replica leads (always true without leader election once started). */
  get isLeader(): boolean {
    return this.elector ? this.elector.isLeader : this.started;
  }

  /** Whether the controllers run and every informer has listed once (for /readyz and tests). */
  get isSynced(): boolean {
    const r = this.running;
    return !!r && KINDS.every((k) => r.informers[k].hasSynced);
  }

  /** Starts campaigning for the Lease (or, without leader election, the controllers). Returns at once. */
  start(): void {
    if (this.started) return;
    this.started = true;
    if (this.elector) this.elector.start();
    else void this.startControllers();
  }

  /**
   * Graceful stop: no new reconciles, waits for those in flight, flushes Events, then releases the
   * Lease so another replica takes over at once.
   */
  async stop(): Promise<void> {
    if (!this.started) return;
    this.started = false;
    if (this.elector) await this.elector.stop();
    else await this.stopControllers();
    await this.transitions;
    for (const w of this.syncedWaiters.splice(0)) w();
  }

  /** Resolves once this replica leads and its informers have synced (or it stops). */
  whenSynced(): Promise<void> {
    if (this.isSynced || !this.started) return Promise.resolve();
    return new Promise((resolve) => this.syncedWaiters.push(resolve));
  }

  private startControllers(): Promise<void> {
    this.transitions = this.transitions
      .then(() => this.doStart())
      .then(() => (this.running ? this.opts.onLeadershipChange?.(true) : undefined))
      .catch((err: unknown) => {
        this.log('error', 'starting the controllers failed', { error: describeApiError(err) });
      });
    return this.transitions;
  }

  private stopControllers(): Promise<void> {
    this.transitions = this.transitions
      .then(async () => {
        const wasRunning = this.running !== undefined;
        await this.doStop();
        if (wasRunning) await this.opts.onLeadershipChange?.(false);
      })
      .catch((err: unknown) => {
        this.log('error', 'stopping the controllers failed', { error: describeApiError(err) });
      });
    return this.transitions;
  }

  private makeInformer(kind: ChaperoneKind): ResilientInformer<KubernetesObject> {
    const plural = PLURALS[kind];
    return new ResilientInformer<KubernetesObject>({
      name: kind,
      kubeConfig: this.opts.kubeConfig,
      path: `/apis/${API_GROUP}/${API_VERSION}/${plural}`,
      list: () =>
        this.custom.listClusterCustomObject({ group: API_GROUP, version: API_VERSION, plural }) as Promise<
          KubernetesListObject<KubernetesObject>
        >,
      ...(this.opts.informerWatchdogMs !== undefined ? { watchdogMs: this.opts.informerWatchdogMs } : {}),
      log: this.log,
      onRestart: (reason) => this.metrics.informerRestarts.inc({ kind, reason }),
    });
  }

  private async doStart(): Promise<void> {
    if (this.running || !this.started) return;
    this.log('info', 'starting controllers', { identity: this.opts.identity });
    this.metrics.leader.set(1);
    const informers = {
      Connection: this.makeInformer('Connection'),
      AccessPolicy: this.makeInformer('AccessPolicy'),
      AccessRequest: this.makeInformer('AccessRequest'),
    };
    const queues = {} as Record<ChaperoneKind, WorkQueue>;
    for (const kind of KINDS) {
      queues[kind] = new WorkQueue({
        name: kind,
        concurrency: this.opts.concurrency?.[kind] ?? DEFAULT_CONCURRENCY[kind],
        ...(this.opts.retry?.baseDelayMs !== undefined
          ? { baseRetryDelayMs: this.opts.retry.baseDelayMs }
          : {}),
        ...(this.opts.retry?.maxDelayMs !== undefined ? { maxRetryDelayMs: this.opts.retry.maxDelayMs } : {}),
        handler: (key) => this.reconcileKey(kind, key),
        onDepth: (depth) => this.metrics.queueDepth.set({ kind }, depth),
        onError: (key, error, attempt, retryInMs) => {
          this.metrics.retries.inc({ kind });
          this.log('warn', 'reconcile failed; retrying', {
            key,
            attempt,
            retryInMs,
            error: describeApiError(error),
          });
        },
      });
    }
    const recorder = new EventRecorder({
      sink: this.opts.eventSink ?? coreV1EventSink(this.opts.kubeConfig.makeApiClient(CoreV1Api)),
      reportingInstance: this.opts.identity,
      log: this.log,
    });
    const notifier = this.opts.notifications?.targets.length
      ? this.makeNotifier(this.opts.notifications, recorder)
      : undefined;
    const running: Running = { informers, queues, recorder, ...(notifier ? { notifier } : {}) };
    this.running = running;
    this.wire(running);
    // Not awaited: while the API server is unreachable the informers retry for as long as it
    // takes, and losing the Lease or stopping in the meantime must not wait for them.
    void Promise.all(KINDS.map((k) => informers[k].start())).then(() => {
      if (this.running === running && this.isSynced) {
        this.log('info', 'controllers running: informers synced', { identity: this.opts.identity });
        for (const w of this.syncedWaiters.splice(0)) w();
      }
    });
  }

  private makeNotifier(config: NotificationConfig, recorder: EventRecorder): Notifier {
    const core = this.opts.kubeConfig.makeApiClient(CoreV1Api);
    const namespace = this.opts.operatorNamespace;
    return new Notifier({
      config,
      registry: this.opts.registry,
      log: this.log,
      now: this.now,
      readSecret: async (name) => {
        try {
          const secret = await core.readNamespacedSecret({ name, namespace });
          return Object.fromEntries(
            Object.entries(secret.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]),
          );
        } catch (err) {
          if (apiErrorCode(err) === 404) return undefined;
          throw err;
        }
      },
      writeDeliveries: async (req, records) => {
        await this.statusWriter.patchStatus(
          { kind: 'AccessRequest', namespace: req.metadata.namespace ?? '', name: req.metadata.name ?? '' },
          { notifications: records },
        );
      },
      recordEvent: (req, ev) => {
        this.metrics.events.inc({ kind: 'AccessRequest', type: ev.type, reason: ev.reason });
        void recorder.record(involvedObject('AccessRequest', req), ev);
      },
    });
  }

  private async doStop(): Promise<void> {
    const r = this.running;
    if (!r) return;
    this.running = undefined;
    this.log('info', 'stopping controllers', { identity: this.opts.identity });
    await Promise.all(KINDS.map((k) => r.informers[k].stop()));
    await Promise.all(KINDS.map((k) => r.queues[k].shutdown()));
    await r.notifier?.close();
    await r.recorder.close();
    for (const kind of KINDS) this.metrics.queueDepth.set({ kind }, 0);
    this.metrics.leader.set(0);
  }

  private wire(r: Running): void {
    const enqueue = (kind: ChaperoneKind, o: KubernetesObject) => {
      const ns = o.metadata?.namespace;
      const name = o.metadata?.name;
      if (ns && name) r.queues[kind].add(objectKey(kind, ns, name));
    };
    const enqueuePoliciesIn = (ns: string | undefined) => {
      if (!ns) return;
      for (const p of r.informers.AccessPolicy.list(ns)) enqueue('AccessPolicy', p);
    };
    const generationChanged = (o: KubernetesObject, old?: KubernetesObject) =>
      !old || o.metadata?.generation !== old.metadata?.generation;
    const labelsChanged = (o: KubernetesObject, old?: KubernetesObject) =>
      JSON.stringify(o.metadata?.labels ?? {}) !== JSON.stringify(old?.metadata?.labels ?? {});

    // Connection: its own status writes do not bump generation, so they do not re-run the probes.
    const conn = r.informers.Connection;
    conn.on('add', (o) => {
      enqueue('Connection', o);
      enqueuePoliciesIn(o.metadata?.namespace);
    });
    conn.on('update', (o, old) => {
      if (generationChanged(o, old)) enqueue('Connection', o);
      if (labelsChanged(o, old)) enqueuePoliciesIn(o.metadata?.namespace);
    });
    conn.on('delete', (o) => {
      enqueuePoliciesIn(o.metadata?.namespace);
      const { namespace, name } = o.metadata ?? {};
      if (namespace && name) r.queues.Connection.forget(objectKey('Connection', namespace, name));
    });

    const pol = r.informers.AccessPolicy;
    pol.on('add', (o) => enqueue('AccessPolicy', o));
    pol.on('update', (o, old) => {
      if (generationChanged(o, old)) enqueue('AccessPolicy', o);
    });
    pol.on('delete', (o) => {
      const { namespace, name } = o.metadata ?? {};
      if (namespace && name) r.queues.AccessPolicy.forget(objectKey('AccessPolicy', namespace, name));
    });

    // AccessRequest: every change matters (a decision arrives through status).
    const req = r.informers.AccessRequest;
    req.on('add', (o) => enqueue('AccessRequest', o));
    req.on('update', (o) => enqueue('AccessRequest', o));
    req.on('delete', (o) => {
      const { namespace, name } = o.metadata ?? {};
      if (namespace && name) r.queues.AccessRequest.forget(objectKey('AccessRequest', namespace, name));
    });

    // Every full list (start, restart, watchdog) re-queues everything: a new leader thereby picks up
    // every pending AccessRequest and every Connection's periodic re-check.
    for (const kind of KINDS) {
      r.informers[kind].onSync((items) => {
        for (const o of items) enqueue(kind, o);
      });
    }
  }

  private async reconcileKey(kind: ChaperoneKind, key: string): Promise<WorkResult | undefined> {
    const r = this.running;
    if (!r) return undefined;
    const parsed = parseObjectKey(key);
    if (!parsed) return undefined;
    // A policy reconciled before the Connections were listed would report them all missing.
    if (kind === 'AccessPolicy' && !r.informers.Connection.hasSynced) return { requeueAfterMs: 500 };
    // Likewise a request's notification targets come from its policy.
    if (kind === 'AccessRequest' && r.notifier && !r.informers.AccessPolicy.hasSynced)
      return { requeueAfterMs: 500 };
    const obj = r.informers[kind].get(parsed.name, parsed.namespace) as AnyObject | undefined;
    if (!obj || obj.metadata?.deletionTimestamp) return undefined;

    const endTimer = this.metrics.reconcileDuration.startTimer({ kind });
    try {
      let outcome: ReconcileOutcome<object>;
      switch (kind) {
        case 'Connection':
          outcome = await reconcileConnection(obj as Connection, this.connectionDeps);
          break;
        case 'AccessPolicy':
          outcome = reconcileAccessPolicy(obj as AccessPolicy, {
            now: this.now,
            connectionsIn: (ns) => r.informers.Connection.list(ns) as Connection[],
          });
          break;
        case 'AccessRequest':
          outcome = reconcileAccessRequest(obj as AccessRequest, { now: this.now });
          break;
      }
      if (this.running !== r) return undefined;
      if (outcome.status && statusChanged(obj.status, outcome.status)) {
        try {
          await this.statusWriter.patchStatus(parsed, outcome.status);
          this.metrics.statusUpdates.inc({ kind, result: 'success' });
        } catch (err) {
          const code = apiErrorCode(err);
          if (code === 404) {
            // Deleted meanwhile: nothing left to report on.
            this.metrics.statusUpdates.inc({ kind, result: 'gone' });
            this.metrics.reconcileTotal.inc({ kind, result: 'success' });
            return undefined;
          }
          this.metrics.statusUpdates.inc({
            kind,
            result: code === 409 || code === 422 ? 'conflict' : 'error',
          });
          // 422 on an AccessRequest: a decision landed first and the CRD refuses Expired. The retry
          // sees the decided object and does nothing.
          throw new Error(`status update of ${key} failed: ${describeApiError(err)}`);
        }
      }
      const involved = involvedObject(kind, obj);
      for (const ev of outcome.events) {
        this.metrics.events.inc({ kind, type: ev.type, reason: ev.reason });
        void r.recorder.record(involved, ev);
      }
      for (const { object, event } of outcome.relatedEvents ?? []) {
        this.metrics.events.inc({ kind: object.kind, type: event.type, reason: event.reason });
        void r.recorder.record(object, event);
      }
      if (kind === 'AccessRequest' && r.notifier) {
        const req = obj as AccessRequest;
        const policy = r.informers.AccessPolicy.get(req.spec?.policy ?? '', parsed.namespace) as
          | AccessPolicy
          | undefined;
        r.notifier.sync(req, policy);
      }
      this.metrics.reconcileTotal.inc({
        kind,
        result: outcome.requeueAfterMs !== undefined ? 'requeue' : 'success',
      });
      return outcome.requeueAfterMs !== undefined ? { requeueAfterMs: outcome.requeueAfterMs } : undefined;
    } catch (err) {
      this.metrics.reconcileTotal.inc({ kind, result: 'error' });
      throw err;
    } finally {
      endTimer();
    }
  }
}
