import { type ControlPlane, startControlPlane } from '@chaperone/testkit';
import { CoordinationV1Api, CoreV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LeaderElector, type LeaderElectorOptions } from './leader-election.js';

const LEASE_MS = 3_000;
const RENEW_DEADLINE_MS = 2_000;
const RETRY_MS = 300;

async function waitFor(what: string, cond: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('LeaderElector against a real API server', () => {
  let cp: ControlPlane;
  const namespace = 'chaperone-system';

  beforeAll(async () => {
    cp = await startControlPlane({ installCrds: false });
    await cp.admin
      .kubeConfig()
      .makeApiClient(CoreV1Api)
      .createNamespace({ body: { metadata: { name: namespace } } });
  });
  afterAll(async () => {
    await cp?.stop();
  });

  function elector(identity: string, leaseName: string, log: string[]) {
    const opts: LeaderElectorOptions = {
      kubeConfig: cp.admin.kubeConfig(),
      namespace,
      leaseName,
      identity,
      leaseDurationMs: LEASE_MS,
      renewDeadlineMs: RENEW_DEADLINE_MS,
      retryPeriodMs: RETRY_MS,
      onStartedLeading: () => {
        log.push(`${identity}:started`);
      },
      onStoppedLeading: () => {
        log.push(`${identity}:stopped`);
      },
    };
    return new LeaderElector(opts);
  }

  /** Samples both electors every few ms for the whole test; records any instant with two leaders. */
  function sampler(electors: LeaderElector[]) {
    let both = 0;
    const timer = setInterval(() => {
      if (electors.filter((e) => e.isLeader).length > 1) both++;
    }, 5);
    return {
      stop: () => {
        clearInterval(timer);
        return both;
      },
    };
  }

  it('exactly one of two leads; after the leader dies the other takes over once the lease runs out', async () => {
    const log: string[] = [];
    const a = elector('replica-a', 'crash-test', log);
    const b = elector('replica-b', 'crash-test', log);
    const s = sampler([a, b]);
    a.start();
    b.start();
    await waitFor('a leader', () => a.isLeader || b.isLeader, 10_000);
    // Let several renew periods pass: leadership must stay put and stay single.
    await new Promise((r) => setTimeout(r, RETRY_MS * 6));
    const [leader, follower] = a.isLeader ? [a, b] : [b, a];
    expect(leader.isLeader).toBe(true);
    expect(follower.isLeader).toBe(false);
    expect(follower.observedLeader).toBe(leader.identity);

    // A crash: the leader stops renewing and does not release the Lease.
    await leader.stop({ releaseLease: false });
    await waitFor('the follower to lead', () => follower.isLeader, LEASE_MS + RETRY_MS * 4 + 2_000);
    await follower.stop();
    expect(s.stop()).toBe(0);
    expect(log).toEqual([
      `${leader.identity}:started`,
      `${leader.identity}:stopped`,
      `${follower.identity}:started`,
      `${follower.identity}:stopped`,
    ]);

    const lease = await cp.admin
      .kubeConfig()
      .makeApiClient(CoordinationV1Api)
      .readNamespacedLease({ name: 'crash-test', namespace });
    expect(lease.spec?.leaseTransitions).toBe(1);
    // Released on the graceful stop.
    expect(lease.spec?.holderIdentity ?? '').toBe('');
  });

  it('a graceful stop releases the Lease and the other replica takes over without waiting for it to expire', async () => {
    const log: string[] = [];
    const a = elector('replica-a', 'release-test', log);
    a.start();
    await waitFor('a to lead', () => a.isLeader, 10_000);
    const b = elector('replica-b', 'release-test', log);
    const s = sampler([a, b]);
    b.start();
    await new Promise((r) => setTimeout(r, RETRY_MS * 3));
    expect(b.isLeader).toBe(false);

    let bLeadsAt = 0;
    const watch = setInterval(() => {
      if (!bLeadsAt && b.isLeader) bLeadsAt = Date.now();
    }, 5);
    const stoppedAt = Date.now();
    await a.stop();
    await waitFor('b to lead', () => b.isLeader, LEASE_MS * 3);
    clearInterval(watch);
    // Taking over a released Lease needs one retry period, not the lease duration.
    expect(bLeadsAt - stoppedAt).toBeLessThan(LEASE_MS);
    await b.stop();
    expect(s.stop()).toBe(0);
  });

  it('a leader that cannot reach the API server steps down by the renew deadline', async () => {
    const log: string[] = [];
    const a = elector('replica-a', 'partition-test', log);
    a.start();
    await waitFor('a to lead', () => a.isLeader, 10_000);
    // Cut a off: point its client at a closed port by swapping the cluster server.
    const api = (a as unknown as { api: CoordinationV1Api }).api;
    const broken = cp.admin.kubeConfig();
    const cluster = broken.getCurrentCluster()!;
    broken.clusters = [{ ...cluster, server: 'https://127.0.0.1:1' }];
    (a as unknown as { api: CoordinationV1Api }).api = broken.makeApiClient(CoordinationV1Api);
    await waitFor(
      'a to step down',
      () => !a.isLeader && log.includes('replica-a:stopped'),
      RENEW_DEADLINE_MS * 3,
    );
    (a as unknown as { api: CoordinationV1Api }).api = api;
    await a.stop();
  });
});
