import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ControlPlane, startControlPlane } from '@chaperone/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCollector, type Collector } from '../app.js';
import { sqlSession } from '../test-support/recordings.js';

// Sidecar authentication in a cluster: projected ServiceAccount tokens for the audience
// chaperone-collector, checked with TokenReview against a real kube-apiserver.
let cp: ControlPlane;
let dir: string;
let collector: Collector;
const opened: Collector[] = [];

async function token(sa: string, audience = 'chaperone-collector'): Promise<string> {
  const r = await cp.kubectl([
    'create',
    'token',
    sa,
    '-n',
    'agents',
    `--audience=${audience}`,
    '--duration=10m',
  ]);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout.trim();
}

async function collectorAs(user: string, cacheTtlMs = 30_000): Promise<Collector> {
  const identity = await cp.createUser(user);
  const c = await buildCollector({
    db: `sqlite:${join(dir, `${user}.db`)}`,
    tokenReview: { kubeConfig: identity.kubeConfig(), cacheTtlMs },
  });
  opened.push(c);
  return c;
}

const ship = (c: Collector, bearer: string, events: unknown[]) =>
  c.app.inject({
    method: 'POST',
    url: '/v1/events',
    headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' },
    payload: { events },
  });

const asSa = (sa: string, id: string) =>
  sqlSession(id, { identity: { serviceAccount: `agents/${sa}`, pod: `${sa}-0`, groups: [] } });

beforeAll(async () => {
  cp = await startControlPlane({ installCrds: false });
  dir = await mkdtemp(join(tmpdir(), 'chaperone-collector-tr-'));
  for (const args of [
    ['create', 'namespace', 'agents'],
    ['create', 'serviceaccount', 'orders-agent', '-n', 'agents'],
    ['create', 'serviceaccount', 'billing-agent', '-n', 'agents'],
    // What the Helm chart grants the collector: create TokenReviews, nothing else.
    [
      'create',
      'clusterrolebinding',
      'collector-auth',
      '--clusterrole=system:auth-delegator',
      '--user=chaperone-collector',
    ],
  ]) {
    const r = await cp.kubectl(args);
    expect(r.code, r.stderr).toBe(0);
  }
  collector = await collectorAs('chaperone-collector');
});
afterAll(async () => {
  for (const c of opened) await c.close();
  await cp?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('TokenReview ingest authentication', () => {
  it('accepts a projected ServiceAccount token for audience chaperone-collector', async () => {
    const res = await ship(collector, await token('orders-agent'), asSa('orders-agent', 'tr-1'));
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toEqual({ stored: 11, duplicates: 0, conflicts: [] });
  });

  it("refuses events that claim another ServiceAccount than the token's, storing none of the batch", async () => {
    const events = [...asSa('orders-agent', 'tr-2'), ...asSa('billing-agent', 'tr-3')];
    const res = await ship(collector, await token('orders-agent'), events);
    expect(res.statusCode).toBe(403);
    expect(res.json().message).toBe(
      'event 11 (session tr-3 seq 0): identity.serviceAccount is agents/billing-agent, but the token belongs to ServiceAccount agents/orders-agent; nothing from this batch was stored',
    );
    const stored = await collector.store.getSession('tr-2');
    expect(stored).toBeUndefined();
  });

  it('refuses tokens for another audience, forged tokens and garbage with 401', async () => {
    const brokerToken = await token('orders-agent', 'chaperone');
    const wrongAudience = await ship(collector, brokerToken, asSa('orders-agent', 'tr-4'));
    expect(wrongAudience.statusCode).toBe(401);
    expect(wrongAudience.json().message).toMatch(
      /^ServiceAccount token rejected by the Kubernetes API server.*\(tokens must be valid for audience chaperone-collector\)$/,
    );
    const good = await token('billing-agent');
    const [h, p, s] = good.split('.');
    const claims = JSON.parse(Buffer.from(p!, 'base64url').toString());
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...claims, sub: 'system:serviceaccount:agents:orders-agent' })).toString('base64url')}.${s}`;
    expect((await ship(collector, forged, asSa('orders-agent', 'tr-5'))).statusCode).toBe(401);
    expect((await ship(collector, 'not-a-token', asSa('orders-agent', 'tr-6'))).statusCode).toBe(401);
    expect(await collector.store.getSession('tr-4')).toBeUndefined();
  });

  it('refuses the token of a deleted ServiceAccount', async () => {
    expect((await cp.kubectl(['create', 'serviceaccount', 'temp-agent', '-n', 'agents'])).code).toBe(0);
    const t = await token('temp-agent');
    expect((await cp.kubectl(['delete', 'serviceaccount', 'temp-agent', '-n', 'agents'])).code).toBe(0);
    const res = await ship(collector, t, asSa('temp-agent', 'tr-7'));
    expect(res.statusCode).toBe(401);
    expect(res.json().error).toBe('unauthorized');
  });

  it('reuses a positive review for a short while, then asks the API server again', async () => {
    const c = await collectorAs('chaperone-collector-2', 1_500);
    const bind = ['create', 'clusterrolebinding', 'collector-auth-2', '--clusterrole=system:auth-delegator'];
    expect((await cp.kubectl([...bind, '--user=chaperone-collector-2'])).code).toBe(0);
    const reviews = async () => {
      const text = (await c.app.inject('/metrics')).body;
      const line = text
        .split('\n')
        .find((l) => l.startsWith('chaperone_collector_token_reviews_total{result="authenticated"}'));
      return Number(line?.split(' ').at(-1) ?? 0);
    };
    const t = await token('orders-agent');
    for (const id of ['tr-8', 'tr-9', 'tr-10'])
      expect((await ship(c, t, asSa('orders-agent', id))).statusCode).toBe(200);
    expect(await reviews()).toBe(1);
    await new Promise((r) => setTimeout(r, 1_600));
    expect((await ship(c, t, asSa('orders-agent', 'tr-11'))).statusCode).toBe(200);
    expect(await reviews()).toBe(2);
  });

  it('answers 503, not 401, when the collector may not create TokenReviews', async () => {
    const c = await collectorAs('no-rbac-collector');
    const res = await ship(c, await token('orders-agent'), asSa('orders-agent', 'tr-12'));
    expect(res.statusCode).toBe(503);
    expect(res.json().error).toBe('auth_unavailable');
    expect(res.json().message).toMatch(
      /^cannot check the token: TokenReview against the Kubernetes API server failed/,
    );
  });
});
