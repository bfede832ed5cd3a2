import type { CoreV1Event } from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { EventRecorder, type EventSink, type InvolvedObject, REPORTING_CONTROLLER } from './events.js';

function memorySink() {
  const events = new Map<string, CoreV1Event>();
  const writes: string[] = [];
  let failNextPatchWith: number | undefined;
  const sink: EventSink = {
    async create(namespace, event) {
      writes.push(`create ${event.metadata?.name}`);
      events.set(`${namespace}/${event.metadata?.name}`, structuredClone(event));
    },
    async patch(namespace, name, patch) {
      writes.push(`patch ${name}`);
      if (failNextPatchWith !== undefined) {
        const code = failNextPatchWith;
        failNextPatchWith = undefined;
        throw Object.assign(new Error('gone'), { code });
      }
      const e = events.get(`${namespace}/${name}`);
      if (!e) throw Object.assign(new Error('not found'), { code: 404 });
      Object.assign(e, patch);
    },
  };
  return {
    sink,
    events,
    writes,
    expire: () => events.clear(),
    failNextPatch: (code: number) => {
      failNextPatchWith = code;
    },
  };
}

const conn: InvolvedObject = {
  apiVersion: 'chaperone.dev/v1alpha1',
  kind: 'Connection',
  namespace: 'team-a',
  name: 'orders-db',
  uid: 'uid-1',
};

describe('EventRecorder', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(new Date('2030-01-01T00:00:00Z'));
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('writes a core/v1 Event for the object with the reporting controller', async () => {
    const m = memorySink();
    const r = new EventRecorder({ sink: m.sink, reportingInstance: 'operator-0' });
    await r.record(conn, { type: 'Warning', reason: 'AuthenticationFailed', message: 'bad password' });
    const [e] = [...m.events.values()];
    expect(e).toMatchObject({
      involvedObject: { kind: 'Connection', namespace: 'team-a', name: 'orders-db', uid: 'uid-1' },
      type: 'Warning',
      reason: 'AuthenticationFailed',
      message: 'bad password',
      count: 1,
      reportingComponent: REPORTING_CONTROLLER,
      reportingInstance: 'operator-0',
      source: { component: REPORTING_CONTROLLER },
    });
    expect(e?.metadata?.name).toMatch(/^orders-db\./);
  });

  it('folds repeats of a reason into one Event with a count, writing at most once per interval', async () => {
    const m = memorySink();
    const r = new EventRecorder({ sink: m.sink, reportingInstance: 'op', minWriteIntervalMs: 30_000 });
    for (let i = 0; i < 20; i++) {
      await r.record(conn, { type: 'Warning', reason: 'Unreachable', message: `try ${i}` });
      await vi.advanceTimersByTimeAsync(1_000);
    }
    expect(m.events.size).toBe(1);
    expect(m.writes.length).toBeLessThanOrEqual(2);
    // The counted repeats are flushed later.
    await vi.advanceTimersByTimeAsync(30_000);
    const [e] = [...m.events.values()];
    expect(e?.count).toBe(20);
    expect(e?.message).toBe('try 19');
    await r.close();
  });

  it('different reasons are different Events; a new series starts after the aggregation window', async () => {
    const m = memorySink();
    const r = new EventRecorder({ sink: m.sink, reportingInstance: 'op', aggregationWindowMs: 60_000 });
    await r.record(conn, { type: 'Warning', reason: 'Unreachable', message: 'a' });
    await r.record(conn, { type: 'Normal', reason: 'Ready', message: 'b' });
    expect(m.events.size).toBe(2);
    await vi.advanceTimersByTimeAsync(61_000);
    await r.record(conn, { type: 'Warning', reason: 'Unreachable', message: 'c' });
    expect(m.events.size).toBe(3);
  });

  it('limits new Events per object (token bucket) and refills over time', async () => {
    const m = memorySink();
    const r = new EventRecorder({ sink: m.sink, reportingInstance: 'op', burst: 3, refillMs: 60_000 });
    for (let i = 0; i < 10; i++) await r.record(conn, { type: 'Normal', reason: `R${i}`, message: 'm' });
    expect(m.events.size).toBe(3);
    await r.record({ ...conn, uid: 'uid-2', name: 'other' }, { type: 'Normal', reason: 'R0', message: 'm' });
    expect(m.events.size).toBe(4);
    await vi.advanceTimersByTimeAsync(60_000);
    await r.record(conn, { type: 'Normal', reason: 'R9', message: 'm' });
    expect(m.events.size).toBe(5);
  });

  it('re-creates an Event that expired on the server, keeping the count', async () => {
    const m = memorySink();
    const r = new EventRecorder({ sink: m.sink, reportingInstance: 'op', minWriteIntervalMs: 0 });
    await r.record(conn, { type: 'Warning', reason: 'Unreachable', message: 'a' });
    m.expire();
    await r.record(conn, { type: 'Warning', reason: 'Unreachable', message: 'b' });
    const [e] = [...m.events.values()];
    expect(e?.count).toBe(2);
    expect(m.writes.map((w) => w.split(' ')[0])).toEqual(['create', 'patch', 'create']);
  });

  it('never throws: a failing write is logged and dropped', async () => {
    const logs: string[] = [];
    const r = new EventRecorder({
      sink: {
        create: async () => {
          throw new Error('forbidden');
        },
        patch: async () => undefined,
      },
      reportingInstance: 'op',
      log: (_l, msg) => logs.push(msg),
    });
    await expect(r.record(conn, { type: 'Normal', reason: 'Ready', message: 'x' })).resolves.toBeUndefined();
    expect(logs).toEqual(['could not write Event']);
  });
});
