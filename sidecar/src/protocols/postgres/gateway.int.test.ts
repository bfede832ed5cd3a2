import { readdir, readFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { run, startPostgres, type TestPostgres } from '@chaperone/testkit';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ADMIN_PASSWORD,
  type OrdersFixture,
  seedOrders,
  startOrdersSidecar,
} from '../../test-support/orders-fixture.js';

let db: TestPostgres;
let fx: OrdersFixture;

const psql = (sql: string, extra: string[] = []) =>
  run('psql', ['-X', '-At', '-F', '|', ...extra, '-c', sql, fx.url], {
    env: { ...process.env, PGCONNECT_TIMEOUT: '5' },
  });

async function agent(): Promise<pg.Client> {
  const c = new pg.Client({ host: '127.0.0.1', port: fx.port, user: 'agent', database: 'orders' });
  await c.connect();
  return c;
}

async function approveNext(verdict: 'approve' | 'deny'): Promise<string> {
  for (let i = 0; i < 100; i++) {
    const res = (await (await fetch(`${fx.adminUrl}/approvals`)).json()) as {
      items: Array<{ name: string }>;
    };
    const name = res.items[0]?.name;
    if (name) {
      const r = await fetch(`${fx.adminUrl}/approvals/${name}/${verdict}`, {
        method: 'POST',
        body: JSON.stringify({ by: 'dba-alice', comment: 'checked' }),
      });
      expect(r.status).toBe(200);
      return name;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('no approval request appeared');
}

beforeAll(async () => {
  db = await startPostgres();
  await seedOrders(db);
  fx = await startOrdersSidecar(db);
});
afterAll(async () => {
  await fx?.stop();
  await db?.stop();
});

describe('PostgreSQL gateway with psql', () => {
  it('returns rows with masked columns and detected values, other columns untouched', async () => {
    const res = await psql('SELECT id, name, email, ssn, note FROM customers ORDER BY id');
    expect(res.stderr).toBe('');
    expect(res.stdout.trim().split('\n')).toEqual([
      '1|Ada Lovelace|***********.com|[REDACTED]|[REDACTED]',
      '2|Alan Turing|************.com|[REDACTED]|prefers invoices',
      // A row of the inheritance child, read through the parent: origin is the parent, so masked.
      '3|Grace Hopper|*************.com|[REDACTED]|vip',
    ]);
  });

  it('runs multi-statement strings statement by statement', async () => {
    const res = await psql(
      "SELECT count(*) FROM orders WHERE status = 'open'; SELECT max(id) FROM orders WHERE id < 10",
    );
    expect(res.stderr).toBe('');
    expect(res.stdout.trim().split('\n')).toEqual(['67', '9']);
  });

  it('denies DDL with SQLSTATE 42501 and keeps the session usable', async () => {
    const res = await psql('DROP TABLE orders', ['-v', 'VERBOSITY=verbose']);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain('42501');
    expect(res.stderr).toContain('chaperone:');
    expect((await db.psql('SELECT count(*) FROM orders', { database: 'orders' })).trim()).toBe('100');
  });

  it('keeps client and server transaction state consistent after a denial inside a transaction', async () => {
    const c = await agent();
    try {
      await c.query('BEGIN');
      await c.query('SELECT 1');
      await expect(c.query('CREATE TABLE sneaky (x int)')).rejects.toMatchObject({ code: '42501' });
      // Like PostgreSQL itself: the transaction is aborted until it ends.
      await expect(c.query('SELECT 1')).rejects.toMatchObject({ code: '25P02' });
      const end = await c.query('COMMIT');
      expect(end.command).toBe('ROLLBACK');
      expect((await c.query('SELECT 2 AS two')).rows).toEqual([{ two: 2 }]);
    } finally {
      await c.end();
    }
  });

  it('pauses a write until it is approved, telling the agent what it waits for', async () => {
    const c = await agent();
    const notices: string[] = [];
    c.on('notice', (n) => notices.push(n.message ?? ''));
    try {
      const pending = c.query("UPDATE orders SET status = 'held' WHERE id = 7");
      const name = await approveNext('approve');
      const res = await pending;
      expect(res.rowCount).toBe(1);
      expect(notices.join('\n')).toContain(`waiting for approval of access request ${name}`);
      expect((await db.psql('SELECT status FROM orders WHERE id = 7', { database: 'orders' })).trim()).toBe(
        'held',
      );
    } finally {
      await c.end();
    }
  });

  it('fails a denied approval with 42501 naming who denied it', async () => {
    const c = await agent();
    try {
      const pending = c.query("UPDATE orders SET status = 'lost' WHERE id = 8");
      await approveNext('deny');
      await expect(pending).rejects.toMatchObject({
        code: '42501',
        message: expect.stringContaining('denied by dba-alice'),
      });
      expect(
        (await db.psql('SELECT status FROM orders WHERE id = 8', { database: 'orders' })).trim(),
      ).not.toBe('lost');
    } finally {
      await c.end();
    }
  });

  it('denies a DELETE without WHERE by guardrail without asking anyone', async () => {
    const res = await psql('DELETE FROM orders');
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(/delete-without-where|without WHERE/i);
    expect((await db.psql('SELECT count(*) FROM orders', { database: 'orders' })).trim()).toBe('100');
  });
});

describe('masking cannot be bypassed with SQL', () => {
  it.each([
    ['an expression', 'SELECT upper(ssn) FROM customers'],
    ['a cast', 'SELECT ssn::varchar FROM customers'],
    ['an oracle predicate', "SELECT id FROM customers WHERE ssn LIKE '1%'"],
    ['a whole-row reference', 'SELECT row_to_json(c) FROM customers c'],
    ['an aggregate', "SELECT string_agg(email, ',') FROM customers"],
    ['a set operation', 'SELECT ssn FROM customers UNION SELECT NULL'],
    ['a scalar subquery', 'SELECT (SELECT ssn FROM customers WHERE id = 1) AS x'],
  ])('refuses %s with 42501', async (_what, sql) => {
    const res = await psql(sql, ['-v', 'VERBOSITY=verbose']);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain('42501');
    expect(res.stderr).toContain('masked');
    expect(res.stdout).not.toMatch(/\d{3}-\d{2}-\d{4}|@example\.com/);
  });

  it.each([
    ['a view over a masked column', 'SELECT * FROM customer_contacts'],
    ['a user function that reads a masked table', 'SELECT lookup_ssn(1)'],
    ['an inheritance child of a masked table', 'SELECT ssn FROM vip_customers'],
  ])('refuses %s (found in the catalog)', async (_what, sql) => {
    const res = await psql(sql, ['-v', 'VERBOSITY=verbose']);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain('42501');
    expect(res.stdout).not.toMatch(/\d{3}-\d{2}-\d{4}|@example\.com/);
  });

  it('removes error details that echo masked values (constraint violations)', async () => {
    const c = await agent();
    try {
      // customers.name is NOT NULL: the error detail would print the whole row, ssn included.
      const pending = c.query('UPDATE customers SET name = NULL WHERE id = 1');
      await approveNext('approve');
      const err = (await pending.catch((e: unknown) => e)) as { code?: string; detail?: string };
      expect(err.code).toBe('23502');
      expect(err.detail).toContain('detail removed');
      expect(err.detail).not.toContain('123-45-6789');
    } finally {
      await c.end();
    }
  });

  it('pins the client encoding to UTF8 whatever the agent asks for', async () => {
    const res = await run('psql', ['-X', '-At', '-c', 'SHOW client_encoding', fx.url], {
      env: { ...process.env, PGCLIENTENCODING: 'SJIS' },
    });
    expect(res.stdout.trim()).toBe('UTF8');
  });

  it('allows views and functions that do not touch masked columns', async () => {
    const res = await psql('SELECT double_it(21); SELECT count(*) FROM order_totals');
    expect(res.stderr).toBe('');
    expect(res.stdout.trim().split('\n')).toEqual(['42', '2']);
  });

  it('masks SELECT * and aliased plain columns by origin', async () => {
    const res = await psql('SELECT c.ssn AS harmless, * FROM ONLY customers c WHERE id = 2');
    expect(res.stderr).toBe('');
    expect(res.stdout.trim()).toBe('[REDACTED]|2|Alan Turing|************.com|[REDACTED]|prefers invoices');
  });
});

describe('extended protocol', () => {
  it('masks rows of prepared statements in text and binary formats (node-postgres)', async () => {
    const c = await agent();
    try {
      const q = { name: 'by-id', text: 'SELECT id, email, ssn FROM customers WHERE id = $1', values: [1] };
      expect((await c.query(q)).rows).toEqual([{ id: 1, email: '***********.com', ssn: '[REDACTED]' }]);
      // Re-executing the named statement skips Parse and Describe: the layout must still apply.
      expect((await c.query({ ...q, values: [2] })).rows).toEqual([
        { id: 2, email: '************.com', ssn: '[REDACTED]' },
      ]);
      // `binary` is a real node-postgres option (all results in binary format) missing from its types.
      const binaryConfig = {
        host: '127.0.0.1',
        port: fx.port,
        user: 'agent',
        database: 'orders',
        binary: true,
      };
      const b = new pg.Client(binaryConfig as pg.ClientConfig);
      await b.connect();
      try {
        const bin = await b.query({ text: 'SELECT ssn, id FROM customers WHERE id = $1', values: [1] });
        expect(bin.rows[0]).toEqual({ ssn: '[REDACTED]', id: 1 });
      } finally {
        await b.end();
      }
    } finally {
      await c.end();
    }
  });

  it('handles a pipelined batch: Parse/Bind/Execute x3 then one Sync, with one denied in the middle', async () => {
    const { serialize } = await import('pg-protocol');
    const sock = connect(fx.port, '127.0.0.1');
    const received: Buffer[] = [];
    sock.on('data', (d) => received.push(d));
    await new Promise((r) => sock.once('connect', r));
    sock.write(serialize.startup({ user: 'agent', database: 'orders' }));
    await waitFor(() => Buffer.concat(received).includes(Buffer.from([0x5a, 0, 0, 0, 5, 0x49])));
    received.length = 0;
    const batch = [
      serialize.parse({ text: 'SELECT 1' }),
      serialize.bind({}),
      serialize.execute({}),
      serialize.parse({ text: 'DROP TABLE orders' }),
      serialize.bind({}),
      serialize.execute({}),
      serialize.parse({ text: 'SELECT 3' }),
      serialize.bind({}),
      serialize.execute({}),
      serialize.sync(),
    ];
    sock.write(Buffer.concat(batch));
    await waitFor(() => Buffer.concat(received).includes(Buffer.from([0x5a, 0, 0, 0, 5])));
    const types = frameTypes(Buffer.concat(received));
    // 1 2 D C for SELECT 1, then the denial, the rest skipped up to Sync, as a server would.
    expect(types).toEqual(['1', '2', 'D', 'C', 'E', 'Z']);
    expect(Buffer.concat(received).toString('latin1')).toContain('42501');
    sock.end();
  });
});

describe('COPY, LISTEN/NOTIFY, cancel', () => {
  it('copies in and out with psql \\copy', async () => {
    const into = await run(
      'psql',
      ['-X', '-c', '\\copy orders (id, customer_id, amount, status) FROM STDIN', fx.url],
      {
        input: '1001\t1\t9.99\tnew\n1002\t2\t19.99\tnew\n\\.\n',
      },
    );
    expect(into.stderr).toBe('');
    expect(into.stdout).toContain('COPY 2');
    const out = await psql('\\copy (SELECT id, status FROM orders WHERE id > 1000 ORDER BY id) TO STDOUT');
    expect(out.stdout.trim().split('\n')).toEqual(['1001\tnew', '1002\tnew']);
  });

  it('masks COPY TO rows by column position in text and CSV, and refuses what it cannot mask', async () => {
    const whole = await psql('\\copy customers TO STDOUT');
    expect(whole.stderr).toBe('');
    expect(whole.stdout.split('\n')[0]).toBe('1\tAda Lovelace\t***********.com\t[REDACTED]\t[REDACTED]');
    const picked = await psql(
      '\\copy (SELECT id, ssn FROM customers ORDER BY id) TO STDOUT WITH (FORMAT csv)',
    );
    expect(picked.stdout.trim().split('\n')).toEqual(['1,"[REDACTED]"', '2,"[REDACTED]"', '3,"[REDACTED]"']);
    const star = await psql('COPY (SELECT * FROM customers) TO STDOUT');
    expect(star.code).not.toBe(0);
    expect(star.stderr).toContain('masked');
    const binary = await psql('COPY customers TO STDOUT WITH (FORMAT binary)');
    expect(binary.code).not.toBe(0);
  });

  it('delivers notifications to a listening agent', async () => {
    const c = await agent();
    try {
      const got = new Promise<string>((resolve) => c.on('notification', (n) => resolve(n.payload ?? '')));
      await c.query('LISTEN order_events');
      await db.psql("NOTIFY order_events, 'order 7 shipped'", { database: 'orders' });
      expect(await got).toBe('order 7 shipped');
    } finally {
      await c.end();
    }
  });

  it('cancels a running statement when psql gets Ctrl-C (SIGINT → CancelRequest)', async () => {
    const { spawn } = await import('node:child_process');
    const started = Date.now();
    const child = spawn('psql', ['-X', '-c', 'SELECT pg_sleep(20)', fx.url], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    await new Promise((r) => setTimeout(r, 700));
    child.kill('SIGINT');
    const code = await new Promise<number | null>((r) => child.on('close', r));
    expect(code).not.toBe(0);
    expect(stderr).toContain('canceling statement due to user request');
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('maps a CancelRequest to the upstream backend (raw protocol)', async () => {
    const c = await agent();
    const canceller = await agent();
    try {
      const started = Date.now();
      const slow = c.query('SELECT pg_sleep(20)');
      await new Promise((r) => setTimeout(r, 300));
      // node-postgres cancels by opening a new connection with the backend key it was given.
      const pid = (c as unknown as { processID: number }).processID;
      const key = (c as unknown as { secretKey: number }).secretKey;
      const { serialize } = await import('pg-protocol');
      const s = connect(fx.port, '127.0.0.1', () => s.end(serialize.cancel(pid, key)));
      await expect(slow).rejects.toMatchObject({ code: '57014' });
      expect(Date.now() - started).toBeLessThan(10_000);
    } finally {
      await c.end();
      await canceller.end();
    }
  });
});

describe('credentials and recordings', () => {
  it('records the results of repeated executions of one prepared statement as one summed event', async () => {
    const c = await agent();
    let sessionFile = '';
    try {
      for (let i = 1; i <= 30; i++)
        await c.query({ name: 'by-order', text: 'SELECT id FROM orders WHERE id = $1', values: [i] });
      sessionFile = String(((await c.query("SELECT 'marker-coalesce' AS m")).rows[0] as { m: string }).m);
    } finally {
      await c.end();
    }
    await new Promise((r) => setTimeout(r, 300));
    const files = await readdir(fx.recordingsDir);
    const texts = await Promise.all(files.map((f) => readFile(join(fx.recordingsDir, f), 'utf8')));
    const mine =
      texts.find((t) => t.includes('SELECT $1 AS m') && t.includes('SELECT id FROM orders WHERE id = $1')) ??
      '';
    const results = mine
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; data: { rows?: number; executions?: number } })
      .filter((e) => e.type === 'result');
    expect(sessionFile).toBe('marker-coalesce');
    // 30 executions, one row each, in one event (plus the marker query's own result).
    expect(results.find((e) => e.data.executions === 30)?.data.rows).toBe(30);
  });

  it('never shows the upstream credential to the agent and records the session', async () => {
    const res = await psql('SELECT current_user, session_user');
    expect(res.stdout.trim()).toBe('chaperone_admin|chaperone_admin');
    await new Promise((r) => setTimeout(r, 200));
    const files = await readdir(fx.recordingsDir);
    expect(files.length).toBeGreaterThan(0);
    const all = (await Promise.all(files.map((f) => readFile(join(fx.recordingsDir, f), 'utf8')))).join('');
    expect(all).not.toContain(ADMIN_PASSWORD);
    const events = all
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; data: Record<string, unknown> });
    expect(events.some((e) => e.type === 'query' && e.data.decision === 'denied')).toBe(true);
    expect(events.some((e) => e.type === 'approval.decided' && e.data.by === 'dba-alice')).toBe(true);
  });
});

async function waitFor(cond: () => boolean, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

function frameTypes(buf: Buffer): string[] {
  const out: string[] = [];
  let pos = 0;
  while (pos + 5 <= buf.length) {
    out.push(String.fromCharCode(buf[pos] as number));
    pos += 1 + buf.readInt32BE(pos + 1);
  }
  return out;
}
