import type { Logger } from '@chaperone/api';
// A list+watch cache that keeps itself alive. client-node's informer (ListWatch, v2) reconnects on
// its own after a watch times out or returns 410 Gone, but after any other error (a failed list,
// a refused or broken watch) it fires `error` and stays stopped, and calling start() on the same
// instance resumes from its old resourceVersion without a relist. So on `error` this wrapper throws
// the instance away and starts a fresh one (full relist) after a capped, jittered backoff; and a
// watchdog does the same when nothing (no event, no list) arrived for `watchdogMs`, for watches
// that hang silently (kubernetes-client/javascript#596); watch reconnects are not activity, so on a
// quiet cluster this is a full relist every watchdogMs. It keeps its own cache across instances,
// so a relist that no longer contains an object reports it as deleted.

import {
  type Informer,
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
  makeInformer,
} from '@kubernetes/client-node';
import { describeApiError } from './api-errors.js';

export type InformerEventType = 'add' | 'update' | 'delete';
export type RestartReason = 'error' | 'watchdog';
export type InformerHandler<T> = (obj: T, previous?: T) => void;

export type InformerFactory<T extends KubernetesObject> = (
  kubeConfig: KubeConfig,
  path: string,
  list: () => Promise<KubernetesListObject<T>>,
  labelSelector?: string,
) => Informer<T>;

export interface ResilientInformerOptions<T extends KubernetesObject> {
  /** For logs and metrics, e.g. the kind. */
  name: string;
  kubeConfig: KubeConfig;
  /** Watch path, e.g. /apis/chaperone.dev/v1alpha1/connections (all namespaces). */
  path: string;
  /** The list call for the same path, e.g. `() => api.listClusterCustomObject({...})`. */
  list: () => Promise<KubernetesListObject<T>>;
  labelSelector?: string;
  /** First restart delay after an error. Default 1 s. */
  minRestartDelayMs?: number;
  /** Restart delays never exceed this. Default 60 s. */
  maxRestartDelayMs?: number;
  /** Relist when no event or list arrived for this long. Default 10 min. */
  watchdogMs?: number;
  random?: () => number;
  log?: Logger;
  onRestart?: (reason: RestartReason) => void;
  /** The underlying informer; client-node's makeInformer unless a test swaps it. */
  makeInformer?: InformerFactory<T>;
}

class StaleInstanceError extends Error {
  constructor() {
    super('informer instance was replaced');
  }
}

function keyOf(o: KubernetesObject): { ns: string; name: string } {
  return { ns: o.metadata?.namespace ?? '', name: o.metadata?.name ?? '' };
}

export class ResilientInformer<T extends KubernetesObject> {
  private readonly opts: ResilientInformerOptions<T>;
  private readonly factory: InformerFactory<T>;
  private readonly cache = new Map<string, Map<string, T>>();
  private readonly handlers: Record<InformerEventType, InformerHandler<T>[]> = {
    add: [],
    update: [],
    delete: [],
  };
  private readonly syncHandlers: ((items: readonly T[]) => void)[] = [];
  private current?: Informer<T>;
  private generation = 0;
  private stopped = true;
  private synced = false;
  private restartAttempts = 0;
  private instanceStartedAt = 0;
  private lastActivity = 0;
  private restartTimer?: ReturnType<typeof setTimeout>;
  private watchdogTimer?: ReturnType<typeof setInterval>;
  private syncWaiters: (() => void)[] = [];

  constructor(opts: ResilientInformerOptions<T>) {
    this.opts = opts;
    this.factory = opts.makeInformer ?? makeInformer;
  }

  get name(): string {
    return this.opts.name;
  }

  /** Whether at least one full list has been applied. */
  get hasSynced(): boolean {
    return this.synced;
  }

  /** Handlers get the object and, for update (and delete), the one it replaces. */
  on(event: InformerEventType, cb: InformerHandler<T>): void {
    this.handlers[event].push(cb);
  }

  /** Called after every full list (start, restart, watchdog, 410) with everything it returned. */
  onSync(cb: (items: readonly T[]) => void): void {
    this.syncHandlers.push(cb);
  }

  get(name: string, namespace?: string): T | undefined {
    return this.cache.get(namespace ?? '')?.get(name);
  }

  list(namespace?: string): T[] {
    if (namespace !== undefined) return [...(this.cache.get(namespace)?.values() ?? [])];
    return [...this.cache.values()].flatMap((m) => [...m.values()]);
  }

  /** Starts list+watch; resolves after the first successful list (or when stopped first). */
  start(): Promise<void> {
    if (!this.stopped) return this.waitForSync();
    this.stopped = false;
    const watchdogMs = this.watchdogMs();
    this.watchdogTimer = setInterval(
      () => this.checkWatchdog(),
      Math.max(10, Math.min(watchdogMs / 4, 30_000)),
    );
    this.watchdogTimer.unref?.();
    this.startInstance();
    return this.waitForSync();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.generation++;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    if (this.watchdogTimer) clearInterval(this.watchdogTimer);
    this.restartTimer = undefined;
    this.watchdogTimer = undefined;
    const inf = this.current;
    this.current = undefined;
    this.releaseWaiters();
    if (inf) await inf.stop().catch(() => undefined);
  }

  private watchdogMs(): number {
    return this.opts.watchdogMs ?? 10 * 60_000;
  }

  private waitForSync(): Promise<void> {
    if (this.synced || this.stopped) return Promise.resolve();
    return new Promise((resolve) => this.syncWaiters.push(resolve));
  }

  private releaseWaiters(): void {
    const waiters = this.syncWaiters;
    this.syncWaiters = [];
    for (const w of waiters) w();
  }

  private startInstance(): void {
    if (this.stopped) return;
    const gen = ++this.generation;
    const live = () => gen === this.generation && !this.stopped;
    const list = async (): Promise<KubernetesListObject<T>> => {
      const result = await this.opts.list();
      // A list that finishes after this instance was replaced must not overwrite the cache.
      if (!live()) throw new StaleInstanceError();
      this.applyList(result.items ?? []);
      return result;
    };
    const inf = this.factory(this.opts.kubeConfig, this.opts.path, list, this.opts.labelSelector);
    inf.on('add', (o) => {
      if (live()) this.upsert(o);
    });
    inf.on('update', (o) => {
      if (live()) this.upsert(o);
    });
    inf.on('delete', (o) => {
      if (live()) this.remove(o);
    });
    inf.on('error', (err) => {
      if (live()) this.restart('error', err);
    });
    this.current = inf;
    this.instanceStartedAt = Date.now();
    this.lastActivity = this.instanceStartedAt;
    // start() can reject too (e.g. no current cluster in the kubeconfig, credentials that fail).
    inf.start().catch((err: unknown) => {
      if (live()) this.restart('error', err);
    });
  }

  private restart(reason: RestartReason, err?: unknown): void {
    if (this.stopped) return;
    const now = Date.now();
    const max = this.opts.maxRestartDelayMs ?? 60_000;
    const min = this.opts.minRestartDelayMs ?? 1_000;
    // An instance that ran fine for a while starts the backoff over.
    if (now - this.instanceStartedAt > max) this.restartAttempts = 0;
    this.restartAttempts++;
    let delay = 0;
    if (reason === 'error') {
      const exp = Math.min(max, min * 2 ** Math.min(this.restartAttempts - 1, 20));
      const r = this.opts.random ?? Math.random;
      delay = Math.max(min / 2, Math.min(max, Math.round(exp * (0.8 + 0.4 * r()))));
    }
    this.opts.log?.(reason === 'error' ? 'warn' : 'info', 'informer restarting with a full relist', {
      informer: this.opts.name,
      reason,
      inMs: delay,
      ...(err !== undefined ? { error: describeApiError(err) } : {}),
    });
    this.opts.onRestart?.(reason);
    this.generation++;
    const old = this.current;
    this.current = undefined;
    if (old) void old.stop().catch(() => undefined);
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      this.startInstance();
    }, delay);
    this.restartTimer.unref?.();
  }

  private checkWatchdog(): void {
    if (this.stopped || !this.current) return;
    if (Date.now() - this.lastActivity >= this.watchdogMs()) this.restart('watchdog');
  }

  private applyList(items: T[]): void {
    this.lastActivity = Date.now();
    const seen = new Set<string>();
    for (const o of items) {
      const { ns, name } = keyOf(o);
      seen.add(`${ns}/${name}`);
    }
    for (const [ns, m] of [...this.cache.entries()]) {
      for (const [name, o] of [...m.entries()]) {
        if (!seen.has(`${ns}/${name}`)) this.remove(o);
      }
    }
    for (const o of items) this.upsert(o);
    this.synced = true;
    this.releaseWaiters();
    for (const cb of this.syncHandlers) {
      try {
        cb(items);
      } catch (err) {
        this.opts.log?.('error', 'informer sync handler failed', {
          informer: this.opts.name,
          error: describeApiError(err),
        });
      }
    }
  }

  private upsert(o: T): void {
    this.lastActivity = Date.now();
    const { ns, name } = keyOf(o);
    let m = this.cache.get(ns);
    if (!m) {
      m = new Map();
      this.cache.set(ns, m);
    }
    const old = m.get(name);
    if (old?.metadata?.resourceVersion && old.metadata.resourceVersion === o.metadata?.resourceVersion) {
      return;
    }
    m.set(name, o);
    this.emit(old ? 'update' : 'add', o, old);
  }

  private remove(o: T): void {
    this.lastActivity = Date.now();
    const { ns, name } = keyOf(o);
    const m = this.cache.get(ns);
    const old = m?.get(name);
    if (!m || !old) return;
    m.delete(name);
    if (m.size === 0) this.cache.delete(ns);
    this.emit('delete', o, old);
  }

  private emit(event: InformerEventType, o: T, previous?: T): void {
    for (const cb of this.handlers[event]) {
      try {
        cb(o, previous);
      } catch (err) {
        this.opts.log?.('error', 'informer event handler failed', {
          informer: this.opts.name,
          event,
          error: describeApiError(err),
        });
      }
    }
  }
}
