import { startPostgres, type TestPostgres } from '@chaperone/testkit';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ADMIN_PASSWORD,
  type OrdersFixture,
  seedOrders,
  startOrdersSidecar,
} from '../../test-support/orders-fixture.js';

// What a client sees through the gateway must be what it sees from PostgreSQL itself (issue 19):
// every case runs against both and the answers are compared.
let db: TestPostgres;
let fx: OrdersFixture;

beforeAll(async () => {
  db = await startPostgres();
  await seedOrders(db);
  fx = await startOrdersSidecar(db);
});
afterAll(async () => {
  await fx?.stop();
  await db?.stop();
});

async function both<T>(fn: (c: pg.Client) => Promise<T>): Promise<{ direct: T; gateway: T }> {
  const direct = new pg.Client({
    host: '127.0.0.1',
    port: db.port,
    user: 'chaperone_admin',
    password: ADMIN_PASSWORD,
    database: 'orders',
  });
  const gateway = new pg.Client({ host: '127.0.0.1', port: fx.port, user: 'agent', database: 'orders' });
  await direct.connect();
  await gateway.connect();
  try {
    return { direct: await fn(direct), gateway: await fn(gateway) };
  } finally {
    await direct.end();
    await gateway.end();
  }
}

/** What a query yields: its command tag and rows, or the error's SQLSTATE, message and position. */
async function outcome(c: pg.Client, config: string | pg.QueryConfig): Promise<unknown> {
  try {
    const r = await c.query(config);
    return { command: r.command ?? null, rows: r.rows };
  } catch (e) {
    const err = e as { code?: string; message?: string; position?: string };
    return { code: err.code, message: err.message, position: err.position };
  }
}

describe('empty queries are answered as PostgreSQL answers them', () => {
  it.each(['', '   ', ';', ' ; ; ', '-- ping', '/* nothing */', '-- a\n;\n/* b */'])(
    'simple query %j',
    async (text) => {
      const { direct, gateway } = await both((c) => outcome(c, text));
      expect(gateway).toEqual(direct);
      expect(gateway).toEqual({ command: null, rows: [] });
    },
  );

  it.each(['', '-- ping', ';'])('extended query %j (Parse/Bind/Execute)', async (text) => {
    const { direct, gateway } = await both((c) => outcome(c, { text, values: [] }));
    expect(gateway).toEqual(direct);
  });

  it('keeps the session usable after an empty query inside a transaction', async () => {
    const { direct, gateway } = await both(async (c) => {
      await c.query('BEGIN');
      await c.query('-- ping');
      const r = await c.query('SELECT 1 AS one');
      await c.query('COMMIT');
      return r.rows;
    });
    expect(gateway).toEqual(direct);
  });
});

describe("syntax errors are the server's, with its SQLSTATE and position", () => {
  it.each([
    'SELEC 1',
    'SELECT 1 FROM',
    'SELECT 1; SELEC 2',
    "SELECT 'é' FROM ,",
    'SELECT (1',
    "SELECT 'unterminated",
  ])('%j', async (text) => {
    const { direct, gateway } = await both((c) => outcome(c, text));
    expect(gateway).toEqual(direct);
    expect((gateway as { code: string }).code).toBe('42601');
  });

  it('in a Parse message too, and the session goes on', async () => {
    const { direct, gateway } = await both(async (c) => {
      const first = await outcome(c, { text: 'SELEC $1', values: [1] });
      const next = await outcome(c, 'SELECT 2 AS two');
      return [first, next];
    });
    expect(gateway).toEqual(direct);
  });

  it('still refuses by policy what parses (not a syntax error)', async () => {
    const c = new pg.Client({ host: '127.0.0.1', port: fx.port, user: 'agent', database: 'orders' });
    await c.connect();
    try {
      const r = (await outcome(c, 'DROP TABLE orders')) as { code: string };
      expect(r.code).toBe('42501');
    } finally {
      await c.end();
    }
  });
});

describe('startup parameters, database name and backend PID', () => {
  const connectGateway = async (extra: Partial<pg.ClientConfig> = {}) => {
    const c = new pg.Client({
      host: '127.0.0.1',
      port: fx.port,
      user: 'agent',
      database: 'orders',
      ...extra,
    });
    c.on('error', () => {});
    await c.connect();
    return c;
  };

  it('passes settings that only tighten, in both spellings, so the server enforces them', async () => {
    const c = await connectGateway({ statement_timeout: 300, options: '-c lock_timeout=2s' });
    try {
      const shown = await c.query('SELECT current_setting($1) AS st, current_setting($2) AS lt', [
        'statement_timeout',
        'lock_timeout',
      ]);
      expect(shown.rows).toEqual([{ st: '300ms', lt: '2s' }]);
      const slow = (await outcome(c, 'SELECT pg_sleep(2)')) as { code: string };
      expect(slow.code).toBe('57014'); // canceled by the statement timeout the client asked for
    } finally {
      await c.end();
    }
  });

  it.each([
    [{ options: '-c search_path=evil,public' }, '0A000', /search_path is not passed through/],
    [
      { database: 'postgres' },
      '3D000',
      /database "postgres" does not exist here: this listener serves database "orders"/,
    ],
  ])('refuses %j at login with a clear error', async (extra, code, message) => {
    const err = (await connectGateway(extra as Partial<pg.ClientConfig>).then(
      async (c) => {
        await c.end();
        return undefined;
      },
      (e: unknown) => e,
    )) as { code?: string; message?: string } | undefined;
    expect(err?.code).toBe(code);
    expect(err?.message).toMatch(message);
  });

  it('hands the client the real backend PID, and pg_terminate_backend on it works', async () => {
    const c = await connectGateway();
    const ended = new Promise((r) => c.once('end', r));
    const pid = (c as unknown as { processID: number }).processID;
    const backend = await c.query('SELECT pg_backend_pid() AS pid');
    expect(backend.rows[0].pid).toBe(pid);
    await db.psql(`SELECT pg_terminate_backend(${pid})`);
    await ended;
  });
});
