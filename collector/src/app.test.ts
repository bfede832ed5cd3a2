import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RecordingEvent } from '@chaperone/api';
import { startOidcIssuer, type TestOidcIssuer } from '@chaperone/testkit';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCollector, type Collector } from './app.js';
import { SqliteEventStore } from './store/sqlite-store.js';
import { prepare, sqlSession, sshSession } from './test-support/recordings.js';

const INGEST_TOKEN = 'ingest-token-0123456789abcdef';
const AUDITOR_TOKEN = 'auditor-token-0123456789abcdef';

let dir: string;
let collector: Collector;
let oidc: TestOidcIssuer;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'chaperone-collector-app-'));
  await writeFile(join(dir, 'ingest.token'), `${INGEST_TOKEN}\n`);
  await writeFile(join(dir, 'auditor.token'), AUDITOR_TOKEN);
  oidc = await startOidcIssuer({ clientId: 'chaperone-audit' });
  collector = await buildCollector({
    db: `sqlite:${join(dir, 'collector.db')}`,
    ingestTokenFile: join(dir, 'ingest.token'),
    auditorTokenFile: join(dir, 'auditor.token'),
    oidc: [{ issuer: oidc.issuer, audience: oidc.clientId }],
    auditorGroups: ['auditors', 'security'],
    maxBatchEvents: 50,
    maxBodyBytes: 64 * 1024,
  });
});
afterAll(async () => {
  await collector?.close();
  await oidc?.stop();
  await rm(dir, { recursive: true, force: true });
});

const ingest = (body: unknown, token: string | null = INGEST_TOKEN) =>
  collector.app.inject({
    method: 'POST',
    url: '/v1/events',
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), 'content-type': 'application/json' },
    payload: typeof body === 'string' ? body : JSON.stringify(body),
  });

const audit = (url: string, token: string | null = AUDITOR_TOKEN) =>
  collector.app.inject({ method: 'GET', url, headers: token ? { authorization: `Bearer ${token}` } : {} });

const metric = async (name: string) => {
  const text = (await collector.app.inject('/metrics')).body;
  const line = text.split('\n').find((l) => l.startsWith(name));
  return line ? Number(line.split(' ').at(-1)) : 0;
};

describe('ingest', () => {
  it('stores a batch, acknowledges retries as duplicates and counts both', async () => {
    const events = sqlSession('app-1');
    const first = await ingest({ events });
    expect(first.statusCode).toBe(200);
    expect(first.json()).toEqual({ stored: 11, duplicates: 0, conflicts: [] });
    const again = await ingest({ events: [...events].reverse() });
    expect(again.json()).toEqual({ stored: 0, duplicates: 11, conflicts: [] });
    expect(await metric('chaperone_collector_events_ingested_total')).toBeGreaterThanOrEqual(11);
    expect(await metric('chaperone_collector_events_duplicate_total')).toBeGreaterThanOrEqual(11);
    expect((await ingest({ events: [] })).json()).toEqual({ stored: 0, duplicates: 0, conflicts: [] });
  });

  it('refuses a batch with an invalid event as a whole, naming the event index and field', async () => {
    const events: unknown[] = sqlSession('app-bad');
    events[2] = { ...(events[2] as RecordingEvent), seq: -1 };
    events[4] = { ...(events[4] as RecordingEvent), data: { text: 1 } };
    const res = await ingest({ events });
    expect(res.statusCode).toBe(400);
    const body = res.json();
    expect(body.error).toBe('invalid_event');
    expect(body.message).toBe(
      'event 2 (session app-bad seq -1): seq: must be a non-negative integer, got -1 (and 1 more invalid events); nothing from this batch was stored',
    );
    expect(body.events[1]).toMatchObject({ index: 4, sessionId: 'app-bad', seq: 4 });
    expect(body.events[1].errors).toContain('data.text: must be a string, got 1');
    expect((await audit('/v1/sessions/app-bad')).statusCode).toBe(404);
    expect(await metric('chaperone_collector_batches_rejected_total{reason="invalid_event"}')).toBe(1);
  });

  it('refuses oversized batches, oversized bodies, bad JSON and unknown versions with 4xx, then keeps serving', async () => {
    const big = await ingest({ events: Array.from({ length: 51 }, () => sqlSession('x')[0]) });
    expect(big.statusCode).toBe(413);
    expect(big.json()).toEqual({
      error: 'batch_too_large',
      message: 'batch of 51 events exceeds the limit of 50; split it',
    });
    const huge = await ingest({ events: [{ ...sqlSession('x')[0]!, connection: 'c'.repeat(70_000) }] });
    expect(huge.statusCode).toBe(413);
    expect(huge.json()).toEqual({
      error: 'payload_too_large',
      message: 'request body exceeds the limit of 65536 bytes; send smaller batches',
    });
    const notJson = await ingest('{"events": [');
    expect(notJson.statusCode).toBe(400);
    expect(notJson.json().error).toBe('invalid_json');
    expect((await ingest({ evnts: [] })).json()).toEqual({
      error: 'invalid_batch',
      message: 'body must be a JSON object { "events": [ … ] }',
    });
    const v2 = await ingest({ events: [{ ...sqlSession('x')[0]!, v: 2 }] });
    expect(v2.statusCode).toBe(400);
    expect(v2.json().message).toContain('v: unsupported schema version 2 (this build knows version 1)');
    const text = await collector.app.inject({
      method: 'POST',
      url: '/v1/events',
      headers: { authorization: `Bearer ${INGEST_TOKEN}`, 'content-type': 'text/plain' },
      payload: 'hello',
    });
    expect(text.statusCode).toBe(415);
    expect((await audit('/v1/sessions/x')).statusCode).toBe(404);
    expect((await ingest({ events: sqlSession('app-after') })).json()).toMatchObject({ stored: 11 });
    expect(await metric('chaperone_collector_batches_rejected_total{reason="too_large"}')).toBe(1);
    expect(await metric('chaperone_collector_batches_rejected_total{reason="batch_too_large"}')).toBe(1);
  });

  it('accepts sequence gaps, which verification reports until they are filled', async () => {
    const events = sqlSession('app-gap');
    expect((await ingest({ events: events.filter((e) => e.seq < 3 || e.seq > 6) })).json()).toMatchObject({
      stored: 7,
    });
    const v = (await audit('/v1/verify?session=app-gap')).json();
    expect(v.ok).toBe(false);
    expect(v.broken[0].problems).toEqual([
      { kind: 'missing', fromSeq: 3, toSeq: 6, message: 'seq 3–6 are missing (4 events)' },
    ]);
    await ingest({ events: events.filter((e) => e.seq >= 3 && e.seq <= 6) });
    expect((await audit('/v1/verify?session=app-gap')).json().ok).toBe(true);
  });

  it('refuses missing and wrong tokens with 401 before reading the body', async () => {
    const none = await ingest({ events: [] }, null);
    expect(none.statusCode).toBe(401);
    expect(none.headers['www-authenticate']).toBe('Bearer realm="chaperone-collector"');
    expect(none.json().message).toBe('missing bearer token: send "Authorization: Bearer <sidecar token>"');
    const wrong = await ingest({ events: sqlSession('app-wrong') }, 'not-the-token');
    expect(wrong.statusCode).toBe(401);
    expect(wrong.json()).toEqual({ error: 'unauthorized', message: 'invalid ingest token' });
    expect((await ingest({ events: [] }, AUDITOR_TOKEN)).statusCode).toBe(401);
    // Even a body over the limit gets the 401, not a 413: authentication comes first.
    expect((await ingest({ events: [{ pad: 'x'.repeat(70_000) }] }, 'nope')).statusCode).toBe(401);
    expect((await audit('/v1/sessions/app-wrong')).statusCode).toBe(404);
  });
});

describe('auditor API', () => {
  beforeAll(async () => {
    const t = Date.parse('2025-04-01T08:00:00.000Z');
    const events: RecordingEvent[] = [];
    for (let i = 0; i < 12; i++) {
      events.push(
        ...sqlSession(`audit-${String(i).padStart(2, '0')}`, {
          startMs: t + i * 60_000,
          connection: i % 3 ? 'orders-db' : 'billing-db',
          identity: {
            serviceAccount: `agents/a${i % 2}`,
            user: i === 5 ? 'erin@example.com' : undefined,
            groups: ['ops'],
          },
          table: i === 7 ? 'secrets' : 'orders',
        }),
      );
    }
    events.push(...sshSession('audit-tty', { startMs: t + 3_600_000 }));
    for (let i = 0; i < events.length; i += 50) {
      expect((await ingest({ events: events.slice(i, i + 50) })).statusCode).toBe(200);
    }
  });

  it('searches with filters and pages with an opaque cursor', async () => {
    const ids = async (qs: string) => {
      const res = await audit(`/v1/sessions?${qs}`);
      expect(res.statusCode, res.body).toBe(200);
      return (res.json().sessions as Array<{ sessionId: string }>).map((s) => s.sessionId);
    };
    expect(await ids('identity=erin@example.com')).toEqual(['audit-05']);
    expect(
      await ids('identity=agents/a1&connection=billing-db&from=2025-04-01T08:00:00Z&to=2025-04-01T09:00:00Z'),
    ).toEqual(['audit-09', 'audit-03']);
    expect(await ids('text=FROM%20secrets')).toEqual(['audit-07']);
    expect(await ids('decision=denied&connection=orders-db&limit=2')).toEqual(['audit-11', 'audit-10']);
    expect(await ids('group=ops&from=2025-04-01T08:59:00Z')).toEqual([]);
    expect(await ids('identity=agents/orders-agent&from=2025-04-01T08:59:00Z')).toEqual(['audit-tty']);

    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res = await audit(
        `/v1/sessions?connection=orders-db&from=2025-04-01&limit=3${cursor ? `&cursor=${cursor}` : ''}`,
      );
      const page = res.json() as { sessions: Array<{ sessionId: string }>; nextCursor: string | null };
      seen.push(...page.sessions.map((s) => s.sessionId));
      cursor = page.nextCursor;
    } while (cursor);
    expect(seen).toEqual([
      'audit-11',
      'audit-10',
      'audit-08',
      'audit-07',
      'audit-05',
      'audit-04',
      'audit-02',
      'audit-01',
    ]);

    const first = (await audit('/v1/sessions?identity=erin@example.com')).json().sessions[0];
    expect(first).toMatchObject({
      connection: 'orders-db',
      identity: { serviceAccount: 'agents/a1', user: 'erin@example.com', groups: ['ops'], pod: null },
      counts: { statements: 3, allowed: 1, denied: 1, approved: 1, maskedValues: 9 },
      ended: true,
      missingEvents: 0,
    });
  });

  it('refuses bad search parameters with a clear 400', async () => {
    const bad = async (qs: string, message: RegExp) => {
      const res = await audit(`/v1/sessions?${qs}`);
      expect(res.statusCode, qs).toBe(400);
      expect(res.json().message).toMatch(message);
    };
    await bad('limit=0', /limit must be >= 1/);
    await bad('limit=501', /limit must be <= 500/);
    await bad('decision=maybe', /decision must be equal to one of the allowed values/);
    await bad('text=ab', /text must NOT have fewer than 3 characters/);
    await bad('from=yesterday', /^from: expected YYYY-MM-DD or an ISO 8601 date-time/);
    await bad('from=2025-05-01&to=2025-04-01', /^from must not be after to$/);
    await bad('cursor=abc', /^cursor: not a cursor returned by this API$/);
    await bad('colour=red', /must NOT have additional properties/);
  });

  it('returns a session with its events as stored, page by page', async () => {
    const res = await audit('/v1/sessions/audit-03');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    const body = res.json();
    expect(body.session.sessionId).toBe('audit-03');
    expect(body.events).toHaveLength(11);
    expect(body.events[2]).toMatchObject({ type: 'query', seq: 2, data: { decision: 'allowed' } });
    expect(body.nextAfterSeq).toBeNull();
    const page = (await audit('/v1/sessions/audit-03?limit=4&afterSeq=3')).json();
    expect(page.events.map((e: RecordingEvent) => e.seq)).toEqual([4, 5, 6, 7]);
    expect(page.nextAfterSeq).toBe(7);
    expect((await audit('/v1/sessions/nope')).json()).toEqual({
      error: 'not_found',
      message: 'no session nope',
    });
    expect((await audit('/v1/sessions/bad%20id')).statusCode).toBe(400);
  });

  it('exports replays: transcript for SQL, asciicast for terminals', async () => {
    const sql = await audit('/v1/sessions/audit-07/replay');
    expect(sql.statusCode).toBe(200);
    expect(sql.headers['content-type']).toBe('text/plain; charset=utf-8');
    expect(sql.body).toContain('ALLOWED  SELECT id, email FROM secrets WHERE id < 10 — rule orders/readers');
    expect(sql.body).toContain('approval ar-1 APPROVED by bob@example.com');
    const tty = await audit('/v1/sessions/audit-tty/replay');
    expect(tty.headers['content-type']).toBe('application/x-asciicast');
    expect(tty.headers['content-disposition']).toBe('inline; filename="audit-tty.cast"');
    expect(JSON.parse(tty.body.split('\n')[0]!).version).toBe(2);
    const forced = await audit('/v1/sessions/audit-tty/replay?format=transcript');
    expect(forced.body).toContain('terminal output: 22 bytes (replay as asciicast)');
  });

  it('verifies one session or a time range, and names a tampered link', async () => {
    expect((await audit('/v1/verify?session=audit-01')).json()).toEqual({
      ok: true,
      from: null,
      to: null,
      sessionsChecked: 1,
      eventsChecked: 11,
      broken: [],
    });
    const range = (await audit('/v1/verify?from=2025-04-01T08:00:00Z&to=2025-04-01T08:30:00Z')).json();
    expect(range).toMatchObject({ ok: true, sessionsChecked: 12, eventsChecked: 132 });

    const db = new Database(join(dir, 'collector.db'));
    db.prepare(
      "UPDATE events SET canonical = replace(canonical, 'ticket 42', 'no ticket') WHERE session_id = 'audit-02' AND seq = 6",
    ).run();
    db.close();
    const broken = (await audit('/v1/verify?from=2025-04-01')).json();
    expect(broken.ok).toBe(false);
    expect(broken.broken).toHaveLength(1);
    expect(broken.broken[0].sessionId).toBe('audit-02');
    expect(broken.broken[0].problems.map((p: { message: string }) => p.message)).toEqual([
      expect.stringMatching(/^seq 6: the stored text hashes to/),
      expect.stringMatching(/^link 6 → 7 is broken: seq 7 carries prevHash/),
    ]);
    expect((await audit('/v1/verify')).statusCode).toBe(400);
    expect((await audit('/v1/verify?session=nope')).statusCode).toBe(404);
  });

  it('needs an auditor: dev token, or an OIDC ID token with an auditor group', async () => {
    const member = await oidc.mint({ subject: 'u1', email: 'ann@example.com', groups: ['dev', 'security'] });
    expect((await audit('/v1/sessions?limit=1', member)).statusCode).toBe(200);

    const outsider = await oidc.mint({ subject: 'u2', email: 'bo@example.com', groups: ['dev'] });
    const forbidden = await audit('/v1/sessions', outsider);
    expect(forbidden.statusCode).toBe(403);
    expect(forbidden.json()).toEqual({
      error: 'forbidden',
      message:
        'bo@example.com is not an auditor: membership in one of the groups auditors, security is required',
    });

    const expired = await oidc.mint({ subject: 'u1', groups: ['auditors'], expiresIn: -120 });
    expect((await audit('/v1/sessions', expired)).json()).toEqual({
      error: 'unauthorized',
      message: 'invalid ID token: token expired',
    });
    const otherAudience = await oidc.mint({ subject: 'u1', groups: ['auditors'], audience: 'someone-else' });
    expect((await audit('/v1/sessions', otherAudience)).json().message).toBe(
      'invalid ID token: claim aud is not acceptable: check_failed',
    );
    expect((await audit('/v1/sessions', INGEST_TOKEN)).json()).toEqual({
      error: 'unauthorized',
      message: 'invalid ID token: not a JWT',
    });
    expect((await audit('/v1/verify?session=audit-01', null)).statusCode).toBe(401);
    expect(await metric('chaperone_collector_auth_failures_total{api="auditor",reason="not_auditor"}')).toBe(
      1,
    );
  });
});

describe('service', () => {
  it('serves health, readiness, metrics and the OpenAPI document', async () => {
    expect((await collector.app.inject('/healthz')).json()).toEqual({ status: 'ok' });
    expect((await collector.app.inject('/readyz')).json()).toEqual({ status: 'ready', store: 'sqlite' });
    const metrics = (await collector.app.inject('/metrics')).body;
    for (const name of [
      'chaperone_collector_events_ingested_total',
      'chaperone_collector_events_rejected_total',
      'chaperone_collector_ingest_batch_duration_seconds_bucket',
      'chaperone_collector_process_cpu_seconds_total',
    ]) {
      expect(metrics).toContain(name);
    }
    const doc = (await collector.app.inject('/openapi.json')).json();
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths).sort()).toEqual([
      '/healthz',
      '/metrics',
      '/readyz',
      '/v1/events',
      '/v1/sessions',
      '/v1/sessions/{id}',
      '/v1/sessions/{id}/replay',
      '/v1/verify',
    ]);
    expect(Object.keys(doc.components.securitySchemes)).toEqual(['sidecarToken', 'auditorToken']);
    expect(doc.paths['/v1/sessions'].get.parameters.map((p: { name: string }) => p.name)).toContain(
      'decision',
    );
  });

  it('applies retention at start and on demand, per connection, and counts what it deleted', async () => {
    const d = await mkdtemp(join(tmpdir(), 'chaperone-collector-retention-'));
    const path = join(d, 'c.db');
    await writeFile(join(d, 'token'), INGEST_TOKEN);
    const seed = new SqliteEventStore({ path });
    await seed.migrate();
    const old = Date.now() - 40 * 86_400_000;
    await seed.appendBatch(
      prepare([
        ...sqlSession('old-orders', { startMs: old }),
        ...sqlSession('old-billing', { startMs: old, connection: 'billing-db' }),
      ]),
    );
    await seed.close();
    const c = await buildCollector({
      db: `sqlite:${path}`,
      ingestTokenFile: join(d, 'token'),
      retention: { perConnection: new Map([['orders-db', 30 * 86_400_000]]), defaultMs: 365 * 86_400_000 },
      retentionIntervalMs: 3_600_000,
    });
    try {
      // The first run starts right after start-up. Wait for it to finish (its counter), not just for
      // the session to vanish: a run deletes in rounds, and a call made while it is still running
      // joins it and would also report what it deletes next.
      const firstRunDone = async () =>
        (await c.app.inject('/metrics')).body.includes(
          'chaperone_collector_retention_deleted_sessions_total 1',
        );
      for (let i = 0; i < 500 && !(await firstRunDone()); i++) await new Promise((r) => setTimeout(r, 20));
      expect(await c.store.getSession('old-orders')).toBeUndefined();
      expect(await c.store.getSession('old-billing')).toBeDefined();
      await c.store.appendBatch(prepare(sqlSession('old-orders-2', { startMs: old })));
      expect(await c.runRetention()).toEqual({ sessions: 1, events: 11 });
      const metrics = (await c.app.inject('/metrics')).body;
      expect(metrics).toContain('chaperone_collector_retention_deleted_sessions_total 2');
    } finally {
      await c.close();
      await rm(d, { recursive: true, force: true });
    }
  });

  it('finishes an in-flight batch on close, then closes the database', async () => {
    const d = await mkdtemp(join(tmpdir(), 'chaperone-collector-close-'));
    const path = join(d, 'c.db');
    await writeFile(join(d, 'token'), INGEST_TOKEN);
    const c = await buildCollector({ db: `sqlite:${path}`, ingestTokenFile: join(d, 'token') });
    await c.app.listen({ host: '127.0.0.1', port: 0 });
    const port = (c.app.server.address() as { port: number }).port;
    const body = Buffer.from(JSON.stringify({ events: sqlSession('in-flight') }));
    const response = new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port,
          method: 'POST',
          path: '/v1/events',
          headers: {
            authorization: `Bearer ${INGEST_TOKEN}`,
            'content-type': 'application/json',
            'content-length': body.length,
          },
        },
        (res) => {
          let text = '';
          res.on('data', (chunk) => {
            text += chunk;
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        },
      );
      req.on('error', reject);
      // Half the body now, the rest after close() has begun.
      req.write(body.subarray(0, 100));
      setTimeout(() => {
        closed = c.close();
        setTimeout(() => req.end(body.subarray(100)), 100);
      }, 100);
    });
    let closed: Promise<void> | undefined;
    const res = await response;
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual({ stored: 11, duplicates: 0, conflicts: [] });
    await closed;
    const reopened = new SqliteEventStore({ path });
    expect((await reopened.getSession('in-flight'))?.events).toBe(11);
    await reopened.close();
    await rm(d, { recursive: true, force: true });
  });
});
