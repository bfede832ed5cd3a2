// Kubernetes Events (core/v1, what `kubectl describe` and `kubectl events` show) for Chaperone
// objects. Repeats of the same reason on the same object are folded into one Event whose count
// grows (as client-go's EventCorrelator does), its writes are spaced out, and each object has a
// small budget of new Events, so a flapping target cannot flood etcd.

import { randomBytes } from 'node:crypto';
import type { Logger } from '@chaperone/api';
import { type CoreV1Api, type CoreV1Event, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';

/** `reportingComponent` / `source.component` of every Event the operator writes. */
export const REPORTING_CONTROLLER = 'chaperone-operator';

export type EventType = 'Normal' | 'Warning';

/** An Event a reconciler asks for. */
export interface EventSpec {
  type: EventType;
  /** CamelCase, e.g. CredentialsInvalid. */
  reason: string;
  message: string;
}

export interface InvolvedObject {
  apiVersion: string;
  kind: string;
  namespace: string;
  name: string;
  uid?: string;
  resourceVersion?: string;
}

/** The two writes the recorder makes; the real one is `coreV1EventSink`. */
export interface EventSink {
  create(namespace: string, event: CoreV1Event): Promise<void>;
  /** Rejects with an error whose `code` is 404 when the Event is gone (Events expire after ~1 h). */
  patch(namespace: string, name: string, patch: Partial<CoreV1Event>): Promise<void>;
}

export function coreV1EventSink(api: CoreV1Api): EventSink {
  return {
    async create(namespace, event) {
      await api.createNamespacedEvent({ namespace, body: event });
    },
    async patch(namespace, name, patch) {
      await api.patchNamespacedEvent(
        { namespace, name, body: patch },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
    },
  };
}

export interface EventRecorderOptions {
  sink: EventSink;
  /** This replica (pod name): `reportingInstance`. */
  reportingInstance: string;
  now?: () => number;
  log?: Logger;
  /** Repeats within this window grow the same Event's count. Default 10 min. */
  aggregationWindowMs?: number;
  /** At most one write per aggregated Event in this interval; repeats in between are counted and flushed later. Default 30 s. */
  minWriteIntervalMs?: number;
  /** New Events per object: a burst of this many ... Default 10. */
  burst?: number;
  /** ... and one more each this often. Default 60 s. */
  refillMs?: number;
  /** Aggregation state kept for at most this many (object, type, reason) keys. Default 4096. */
  maxKeys?: number;
}

interface Series {
  namespace: string;
  eventName: string;
  count: number;
  firstTimestamp: number;
  lastSeen: number;
  lastWrite: number;
  /** Count and message as last written. */
  writtenCount: number;
  message: string;
  writtenMessage: string;
  flushTimer?: ReturnType<typeof setTimeout>;
  involved: InvolvedObject;
  spec: EventSpec;
}

interface Bucket {
  tokens: number;
  updated: number;
}

export class EventRecorder {
  private readonly sink: EventSink;
  private readonly reportingInstance: string;
  private readonly now: () => number;
  private readonly log?: EventRecorderOptions['log'];
  private readonly windowMs: number;
  private readonly minWriteIntervalMs: number;
  private readonly burst: number;
  private readonly refillMs: number;
  private readonly maxKeys: number;
  private readonly series = new Map<string, Series>();
  private readonly buckets = new Map<string, Bucket>();
  private readonly pending = new Set<Promise<void>>();
  private closed = false;

  constructor(opts: EventRecorderOptions) {
    this.sink = opts.sink;
    this.reportingInstance = opts.reportingInstance;
    this.now = opts.now ?? Date.now;
    this.log = opts.log;
    this.windowMs = opts.aggregationWindowMs ?? 10 * 60_000;
    this.minWriteIntervalMs = opts.minWriteIntervalMs ?? 30_000;
    this.burst = opts.burst ?? 10;
    this.refillMs = opts.refillMs ?? 60_000;
    this.maxKeys = opts.maxKeys ?? 4096;
  }

  /**
   * Records an Event for the object. Never throws: an Event that cannot be written is logged and
   * dropped (Events are best effort; status is the record of truth).
   */
  record(involved: InvolvedObject, spec: EventSpec): Promise<void> {
    if (this.closed) return Promise.resolve();
    const p = this.recordInner(involved, spec).catch((err: unknown) => {
      this.log?.('warn', 'could not write Event', {
        object: `${involved.kind}/${involved.namespace}/${involved.name}`,
        reason: spec.reason,
        error: err instanceof Error ? err.message : String(err),
      });
    });
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
    return p;
  }

  /** Flushes counted repeats and waits for writes in flight. */
  async close(): Promise<void> {
    const flushes: Promise<void>[] = [];
    for (const s of this.series.values()) {
      if (s.flushTimer) {
        clearTimeout(s.flushTimer);
        s.flushTimer = undefined;
        if (s.count !== s.writtenCount) flushes.push(this.write(s).catch(() => undefined));
      }
    }
    this.closed = true;
    await Promise.allSettled([...flushes, ...this.pending]);
  }

  private objectKey(o: InvolvedObject): string {
    return o.uid ?? `${o.kind}/${o.namespace}/${o.name}`;
  }

  private async recordInner(involved: InvolvedObject, spec: EventSpec): Promise<void> {
    const now = this.now();
    const key = `${this.objectKey(involved)}|${spec.type}|${spec.reason}`;
    const existing = this.series.get(key);
    if (existing && now - existing.lastSeen < this.windowMs) {
      existing.count++;
      existing.lastSeen = now;
      existing.message = spec.message;
      existing.involved = involved;
      // Refresh recency for the LRU bound.
      this.series.delete(key);
      this.series.set(key, existing);
      if (now - existing.lastWrite >= this.minWriteIntervalMs) {
        await this.write(existing);
      } else {
        this.scheduleFlush(existing);
      }
      return;
    }
    if (existing?.flushTimer) clearTimeout(existing.flushTimer);
    if (!this.takeToken(this.objectKey(involved), now)) {
      this.log?.('info', 'Event dropped: too many for this object', {
        object: `${involved.kind}/${involved.namespace}/${involved.name}`,
        reason: spec.reason,
      });
      return;
    }
    const s: Series = {
      namespace: involved.namespace,
      eventName: `${involved.name}.${now.toString(16)}${randomBytes(3).toString('hex')}`,
      count: 1,
      firstTimestamp: now,
      lastSeen: now,
      lastWrite: now,
      writtenCount: 0,
      message: spec.message,
      writtenMessage: '',
      involved,
      spec,
    };
    this.series.delete(key);
    this.series.set(key, s);
    this.evict();
    await this.sink.create(involved.namespace, this.fullEvent(s));
    s.writtenCount = s.count;
    s.writtenMessage = s.message;
  }

  private scheduleFlush(s: Series): void {
    if (s.flushTimer || this.closed) return;
    const delay = Math.max(0, s.lastWrite + this.minWriteIntervalMs - this.now());
    s.flushTimer = setTimeout(() => {
      s.flushTimer = undefined;
      if (s.count === s.writtenCount && s.message === s.writtenMessage) return;
      void this.flushSeries(s);
    }, delay);
    s.flushTimer.unref?.();
  }

  private flushSeries(s: Series): Promise<void> {
    const p = this.write(s).catch((err: unknown) => {
      this.log?.('warn', 'could not update Event', {
        event: `${s.namespace}/${s.eventName}`,
        error: err instanceof Error ? err.message : String(err),
      });
    });
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
    return p;
  }

  private async write(s: Series): Promise<void> {
    const now = this.now();
    s.lastWrite = now;
    if (s.flushTimer) {
      clearTimeout(s.flushTimer);
      s.flushTimer = undefined;
    }
    const count = s.count;
    const message = s.message;
    try {
      await this.sink.patch(s.namespace, s.eventName, {
        count,
        message,
        lastTimestamp: new Date(now),
      });
    } catch (err) {
      if ((err as { code?: number }).code !== 404) throw err;
      // The Event expired (the API server keeps them ~1 h): start it again with the running count.
      s.eventName = `${s.involved.name}.${now.toString(16)}${randomBytes(3).toString('hex')}`;
      await this.sink.create(s.namespace, this.fullEvent(s));
    }
    s.writtenCount = Math.max(s.writtenCount, count);
    s.writtenMessage = message;
  }

  private fullEvent(s: Series): CoreV1Event {
    const o = s.involved;
    return {
      metadata: { name: s.eventName, namespace: s.namespace },
      involvedObject: {
        apiVersion: o.apiVersion,
        kind: o.kind,
        namespace: o.namespace,
        name: o.name,
        ...(o.uid ? { uid: o.uid } : {}),
        ...(o.resourceVersion ? { resourceVersion: o.resourceVersion } : {}),
      },
      type: s.spec.type,
      reason: s.spec.reason,
      message: s.message.slice(0, 1024),
      count: s.count,
      firstTimestamp: new Date(s.firstTimestamp),
      lastTimestamp: new Date(s.lastSeen),
      source: { component: REPORTING_CONTROLLER },
      reportingComponent: REPORTING_CONTROLLER,
      reportingInstance: this.reportingInstance,
    };
  }

  private takeToken(objectKey: string, now: number): boolean {
    const b = this.buckets.get(objectKey) ?? { tokens: this.burst, updated: now };
    const refill = Math.floor((now - b.updated) / this.refillMs);
    if (refill > 0) {
      b.tokens = Math.min(this.burst, b.tokens + refill);
      b.updated += refill * this.refillMs;
    }
    this.buckets.delete(objectKey);
    this.buckets.set(objectKey, b);
    if (b.tokens <= 0) return false;
    b.tokens--;
    return true;
  }

  private evict(): void {
    while (this.series.size > this.maxKeys) {
      const oldest = this.series.keys().next().value as string;
      const s = this.series.get(oldest);
      if (s?.flushTimer) clearTimeout(s.flushTimer);
      this.series.delete(oldest);
    }
    while (this.buckets.size > this.maxKeys) {
      this.buckets.delete(this.buckets.keys().next().value as string);
    }
  }
}
