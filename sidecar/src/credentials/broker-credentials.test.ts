import type { BrokerCredential, BrokerCredentialRequest } from '@chaperone/api';
import { describe, expect, it } from 'vitest';
import type { BrokerClient } from '../broker/broker-client.js';
import { BrokerCredentialSource } from './broker-credentials.js';

const PG = { type: 'postgres' } as const;

// A broker that mints numbered roles valid for 15 minutes from "now".
function fakeBroker(now: () => number) {
  let issued = 0;
  const calls: BrokerCredentialRequest[] = [];
  const client = {
    async credential(req: BrokerCredentialRequest): Promise<BrokerCredential> {
      calls.push(req);
      issued += 1;
      const n = issued;
      await new Promise((r) => setTimeout(r, 5));
      return {
        type: 'postgres',
        username: `chaperone_${n}`,
        password: 'p',
        expiresAt: new Date(now() + 15 * 60_000).toISOString(),
        description: `jit role chaperone_${n}`,
      };
    },
  };
  return { client: client as unknown as BrokerClient, calls };
}

describe('BrokerCredentialSource', () => {
  it('reuses a role only during the first third of its lifetime', async () => {
    let t = Date.parse('2030-01-01T00:00:00Z');
    const { client } = fakeBroker(() => t);
    const source = new BrokerCredentialSource(client, () => t);
    const first = await source.credentialFor('orders-db', PG);
    t += 4 * 60_000; // 11 of 15 minutes left
    expect((await source.credentialFor('orders-db', PG)).username).toBe(first.username);
    t += 2 * 60_000; // 9 of 15 left: less than two thirds
    expect((await source.credentialFor('orders-db', PG)).username).not.toBe(first.username);
  });

  it('shares one issuance between sessions that start together, per connection', async () => {
    const t = Date.now();
    const { client, calls } = fakeBroker(() => t);
    const source = new BrokerCredentialSource(client, () => t);
    const got = await Promise.all([
      source.credentialFor('orders-db', PG),
      source.credentialFor('orders-db', PG),
      source.credentialFor('billing-db', PG),
    ]);
    expect(got[0]?.username).toBe(got[1]?.username);
    expect(got[2]?.username).not.toBe(got[0]?.username);
    expect(calls.map((c) => c.connection).sort()).toEqual(['billing-db', 'orders-db']);
  });

  it('tries again after a failed issuance', async () => {
    const t = Date.now();
    let fail = true;
    const client = {
      async credential(): Promise<BrokerCredential> {
        if (fail) throw new Error('broker down');
        return {
          type: 'postgres',
          username: 'u',
          password: 'p',
          expiresAt: new Date(t + 60_000).toISOString(),
          description: 'd',
        };
      },
    } as unknown as BrokerClient;
    const source = new BrokerCredentialSource(client, () => t);
    await expect(source.credentialFor('orders-db', PG)).rejects.toThrow(/broker down/);
    fail = false;
    expect((await source.credentialFor('orders-db', PG)).username).toBe('u');
  });
});
