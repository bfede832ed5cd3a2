import type { Informer, KubeConfig, KubernetesListObject, KubernetesObject } from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { type InformerFactory, ResilientInformer } from './informer.js';

type Obj = KubernetesObject;

/** A stand-in for client-node's ListWatch: lists on start, then the test drives watch events. */
class FakeInformer implements Informer<Obj> {
  readonly cbs: Record<string, ((arg: never) => void)[]> = {
    add: [],
    update: [],
    delete: [],
    error: [],
    connect: [],
  };
  stopped = false;
  constructor(private readonly listFn: () => Promise<KubernetesListObject<Obj>>) {}
  on(verb: string, cb: (arg: never) => void): void {
    this.cbs[verb]!.push(cb);
  }
  off(): void {}
  async start(): Promise<void> {
    try {
      const list = await this.listFn();
      for (const o of list.items) this.fire('add', o);
    } catch (err) {
      this.fire('error', err);
    }
  }
  async stop(): Promise<void> {
    this.stopped = true;
  }
  fire(verb: string, arg: unknown): void {
    for (const cb of this.cbs[verb]!) (cb as (a: unknown) => void)(arg);
  }
}

function obj(name: string, rv: string, ns = 'default'): Obj {
  return { apiVersion: 'v1', kind: 'X', metadata: { name, namespace: ns, resourceVersion: rv } };
}

function setup(opts: { watchdogMs?: number } = {}) {
  const instances: FakeInformer[] = [];
  let listed: Obj[] = [];
  let listError: Error | undefined;
  let lists = 0;
  const factory: InformerFactory<Obj> = (_kc, _path, list) => {
    const f = new FakeInformer(list);
    instances.push(f);
    return f;
  };
  const restarts: string[] = [];
  const events: string[] = [];
  const syncs: number[] = [];
  const informer = new ResilientInformer<Obj>({
    name: 'X',
    kubeConfig: {} as KubeConfig,
    path: '/apis/x',
    list: async () => {
      lists++;
      if (listError) throw listError;
      return { apiVersion: 'v1', kind: 'XList', metadata: { resourceVersion: '1' }, items: listed };
    },
    minRestartDelayMs: 1_000,
    maxRestartDelayMs: 8_000,
    watchdogMs: opts.watchdogMs ?? 60_000,
    random: () => 0.5,
    onRestart: (r) => restarts.push(r),
    makeInformer: factory,
  });
  for (const t of ['add', 'update', 'delete'] as const) {
    informer.on(t, (o) => events.push(`${t}:${o.metadata?.name}`));
  }
  informer.onSync((items) => syncs.push(items.length));
  return {
    informer,
    instances,
    restarts,
    events,
    syncs,
    setList: (items: Obj[]) => {
      listed = items;
    },
    setListError: (e: Error | undefined) => {
      listError = e;
    },
    get lists() {
      return lists;
    },
  };
}

describe('ResilientInformer', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('start resolves after the first list and serves the cache', async () => {
    const t = setup();
    t.setList([obj('a', '1'), obj('b', '1', 'other')]);
    await t.informer.start();
    expect(t.informer.hasSynced).toBe(true);
    expect(t.informer.get('a', 'default')?.metadata?.name).toBe('a');
    expect(t.informer.list('other').map((o) => o.metadata?.name)).toEqual(['b']);
    expect(t.informer.list()).toHaveLength(2);
    expect(t.events.sort()).toEqual(['add:a', 'add:b']);
    expect(t.syncs).toEqual([2]);
    await t.informer.stop();
  });

  it('on error starts a fresh instance after a backoff, relists and reports objects gone meanwhile as deleted', async () => {
    const t = setup();
    t.setList([obj('a', '1'), obj('b', '1')]);
    await t.informer.start();
    t.events.length = 0;
    t.setList([obj('a', '2')]);
    t.instances[0]!.fire('error', Object.assign(new Error('watch failed'), { statusCode: 500 }));
    expect(t.instances[0]!.stopped).toBe(true);
    expect(t.restarts).toEqual(['error']);
    await vi.advanceTimersByTimeAsync(999);
    expect(t.instances).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(t.instances).toHaveLength(2);
    expect(t.events.sort()).toEqual(['delete:b', 'update:a']);
    expect(t.informer.get('b', 'default')).toBeUndefined();
    expect(t.syncs).toEqual([2, 1]);
    await t.informer.stop();
  });

  it('backs off exponentially while lists keep failing, capped', async () => {
    const t = setup();
    t.setListError(new Error('forbidden'));
    void t.informer.start();
    await vi.advanceTimersByTimeAsync(0);
    const starts: number[] = [];
    for (let i = 0; i < 6; i++) {
      const before = t.instances.length;
      let waited = 0;
      while (t.instances.length === before) {
        await vi.advanceTimersByTimeAsync(100);
        waited += 100;
      }
      starts.push(waited);
    }
    expect(starts).toEqual([1_000, 2_000, 4_000, 8_000, 8_000, 8_000]);
    expect(t.informer.hasSynced).toBe(false);
    t.setListError(undefined);
    await vi.advanceTimersByTimeAsync(8_000);
    expect(t.informer.hasSynced).toBe(true);
    await t.informer.stop();
  });

  it('ignores events and lists from an instance that was replaced', async () => {
    const t = setup();
    t.setList([obj('a', '1')]);
    await t.informer.start();
    const old = t.instances[0]!;
    old.fire('error', new Error('x'));
    old.fire('add', obj('ghost', '9'));
    old.fire('error', new Error('again'));
    expect(t.informer.get('ghost', 'default')).toBeUndefined();
    expect(t.restarts).toEqual(['error']);
    await t.informer.stop();
  });

  it('the watchdog relists when nothing arrived for watchdogMs, and not while events flow', async () => {
    const t = setup({ watchdogMs: 60_000 });
    t.setList([obj('a', '1')]);
    await t.informer.start();
    for (let i = 0; i < 5; i++) {
      await vi.advanceTimersByTimeAsync(20_000);
      t.instances[0]!.fire('update', obj('a', String(i + 2)));
    }
    expect(t.restarts).toEqual([]);
    await vi.advanceTimersByTimeAsync(59_000);
    expect(t.restarts).toEqual([]);
    // The watchdog looks every watchdogMs / 4.
    await vi.advanceTimersByTimeAsync(16_000);
    expect(t.restarts).toEqual(['watchdog']);
    await vi.advanceTimersByTimeAsync(0);
    expect(t.instances).toHaveLength(2);
    expect(t.lists).toBe(2);
    await t.informer.stop();
  });

  it('stop ends everything: no restart after a late error', async () => {
    const t = setup();
    t.setList([]);
    await t.informer.start();
    await t.informer.stop();
    t.instances[0]!.fire('error', new Error('late'));
    await vi.advanceTimersByTimeAsync(120_000);
    expect(t.instances).toHaveLength(1);
    expect(t.restarts).toEqual([]);
  });

  it('a throwing handler does not break the cache', async () => {
    const t = setup();
    t.informer.on('add', () => {
      throw new Error('handler bug');
    });
    t.setList([obj('a', '1')]);
    await t.informer.start();
    expect(t.informer.get('a', 'default')).toBeDefined();
    await t.informer.stop();
  });
});
