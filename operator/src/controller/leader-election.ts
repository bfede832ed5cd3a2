import type { Logger } from '@chaperone/api';
// Leader election with a coordination.k8s.io/v1 Lease, the algorithm of client-go's leaderelection:
// a candidate takes the Lease when it is free or its holder has not renewed it for a lease duration
// (measured on the candidate's own clock from when it last saw the record change, so clock skew
// between replicas does not matter); the leader renews every retryPeriod and gives up leadership
// when it could not renew for renewDeadline (< leaseDuration, so it stops before anyone else can
// start); every write carries the resourceVersion it read (optimistic concurrency); a graceful stop
// clears holderIdentity so another replica takes over at its next try instead of waiting.

import { CoordinationV1Api, type KubeConfig, type V1Lease, V1MicroTime } from '@kubernetes/client-node';
import { LEADER_LEASE_NAME } from '../operator-constants.js';

export interface LeaderElectorOptions {
  kubeConfig: KubeConfig;
  /** Namespace of the Lease: the operator's. */
  namespace: string;
  /** Default LEADER_LEASE_NAME. */
  leaseName?: string;
  /** Unique per replica, e.g. the pod name. */
  identity: string;
  /** How long a Lease holds without renewal. Default 15 s. */
  leaseDurationMs?: number;
  /** The leader gives up when it could not renew for this long. Default 10 s. */
  renewDeadlineMs?: number;
  /** Time between attempts to acquire or renew. Default 2 s. */
  retryPeriodMs?: number;
  onStartedLeading?: () => void | Promise<void>;
  onStoppedLeading?: () => void | Promise<void>;
  /** Called when the observed holder changes (undefined: nobody holds it). */
  onNewLeader?: (identity: string | undefined) => void;
  log?: Logger;
}

interface ApiError {
  code?: number;
}

function errorCode(err: unknown): number | undefined {
  const code = (err as ApiError | undefined)?.code;
  return typeof code === 'number' ? code : undefined;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function toMillis(t: unknown): number | undefined {
  if (t instanceof Date) return t.getTime();
  if (typeof t === 'string') {
    const ms = Date.parse(t);
    return Number.isNaN(ms) ? undefined : ms;
  }
  return undefined;
}

export class LeaderElector {
  private readonly api: CoordinationV1Api;
  private readonly opts: LeaderElectorOptions;
  private readonly leaseName: string;
  private readonly leaseDurationMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryPeriodMs: number;
  private running = false;
  private leading = false;
  private heldWithoutLeading = false;
  /** Local time at which the last successful acquire/renew attempt started. */
  private lastRenewAt = 0;
  private observedResourceVersion?: string;
  private observedAt = 0;
  private observedHolder?: string;
  private loop?: Promise<void>;
  private wake?: () => void;
  private sleepTimer?: ReturnType<typeof setTimeout>;
  /** Leadership callbacks run one after another, never overlapping. */
  private transitions: Promise<void> = Promise.resolve();

  constructor(opts: LeaderElectorOptions) {
    this.opts = opts;
    this.api = opts.kubeConfig.makeApiClient(CoordinationV1Api);
    this.leaseName = opts.leaseName ?? LEADER_LEASE_NAME;
    this.leaseDurationMs = opts.leaseDurationMs ?? 15_000;
    this.renewDeadlineMs = opts.renewDeadlineMs ?? 10_000;
    this.retryPeriodMs = opts.retryPeriodMs ?? 2_000;
    if (!opts.identity) throw new Error('leader election needs a non-empty identity (e.g. the pod name)');
    if (!(this.leaseDurationMs > this.renewDeadlineMs)) {
      throw new Error(
        `leaseDurationMs (${this.leaseDurationMs}) must be greater than renewDeadlineMs (${this.renewDeadlineMs})`,
      );
    }
    if (!(this.renewDeadlineMs > this.retryPeriodMs * 1.2)) {
      throw new Error(
        `renewDeadlineMs (${this.renewDeadlineMs}) must be greater than 1.2 × retryPeriodMs (${this.retryPeriodMs})`,
      );
    }
  }

  get identity(): string {
    return this.opts.identity;
  }

  /**
   * Whether this replica leads now. Bounded by the renew deadline on the local clock, so it turns
   * false on time even while a renewal request hangs.
   */
  get isLeader(): boolean {
    return this.leading && Date.now() - this.lastRenewAt < this.renewDeadlineMs;
  }

  /** The holder last seen on the Lease (may be stale by up to retryPeriod). */
  get observedLeader(): string | undefined {
    return this.observedHolder;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run().catch((err: unknown) => {
      this.opts.log?.('error', 'leader election loop failed', { error: errorText(err) });
    });
  }

  /**
   * Stops campaigning. A leader first runs onStoppedLeading (waits for it), then by default releases
   * the Lease so the next replica does not wait out the lease duration. `releaseLease: false` leaves
   * the Lease to expire (what a crash looks like to the other replicas).
   */
  async stop(opts: { releaseLease?: boolean } = {}): Promise<void> {
    if (!this.running) {
      await this.transitions;
      return;
    }
    this.running = false;
    this.interruptSleep();
    await this.loop;
    const wasLeading = this.leading;
    if (wasLeading) this.loseLeadership('stopping');
    await this.transitions;
    const held = wasLeading || this.heldWithoutLeading;
    this.heldWithoutLeading = false;
    if (held && (opts.releaseLease ?? true)) await this.release();
  }

  private async run(): Promise<void> {
    while (this.running) {
      const attemptAt = Date.now();
      const ok = await this.attempt(attemptAt, this.retryPeriodMs * 2);
      if (!this.running) {
        // Acquired just as we were told to stop: never lead, but give the Lease back.
        if (ok) this.heldWithoutLeading = true;
        return;
      }
      if (ok) {
        this.lastRenewAt = attemptAt;
        this.becomeLeader();
        await this.renewLoop();
        continue;
      }
      await this.sleep(this.retryPeriodMs * (1 + Math.random() * 0.2));
    }
  }

  private async renewLoop(): Promise<void> {
    while (this.running && this.leading) {
      const untilDeadline = this.lastRenewAt + this.renewDeadlineMs - Date.now();
      await this.sleep(Math.max(0, Math.min(this.retryPeriodMs, untilDeadline)));
      if (!this.running) return;
      const attemptAt = Date.now();
      const remaining = this.lastRenewAt + this.renewDeadlineMs - attemptAt;
      if (remaining <= 0) {
        this.loseLeadership('renew deadline passed');
        return;
      }
      const ok = await this.attempt(attemptAt, remaining);
      if (!this.running) {
        if (ok) this.lastRenewAt = attemptAt;
        return;
      }
      if (ok) {
        this.lastRenewAt = attemptAt;
      } else if (Date.now() - this.lastRenewAt >= this.renewDeadlineMs) {
        this.loseLeadership('could not renew the Lease before the renew deadline');
        return;
      }
    }
  }

  private becomeLeader(): void {
    this.leading = true;
    this.opts.log?.('info', 'became leader', { lease: this.leaseName, identity: this.opts.identity });
    const cb = this.opts.onStartedLeading;
    this.transitions = this.transitions.then(async () => {
      try {
        await cb?.();
      } catch (err) {
        this.opts.log?.('error', 'onStartedLeading failed', { error: errorText(err) });
      }
    });
  }

  private loseLeadership(why: string): void {
    if (!this.leading) return;
    this.leading = false;
    this.opts.log?.(why === 'stopping' ? 'info' : 'warn', 'stopped leading', {
      lease: this.leaseName,
      identity: this.opts.identity,
      why,
    });
    const cb = this.opts.onStoppedLeading;
    this.transitions = this.transitions.then(async () => {
      try {
        await cb?.();
      } catch (err) {
        this.opts.log?.('error', 'onStoppedLeading failed', { error: errorText(err) });
      }
    });
  }

  /** One acquire-or-renew, given up (as failed) after timeoutMs so a hung request cannot hold us. */
  private async attempt(now: number, timeoutMs: number): Promise<boolean> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), Math.max(1, timeoutMs));
    });
    try {
      return await Promise.race([
        this.tryAcquireOrRenew(now).catch((err: unknown) => {
          this.opts.log?.('warn', 'leader election: Lease request failed', {
            lease: this.leaseName,
            error: errorText(err),
          });
          return false;
        }),
        timeout,
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  private leaseSeconds(): number {
    return Math.max(1, Math.ceil(this.leaseDurationMs / 1000));
  }

  private observe(lease: V1Lease, at: number): void {
    const rv = lease.metadata?.resourceVersion;
    if (rv !== this.observedResourceVersion) {
      this.observedResourceVersion = rv;
      this.observedAt = at;
    }
    const holder = lease.spec?.holderIdentity || undefined;
    if (holder !== this.observedHolder) {
      this.observedHolder = holder;
      this.opts.onNewLeader?.(holder);
    }
  }

  private async tryAcquireOrRenew(now: number): Promise<boolean> {
    const { namespace } = this.opts;
    const name = this.leaseName;
    let lease: V1Lease;
    try {
      lease = await this.api.readNamespacedLease({ name, namespace });
    } catch (err) {
      if (errorCode(err) !== 404) throw err;
      try {
        const created = await this.api.createNamespacedLease({
          namespace,
          body: {
            apiVersion: 'coordination.k8s.io/v1',
            kind: 'Lease',
            metadata: { name, namespace },
            spec: {
              holderIdentity: this.opts.identity,
              leaseDurationSeconds: this.leaseSeconds(),
              acquireTime: new V1MicroTime(now),
              renewTime: new V1MicroTime(now),
              leaseTransitions: 0,
            },
          },
        });
        this.observe(created, now);
        return true;
      } catch (createErr) {
        if (errorCode(createErr) === 409) return false;
        throw createErr;
      }
    }
    const readAt = Date.now();
    this.observe(lease, readAt);
    const spec = lease.spec ?? {};
    const holder = spec.holderIdentity || undefined;
    const mine = holder === this.opts.identity;
    const durationMs = (spec.leaseDurationSeconds ?? this.leaseSeconds()) * 1000;
    if (holder && !mine && this.observedAt + durationMs > readAt) return false;

    const acquireTime = mine ? (toMillis(spec.acquireTime) ?? now) : now;
    const body: V1Lease = {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: {
        name,
        namespace,
        // Optimistic concurrency: the write fails with 409 if anyone wrote since our read.
        resourceVersion: lease.metadata?.resourceVersion,
        ...(lease.metadata?.labels ? { labels: lease.metadata.labels } : {}),
      },
      spec: {
        holderIdentity: this.opts.identity,
        leaseDurationSeconds: this.leaseSeconds(),
        acquireTime: new V1MicroTime(acquireTime),
        renewTime: new V1MicroTime(now),
        leaseTransitions: (spec.leaseTransitions ?? 0) + (mine ? 0 : 1),
      },
    };
    try {
      const updated = await this.api.replaceNamespacedLease({ name, namespace, body });
      this.observe(updated, Date.now());
      return true;
    } catch (err) {
      if (errorCode(err) === 409) return false;
      throw err;
    }
  }

  /** Clears holderIdentity if we still hold the Lease, so another replica takes over at once. */
  private async release(): Promise<void> {
    const { namespace } = this.opts;
    const name = this.leaseName;
    try {
      const lease = await this.api.readNamespacedLease({ name, namespace });
      if (lease.spec?.holderIdentity !== this.opts.identity) return;
      const now = Date.now();
      await this.api.replaceNamespacedLease({
        name,
        namespace,
        body: {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { name, namespace, resourceVersion: lease.metadata?.resourceVersion },
          spec: {
            leaseDurationSeconds: 1,
            acquireTime: new V1MicroTime(now),
            renewTime: new V1MicroTime(now),
            leaseTransitions: lease.spec?.leaseTransitions ?? 0,
          },
        },
      });
      this.opts.log?.('info', 'released the leader Lease', { lease: name, identity: this.opts.identity });
    } catch (err) {
      // The Lease then simply expires after its duration.
      this.opts.log?.('warn', 'could not release the leader Lease', { lease: name, error: errorText(err) });
    }
  }

  private sleep(ms: number): Promise<void> {
    if (!this.running) return Promise.resolve();
    return new Promise((resolve) => {
      this.wake = resolve;
      this.sleepTimer = setTimeout(() => {
        this.wake = undefined;
        resolve();
      }, ms);
    });
  }

  private interruptSleep(): void {
    if (this.sleepTimer) clearTimeout(this.sleepTimer);
    this.sleepTimer = undefined;
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }
}
