import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, startPostgres, type TestPostgres } from '@chaperone/testkit';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningStandaloneSidecar, runStandalone } from '../modes/standalone.js';
import { configYaml, seedOrders } from '../test-support/orders-fixture.js';

// The collector is unreachable (nothing listens on its port) and the spool is tiny: running
// sessions continue, new ones are refused with a clear error, memory does not grow.
let db: TestPostgres;
let sidecar: RunningStandaloneSidecar;
let port: number;

beforeAll(async () => {
  db = await startPostgres();
  await seedOrders(db);
  const dir = await mkdtemp(join(tmpdir(), 'chaperone-spoolfull-'));
  await writeFile(join(dir, 'orders.yaml'), configYaml(db));
  await writeFile(join(dir, 'token'), 'unused');
  sidecar = await runStandalone({
    configDir: dir,
    serviceAccount: { namespace: 'agents', name: 'orders-agent' },
    recordingsDir: join(dir, 'rec'),
    collector: {
      url: `http://127.0.0.1:${await freePort()}`,
      tokenFile: join(dir, 'token'),
      spoolDir: join(dir, 'spool'),
      spoolMaxBytes: 8 * 1024,
    },
    adminPort: 0,
    listenPorts: { 'orders-db': await freePort() },
    log: () => {},
  });
  port = sidecar.gateways.get('orders-db')?.port ?? 0;
});
afterAll(async () => {
  await sidecar?.stop();
  await db?.stop();
});

const connect = async () => {
  const c = new pg.Client({ host: '127.0.0.1', port, user: 'agent', database: 'orders' });
  await c.connect();
  return c;
};

describe('spool full (collector unreachable)', () => {
  it('lets running sessions continue and refuses new ones with SQLSTATE 53000', async () => {
    const running = await connect();
    try {
      for (let i = 0; i < 40; i++) await running.query('SELECT id, status FROM orders WHERE id = $1', [i]);
      const refused = new pg.Client({ host: '127.0.0.1', port, user: 'agent', database: 'orders' });
      await expect(refused.connect()).rejects.toMatchObject({
        code: '53000',
        message: expect.stringContaining('spool is full'),
      });
      // The running session still works.
      expect((await running.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    } finally {
      await running.end();
    }
  });
});
