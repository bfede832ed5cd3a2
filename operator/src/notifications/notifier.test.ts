// The notifier against a real HTTP receiver on 127.0.0.1: retries, once-only delivery, the
// follow-up after the request, and no secret in anything it reports.
import type { AccessPolicy, AccessRequest, NotificationDelivery } from '@chaperone/api';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import type { EventSpec } from '../controller/events.js';
import { backoffDelay, deliver } from './delivery.js';
import { sampleRequest } from './fixtures.test-support.js';
import { type LocalReceiver, startLocalReceiver } from './local-receiver.test-support.js';
import { parseNotificationConfig } from './notification-config.js';
import { Notifier } from './notifier.js';
import { slackViolations, teamsViolations, webhookViolations } from './payload-contracts.test-support.js';

const receivers: LocalReceiver[] = [];
afterEach(async () => {
  await Promise.all(receivers.splice(0).map((r) => r.close()));
});
async function receiver(opts?: Parameters<typeof startLocalReceiver>[0]) {
  const r = await startLocalReceiver(opts);
  receivers.push(r);
  return r;
}

const FAST = { attempts: 4, baseDelayMs: 5, maxDelayMs: 20, timeoutMs: 2_000 };
const KEY = 'hmac-key-value-never-shown';
const policy = {
  spec: { approval: { notify: [{ target: 'dba-slack' }, { target: 'ops-teams' }, { target: 'nope' }] } },
} as AccessPolicy;

async function setup(urls: { slack: string; teams: string; hook: string }) {
  const writes: NotificationDelivery[][] = [];
  const events: EventSpec[] = [];
  const logs: string[] = [];
  const registry = new Registry();
  const secrets: Record<string, Record<string, string>> = {
    slack: { url: `${urls.slack}/services/T000/B000/secret-slack-token` },
    teams: { url: `${urls.teams}/workflows/secret-teams-sig` },
    hook: { url: `${urls.hook}/hook`, signingKey: KEY },
  };
  const notifier = new Notifier({
    config: parseNotificationConfig({
      allowHttp: true,
      collectorUrl: 'https://audit.example.com',
      retry: FAST,
      targets: [
        { name: 'audit', type: 'webhook', secretName: 'hook', allPolicies: true },
        { name: 'dba-slack', type: 'slack', secretName: 'slack' },
        { name: 'ops-teams', type: 'teams', secretName: 'teams' },
      ],
    }),
    registry,
    readSecret: async (name) => secrets[name],
    writeDeliveries: async (_req, records) => {
      writes.push(records);
    },
    recordEvent: (_req, ev) => events.push(ev),
    log: (level, message, fields) => logs.push(`${level} ${message} ${JSON.stringify(fields)}`),
  });
  return { notifier, writes, events, logs, registry, secrets };
}

const until = async (what: string, ok: () => boolean, ms = 5_000) => {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe('Notifier', () => {
  it('one message per target, each in its documented shape; a flaky target gets it once; the follow-up after', async () => {
    const [slack, teams, hook] = await Promise.all([receiver({ failFirst: 2 }), receiver(), receiver()]);
    const { notifier, writes, events, logs, registry, secrets } = await setup({
      slack: slack.url,
      teams: teams.url,
      hook: hook.url,
    });
    const req = sampleRequest();
    notifier.sync(req, policy);
    notifier.sync(req, policy); // the same state seen twice: nothing more
    await until('three deliveries and one unknown target', () => (writes.at(-1)?.length ?? 0) === 4);
    expect(slack.received.map((r) => r.status)).toEqual([503, 503, 200]);
    expect(slack.accepted()).toHaveLength(1);
    expect(teams.accepted()).toHaveLength(1);
    expect(hook.accepted()).toHaveLength(1);
    expect(slackViolations(JSON.parse(slack.accepted()[0]?.body ?? ''))).toEqual([]);
    expect(teamsViolations(JSON.parse(teams.accepted()[0]?.body ?? ''))).toEqual([]);
    const h = hook.accepted()[0];
    expect(webhookViolations(h?.body ?? '', h?.headers ?? {}, KEY)).toEqual([]);
    expect(h?.headers['idempotency-key']).toBe('0b5c-uid/requested');
    const last = writes.at(-1) ?? [];
    expect(last.find((d) => d.target === 'dba-slack')).toMatchObject({ state: 'Delivered', attempts: 3 });
    expect(last.find((d) => d.target === 'nope')).toMatchObject({ state: 'Failed', attempts: 0 });
    expect(events.filter((e) => e.reason === 'Notified')).toHaveLength(3);
    expect(events.find((e) => e.reason === 'NotificationFailed')?.message).toContain('no target named nope');

    // A restart: what status records is not sent again.
    const stored: AccessRequest = { ...req, status: { ...req.status, notifications: last } };
    notifier.sync(stored, policy);
    // Decided: the follow-up goes to every target.
    const decided: AccessRequest = {
      ...stored,
      status: {
        ...stored.status,
        phase: 'Approved',
        decision: { verdict: 'Approved', by: 'alice', comment: 'ok' },
      },
    };
    notifier.sync(decided, policy);
    await until(
      'the follow-ups',
      () => hook.accepted().length === 2 && teams.accepted().length === 2 && slack.accepted().length === 2,
    );
    expect(hook.accepted()[1]?.headers['idempotency-key']).toBe('0b5c-uid/decided');
    expect(JSON.parse(slack.accepted()[1]?.body ?? '').text).toContain('Approved by alice');
    await until('the follow-ups recorded', () => writes.at(-1)?.length === 8);
    await notifier.close();
    // Each target got exactly one of each.
    expect([slack, teams, hook].map((r) => r.accepted().length)).toEqual([2, 2, 2]);

    const metrics = await registry.metrics();
    expect(metrics).toMatch(
      /chaperone_notification_deliveries_total\{target="dba-slack",type="slack",event="requested",result="delivered"\} 1/,
    );
    expect(metrics).toMatch(
      /chaperone_notification_attempts_total\{target="dba-slack",type="slack",result="retry"\} 2/,
    );
    // Nothing the notifier reported carries a URL or the key.
    const reported = JSON.stringify({ writes, events, logs });
    for (const secret of [KEY, ...Object.values(secrets).map((s) => s.url as string), 'secret-slack-token'])
      expect(reported).not.toContain(secret);
  });

  it('a target that keeps failing: Failed after the bounded retries, with an Event, and the request is untouched', async () => {
    const down = await receiver({ failFirst: 100 });
    const { notifier, writes, events } = await setup({ slack: down.url, teams: down.url, hook: down.url });
    notifier.sync(sampleRequest(), { spec: {} } as AccessPolicy);
    await until('the webhook given up', () => writes.length === 1);
    expect(down.received).toHaveLength(4);
    expect(writes[0]).toEqual([
      expect.objectContaining({
        target: 'audit',
        state: 'Failed',
        attempts: 4,
        message: 'HTTP 503 after 4 attempts',
      }),
    ]);
    expect(events).toEqual([expect.objectContaining({ type: 'Warning', reason: 'NotificationFailed' })]);
    await notifier.close();
  });

  it('a 4xx answer is final, a refused connection is a network error, and close() stops the retries', async () => {
    const bad = await receiver({ okStatus: 400 });
    const once = await deliver(
      { url: bad.url, body: '{}', idempotencyKey: 'k', event: 'requested' },
      { retry: FAST },
    );
    expect(once).toEqual({ ok: false, attempts: 1, message: 'HTTP 400 (not retried)' });
    await bad.close();
    const refused = await deliver(
      { url: bad.url, body: '{}', idempotencyKey: 'k', event: 'requested' },
      { retry: { ...FAST, attempts: 2 } },
    );
    expect(refused.message).toBe('network error ECONNREFUSED after 2 attempts');
    const ac = new AbortController();
    const slow = deliver(
      { url: bad.url, body: '{}', idempotencyKey: 'k', event: 'requested' },
      { retry: { ...FAST, baseDelayMs: 60_000, maxDelayMs: 60_000 }, signal: ac.signal, random: () => 1 },
    );
    setTimeout(() => ac.abort(), 50);
    expect(await slow).toMatchObject({ ok: false, message: 'stopped' });
  });

  it('backoff grows exponentially up to the cap, with full jitter', () => {
    const r = { attempts: 10, baseDelayMs: 1_000, maxDelayMs: 30_000, timeoutMs: 1 };
    expect([0, 1, 2, 3, 4, 5, 6].map((a) => backoffDelay(a, r, () => 0.999_999))).toEqual([
      999, 1_999, 3_999, 7_999, 15_999, 29_999, 29_999,
    ]);
    expect(backoffDelay(3, r, () => 0)).toBe(0);
  });
});
