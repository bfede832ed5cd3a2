import { beforeAll, describe, expect, it } from 'vitest';
import { MAX_QUERY_BYTES } from '../screen/sql-parser.js';
import type { OperationClass, StatementAnalysis, TableRef } from '../types.js';
import { classifySql, initSqlParser, sqlParserHealth } from './classify.js';

beforeAll(async () => {
  await initSqlParser();
});

function one(sql: string): StatementAnalysis {
  const result = classifySql(sql);
  expect(result.error).toBeUndefined();
  expect(result.statements).toHaveLength(1);
  return result.statements[0]!;
}

describe('classifySql: operation classes', () => {
  const cases: Array<[string, OperationClass[], string?]> = [
    // read
    ['SELECT 1', ['read'], 'SelectStmt'],
    ['VALUES (1), (2)', ['read'], 'SelectStmt'],
    ['TABLE orders', ['read'], 'SelectStmt'],
    ['SHOW search_path', ['read'], 'VariableShowStmt'],
    ['EXPLAIN SELECT * FROM orders', ['read'], 'ExplainStmt'],
    ['EXPLAIN DELETE FROM orders', ['read'], 'ExplainStmt'],
    ['EXPLAIN (ANALYZE false) DELETE FROM orders', ['read'], 'ExplainStmt'],
    ['LISTEN jobs', ['read'], 'ListenStmt'],
    ['FETCH 10 FROM c', ['read'], 'FetchStmt'],
    ['MOVE 10 IN c', ['read'], 'FetchStmt'],
    ['SELECT * FROM orders WHERE id = 1 FOR UPDATE', ['read']],
    // write
    ['INSERT INTO orders (id) VALUES (1)', ['write'], 'InsertStmt'],
    ['UPDATE orders SET total = 0 WHERE id = 1', ['write'], 'UpdateStmt'],
    ['DELETE FROM orders WHERE id = 1', ['write'], 'DeleteStmt'],
    ['MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE', ['read', 'write'], 'MergeStmt'],
    ['TRUNCATE orders', ['write'], 'TruncateStmt'],
    ["NOTIFY jobs, 'x'", ['write'], 'NotifyStmt'],
    ['REFRESH MATERIALIZED VIEW mv', ['write'], 'RefreshMatViewStmt'],
    ['LOCK TABLE orders IN EXCLUSIVE MODE', ['write'], 'LockStmt'],
    ['INSERT INTO archive SELECT * FROM orders WHERE id < 5', ['read', 'write']],
    ['DELETE FROM orders WHERE id = 1 RETURNING *', ['read', 'write']],
    ['UPDATE orders o SET total = 0 FROM customers c WHERE c.id = o.cid', ['read', 'write']],
    ['WITH d AS (DELETE FROM orders WHERE id = 1 RETURNING *) SELECT * FROM d', ['read', 'write']],
    ["SELECT nextval('orders_id_seq')", ['read', 'write']],
    ["SELECT pg_notify('jobs', 'x')", ['read', 'write']],
    ['SELECT * INTO archive FROM orders', ['ddl', 'write'], 'SelectStmt'],
    ['CREATE TABLE archive AS SELECT * FROM orders', ['ddl', 'write'], 'CreateTableAsStmt'],
    ['CREATE MATERIALIZED VIEW mv AS SELECT 1', ['ddl', 'write'], 'CreateTableAsStmt'],
    // ddl
    ['CREATE TABLE t (id int)', ['ddl'], 'CreateStmt'],
    ['ALTER TABLE t ADD COLUMN c int', ['ddl'], 'AlterTableStmt'],
    ['DROP TABLE t', ['ddl'], 'DropStmt'],
    ["COMMENT ON TABLE t IS 'x'", ['ddl'], 'CommentStmt'],
    ['ALTER TABLE t RENAME TO u', ['ddl'], 'RenameStmt'],
    ['CREATE INDEX ON t (c)', ['ddl'], 'IndexStmt'],
    ['CREATE VIEW v AS SELECT * FROM t', ['ddl'], 'ViewStmt'],
    ['CREATE EXTENSION pgcrypto', ['ddl'], 'CreateExtensionStmt'],
    ["CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'", ['ddl'], 'CreateFunctionStmt'],
    ['CREATE SCHEMA s', ['ddl'], 'CreateSchemaStmt'],
    ['CREATE SEQUENCE s', ['ddl'], 'CreateSeqStmt'],
    ["CREATE TYPE mood AS ENUM ('ok')", ['ddl'], 'CreateEnumStmt'],
    // admin
    ['CREATE ROLE bob', ['admin'], 'CreateRoleStmt'],
    ['ALTER ROLE bob SUPERUSER', ['admin'], 'AlterRoleStmt'],
    ['DROP ROLE bob', ['admin'], 'DropRoleStmt'],
    ['GRANT SELECT ON orders TO bob', ['admin'], 'GrantStmt'],
    ['GRANT admin TO bob', ['admin'], 'GrantRoleStmt'],
    ['REVOKE SELECT ON orders FROM bob', ['admin'], 'GrantStmt'],
    ['ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO bob', ['admin'], 'AlterDefaultPrivilegesStmt'],
    ["ALTER SYSTEM SET work_mem = '1GB'", ['admin'], 'AlterSystemStmt'],
    ['SET ROLE admin', ['admin'], 'VariableSetStmt'],
    ['SET SESSION AUTHORIZATION admin', ['admin'], 'VariableSetStmt'],
    ['RESET ROLE', ['admin'], 'VariableSetStmt'],
    ['SET search_path = evil, public', ['admin'], 'VariableSetStmt'],
    ['SET LOCAL search_path = evil', ['admin']],
    ['SET standard_conforming_strings = off', ['admin']],
    ["SET client_encoding = 'SJIS'", ['admin']],
    ["SET NAMES 'SJIS'", ['admin']],
    ['SET default_transaction_read_only = off', ['admin']],
    ['RESET ALL', ['admin']],
    ['DISCARD ALL', ['admin'], 'DiscardStmt'],
    ["SELECT set_config('search_path', 'evil', false)", ['admin', 'read']],
    ["SELECT set_config('role', 'admin', false)", ['admin', 'read']],
    ['VACUUM orders', ['admin'], 'VacuumStmt'],
    ['ANALYZE orders', ['admin'], 'VacuumStmt'],
    ['CLUSTER orders USING orders_pkey', ['admin'], 'ClusterStmt'],
    ['REINDEX TABLE orders', ['admin'], 'ReindexStmt'],
    ['CHECKPOINT', ['admin'], 'CheckPointStmt'],
    ["LOAD 'auto_explain'", ['admin'], 'LoadStmt'],
    ["DO 'BEGIN NULL; END'", ['admin'], 'DoStmt'],
    ['CALL refresh_all()', ['admin'], 'CallStmt'],
    ["COPY orders TO '/tmp/orders.csv'", ['admin', 'read'], 'CopyStmt'],
    ["COPY orders FROM PROGRAM 'cat /etc/passwd'", ['admin', 'write'], 'CopyStmt'],
    ['CREATE DATABASE d', ['admin'], 'CreatedbStmt'],
    ['DROP DATABASE d', ['admin'], 'DropdbStmt'],
    ['DROP POLICY p ON t', ['admin'], 'DropStmt'],
    ['CREATE POLICY p ON t USING (true)', ['admin'], 'CreatePolicyStmt'],
    ['ALTER TABLE t OWNER TO bob', ['ddl'], 'AlterTableStmt'],
    ['ALTER FUNCTION f() OWNER TO bob', ['admin'], 'AlterOwnerStmt'],
    ['ALTER ROLE bob RENAME TO alice', ['admin'], 'RenameStmt'],
    ["PREPARE TRANSACTION 'x'", ['admin'], 'TransactionStmt'],
    ["COMMIT PREPARED 'x'", ['admin'], 'TransactionStmt'],
    ['SELECT pg_terminate_backend(123)', ['admin', 'read']],
    ["SELECT pg_read_file('/etc/passwd')", ['admin', 'read']],
    ["SELECT query_to_xml('select * from secrets', true, false, '')", ['admin', 'read']],
    ["SELECT dblink('host=x', 'select 1')", ['admin', 'read']],
    // copy
    ['COPY orders TO STDOUT', ['copy', 'read'], 'CopyStmt'],
    ['COPY orders (id, total) FROM STDIN', ['copy', 'write'], 'CopyStmt'],
    ['COPY (SELECT * FROM orders) TO STDOUT', ['copy', 'read']],
    ['COPY (DELETE FROM orders WHERE id = 1 RETURNING *) TO STDOUT', ['copy', 'read', 'write']],
    // session
    ['BEGIN', ['session'], 'TransactionStmt'],
    ['BEGIN READ WRITE', ['session'], 'TransactionStmt'],
    ['COMMIT', ['session'], 'TransactionStmt'],
    ['ROLLBACK', ['session'], 'TransactionStmt'],
    ['SAVEPOINT s', ['session'], 'TransactionStmt'],
    ['RELEASE SAVEPOINT s', ['session'], 'TransactionStmt'],
    ['ROLLBACK TO SAVEPOINT s', ['session'], 'TransactionStmt'],
    ['SET TRANSACTION ISOLATION LEVEL SERIALIZABLE', ['session'], 'VariableSetStmt'],
    ["SET statement_timeout = '5s'", ['session'], 'VariableSetStmt'],
    ['RESET work_mem', ['session'], 'VariableSetStmt'],
    ['DISCARD PLANS', ['session'], 'DiscardStmt'],
    ['DEALLOCATE p', ['session'], 'DeallocateStmt'],
    ['DEALLOCATE ALL', ['session'], 'DeallocateStmt'],
    ['PREPARE p AS SELECT 1', ['session'], 'PrepareStmt'],
    ['EXECUTE p', ['session'], 'ExecuteStmt'],
    ['CLOSE c', ['session'], 'ClosePortalStmt'],
    ['UNLISTEN *', ['session'], 'UnlistenStmt'],
    ['SET CONSTRAINTS ALL DEFERRED', ['session'], 'ConstraintsSetStmt'],
    ["SELECT set_config('application_name', 'x', false)", ['read', 'session']],
    ['SELECT pg_advisory_lock(1)', ['read', 'session']],
    // classes of what runs
    ['EXPLAIN ANALYZE DELETE FROM orders WHERE id = 1', ['write'], 'ExplainStmt'],
    ['EXPLAIN (ANALYZE, BUFFERS) SELECT 1', ['read']],
    ['EXPLAIN ANALYZE CREATE TABLE t2 AS SELECT 1', ['ddl', 'write']],
    ['DECLARE c CURSOR FOR SELECT * FROM orders', ['read'], 'DeclareCursorStmt'],
  ];
  it.each(cases)('%s → %j', (sql, classes, kind) => {
    const st = one(sql);
    expect(st.classes).toEqual(classes);
    if (kind !== undefined) expect(st.kind).toBe(kind);
  });

  it('keeps classes non-empty, sorted and without duplicates', () => {
    const st = one(
      'WITH a AS (DELETE FROM t WHERE id = 1 RETURNING *), b AS (UPDATE u SET x = 1 WHERE id = 2 RETURNING *) SELECT * FROM a, b',
    );
    expect(st.classes).toEqual(['read', 'write']);
  });

  it('fails closed on statements it does not know', async () => {
    const { statementClasses, STATEMENT_CLASSES } = await import('./statement-classes.js');
    expect(statementClasses({ SomeFutureStmt: {} })).toEqual(['admin']);
    expect(statementClasses('garbage')).toEqual(['admin']);
    expect(Object.keys(STATEMENT_CLASSES).length).toBeGreaterThan(100);
  });
});

describe('classifySql: tables', () => {
  const t = (name: string, access: TableRef['access'], schema?: string): TableRef =>
    schema === undefined ? { name, access } : { schema, name, access };
  const cases: Array<[string, TableRef[]]> = [
    [
      'SELECT * FROM orders o JOIN billing.invoices i ON i.oid = o.id',
      [t('orders', 'read'), t('invoices', 'read', 'billing')],
    ],
    [
      'SELECT * FROM a WHERE id IN (SELECT id FROM b WHERE EXISTS (SELECT 1 FROM c))',
      [t('a', 'read'), t('b', 'read'), t('c', 'read')],
    ],
    ['WITH x AS (SELECT * FROM orders) SELECT * FROM x', [t('orders', 'read')]],
    // A plain WITH's query does not see its own name: this reads table customers.
    ['WITH customers AS (SELECT * FROM customers) SELECT * FROM customers', [t('customers', 'read')]],
    ['WITH RECURSIVE r AS (SELECT 1 UNION ALL SELECT n FROM r, edges) SELECT * FROM r', [t('edges', 'read')]],
    // A CTE named like a table does not stop the DELETE from hitting the table.
    ['WITH t AS (SELECT 1) DELETE FROM t WHERE id = 1', [t('t', 'write')]],
    ['INSERT INTO archive SELECT * FROM orders WHERE id < 5', [t('archive', 'write'), t('orders', 'read')]],
    [
      'UPDATE orders SET total = (SELECT max(total) FROM orders) WHERE id = 1',
      [t('orders', 'write'), t('orders', 'read')],
    ],
    [
      'DELETE FROM orders USING customers WHERE orders.cid = customers.id',
      [t('orders', 'write'), t('customers', 'read')],
    ],
    ['MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE', [t('t', 'write'), t('s', 'read')]],
    ['TRUNCATE a, s.b', [t('a', 'write'), t('b', 'write', 's')]],
    ['DROP TABLE a, s.b', [t('a', 'write'), t('b', 'write', 's')]],
    ['DROP FUNCTION f(int)', []],
    [
      'ALTER TABLE t ADD CONSTRAINT fk FOREIGN KEY (c) REFERENCES parent (id)',
      [t('t', 'write'), t('parent', 'read')],
    ],
    ['CREATE TABLE t2 (LIKE t)', [t('t2', 'write'), t('t', 'read')]],
    ['CREATE TABLE t2 AS SELECT * FROM t', [t('t', 'read'), t('t2', 'write')]],
    ['SELECT * INTO t2 FROM t', [t('t2', 'write'), t('t', 'read')]],
    ['CREATE VIEW v AS SELECT * FROM t', [t('v', 'write'), t('t', 'read')]],
    ['COPY orders TO STDOUT', [t('orders', 'read')]],
    ['COPY orders FROM STDIN', [t('orders', 'write')]],
    ['LOCK TABLE a, b', [t('a', 'write'), t('b', 'write')]],
    ['GRANT SELECT ON a, s.b TO bob', [t('a', 'write'), t('b', 'write', 's')]],
    ['VACUUM a', [t('a', 'write')]],
    ['EXPLAIN DELETE FROM orders', [t('orders', 'read')]],
    ['EXPLAIN ANALYZE DELETE FROM orders WHERE id = 1', [t('orders', 'write')]],
    ['SELECT * FROM generate_series(1, 3) g', []],
    ['SELECT * FROM LATERAL (SELECT * FROM x) s', [t('x', 'read')]],
    ['SELECT * FROM a TABLESAMPLE SYSTEM (10)', [t('a', 'read')]],
    ['PREPARE p AS SELECT * FROM secret', []],
  ];
  it.each(cases)('%s', (sql, tables) => {
    expect(one(sql).tables).toEqual(tables);
  });
});

describe('classifySql: functions', () => {
  it('lists every call as written, lower-cased and once', () => {
    const st = one(
      'SELECT upper(name), Public.F(x), pg_catalog.lower(y), upper(z) FROM t, LATERAL unnest(arr) WHERE g(1) AND EXISTS (SELECT h())',
    );
    expect(st.functions).toEqual(['upper', 'public.f', 'pg_catalog.lower', 'unnest', 'g', 'h']);
  });
  it('includes CALL targets, trigger functions and SQL syntax that becomes a call', () => {
    expect(one('CALL archive_orders(1)').functions).toEqual(['archive_orders']);
    expect(
      one('CREATE TRIGGER tr AFTER INSERT ON t FOR EACH ROW EXECUTE FUNCTION audit()').functions,
    ).toEqual(['audit']);
    expect(one("SELECT EXTRACT(year FROM now()), SUBSTRING('abc' FROM 2)").functions).toEqual([
      'pg_catalog.extract',
      'now',
      'pg_catalog.substring',
    ]);
  });
});

describe('classifySql: statements of a query string', () => {
  it('slices each statement by its own location, across multi-byte characters', () => {
    const result = classifySql("SELECT 'é😀' AS a;\n  UPDATE t SET x = 'ü' WHERE id = 1 ;  SELECT 3");
    expect(result.statements.map((s) => s.text)).toEqual([
      "SELECT 'é😀' AS a",
      "UPDATE t SET x = 'ü' WHERE id = 1",
      'SELECT 3',
    ]);
    expect(result.statements.map((s) => s.normalized)).toEqual([
      'SELECT $1 AS a',
      'UPDATE t SET x = $1 WHERE id = $2',
      'SELECT $1',
    ]);
  });

  it('gives statements that differ only in literals the same fingerprint', () => {
    const [a, b, c] = classifySql(
      'SELECT * FROM t WHERE id = 1; SELECT * FROM t WHERE id = 2; SELECT * FROM u WHERE id = 1',
    ).statements;
    expect(a?.fingerprint).toMatch(/^[0-9a-f]{16}$/);
    expect(a?.fingerprint).toBe(b?.fingerprint);
    expect(a?.fingerprint).not.toBe(c?.fingerprint);
  });

  it('redacts every literal in normalized text, passwords included', () => {
    expect(one("ALTER ROLE bob PASSWORD 'hunter2'").normalized).not.toContain('hunter2');
    expect(one("SELECT * FROM t WHERE card = '4111111111111111' LIMIT 5").normalized).toBe(
      'SELECT * FROM t WHERE card = $1 LIMIT $2',
    );
  });

  it('analyses the statement inside PREPARE and names the one EXECUTE runs', () => {
    const prepare = one('PREPARE wipe (int) AS DELETE FROM orders');
    expect(prepare.classes).toEqual(['session']);
    expect(prepare.risks).toEqual([]);
    expect(prepare.prepared?.name).toBe('wipe');
    const inner = prepare.prepared?.statement;
    expect(inner?.text).toBe('DELETE FROM orders');
    expect(inner?.kind).toBe('DeleteStmt');
    expect(inner?.classes).toEqual(['write']);
    expect(inner?.tables).toEqual([{ name: 'orders', access: 'write' }]);
    expect(inner?.risks.map((r) => r.detector)).toEqual(['delete-without-where']);
    expect(inner?.tree).toBeDefined();
    expect(one('EXECUTE wipe(1)').executes).toBe('wipe');
  });

  it('keeps the parse tree on the analysis without putting it into JSON', () => {
    const st = one('SELECT 1');
    expect(Object.keys(st.tree)).toEqual(['SelectStmt']);
    expect(JSON.parse(JSON.stringify(st))).not.toHaveProperty('tree');
    expect(Object.keys(st)).not.toContain('tree');
  });
});

describe('classifySql: input it refuses', () => {
  it('returns a syntax error with the position as a string index', () => {
    const result = classifySql("SELECT 'ü😀' FRM orders");
    expect(result.statements).toEqual([]);
    expect(result.error?.message).toMatch(/syntax error at or near "orders"/);
    expect(result.error?.position).toBe("SELECT 'ü😀' FRM ".length);
  });

  it.each([
    ['', /empty/],
    ['   \n\t', /empty/],
    ['-- just a comment', /empty/],
    [';;;', /empty/],
  ])('refuses empty text %j', (sql, message) => {
    const result = classifySql(sql);
    expect(result.statements).toEqual([]);
    expect(result.error?.message).toMatch(message);
  });

  it('parses with the server defaults, which is why changing them is admin', () => {
    // With standard_conforming_strings = off a server runs this as two statements (checked against
    // PostgreSQL 15); the parser, like a server with the default, sees one string literal.
    const smuggle = classifySql("SELECT 'x\\''; SELECT 42 AS smuggled; --'");
    expect(smuggle.statements.map((s) => s.kind)).toEqual(['SelectStmt']);
    expect(one('SET standard_conforming_strings = off').classes).toEqual(['admin']);
  });

  it('refuses more statements in one string than it analyses', () => {
    expect(classifySql('SELECT 1;'.repeat(6000)).error?.message).toMatch(/statements \(limit 5000\)/);
  });

  it('refuses text with a NUL character (the protocol cannot carry one, the C parser would stop at it)', () => {
    const result = classifySql('SELECT 1\0; DROP TABLE t');
    expect(result.error).toEqual({ message: 'query text contains a NUL character', position: 8 });
  });

  it('refuses text larger than the cap without parsing it', () => {
    const result = classifySql(`SELECT '${'x'.repeat(MAX_QUERY_BYTES)}'`);
    expect(result.error?.message).toMatch(/larger than 1048576 bytes/);
    // The cap counts UTF-8 bytes, not UTF-16 units.
    expect(classifySql(`SELECT '${'é'.repeat(MAX_QUERY_BYTES / 2)}'`).error?.message).toMatch(/larger than/);
  });

  it('refuses nesting that could overflow the parser, and stays healthy', () => {
    const deep = `SELECT 1${'+1'.repeat(20_000)}`;
    expect(classifySql(deep).error?.message).toMatch(/nests about \d+ levels deep/);
    expect(classifySql(`SELECT ${'('.repeat(5000)}1${')'.repeat(5000)}`).error?.message).toMatch(/nests/);
    expect(sqlParserHealth()).toEqual({ ok: true });
    expect(one('SELECT 1').kind).toBe('SelectStmt');
  });

  it('analyses deep-but-allowed statements with the lexical normalizer', () => {
    const st = one(`SELECT 'a'${"||'a'".repeat(900)}`);
    expect(st.normalized.startsWith('SELECT $1||$2||$3')).toBe(true);
    expect(st.fingerprint).toMatch(/^[0-9a-f]{16}$/);
  });

  it('reports statements too deep for the analysis as an error, not an exception', () => {
    const result = classifySql(`SELECT ${'(SELECT '.repeat(900)}1${')'.repeat(900)}`);
    expect(result.statements).toEqual([]);
    expect(result.error?.message).toBeDefined();
  });
});
