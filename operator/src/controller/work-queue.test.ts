import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { type WorkHandler, WorkQueue, type WorkQueueOptions } from './work-queue.js';

/** A handler whose runs the test finishes by hand, so overlap and ordering are observable. */
function controlledHandler() {
  const runs: {
    key: string;
    finish: (result?: { requeueAfterMs?: number }) => void;
    fail: (e: Error) => void;
  }[] = [];
  let running = 0;
  let maxRunning = 0;
  const runningKeys = new Set<string>();
  let overlap = false;
  const handler: WorkHandler = (key) =>
    new Promise((resolve, reject) => {
      if (runningKeys.has(key)) overlap = true;
      runningKeys.add(key);
      running++;
      maxRunning = Math.max(maxRunning, running);
      const done = () => {
        running--;
        runningKeys.delete(key);
      };
      runs.push({
        key,
        finish: (result) => {
          done();
          resolve(result);
        },
        fail: (e) => {
          done();
          reject(e);
        },
      });
    });
  return {
    handler,
    runs,
    get maxRunning() {
      return maxRunning;
    },
    get overlap() {
      return overlap;
    },
  };
}

const flush = () => vi.advanceTimersByTimeAsync(0);

function queue(handler: WorkHandler, opts: Partial<WorkQueueOptions> = {}) {
  return new WorkQueue({ name: 'test', handler, random: () => 0.5, ...opts });
}

describe('WorkQueue', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('deduplicates a key while it waits', async () => {
    const h = controlledHandler();
    const q = queue(h.handler, { concurrency: 1 });
    q.add('a');
    q.add('b');
    q.add('b');
    q.add('b');
    expect(q.depth).toBe(2);
    await flush();
    expect(h.runs.map((r) => r.key)).toEqual(['a']);
    h.runs[0]!.finish();
    await flush();
    h.runs[1]!.finish();
    await flush();
    expect(h.runs.map((r) => r.key)).toEqual(['a', 'b']);
  });

  it('never runs one key on two workers; a key added while it runs runs once more afterwards', async () => {
    const h = controlledHandler();
    const q = queue(h.handler, { concurrency: 4 });
    q.add('a');
    await flush();
    expect(h.runs).toHaveLength(1);
    q.add('a');
    q.add('a');
    await flush();
    expect(h.runs).toHaveLength(1);
    h.runs[0]!.finish();
    await flush();
    expect(h.runs).toHaveLength(2);
    h.runs[1]!.finish();
    await flush();
    expect(h.runs).toHaveLength(2);
    expect(h.overlap).toBe(false);
  });

  it('bounds concurrency across keys', async () => {
    const h = controlledHandler();
    const q = queue(h.handler, { concurrency: 2 });
    for (const k of ['a', 'b', 'c', 'd', 'e']) q.add(k);
    await flush();
    expect(h.runs).toHaveLength(2);
    expect(q.depth).toBe(3);
    while (h.runs.some((r) => r)) {
      const pending = h.runs.splice(0);
      for (const r of pending) r.finish();
      await flush();
    }
    expect(h.maxRunning).toBe(2);
  });

  it('retries a failing key with exponential backoff and resets after a success', async () => {
    const h = controlledHandler();
    const errors: { attempt: number; retryInMs: number }[] = [];
    const q = queue(h.handler, {
      baseRetryDelayMs: 100,
      maxRetryDelayMs: 10_000,
      jitter: 0,
      onError: (_k, _e, attempt, retryInMs) => errors.push({ attempt, retryInMs }),
    });
    q.add('a');
    await flush();
    h.runs[0]!.fail(new Error('boom'));
    await flush();
    expect(q.retries('a')).toBe(1);
    await vi.advanceTimersByTimeAsync(99);
    expect(h.runs).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(h.runs).toHaveLength(2);
    h.runs[1]!.fail(new Error('boom'));
    await flush();
    await vi.advanceTimersByTimeAsync(199);
    expect(h.runs).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(h.runs).toHaveLength(3);
    h.runs[2]!.finish();
    await flush();
    expect(q.retries('a')).toBe(0);
    expect(errors).toEqual([
      { attempt: 1, retryInMs: 100 },
      { attempt: 2, retryInMs: 200 },
    ]);
  });

  it('caps the backoff and spreads it with jitter', () => {
    const low = new WorkQueue({
      name: 't',
      handler: async () => undefined,
      baseRetryDelayMs: 100,
      maxRetryDelayMs: 1_000,
      jitter: 0.5,
      random: () => 0,
    });
    const high = new WorkQueue({
      name: 't',
      handler: async () => undefined,
      baseRetryDelayMs: 100,
      maxRetryDelayMs: 1_000,
      jitter: 0.5,
      random: () => 0.999,
    });
    expect(low.retryDelay(1)).toBe(50);
    expect(high.retryDelay(1)).toBeGreaterThan(140);
    expect(high.retryDelay(1)).toBeLessThanOrEqual(150);
    for (let attempt = 1; attempt < 60; attempt++) {
      expect(high.retryDelay(attempt)).toBeLessThanOrEqual(1_000);
      expect(low.retryDelay(attempt)).toBeGreaterThan(0);
    }
    expect(low.retryDelay(40)).toBe(500);
  });

  it('addAfter runs the key later; the earliest schedule wins', async () => {
    const h = controlledHandler();
    const q = queue(h.handler);
    q.addAfter('a', 1_000);
    q.addAfter('a', 5_000);
    q.addAfter('a', 300);
    await vi.advanceTimersByTimeAsync(299);
    expect(h.runs).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(h.runs).toHaveLength(1);
    h.runs[0]!.finish();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(h.runs).toHaveLength(1);
  });

  it('honours requeueAfterMs from the handler', async () => {
    const h = controlledHandler();
    const q = queue(h.handler);
    q.add('a');
    await flush();
    h.runs[0]!.finish({ requeueAfterMs: 2_000 });
    await vi.advanceTimersByTimeAsync(1_999);
    expect(h.runs).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(h.runs).toHaveLength(2);
    expect(q.has('a')).toBe(true);
  });

  it('forget drops a scheduled run and the failure count', async () => {
    const h = controlledHandler();
    const q = queue(h.handler, { baseRetryDelayMs: 100, jitter: 0 });
    q.add('a');
    await flush();
    h.runs[0]!.fail(new Error('x'));
    await flush();
    q.forget('a');
    expect(q.retries('a')).toBe(0);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(h.runs).toHaveLength(1);
  });

  it('shutdown waits for running handlers, drops waiting and scheduled keys and refuses new ones', async () => {
    const h = controlledHandler();
    const q = queue(h.handler, { concurrency: 1 });
    q.add('a');
    q.add('b');
    q.addAfter('c', 100);
    await flush();
    let done = false;
    const stopped = q.shutdown().then(() => {
      done = true;
    });
    await flush();
    expect(done).toBe(false);
    q.add('d');
    h.runs[0]!.finish({ requeueAfterMs: 10 });
    await stopped;
    expect(done).toBe(true);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(h.runs.map((r) => r.key)).toEqual(['a']);
    expect(q.depth).toBe(0);
  });

  it('reports depth changes', async () => {
    const depths: number[] = [];
    const h = controlledHandler();
    const q = queue(h.handler, { concurrency: 1, onDepth: (d) => depths.push(d) });
    q.add('a');
    q.add('b');
    await flush();
    expect(depths).toEqual([1, 2, 1]);
  });
});
