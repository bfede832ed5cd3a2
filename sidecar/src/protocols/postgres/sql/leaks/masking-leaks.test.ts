import { beforeAll, describe, expect, it } from 'vitest';
import { classifySql, initSqlParser } from '../classify/classify.js';
import type { LeakKind, MaskedColumnRule, StatementAnalysis } from '../types.js';
import { analyzeMasking, findMaskingLeaks, isMaskableLeak, MASKABLE_LEAK_KINDS } from './masking-leaks.js';

beforeAll(async () => {
  await initSqlParser();
});

const SSN = 'public.customers.ssn';
const RULES: MaskedColumnRule[] = [{ schema: 'public', table: 'customers', column: 'ssn' }];

function statement(sql: string): StatementAnalysis {
  const result = classifySql(sql);
  expect(result.error).toBeUndefined();
  expect(result.statements).toHaveLength(1);
  return result.statements[0]!;
}

/** `how:column` of every leak, sorted and without duplicates. */
function leaks(sql: string, rules: MaskedColumnRule[] = RULES, defaultSchemas?: string[]): string[] {
  const opts = defaultSchemas === undefined ? {} : { defaultSchemas };
  const found = findMaskingLeaks(statement(sql), rules, opts);
  return [...new Set(found.map((l) => `${l.how}:${l.column}`))].sort();
}

const at = (how: LeakKind, column = SSN): string => `${how}:${column}`;

// Each row: the SQL, then the leaks it must report (exactly). Safe twins report nothing.
type Case = [sql: string, expected: string[]];

describe('plain output columns (the gateway masks them by origin)', () => {
  it.each<Case>([
    ['SELECT ssn FROM customers', []],
    ['SELECT c.ssn FROM customers c', []],
    ['SELECT public.customers.ssn FROM public.customers', []],
    ['SELECT ssn AS nothing_to_see FROM customers', []],
    ['SELECT * FROM customers', []],
    ['SELECT c.* FROM customers c', []],
    ['SELECT id, name FROM customers WHERE id = 1 ORDER BY id LIMIT 5', []],
    ['SELECT ssn FROM customers WHERE id = 1 FOR UPDATE', []],
    ['TABLE customers', []],
    ['SELECT a FROM customers AS c(a, b)', []],
  ])('%s', (sql, expected) => {
    expect(leaks(sql)).toEqual(expected);
  });
});

describe('expressions over a masked column', () => {
  it.each<Case>([
    ['SELECT upper(ssn) FROM customers', [at('expression')]],
    ["SELECT ssn || '' FROM customers", [at('expression')]],
    ['SELECT substr(ssn, 1, 3) FROM customers', [at('expression')]],
    ["SELECT ssn = '123-45-6789' FROM customers", [at('expression')]],
    ['SELECT ssn IS NULL FROM customers', [at('expression')]],
    ["SELECT CASE WHEN ssn LIKE '1%' THEN 1 ELSE 0 END FROM customers", [at('expression')]],
    ["SELECT coalesce(ssn, 'none') FROM customers", [at('expression')]],
    ['SELECT ssn[1] FROM customers', [at('expression')]],
    ["SELECT json_build_object('s', ssn) FROM customers", [at('expression')]],
    ["SELECT JSON_OBJECT('s': ssn) FROM customers", [at('expression')]],
    ['SELECT ARRAY[ssn] FROM customers', [at('expression')]],
    ['SELECT xmlelement(name x, ssn) FROM customers', [at('expression')]],
    ['SELECT x FROM customers c, LATERAL upper(c.ssn) x', [at('expression')]],
    [
      "SELECT * FROM customers c, XMLTABLE('/r' PASSING xmlelement(name r, c.ssn) COLUMNS v text PATH '.') x",
      [at('expression')],
    ],
    ['SELECT upper(name) FROM customers', []],
    // casts
    ['SELECT ssn::text FROM customers', [at('cast')]],
    ['SELECT CAST(ssn AS varchar(20)) FROM customers', [at('cast')]],
    ['SELECT ssn::int FROM customers', [at('cast')]],
    ['SELECT ssn COLLATE "C" FROM customers', [at('cast')]],
    ['SELECT upper(ssn)::text FROM customers', [at('expression')]],
    ['SELECT id::text FROM customers', []],
    // aggregates and window functions
    ["SELECT string_agg(ssn, ',') FROM customers", [at('aggregate')]],
    ['SELECT array_agg(ssn) FROM customers', [at('aggregate')]],
    ['SELECT max(ssn) FROM customers', [at('aggregate')]],
    ['SELECT count(DISTINCT ssn) FROM customers', [at('aggregate')]],
    ['SELECT JSON_ARRAYAGG(ssn) FROM customers', [at('aggregate')]],
    ['SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY ssn) FROM customers', [at('aggregate')]],
    ['SELECT lag(ssn) OVER (ORDER BY id) FROM customers', [at('aggregate')]],
    ['SELECT first_value(ssn) OVER w FROM customers WINDOW w AS (ORDER BY id)', [at('aggregate')]],
    ['SELECT count(*) FROM customers', []],
    ['SELECT max(id) FROM customers', []],
    // an unknown function gets the value: it may store it or echo it
    ['SELECT launder(ssn) FROM customers', [at('function-argument')]],
    ['SELECT public.launder(upper(ssn)) FROM customers', [at('function-argument')]],
    ['SELECT id FROM customers WHERE launder(ssn)', [at('function-argument')]],
    ['SELECT launder(name) FROM customers', []],
  ])('%s', (sql, expected) => {
    expect(leaks(sql)).toEqual(expected);
  });
});

describe('predicates, orderings and groupings (oracles)', () => {
  it.each<Case>([
    ["SELECT id FROM customers WHERE ssn = '123-45-6789'", [at('predicate')]],
    ["SELECT id FROM customers WHERE ssn LIKE '1%'", [at('predicate')]],
    ["SELECT id FROM customers WHERE ssn IN ('1', '2')", [at('predicate')]],
    ["SELECT id FROM customers WHERE ssn BETWEEN '1' AND '2'", [at('predicate')]],
    ["SELECT id FROM customers WHERE ssn > '5'", [at('predicate')]],
    ["SELECT count(*) FROM customers WHERE left(ssn, 1) = '9'", [at('predicate')]],
    ['SELECT o.id FROM orders o JOIN customers c ON c.ssn = o.ref', [at('predicate')]],
    ['SELECT o.id FROM orders o JOIN customers c USING (ssn)', [at('predicate')]],
    ['SELECT ssn FROM customers c FULL JOIN customers d USING (ssn)', [at('predicate')]],
    ['SELECT id FROM customers NATURAL JOIN orders', [at('predicate')]],
    ["SELECT region FROM customers GROUP BY region HAVING max(ssn) > '5'", [at('predicate')]],
    ["SELECT count(*) FILTER (WHERE ssn LIKE '1%') FROM customers", [at('predicate')]],
    ['SELECT id FROM customers LIMIT (SELECT length(ssn) FROM customers LIMIT 1)', [at('expression')]],
    ["DELETE FROM customers WHERE ssn = '123-45-6789'", [at('predicate')]],
    ["UPDATE customers SET name = 'x' WHERE ssn LIKE '1%'", [at('predicate')]],
    ['SELECT id FROM customers WHERE id = 1', []],
    ['SELECT o.id FROM orders o JOIN customers c ON c.id = o.cid', []],
    // ordering
    ['SELECT id FROM customers ORDER BY ssn', [at('ordering')]],
    ['SELECT ssn FROM customers ORDER BY 1', [at('ordering')]],
    ['SELECT ssn AS x FROM customers ORDER BY x', [at('ordering')]],
    ['SELECT * FROM customers ORDER BY 3', [at('ordering')]],
    ['SELECT id, * FROM customers ORDER BY 1', []],
    ['SELECT * FROM customers GROUP BY 1, 2, 3', [at('grouping')]],
    ['SELECT DISTINCT ON (ssn) id FROM customers', [at('ordering')]],
    ['SELECT row_number() OVER (ORDER BY ssn) FROM customers', [at('ordering')]],
    ["SELECT string_agg(name, ',' ORDER BY ssn) FROM customers", [at('ordering')]],
    ['SELECT id FROM customers ORDER BY id', []],
    // grouping
    ['SELECT count(*) FROM customers GROUP BY ssn', [at('grouping')]],
    ['SELECT ssn, count(*) FROM customers GROUP BY 1', [at('grouping')]],
    ['SELECT count(*) FROM customers GROUP BY ROLLUP (ssn)', [at('grouping')]],
    ['SELECT DISTINCT ssn FROM customers', [at('grouping')]],
    ['SELECT sum(id) OVER (PARTITION BY ssn) FROM customers', [at('grouping')]],
    ['SELECT count(*) OVER w FROM customers WINDOW w AS (PARTITION BY ssn)', [at('grouping')]],
    ['SELECT region, count(*) FROM customers GROUP BY region', []],
  ])('%s', (sql, expected) => {
    expect(leaks(sql)).toEqual(expected);
  });
});

describe('whole-row references', () => {
  it.each<Case>([
    ['SELECT c FROM customers c', [at('whole-row')]],
    ['SELECT customers FROM customers', [at('whole-row')]],
    ['SELECT row_to_json(c) FROM customers c', [at('whole-row')]],
    ['SELECT to_jsonb(c) FROM customers c', [at('whole-row')]],
    ['SELECT to_json(c.*) FROM customers c', [at('whole-row')]],
    ['SELECT json_agg(c) FROM customers c', [at('whole-row')]],
    ['SELECT hstore(c) FROM customers c', [at('whole-row')]],
    ['SELECT ROW(c.*) FROM customers c', [at('whole-row')]],
    ['SELECT (c).* FROM customers c', [at('whole-row')]],
    [
      "SELECT * FROM customers c, JSON_TABLE(to_jsonb(c), '$' COLUMNS (s text PATH '$.ssn')) jt",
      [at('whole-row')],
    ],
    ['SELECT c::text FROM customers c', [at('whole-row')]],
    ['SELECT (c).ssn FROM customers c', [at('whole-row')]],
    ["SELECT id FROM customers c WHERE c = ROW(1, 'a', 'b')::customers", [at('whole-row')]],
    ['SELECT c1.id FROM customers c1, customers c2 WHERE c1 = c2', [at('whole-row')]],
    ['SELECT s FROM (SELECT ssn FROM customers) s', [at('whole-row')]],
    ['SELECT o FROM orders o', []],
    ['SELECT row_to_json(o) FROM orders o', []],
  ])('%s', (sql, expected) => {
    expect(leaks(sql)).toEqual(expected);
  });
});

describe('subqueries and CTEs', () => {
  it.each<Case>([
    ['SELECT (SELECT ssn FROM customers LIMIT 1)', [at('subquery-expression')]],
    ['SELECT id FROM orders WHERE ref IN (SELECT ssn FROM customers)', [at('subquery-expression')]],
    ['SELECT id FROM orders WHERE ref = ANY (SELECT ssn FROM customers)', [at('subquery-expression')]],
    ['SELECT ARRAY(SELECT ssn FROM customers)', [at('subquery-expression')]],
    ["SELECT EXISTS (SELECT 1 FROM customers WHERE ssn = '1')", [at('predicate')]],
    ['SELECT id FROM orders WHERE EXISTS (SELECT * FROM customers)', []],
    ['SELECT id FROM orders WHERE cid IN (SELECT id FROM customers)', []],
    // subqueries in FROM and CTEs pass plain references through (origins are followed)
    ['SELECT s.ssn FROM (SELECT ssn FROM customers) s', []],
    ['SELECT x FROM (SELECT ssn AS x FROM customers) s', []],
    ['SELECT * FROM (SELECT * FROM customers) s', []],
    ['SELECT s.b FROM (SELECT id, ssn FROM customers) AS s(a, b)', []],
    ['WITH x AS (SELECT ssn FROM customers) SELECT ssn FROM x', []],
    ['WITH x(y) AS (SELECT ssn FROM customers) SELECT y FROM x', []],
    ['WITH d AS (UPDATE customers SET name = name WHERE id = 1 RETURNING ssn) SELECT ssn FROM d', []],
    ['SELECT x.ssn FROM customers c, LATERAL (SELECT c.ssn) x', []],
    // … but not an expression over them, in the outer or the inner query
    ['SELECT upper(s.ssn) FROM (SELECT ssn FROM customers) s', [at('expression')]],
    ['SELECT s.u FROM (SELECT upper(ssn) AS u FROM customers) s', [at('expression')]],
    ['WITH x AS (SELECT ssn FROM customers) SELECT upper(ssn) FROM x', [at('expression')]],
    ["WITH x(y) AS (SELECT ssn FROM customers) SELECT id FROM x, orders WHERE y = '1'", [at('predicate')]],
    ["SELECT name FROM (SELECT * FROM customers) s WHERE s.ssn = '1'", [at('predicate')]],
    ['SELECT upper(b) FROM (SELECT id, ssn FROM customers) AS s(a, b)', [at('expression')]],
    ['SELECT upper(a) FROM customers AS c(a, b)', [at('expression')]],
    ['SELECT x FROM customers c, LATERAL (VALUES (c.ssn)) v(x)', [at('expression')]],
    // a CTE's own name is not the table
    ['WITH customers AS (SELECT 1 AS ssn) SELECT upper(ssn) FROM customers', []],
    ['WITH customers AS (SELECT ssn FROM customers) SELECT upper(ssn) FROM customers', [at('expression')]],
  ])('%s', (sql, expected) => {
    expect(leaks(sql)).toEqual(expected);
  });
});

describe('set operations', () => {
  it.each<Case>([
    ['SELECT ssn FROM customers UNION SELECT ssn FROM customers', [at('set-operation')]],
    ['SELECT ssn FROM customers UNION ALL SELECT ref FROM orders', [at('set-operation')]],
    ['SELECT name FROM customers INTERSECT SELECT ssn FROM customers', [at('set-operation')]],
    ['SELECT * FROM customers EXCEPT SELECT * FROM customers WHERE id = 1', [at('set-operation')]],
    ['SELECT s.ssn FROM (SELECT ssn FROM customers UNION SELECT ssn FROM archive) s', [at('set-operation')]],
    [
      'WITH RECURSIVE r AS (SELECT ssn FROM customers UNION ALL SELECT ssn FROM r) SELECT * FROM r',
      [at('set-operation')],
    ],
    ['SELECT name FROM customers UNION SELECT ref FROM orders', []],
    ['SELECT id FROM customers UNION SELECT id FROM orders ORDER BY 1', []],
  ])('%s', (sql, expected) => {
    expect(leaks(sql)).toEqual(expected);
  });
});

describe('writes, RETURNING and copies into other tables', () => {
  it.each<Case>([
    // RETURNING: origins are reported for plain columns, so the gateway can mask them (maskable)
    ['DELETE FROM customers WHERE id = 1 RETURNING ssn', [at('returning')]],
    ['DELETE FROM customers WHERE id = 1 RETURNING *', [at('returning')]],
    ["UPDATE customers SET name = 'x' WHERE id = 1 RETURNING old.ssn", [at('returning')]],
    ["INSERT INTO customers (id, name) VALUES (1, 'x') RETURNING ssn", [at('returning')]],
    [
      'MERGE INTO customers c USING src s ON c.id = s.id WHEN MATCHED THEN UPDATE SET name = s.name RETURNING c.ssn',
      [at('returning')],
    ],
    ['DELETE FROM customers WHERE id = 1 RETURNING upper(ssn)', [at('expression')]],
    ['DELETE FROM customers WHERE id = 1 RETURNING customers', [at('whole-row')]],
    ['DELETE FROM orders o USING customers c WHERE c.id = o.cid RETURNING *', [at('returning')]],
    ['DELETE FROM customers WHERE id = 1 RETURNING id', []],
    // copying the value somewhere the rules do not cover
    ['UPDATE customers SET name = ssn WHERE id = 1', [at('data-copy')]],
    ['UPDATE customers SET name = upper(ssn) WHERE id = 1', [at('data-copy')]],
    ['UPDATE customers SET (name) = ROW(ssn) WHERE id = 1', [at('data-copy')]],
    ['UPDATE orders o SET ref = c.ssn FROM customers c WHERE c.id = o.cid', [at('data-copy')]],
    [
      'UPDATE orders SET (ref, note) = (SELECT ssn, name FROM customers LIMIT 1) WHERE id = 1',
      [at('data-copy')],
    ],
    ['INSERT INTO log (msg) SELECT ssn FROM customers', [at('data-copy')]],
    ['INSERT INTO log SELECT upper(ssn) FROM customers', [at('data-copy')]],
    ['INSERT INTO log VALUES ((SELECT ssn FROM customers LIMIT 1))', [at('subquery-expression')]],
    ['CREATE TABLE stash AS SELECT ssn FROM customers', [at('data-copy')]],
    ['CREATE TABLE stash AS SELECT * FROM customers', [at('data-copy')]],
    ['CREATE MATERIALIZED VIEW stash AS SELECT ssn FROM customers', [at('data-copy')]],
    ['SELECT ssn INTO stash FROM customers', [at('data-copy')]],
    [
      'MERGE INTO log l USING customers c ON l.id = c.id WHEN NOT MATCHED THEN INSERT (msg) VALUES (c.ssn)',
      [at('data-copy')],
    ],
    [
      'MERGE INTO log l USING customers c ON l.id = c.id WHEN MATCHED THEN UPDATE SET msg = c.ssn',
      [at('data-copy')],
    ],
    [
      "MERGE INTO log l USING customers c ON l.ref = c.ssn WHEN MATCHED THEN UPDATE SET msg = 'x'",
      [at('predicate')],
    ],
    ['INSERT INTO log (msg) SELECT name FROM customers', []],
    ['CREATE TABLE stash AS SELECT id, name FROM customers', []],
    // writing a masked column: a unique-constraint error answers "does this value exist?"
    ["UPDATE customers SET ssn = '123-45-6789' WHERE id = 1", [at('write-oracle')]],
    ['UPDATE customers SET ssn = ssn WHERE id = 1', [at('write-oracle')]],
    ['UPDATE customers SET ssn = upper(ssn) WHERE id = 1', [at('expression'), at('write-oracle')]],
    ["INSERT INTO customers (id, ssn) VALUES (1, '123-45-6789')", [at('write-oracle')]],
    ["INSERT INTO customers VALUES (1, 'a', '123-45-6789')", [at('write-oracle')]],
    ['INSERT INTO customers (id, name) VALUES (1, $1)', []],
    [
      'INSERT INTO customers (id, ssn) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET name = excluded.ssn',
      [at('data-copy'), at('write-oracle')],
    ],
    ['COPY customers (id, ssn) FROM STDIN', [at('write-oracle')]],
    ['COPY customers (id, name) FROM STDIN', []],
  ])('%s', (sql, expected) => {
    expect(leaks(sql)).toEqual(expected);
  });
});

describe('COPY … TO (maskable by column position)', () => {
  it('reports the table copy with every masked column', () => {
    expect(leaks('COPY customers TO STDOUT')).toEqual([at('copy')]);
    expect(leaks('COPY orders TO STDOUT')).toEqual([]);
  });

  it('tells the position of the masked column when the text says it', () => {
    const found = findMaskingLeaks(statement('COPY customers (id, name, ssn) TO STDOUT'), RULES);
    expect(found).toEqual([
      {
        column: SSN,
        how: 'copy',
        detail: `${SSN} is exported by COPY customers TO as column 3`,
        outputColumn: 3,
      },
    ]);
    const query = findMaskingLeaks(
      statement('COPY (SELECT id, ssn FROM customers WHERE id < 10) TO STDOUT'),
      RULES,
    );
    expect(query.map((l) => [l.how, l.outputColumn])).toEqual([['copy', 2]]);
    const star = findMaskingLeaks(statement('COPY (SELECT * FROM customers) TO STDOUT'), RULES);
    expect(star.map((l) => [l.how, l.outputColumn])).toEqual([['copy', undefined]]);
  });

  it('still reports expressions inside the copied query as hard leaks', () => {
    expect(leaks('COPY (SELECT upper(ssn) FROM customers) TO STDOUT')).toEqual([at('expression')]);
    expect(leaks("COPY (SELECT id FROM customers WHERE ssn LIKE '1%') TO STDOUT")).toEqual([at('predicate')]);
  });

  it('exports which kinds the gateway can still mask', () => {
    expect([...MASKABLE_LEAK_KINDS].sort()).toEqual(['copy', 'returning']);
    expect(isMaskableLeak('copy')).toBe(true);
    expect(isMaskableLeak('returning')).toBe(true);
    expect(isMaskableLeak('expression')).toBe(false);
    expect(isMaskableLeak('whole-row')).toBe(false);
  });
});

describe('definitions and side channels', () => {
  it.each<Case>([
    ['CREATE VIEW v AS SELECT ssn FROM customers', [at('view-definition')]],
    ['CREATE VIEW v AS SELECT * FROM customers', [at('view-definition')]],
    ['CREATE VIEW v AS SELECT id, name FROM customers', []],
    ['CREATE RULE r AS ON INSERT TO orders DO ALSO SELECT ssn FROM customers', [at('view-definition')]],
    [
      'CREATE FUNCTION f() RETURNS text LANGUAGE sql BEGIN ATOMIC SELECT ssn FROM customers LIMIT 1; END',
      [at('view-definition')],
    ],
    ['CREATE UNIQUE INDEX ON customers (ssn)', [at('expression')]],
    ['CREATE INDEX ON customers (lower(ssn))', [at('expression')]],
    ['ALTER TABLE customers ADD CONSTRAINT u UNIQUE (ssn)', [at('expression')]],
    ["ALTER TABLE customers ADD CONSTRAINT c CHECK (ssn NOT LIKE '9%')", [at('expression')]],
    ['ALTER TABLE customers ALTER COLUMN ssn TYPE int USING ssn::int', [at('cast')]],
    ["CREATE POLICY p ON customers USING (ssn LIKE '1%')", [at('expression')]],
    ['CREATE STATISTICS s ON ssn, name FROM customers', [at('expression')]],
    ['CREATE INDEX ON customers (name)', []],
    ['SELECT * FROM pg_stats', [at('statistics')]],
    ['SELECT * FROM pg_stats_ext', [at('statistics')]],
    ["SELECT cursor_to_xml('c', 10, true, false, '')", [at('dynamic-sql')]],
    ["SELECT * FROM ts_stat('SELECT v FROM t')", [at('dynamic-sql')]],
    ["SELECT most_common_vals FROM pg_catalog.pg_stats WHERE attname = 'ssn'", [at('statistics')]],
    ["SELECT query_to_xml('SELECT ssn FROM customers', true, false, '')", [at('dynamic-sql')]],
    ["SELECT table_to_xml('customers', true, false, '')", [at('dynamic-sql')]],
    ['SELECT upper(ssn) FROM customers WHERE id = 1; ', [at('expression')]],
    ["EXPLAIN SELECT id FROM customers WHERE ssn = '1'", [at('predicate')]],
    ['PREPARE p AS SELECT upper(ssn) FROM customers', [at('expression')]],
    ['DECLARE cur CURSOR FOR SELECT ssn::text FROM customers', [at('cast')]],
    ['CALL archive(1)', []],
  ])('%s', (sql, expected) => {
    expect(leaks(sql)).toEqual(expected);
  });
});

describe('name resolution', () => {
  it('takes an unqualified name to be the masked column if any relation in scope has one', () => {
    expect(leaks('SELECT upper(ssn) FROM orders, customers')).toEqual([at('expression')]);
    expect(leaks('SELECT upper(ssn) FROM orders')).toEqual([]);
    expect(leaks('SELECT id FROM orders o WHERE EXISTS (SELECT 1 FROM customers WHERE ssn = o.ref)')).toEqual(
      [at('predicate')],
    );
    // correlated: the inner query's unqualified ssn may be the outer customers.ssn
    expect(leaks('SELECT id FROM customers WHERE EXISTS (SELECT 1 FROM orders WHERE ref = ssn)')).toEqual([
      at('predicate'),
    ]);
  });

  it('resolves qualified references through aliases', () => {
    expect(leaks('SELECT upper(o.ssn) FROM customers c JOIN orders o ON o.cid = c.id')).toEqual([]);
    expect(leaks('SELECT upper(c.ssn) FROM customers c JOIN orders o ON o.cid = c.id')).toEqual([
      at('expression'),
    ]);
    expect(leaks('SELECT upper(j.ssn) FROM (customers c JOIN orders o ON o.cid = c.id) AS j')).toEqual([
      at('expression'),
    ]);
    expect(leaks('SELECT upper(j.x) FROM (customers c JOIN orders o ON o.cid = c.id) AS j(a, b, x)')).toEqual(
      [at('expression')],
    );
    expect(leaks('SELECT upper(public.customers.ssn) FROM public.customers')).toEqual([at('expression')]);
    expect(leaks('SELECT upper(other.customers.ssn) FROM other.customers')).toEqual([]);
  });

  it('reads a reference to a column of a composite column as an expression over it', () => {
    expect(leaks('SELECT ssn.part FROM customers')).toEqual([at('expression')]);
  });

  it('uses the default schemas for unqualified tables', () => {
    expect(leaks('SELECT upper(ssn) FROM sales.customers')).toEqual([]);
    const salesRules = [{ schema: 'sales', table: 'customers', column: 'ssn' }];
    expect(leaks('SELECT upper(ssn) FROM customers', salesRules)).toEqual([]);
    expect(leaks('SELECT upper(ssn) FROM customers', salesRules, ['public', 'sales'])).toEqual([
      'expression:sales.customers.ssn',
    ]);
    expect(leaks('SELECT upper(ssn) FROM customers', salesRules, ['*'])).toEqual([
      'expression:sales.customers.ssn',
    ]);
  });

  it('matches rule globs per segment, case-insensitively', () => {
    const wild = [{ schema: '*', table: '*', column: 'ssn' }];
    expect(leaks('SELECT upper(ssn) FROM hr.employees', wild)).toEqual(['expression:hr.employees.ssn']);
    expect(leaks('SELECT upper(e.ssn) FROM employees e', wild)).toEqual(['expression:public.employees.ssn']);
    const prefixed = [{ schema: 'public', table: 'cust*', column: 'SSN' }];
    expect(leaks('SELECT upper(ssn) FROM customers', prefixed)).toEqual([at('expression')]);
    const allColumns = [{ schema: 'public', table: 'customers', column: '*' }];
    expect(leaks('SELECT upper(name) FROM customers', allColumns)).toEqual([
      'expression:public.customers.name',
    ]);
    expect(leaks('SELECT c FROM customers c', allColumns)).toEqual(['whole-row:public.customers.*']);
    expect(leaks('SELECT name FROM customers', allColumns)).toEqual([]);
  });

  it('does not mistake function results for masked columns, but flags look-alikes', () => {
    expect(leaks('SELECT * FROM get_customers()')).toEqual([]);
    expect(leaks('SELECT ssn FROM get_customers()')).toEqual([at('unknown-relation')]);
    expect(leaks('SELECT ssn FROM generate_series(1, 3) AS ssn')).toEqual([]);
  });
});

describe('analyzeMasking', () => {
  it('lists untrusted functions anywhere, FROM and CALL included, and not built-ins', () => {
    const fromItem = analyzeMasking(
      statement('SELECT upper(x.name), now() FROM get_customers() x, unnest(ARRAY[1]) u'),
      RULES,
    );
    expect(fromItem.untrustedFunctions).toEqual(['get_customers']);
    expect(analyzeMasking(statement('CALL archive(1)'), RULES).untrustedFunctions).toEqual(['archive']);
    expect(
      analyzeMasking(statement('SELECT pg_catalog.upper(name), public.upper(name) FROM t'), RULES)
        .untrustedFunctions,
    ).toEqual(['public.upper']);
  });

  it('lists the relations it saw, for the gateway to resolve views and partitions', () => {
    const { relations } = analyzeMasking(
      statement('WITH x AS (SELECT * FROM v_customers) SELECT * FROM x JOIN billing.cards c ON true'),
      RULES,
    );
    expect(relations).toEqual([{ name: 'v_customers' }, { schema: 'billing', name: 'cards' }]);
  });

  it('takes a StatementAnalysis or its tree', () => {
    const st = statement('SELECT upper(ssn) FROM customers');
    expect(findMaskingLeaks(st.tree, RULES)).toEqual(findMaskingLeaks(st, RULES));
  });

  it('reports nothing without rules, and fails closed on a bad tree', () => {
    expect(findMaskingLeaks(statement('SELECT upper(ssn) FROM customers'), [])).toEqual([]);
    expect(
      findMaskingLeaks({ tree: 'nonsense' } as unknown as StatementAnalysis, RULES).map((l) => l.how),
    ).toEqual(['analysis-failed']);
  });

  it('gives one sentence per leak that names the column and the clause', () => {
    const [leak] = findMaskingLeaks(statement("SELECT id FROM customers WHERE ssn LIKE '1%'"), RULES);
    expect(leak?.detail).toBe(`${SSN} is tested in WHERE, which makes the result an oracle for its value`);
  });
});
