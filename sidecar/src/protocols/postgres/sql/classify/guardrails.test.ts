import { beforeAll, describe, expect, it } from 'vitest';
import type { PostgresGuardrailDetector } from '../types.js';
import { classifySql, initSqlParser } from './classify.js';

beforeAll(async () => {
  await initSqlParser();
});

function detectors(sql: string): PostgresGuardrailDetector[] {
  const result = classifySql(sql);
  expect(result.error).toBeUndefined();
  return [...new Set(result.statements.flatMap((s) => s.risks.map((r) => r.detector)))].sort();
}

// [sql, the detectors it must fire (exactly)]. Each risky case has a safe twin next to it.
const cases: Array<[string, PostgresGuardrailDetector[]]> = [
  // delete-without-where
  ['DELETE FROM orders', ['delete-without-where']],
  ['DELETE FROM orders WHERE id = 1', []],
  ['DELETE FROM orders WHERE true', ['delete-without-where']],
  ['DELETE FROM orders WHERE 1 = 1', ['delete-without-where']],
  ['DELETE FROM orders WHERE CURRENT OF c', []],
  ['DELETE FROM orders USING customers', ['delete-without-where']],
  ['WITH gone AS (DELETE FROM orders RETURNING id) SELECT count(*) FROM gone', ['delete-without-where']],
  ['WITH gone AS (DELETE FROM orders WHERE id = 1 RETURNING id) SELECT count(*) FROM gone', []],
  ['EXPLAIN ANALYZE DELETE FROM orders', ['delete-without-where']],
  ['EXPLAIN DELETE FROM orders', []],
  ['CREATE RULE r AS ON INSERT TO t DO ALSO DELETE FROM audit', ['delete-without-where']],
  ['MERGE INTO t USING s ON true WHEN MATCHED THEN DELETE', ['delete-without-where']],
  ['MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE', []],
  // update-without-where
  ['UPDATE orders SET total = 0', ['update-without-where']],
  ['UPDATE orders SET total = 0 WHERE id = 1', []],
  ['UPDATE orders SET total = 0 WHERE NOT false', ['update-without-where']],
  ['UPDATE orders SET total = 0 FROM customers', ['update-without-where']],
  ['MERGE INTO t USING s ON 1 = 1 WHEN MATCHED THEN UPDATE SET x = 1', ['update-without-where']],
  ['MERGE INTO t USING s ON 1 = 1 WHEN MATCHED AND t.kind = 2 THEN UPDATE SET x = 1', []],
  ['INSERT INTO orders (id) VALUES (1)', []],
  // truncate
  ['TRUNCATE orders', ['truncate']],
  ['TRUNCATE TABLE a, b CASCADE', ['truncate']],
  // drop
  ['DROP TABLE orders', ['drop']],
  ['DROP INDEX IF EXISTS orders_idx', ['drop']],
  ['DROP SCHEMA s CASCADE', ['drop']],
  ['DROP FUNCTION f(int)', ['drop']],
  ['DROP ROLE bob', ['drop']],
  ['DROP DATABASE d', ['drop']],
  ['DROP OWNED BY bob', ['drop']],
  ['ALTER TABLE orders DROP COLUMN note', ['drop']],
  ['ALTER TABLE orders ADD COLUMN note text', []],
  ['CREATE TABLE t (id int)', []],
  // unbounded-select
  ['SELECT * FROM orders', ['unbounded-select']],
  ['SELECT * FROM orders LIMIT 100', []],
  ['SELECT * FROM orders LIMIT ALL', ['unbounded-select']],
  ['SELECT * FROM orders FETCH FIRST 10 ROWS ONLY', []],
  ['SELECT * FROM orders LIMIT $1', []],
  ['SELECT * FROM orders WHERE id = 1', []],
  ['SELECT * FROM orders WHERE true', ['unbounded-select']],
  ['TABLE orders', ['unbounded-select']],
  ['SELECT count(*) FROM orders', []],
  ['SELECT count(*) + 1, max(total) FROM orders', []],
  ['SELECT status, count(*) FROM orders GROUP BY status', ['unbounded-select']],
  ['SELECT json_agg(o) FROM orders o', ['unbounded-select']],
  ["SELECT string_agg(name, ',') FROM customers", ['unbounded-select']],
  ['SELECT row_number() OVER () FROM orders', ['unbounded-select']],
  ['SELECT * FROM orders o JOIN customers c ON c.id = o.cid', ['unbounded-select']],
  ['SELECT * FROM orders o JOIN customers c ON c.id = o.cid WHERE o.id = 5', []],
  ['SELECT * FROM (SELECT * FROM orders LIMIT 5) s', []],
  ['SELECT * FROM (SELECT * FROM orders) s', ['unbounded-select']],
  ['WITH x AS (SELECT * FROM orders) SELECT * FROM x', ['unbounded-select']],
  ['WITH x AS (SELECT * FROM orders LIMIT 1) SELECT * FROM x', []],
  ['SELECT * FROM orders UNION SELECT * FROM archive', ['unbounded-select']],
  ['(SELECT * FROM orders UNION SELECT * FROM archive) LIMIT 10', []],
  ['SELECT * FROM generate_series(1, 10)', []],
  ['SELECT 1', []],
  ['VALUES (1), (2)', []],
  ['SELECT * FROM orders TABLESAMPLE SYSTEM (1)', ['unbounded-select']],
  ['SELECT * INTO copy_of_orders FROM orders', []],
  ['DECLARE c CURSOR FOR SELECT * FROM orders', []],
  ['SELECT id FROM orders WHERE id IN (SELECT oid FROM items)', []],
  // copy-to
  ['COPY orders TO STDOUT', ['copy-to']],
  ['COPY (SELECT * FROM orders WHERE id = 1) TO STDOUT WITH (FORMAT csv)', ['copy-to']],
  ['COPY orders FROM STDIN', []],
  // set-role
  ['SET ROLE admin', ['set-role']],
  ['SET LOCAL ROLE admin', ['set-role']],
  ['SET SESSION AUTHORIZATION admin', ['set-role']],
  ['SET SESSION AUTHORIZATION DEFAULT', ['set-role']],
  ['RESET ROLE', ['set-role']],
  ['SET ROLE NONE', ['set-role']],
  ['DISCARD ALL', ['set-role']],
  ["SELECT set_config('role', 'admin', false)", ['set-role']],
  ["SELECT set_config(current_setting('x.y'), 'admin', false)", ['set-role']],
  ["SELECT set_config('application_name', 'x', false)", []],
  ['SET work_mem = 1024', []],
  ['RESET ALL', []],
  // alter-system
  ["ALTER SYSTEM SET shared_buffers = '1GB'", ['alter-system']],
  ['ALTER SYSTEM RESET ALL', ['alter-system']],
  ["ALTER DATABASE d SET work_mem = '1GB'", []],
  // file-access
  ["SELECT pg_read_file('/etc/passwd')", ['file-access']],
  ["SELECT pg_catalog.pg_read_binary_file('/etc/passwd')", ['file-access']],
  ["SELECT * FROM pg_ls_dir('.')", ['file-access']],
  ["SELECT pg_stat_file('postgresql.conf')", ['file-access']],
  ['SELECT * FROM pg_ls_waldir()', ['file-access']],
  ["SELECT lo_import('/etc/passwd')", ['file-access']],
  ["SELECT lo_export(1234, '/tmp/x')", ['file-access']],
  ["SELECT pg_file_write('/tmp/x', 'data', false)", ['file-access']],
  ["SELECT * FROM dblink('host=elsewhere', 'SELECT 1') AS t(x int)", ['file-access']],
  ["SELECT dblink_exec('host=elsewhere', 'DROP TABLE t')", ['file-access']],
  ['SELECT id FROM t WHERE id IN (SELECT pg_read_file(name) FROM files)', ['file-access']],
  ["COPY orders TO '/tmp/orders.csv'", ['copy-to', 'file-access']],
  ["COPY orders FROM '/etc/passwd'", ['file-access']],
  ["COPY orders FROM PROGRAM 'curl http://example.invalid/x'", ['file-access']],
  ["COPY (SELECT 1) TO PROGRAM 'sh -c x'", ['copy-to', 'file-access']],
  ['CREATE EXTENSION file_fdw', ['file-access']],
  ['CREATE EXTENSION IF NOT EXISTS dblink', ['file-access']],
  ['CREATE EXTENSION postgres_fdw', ['file-access']],
  ['CREATE EXTENSION adminpack', ['file-access']],
  ['ALTER EXTENSION dblink UPDATE', ['file-access']],
  ['CREATE EXTENSION pgcrypto', []],
  ["LOAD 'plugin'", ['file-access']],
  ['GRANT pg_read_server_files TO bob', ['file-access']],
  ['GRANT pg_execute_server_program TO bob', ['file-access']],
  ['GRANT pg_read_all_data TO bob', []],
  ['CREATE SERVER s FOREIGN DATA WRAPPER file_fdw', ['file-access']],
  ["CREATE FUNCTION f() RETURNS int LANGUAGE plpython3u AS 'return 1'", ['file-access']],
  ["CREATE FUNCTION f() RETURNS int LANGUAGE c AS 'lib', 'sym'", ['file-access']],
  ["CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'", []],
  ["CREATE VIEW v AS SELECT pg_read_file('/etc/passwd')", ['file-access']],
  ["PREPARE p AS SELECT pg_read_file('/etc/passwd')", []],
  ["EXPLAIN SELECT pg_read_file('/etc/passwd')", []],
];

describe('guardrail detectors', () => {
  it.each(cases)('%s → %j', (sql, expected) => {
    expect(detectors(sql)).toEqual([...expected].sort());
  });
});

describe('multi-statement-write', () => {
  it('fires on each statement that writes, ddls or admins in a query string of several', () => {
    const result = classifySql(
      'SELECT 1; UPDATE t SET x = 1 WHERE id = 1; CREATE TABLE u (id int); SET ROLE admin; COMMIT',
    );
    expect(
      result.statements.map((s) => s.risks.filter((r) => r.detector === 'multi-statement-write').length),
    ).toEqual([0, 1, 1, 1, 0]);
    expect(result.statements[1]?.risks.find((r) => r.detector === 'multi-statement-write')?.reason).toBe(
      'statement 2 of 5 in one query string changes data',
    );
  });
  it('does not fire on a single statement or on several reads', () => {
    expect(detectors('UPDATE t SET x = 1 WHERE id = 1')).toEqual([]);
    expect(detectors('SELECT 1; SELECT 2; SHOW work_mem')).toEqual([]);
    expect(detectors('BEGIN; SELECT 1; COMMIT')).toEqual([]);
  });
});

describe('risk reasons', () => {
  it('name the statement part in one sentence and keep literals out', () => {
    const reasons = classifySql(
      "DELETE FROM billing.orders; COPY t TO PROGRAM 'curl -H secret-token x'; SELECT set_config('role', 'admin', false)",
    ).statements.flatMap((s) => s.risks.map((r) => r.reason));
    expect(reasons).toContain('DELETE FROM billing.orders has no WHERE clause');
    expect(reasons).toContain('COPY t TO PROGRAM runs a program on the database server');
    expect(reasons).toContain("set_config('role', …) changes the current role");
    expect(reasons.join(' ')).not.toContain('secret-token');
  });
});
