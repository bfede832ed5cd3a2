// A per-key work queue in the style of client-go's workqueue: keys (`kind/namespace/name`) are
// deduplicated while they wait, one key is never handled by two workers at once, a key added while
// it is being handled runs once more afterwards, failures retry with capped exponential backoff and
// jitter, and `addAfter` schedules a later run (the earliest of several requests wins).

/** What a handler may ask for after a successful run. */
export interface WorkResult {
  /** Run this key again after this many milliseconds (periodic re-check, expiry). */
  requeueAfterMs?: number;
}

export type WorkHandler = (key: string) => Promise<WorkResult | undefined>;

export interface WorkQueueOptions {
  /** Name for logs and metrics, e.g. the kind. */
  name: string;
  handler: WorkHandler;
  /** Keys handled at the same time (different keys only). Default 2. */
  concurrency?: number;
  /** First retry delay after a failure. Default 500 ms. */
  baseRetryDelayMs?: number;
  /** Retry delays never exceed this. Default 5 min. */
  maxRetryDelayMs?: number;
  /** Each retry delay is spread by up to ±this fraction so failing keys do not retry in lockstep. Default 0.2. */
  jitter?: number;
  /** Source of randomness in [0, 1) for the jitter (tests pin it). */
  random?: () => number;
  /** Called when a handler throws, with the delay before its retry. */
  onError?: (key: string, error: unknown, attempt: number, retryInMs: number) => void;
  /** Called whenever the number of waiting keys changes (a gauge). */
  onDepth?: (depth: number) => void;
}

export class WorkQueue {
  readonly name: string;
  private readonly handler: WorkHandler;
  private readonly concurrency: number;
  private readonly baseRetryDelayMs: number;
  private readonly maxRetryDelayMs: number;
  private readonly jitter: number;
  private readonly random: () => number;
  private readonly onError?: WorkQueueOptions['onError'];
  private readonly onDepth?: WorkQueueOptions['onDepth'];

  /** Waiting keys in FIFO order; the Set mirrors it for O(1) dedupe. */
  private readonly order: string[] = [];
  private readonly queued = new Set<string>();
  private readonly processing = new Set<string>();
  /** Keys added while they were being handled: they go back into the queue when the handler ends. */
  private readonly dirty = new Set<string>();
  private readonly delayed = new Map<string, { at: number; timer: ReturnType<typeof setTimeout> }>();
  private readonly failures = new Map<string, number>();
  private readonly inFlight = new Set<Promise<void>>();
  private shuttingDown = false;
  private pumpScheduled = false;

  constructor(opts: WorkQueueOptions) {
    this.name = opts.name;
    this.handler = opts.handler;
    this.concurrency = Math.max(1, Math.floor(opts.concurrency ?? 2));
    this.baseRetryDelayMs = Math.max(1, opts.baseRetryDelayMs ?? 500);
    this.maxRetryDelayMs = Math.max(this.baseRetryDelayMs, opts.maxRetryDelayMs ?? 5 * 60_000);
    this.jitter = Math.min(1, Math.max(0, opts.jitter ?? 0.2));
    this.random = opts.random ?? Math.random;
    this.onError = opts.onError;
    this.onDepth = opts.onDepth;
  }

  /** Keys waiting to be handled (not those being handled or scheduled for later). */
  get depth(): number {
    return this.order.length;
  }

  /** Keys being handled right now. */
  get active(): number {
    return this.processing.size;
  }

  /** Failures in a row for a key (0 after a success). */
  retries(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  /** Whether the key is waiting, being handled or scheduled. */
  has(key: string): boolean {
    return this.queued.has(key) || this.processing.has(key) || this.delayed.has(key);
  }

  get isShutDown(): boolean {
    return this.shuttingDown;
  }

  add(key: string): void {
    if (this.shuttingDown) return;
    if (this.processing.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.queued.has(key)) return;
    this.queued.add(key);
    this.order.push(key);
    this.onDepth?.(this.order.length);
    this.schedulePump();
  }

  /** Adds the key after `ms`. If it is already scheduled earlier, the earlier time stands. */
  addAfter(key: string, ms: number): void {
    if (this.shuttingDown) return;
    if (!(ms > 0)) {
      this.add(key);
      return;
    }
    const at = Date.now() + ms;
    const existing = this.delayed.get(key);
    if (existing && existing.at <= at) return;
    if (existing) clearTimeout(existing.timer);
    const timer = setTimeout(() => {
      this.delayed.delete(key);
      this.add(key);
    }, ms);
    // A scheduled re-check must not keep a process alive that is otherwise done.
    timer.unref?.();
    this.delayed.set(key, { at, timer });
  }

  /** Forgets a key's failure count and any scheduled run (e.g. the object was deleted). */
  forget(key: string): void {
    this.failures.delete(key);
    const existing = this.delayed.get(key);
    if (existing) {
      clearTimeout(existing.timer);
      this.delayed.delete(key);
    }
  }

  /** The delay before retry number `attempt` (1-based): capped exponential backoff with jitter. */
  retryDelay(attempt: number): number {
    const exp = this.baseRetryDelayMs * 2 ** Math.min(Math.max(0, attempt - 1), 30);
    const capped = Math.min(this.maxRetryDelayMs, exp);
    const spread = 1 + this.jitter * (2 * this.random() - 1);
    return Math.max(1, Math.min(this.maxRetryDelayMs, Math.round(capped * spread)));
  }

  /**
   * Stops taking keys, drops waiting and scheduled ones and resolves once every handler that is
   * running has finished.
   */
  async shutdown(): Promise<void> {
    this.shuttingDown = true;
    this.order.length = 0;
    this.queued.clear();
    this.dirty.clear();
    for (const { timer } of this.delayed.values()) clearTimeout(timer);
    this.delayed.clear();
    this.onDepth?.(0);
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  private schedulePump(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    // Handlers never run inside add(): callers (informer callbacks) stay synchronous and cheap.
    queueMicrotask(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  private pump(): void {
    while (!this.shuttingDown && this.processing.size < this.concurrency && this.order.length > 0) {
      const key = this.order.shift()!;
      this.queued.delete(key);
      this.onDepth?.(this.order.length);
      this.processing.add(key);
      const run = this.runOne(key);
      this.inFlight.add(run);
      void run.finally(() => {
        this.inFlight.delete(run);
      });
    }
  }

  private async runOne(key: string): Promise<void> {
    let retryInMs: number | undefined;
    let requeueAfterMs: number | undefined;
    try {
      const result = await this.handler(key);
      this.failures.delete(key);
      requeueAfterMs = result?.requeueAfterMs;
    } catch (error) {
      const attempt = (this.failures.get(key) ?? 0) + 1;
      this.failures.set(key, attempt);
      retryInMs = this.retryDelay(attempt);
      try {
        this.onError?.(key, error, attempt, retryInMs);
      } catch {
        // A failing error callback must not wedge the key in `processing`.
      }
    } finally {
      this.processing.delete(key);
    }
    if (this.shuttingDown) return;
    if (this.dirty.delete(key)) {
      // Something changed while we worked: handle it now; a pending retry would only repeat that.
      this.add(key);
    } else if (retryInMs !== undefined) {
      this.addAfter(key, retryInMs);
    }
    if (requeueAfterMs !== undefined && requeueAfterMs >= 0) this.addAfter(key, requeueAfterMs);
    this.schedulePump();
  }
}
