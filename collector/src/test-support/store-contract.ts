// The behaviour every EventStore must have, run against each adapter (sqlite-store.test.ts,
// postgres-store.int.test.ts) so that both keep exactly the same semantics.
import type { RecordingEvent } from '@chaperone/api';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { toAsciicast } from '../replay/asciicast.js';
import { toSqlTranscript } from '../replay/sql-transcript.js';
import type { EventStore, SessionQuery, SessionSummary } from '../store/event-store.js';
import { verifyRange, verifySession } from '../verify/chain.js';
import { prepare, RecordingBuilder, sqlSession, sshSession } from './recordings.js';

export interface StoreHarness {
  /** A fresh, empty, unmigrated store. */
  open(): Promise<EventStore>;
  /** Rewrites the stored text of one event behind the store's back (an attacker with DB access). */
  tamper(
    store: EventStore,
    sessionId: string,
    seq: number,
    edit: (canonical: string) => string,
  ): Promise<void>;
  /** Rows of the statement-text index (to prove retention removes them too). */
  textIndexRows(store: EventStore): Promise<number>;
  /** Releases what open() created (the store is closed by the suite). */
  cleanup?(): Promise<void>;
}

const T0 = Date.parse('2025-03-01T10:00:00.000Z');
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

async function allPages(store: EventStore, q: Omit<SessionQuery, 'limit' | 'cursor'>, limit: number) {
  const ids: string[] = [];
  let cursor: SessionQuery['cursor'];
  let pages = 0;
  do {
    const page = await store.searchSessions({ ...q, limit, cursor });
    ids.push(...page.sessions.map((s) => s.sessionId));
    expect(page.sessions.length).toBeLessThanOrEqual(limit);
    cursor = page.nextCursor ?? undefined;
    pages++;
    expect(pages).toBeLessThan(1000);
  } while (cursor);
  return { ids, pages };
}

async function ids(store: EventStore, q: Omit<SessionQuery, 'limit'>): Promise<string[]> {
  return (await store.searchSessions({ limit: 100, ...q })).sessions.map((s) => s.sessionId);
}

async function eventsOf(store: EventStore, sessionId: string): Promise<RecordingEvent[]> {
  const rows = await store.sessionEvents(sessionId, { limit: 10_000 });
  return rows.map((r) => JSON.parse(r.canonical) as RecordingEvent);
}

export function describeEventStoreContract(name: string, harness: StoreHarness): void {
  describe(`EventStore contract: ${name}`, () => {
    let store: EventStore;
    beforeEach(async () => {
      store = await harness.open();
      await store.migrate();
    });
    afterEach(async () => {
      await store.close();
      await harness.cleanup?.();
    });

    it('migrates once, and a second migrate is a no-op', async () => {
      const version = await store.schemaVersion();
      expect(version).toBeGreaterThan(0);
      expect(await store.migrate()).toEqual({ applied: [], version });
      await store.ping();
    });

    it('stores a session and keeps its summary: identity, counts by decision, masked values', async () => {
      const events = sqlSession('s-1', {
        identity: {
          serviceAccount: 'agents/a',
          pod: 'a-0',
          user: 'alice@example.com',
          groups: ['ops', 'dba'],
        },
      });
      expect(await store.appendBatch(prepare(events))).toEqual({ stored: 11, duplicates: 0, conflicts: [] });
      const s = await store.getSession('s-1');
      expect(s).toEqual<SessionSummary>({
        sessionId: 's-1',
        connection: 'orders-db',
        protocol: 'postgres',
        client: '127.0.0.1:41000',
        application: 'psql',
        identity: {
          serviceAccount: 'agents/a',
          pod: 'a-0',
          user: 'alice@example.com',
          groups: ['ops', 'dba'],
        },
        startTime: events[0]!.time,
        endTime: events.at(-1)!.time,
        ended: true,
        endReason: 'client closed',
        events: 11,
        lastSeq: 10,
        missingEvents: 0,
        counts: { statements: 3, allowed: 1, denied: 1, approved: 1, maskedValues: 9 },
      });
      expect(await store.getSession('nope')).toBeUndefined();
      const stored = await store.sessionEvents('s-1', { limit: 100 });
      expect(stored.map((r) => r.seq)).toEqual([...Array(11).keys()]);
      expect(stored.map((r) => JSON.parse(r.canonical))).toEqual(events);
    });

    it('is idempotent on (session, seq): retries are duplicates, different content is a conflict', async () => {
      const events = prepare(sqlSession('s-dup'));
      await store.appendBatch(events);
      expect(await store.appendBatch(events)).toEqual({ stored: 0, duplicates: 11, conflicts: [] });
      // Twice in one batch, plus one new event.
      const more = prepare([...sqlSession('s-dup2')].slice(0, 2).concat(sqlSession('s-dup2').slice(0, 1)));
      expect(await store.appendBatch(more)).toEqual({ stored: 2, duplicates: 1, conflicts: [] });
      const forged = prepare([{ ...events[2]!.event, rule: 'forged/rule' } as RecordingEvent]);
      expect(await store.appendBatch(forged)).toEqual({
        stored: 0,
        duplicates: 0,
        conflicts: [{ sessionId: 's-dup', seq: 2 }],
      });
      const s = await store.getSession('s-dup');
      expect(s?.events).toBe(11);
      expect(s?.counts.statements).toBe(3);
      const [row] = await store.sessionEvents('s-dup', { afterSeq: 1, limit: 1 });
      expect(row?.canonical).toBe(events[2]!.canonical);
    });

    it('converges to the same summary whatever the arrival order, and search follows a late start', async () => {
      const a = new RecordingBuilder('s-a', { startMs: T0 - HOUR, identity: { user: 'dana', groups: ['g'] } })
        .add('session.start', { protocol: 'postgres', client: 'x' })
        .add('command', { text: 'late one', decision: 'allowed' }, { afterMs: 3 * HOUR })
        .add('session.end', { reason: 'done', statements: 1, durationMs: 1 }).events;
      const b = new RecordingBuilder('s-b', { startMs: T0, identity: { user: 'dana', groups: ['g'] } })
        .add('session.start', { protocol: 'postgres', client: 'x' })
        .add('session.end', { reason: 'done', statements: 0, durationMs: 1 }).events;
      await store.appendBatch(prepare([a[2]!, a[1]!]));
      await store.appendBatch(prepare(b));
      // Without its start, s-a looks newer than s-b.
      expect(await ids(store, { identity: 'dana' })).toEqual(['s-a', 's-b']);
      await store.appendBatch(prepare([a[0]!]));
      const s = await store.getSession('s-a');
      expect(s?.startTime).toBe(a[0]!.time);
      expect(s?.protocol).toBe('postgres');
      expect(s?.ended).toBe(true);
      expect(s?.events).toBe(3);
      for (const q of [{}, { identity: 'dana' }, { group: 'g' }] as const) {
        expect(await ids(store, q)).toEqual(['s-b', 's-a']);
        expect((await allPages(store, q, 1)).ids).toEqual(['s-b', 's-a']);
      }

      // The same events shuffled into one store in many orders give one summary.
      const events = sqlSession('s-order');
      await store.appendBatch(prepare([...events].reverse().slice(0, 5)));
      await store.appendBatch(prepare(events.filter((_, i) => i % 2 === 0)));
      await store.appendBatch(prepare(events));
      const other = await harness.open();
      try {
        await other.migrate();
        await other.appendBatch(prepare(events));
        expect(await store.getSession('s-order')).toEqual(await other.getSession('s-order'));
      } finally {
        await other.close();
      }
    });

    it('finds sessions by identity, group, connection, time, decision and statement text', async () => {
      const batch = [
        ...sqlSession('s1', {
          startMs: T0,
          identity: { serviceAccount: 'agents/a', user: 'alice', groups: ['ops'] },
        }),
        ...new RecordingBuilder('s2', {
          startMs: T0 + HOUR,
          connection: 'billing-db',
          identity: { serviceAccount: 'agents/b', groups: ['dev'] },
        })
          .add('session.start', { protocol: 'postgres', client: 'x' })
          .add('query', {
            text: 'SELECT * FROM invoices WHERE note LIKE \'100%_"x"\'',
            fingerprint: 'f',
            classes: ['read'],
            tables: ['invoices'],
            risks: [],
            decision: 'allowed',
          })
          .add('result', { rows: 3, bytes: 10, maskedValues: 0 }).events,
        ...sshSession('s3', {
          startMs: T0 + 2 * HOUR,
          identity: { serviceAccount: 'agents/c', user: 'carol', groups: ['ops', 'admins'] },
        }),
      ];
      await store.appendBatch(prepare(batch));
      expect(await ids(store, {})).toEqual(['s3', 's2', 's1']);
      expect(await ids(store, { identity: 'agents/a' })).toEqual(['s1']);
      expect(await ids(store, { identity: 'alice' })).toEqual(['s1']);
      expect(await ids(store, { identity: 'agents' })).toEqual([]);
      expect(await ids(store, { group: 'ops' })).toEqual(['s3', 's1']);
      expect(await ids(store, { group: 'ops', identity: 'carol' })).toEqual(['s3']);
      expect(await ids(store, { connection: 'billing-db' })).toEqual(['s2']);
      expect(await ids(store, { decision: 'denied' })).toEqual(['s1']);
      expect(await ids(store, { decision: 'approved' })).toEqual(['s1']);
      expect(await ids(store, { decision: 'masked' })).toEqual(['s1']);
      expect(await ids(store, { decision: 'allowed' })).toEqual(['s3', 's2', 's1']);
      expect(await ids(store, { text: 'delete FROM orders' })).toEqual(['s1']);
      expect(await ids(store, { text: 'ORDERS' })).toEqual(['s1']);
      expect(await ids(store, { text: 'shell' })).toEqual(['s3']);
      expect(await ids(store, { text: '\'100%_"x"\'' })).toEqual(['s2']);
      expect(await ids(store, { text: '100%x' })).toEqual([]);
      expect(await ids(store, { text: 'nowhere to be found' })).toEqual([]);
      expect(await ids(store, { from: new Date(T0 + 90 * 60_000) })).toEqual(['s3']);
      expect(await ids(store, { to: new Date(T0 + 30 * 60_000) })).toEqual(['s1']);
      expect(await ids(store, { from: new Date(T0 + 1_000), to: new Date(T0 + HOUR + 20) })).toEqual([
        's2',
        's1',
      ]);
      expect(await ids(store, { group: 'ops', decision: 'denied', text: 'drop table' })).toEqual(['s1']);
      expect(await ids(store, { connection: 'bastion', decision: 'denied' })).toEqual([]);
    });

    it('finds Kubernetes sessions by the verb, resource and namespace of their API requests', async () => {
      const kube = (id: string, startMs: number, requests: Array<[string, string, string | undefined]>) => {
        const b = new RecordingBuilder(id, {
          startMs,
          connection: 'cluster-api',
          identity: { serviceAccount: 'agents/deploy-bot', groups: [] },
        }).add('session.start', { protocol: 'kubernetes', client: '127.0.0.1:16443' });
        for (const [verb, resource, namespace] of requests)
          b.add('command', {
            text: `${verb} ${resource}${namespace ? ` in namespace "${namespace}"` : ''}`,
            decision: verb === 'delete' ? 'denied' : 'allowed',
            verb,
            apiGroup: '',
            resource,
            ...(namespace ? { namespace } : {}),
            status: verb === 'delete' ? 403 : 200,
            redactedValues: 0,
          });
        return b.events;
      };
      await store.appendBatch(
        prepare([
          ...kube('k1', T0, [
            ['list', 'pods', 'shop'],
            ['delete', 'pods', 'prod'],
          ]),
          ...kube('k2', T0 + HOUR, [
            ['get', 'secrets', 'shop'],
            ['list', 'namespaces', undefined],
          ]),
          ...sqlSession('s-sql', { startMs: T0 + 2 * HOUR }),
        ]),
      );
      expect(await ids(store, { verb: 'delete' })).toEqual(['k1']);
      expect(await ids(store, { verb: 'list' })).toEqual(['k2', 'k1']);
      expect(await ids(store, { resource: 'secrets' })).toEqual(['k2']);
      expect(await ids(store, { namespace: 'shop' })).toEqual(['k2', 'k1']);
      expect(await ids(store, { namespace: 'prod', verb: 'delete', resource: 'pods' })).toEqual(['k1']);
      // Each filter is "some request of the session", not "one request with all three".
      expect(await ids(store, { namespace: 'shop', verb: 'delete' })).toEqual(['k1']);
      expect(await ids(store, { verb: 'DELETE' })).toEqual([]);
      expect(await ids(store, { identity: 'agents/deploy-bot', resource: 'namespaces' })).toEqual(['k2']);
      expect(await ids(store, { text: 'delete pods' })).toEqual(['k1']);
    });

    it('pages through many sessions with a keyset cursor: every session once, newest first', async () => {
      const batch: RecordingEvent[] = [];
      const expected: Array<{ id: string; start: number; group: string }> = [];
      for (let i = 0; i < 150; i++) {
        // Groups of three share a start time: the session id breaks the tie.
        const start = T0 + Math.floor(i / 3) * 60_000;
        const id = `page-${String((i * 37) % 150).padStart(3, '0')}`;
        const group = i % 2 ? 'odd' : 'even';
        expected.push({ id, start, group });
        batch.push(
          ...new RecordingBuilder(id, {
            startMs: start,
            identity: { serviceAccount: 'agents/p', groups: [group] },
          })
            .add('session.start', { protocol: 'postgres', client: 'x' })
            .add('session.end', { reason: 'done', statements: 0, durationMs: 1 }).events,
        );
      }
      for (let i = 0; i < batch.length; i += 100) await store.appendBatch(prepare(batch.slice(i, i + 100)));
      expected.sort((x, y) => y.start - x.start || (x.id < y.id ? 1 : -1));
      const all = await allPages(store, {}, 20);
      expect(all.ids).toEqual(expected.map((e) => e.id));
      expect(all.pages).toBe(8);
      const odd = await allPages(store, { group: 'odd' }, 7);
      expect(odd.ids).toEqual(expected.filter((e) => e.group === 'odd').map((e) => e.id));
      expect(odd.ids).toHaveLength(75);
      const byIdentity = await allPages(store, { identity: 'agents/p' }, 50);
      expect(byIdentity.ids).toEqual(expected.map((e) => e.id));
      const exact = await store.searchSessions({ limit: 150 });
      expect(exact.nextCursor).toBeNull();
    });

    it('returns events in seq order, page by page', async () => {
      await store.appendBatch(prepare([...sqlSession('s-ev')].reverse()));
      const first = await store.sessionEvents('s-ev', { limit: 4 });
      const rest = await store.sessionEvents('s-ev', { afterSeq: first.at(-1)!.seq, limit: 100 });
      expect([...first, ...rest].map((r) => r.seq)).toEqual([...Array(11).keys()]);
      expect(await store.sessionEvents('missing', { limit: 10 })).toEqual([]);
    });

    it('finds approval events by time, newest first, and counts sessions per activity bucket', async () => {
      await store.appendBatch(
        prepare([
          ...sqlSession('a-1', { startMs: T0 }),
          ...sqlSession('a-2', { startMs: T0 + 2 * HOUR }),
          ...sqlSession('a-3', { startMs: T0 + DAY + 5 * HOUR }),
        ]),
      );
      const approvals = await store.approvalEvents({ since: new Date(T0 + HOUR), limit: 10 });
      const types = approvals.map(
        (r) => `${r.sessionId}:${(JSON.parse(r.canonical) as { type: string }).type}`,
      );
      expect(types).toEqual([
        'a-3:approval.decided',
        'a-3:approval.requested',
        'a-2:approval.decided',
        'a-2:approval.requested',
      ]);
      expect(await store.approvalEvents({ since: new Date(T0), limit: 1 })).toHaveLength(1);
      const day = Date.parse('2025-03-01T00:00:00Z');
      const buckets = await store.activity({
        from: new Date(day),
        to: new Date(day + 3 * DAY),
        bucketMs: DAY,
      });
      expect(buckets).toEqual([
        { startMs: day, sessions: 2, denied: 2, approved: 2 },
        { startMs: day + DAY, sessions: 1, denied: 1, approved: 1 },
      ]);
      const hourly = await store.activity({
        from: new Date(T0),
        to: new Date(T0 + 3 * HOUR),
        bucketMs: HOUR,
      });
      expect(hourly.map((b) => [b.startMs, b.sessions])).toEqual([
        [T0, 1],
        [T0 + 2 * HOUR, 1],
      ]);
    });

    it('replays: a transcript for SQL, asciicast for a terminal', async () => {
      await store.appendBatch(prepare([...sqlSession('s-sql'), ...sshSession('s-tty')]));
      const transcript = toSqlTranscript((await store.getSession('s-sql'))!, await eventsOf(store, 's-sql'));
      expect(transcript).toContain(
        'ALLOWED  SELECT id, email FROM orders WHERE id < 10 — rule orders/readers',
      );
      expect(transcript).toContain('→ SELECT 9 (9 rows, 420 bytes, 9 values masked)');
      expect(transcript).toContain('approval ar-1 APPROVED by bob@example.com: "ticket 42"');
      expect(transcript).toContain(
        'DENIED   DROP TABLE orders — rule orders/no-ddl; risks: drop; DDL is not allowed',
      );
      const cast = toAsciicast((await store.getSession('s-tty'))!, await eventsOf(store, 's-tty'))
        .trim()
        .split('\n');
      expect(JSON.parse(cast[0]!)).toMatchObject({ version: 2, width: 80, height: 24 });
      expect(cast.slice(1).map((l) => JSON.parse(l))).toEqual([
        [0.1, 'o', '$ '],
        [0.5, 'i', 'ls\r'],
        [0.6, 'o', 'ls\r\nREADME.md\r\n$ '],
        [1.2, 'o', 'exit\r\n'],
      ]);
    });

    it('accepts sequence gaps at ingest, reports them in verification until they are filled', async () => {
      const events = sqlSession('s-gap');
      await store.appendBatch(prepare(events.filter((e) => e.seq !== 4 && e.seq !== 5)));
      expect((await store.getSession('s-gap'))?.missingEvents).toBe(2);
      const v = await verifySession(store, 's-gap');
      expect(v.ok).toBe(false);
      expect(v.problems).toEqual([
        { kind: 'missing', fromSeq: 4, toSeq: 5, message: 'seq 4–5 are missing (2 events)' },
      ]);
      await store.appendBatch(prepare(events.filter((e) => e.seq === 4 || e.seq === 5)));
      expect((await verifySession(store, 's-gap')).ok).toBe(true);
      expect((await store.getSession('s-gap'))?.missingEvents).toBe(0);
    });

    it('verifies chains and names the session and the broken link of a tampered event', async () => {
      await store.appendBatch(
        prepare([...sqlSession('s-ok', { startMs: T0 }), ...sqlSession('s-bad', { startMs: T0 + HOUR })]),
      );
      expect(await verifySession(store, 's-ok')).toMatchObject({
        ok: true,
        events: 11,
        lastSeq: 10,
        ended: true,
        problems: [],
      });
      const range = await verifyRange(store, {});
      expect(range).toMatchObject({ ok: true, sessionsChecked: 2, eventsChecked: 22, broken: [] });

      const before = (await store.sessionEvents('s-bad', { afterSeq: 3, limit: 1 }))[0]!;
      await harness.tamper(store, 's-bad', 4, (text) =>
        text.replace('DELETE FROM orders WHERE id = 3', 'DELETE FROM orders'),
      );
      const v = await verifySession(store, 's-bad');
      expect(v.ok).toBe(false);
      const link = v.problems.find((p) => p.kind === 'broken-link');
      expect(link).toMatchObject({ kind: 'broken-link', seq: 5 });
      expect(link?.kind === 'broken-link' && link.actualPrevHash).toBe(before.hash);
      expect(link?.message).toMatch(/^link 4 → 5 is broken: seq 5 carries prevHash/);
      expect(v.problems.find((p) => p.kind === 'altered')).toMatchObject({ seq: 4 });

      const all = await verifyRange(store, { from: new Date(T0 - DAY), to: new Date(T0 + DAY) });
      expect(all.ok).toBe(false);
      expect(all.broken.map((b) => b.sessionId)).toEqual(['s-bad']);
      expect((await verifyRange(store, { to: new Date(T0 + 60_000) })).ok).toBe(true);

      // Editing the newest event has no successor to expose it; the ingest-time hash does.
      await harness.tamper(store, 's-ok', 10, (text) => text.replace('client closed', 'all fine'));
      const last = await verifySession(store, 's-ok');
      expect(last.problems).toEqual([
        expect.objectContaining({
          kind: 'altered',
          seq: 10,
          message: expect.stringMatching(/^seq 10: the stored text hashes to/),
        }),
      ]);
    });

    it('deletes whole sessions by age per connection, with their search rows', async () => {
      const now = new Date(T0 + 100 * DAY);
      const old = T0 + 60 * DAY; // 40 days before now
      const recent = T0 + 95 * DAY;
      await store.appendBatch(
        prepare([
          ...sqlSession('orders-old', { startMs: old, connection: 'orders-db' }),
          ...sqlSession('orders-new', { startMs: recent, connection: 'orders-db' }),
          ...sqlSession('billing-old', { startMs: old, connection: 'billing-db' }),
          ...sqlSession('ancient', { startMs: T0, connection: 'bastion' }),
        ]),
      );
      const textRows = await harness.textIndexRows(store);
      expect(await store.applyRetention({ perConnection: new Map([['orders-db', 30 * DAY]]) }, now)).toEqual({
        sessions: 1,
        events: 11,
      });
      expect(await ids(store, {})).toEqual(['orders-new', 'billing-old', 'ancient']);
      expect(await harness.textIndexRows(store)).toBeLessThan(textRows);
      expect(await store.sessionEvents('orders-old', { limit: 10 })).toEqual([]);
      expect(await ids(store, { text: 'drop table' })).toEqual(['orders-new', 'billing-old', 'ancient']);

      // '*' covers the connections without their own entry; orders-db keeps its 30 days.
      const r = await store.applyRetention(
        { perConnection: new Map([['orders-db', 30 * DAY]]), defaultMs: 90 * DAY },
        now,
      );
      expect(r).toEqual({ sessions: 1, events: 11 });
      expect(await ids(store, {})).toEqual(['orders-new', 'billing-old']);
      expect(
        await store.applyRetention(
          { perConnection: new Map([['orders-db', 1 * DAY]]), defaultMs: 30 * DAY },
          now,
        ),
      ).toEqual({ sessions: 2, events: 22 });
      expect(await ids(store, {})).toEqual([]);
      expect(await ids(store, { identity: 'agents/orders-agent' })).toEqual([]);
      expect(await harness.textIndexRows(store)).toBe(0);
      // A deleted session can be recorded again (e.g. a replayed spool) and is complete again.
      await store.appendBatch(prepare(sqlSession('orders-old', { startMs: old })));
      expect((await verifySession(store, 'orders-old')).ok).toBe(true);
    });
  });
}
