// Attacks on PostgreSQL masking, each checked to reveal a masked value when sent straight to the
// server (else it proves nothing) and run through the gateway, where no byte of it may arrive in
// any encoding. Table customers(id, name, email, ssn, note) with ssn masked (redact).
// Setup statements run directly as the tables' owner before both runs; the agent is a member of
// the owner role, so whatever its policy lets through, the server would execute.
import type { AttackStep } from './session.js';

export const SECRETS = ['K7Q2-ZX91-PLM4', 'J3W8-RT55-QNV6'] as const;

export type AttackClass =
  | 'dynamic-sql'
  | 'copy'
  | 'name-namespace'
  | 'grammar'
  | 'function-identity'
  | 'rename'
  | 'search-path'
  | 'error-text'
  | 'opaque-code'
  | 'expression'
  | 'whole-row';

export interface Attack {
  id: string;
  class: AttackClass;
  setup?: string;
  steps: AttackStep[];
}

const q = (sql: string): AttackStep => ({ sql });
const a = (id: string, cls: AttackClass, steps: AttackStep[], setup?: string): Attack => ({
  id,
  class: cls,
  steps,
  ...(setup ? { setup } : {}),
});

const plpgsqlReturningSsn = (fn: string) =>
  `CREATE FUNCTION ${fn}() RETURNS text LANGUAGE plpgsql AS $f$ BEGIN RETURN (SELECT string_agg(ssn, ',') FROM customers); END $f$`;

export const ATTACKS: readonly Attack[] = [
  // 1. Functions that run SQL given as text.
  a('ts_rewrite', 'dynamic-sql', [
    q(
      `SELECT ts_rewrite('a'::tsquery, 'SELECT ''a''::tsquery, to_tsquery(''simple'', replace(ssn, ''-'', '''')) FROM customers')`,
    ),
  ]),
  a('query_to_xml', 'dynamic-sql', [q(`SELECT query_to_xml('SELECT ssn FROM customers', true, false, '')`)]),
  a('table_to_xml', 'dynamic-sql', [q(`SELECT table_to_xml('customers', true, false, '')`)]),
  a('cursor_to_xml', 'dynamic-sql', [
    q(
      `BEGIN; DECLARE cx CURSOR FOR SELECT ssn FROM customers; SELECT cursor_to_xml('cx', 10, true, false, ''); COMMIT`,
    ),
  ]),
  a('database_to_xml', 'dynamic-sql', [q(`SELECT schema_to_xml('public', true, false, '')`)]),

  // 2. COPY masking by position.
  a('copy-delimiter-in-data', 'copy', [q(`COPY customers TO STDOUT WITH (DELIMITER ' ')`)]),
  a('copy-delimiter-dash', 'copy', [q(`COPY customers (ssn, name) TO STDOUT WITH (DELIMITER '-')`)]),
  a('copy-two-in-one-string', 'copy', [
    q(`COPY (SELECT 1, 2) TO STDOUT; COPY (SELECT id, ssn FROM customers) TO STDOUT`),
  ]),
  a('copy-extended', 'copy', [
    { extended: [{ parse: { text: 'COPY customers TO STDOUT' } }, { bind: {} }, { execute: {} }] },
  ]),
  a('copy-binary', 'copy', [q(`COPY customers TO STDOUT WITH (FORMAT binary)`)]),
  a('copy-query-expression', 'copy', [q(`COPY (SELECT lower(ssn) FROM customers) TO STDOUT`)]),
  a('copy-csv-quote', 'copy', [q(`COPY customers TO STDOUT WITH (FORMAT csv, QUOTE '-', FORCE_QUOTE *)`)]),

  // 3. SQL-level and protocol-level names are one namespace.
  a('sql-prepare-protocol-execute', 'name-namespace', [
    q(`PREPARE leak AS SELECT ssn FROM customers`),
    { extended: [{ bind: { statement: 'leak' } }, { execute: {} }] },
  ]),
  a('sql-prepare-protocol-execute-limit', 'name-namespace', [
    q(`PREPARE leak2 AS SELECT ssn FROM customers`),
    { extended: [{ bind: { statement: 'leak2', portal: 'pp' } }, { execute: { portal: 'pp', rows: 1 } }] },
  ]),
  a('declare-cursor-protocol-execute', 'name-namespace', [
    q(`BEGIN; DECLARE cur CURSOR FOR SELECT ssn FROM customers`),
    { extended: [{ execute: { portal: 'cur' } }] },
  ]),
  a('declare-cursor-protocol-execute-limit', 'name-namespace', [
    q(`BEGIN; DECLARE cur2 CURSOR FOR SELECT ssn FROM customers`),
    { extended: [{ execute: { portal: 'cur2', rows: 1 } }] },
  ]),
  a('deallocate-reprepare', 'name-namespace', [
    {
      extended: [
        { parse: { name: 'p1', text: 'SELECT id FROM customers' } },
        { describe: { type: 'S', name: 'p1' } },
      ],
    },
    q(`DEALLOCATE p1; PREPARE p1 AS SELECT ssn FROM customers`),
    { extended: [{ bind: { statement: 'p1' } }, { execute: {} }] },
  ]),
  a('fetch-from-cursor', 'name-namespace', [
    q(`BEGIN; DECLARE cur3 CURSOR FOR SELECT ssn FROM customers; FETCH ALL FROM cur3`),
  ]),

  // 4. The parser's grammar is not the server's (names that are special syntax in newer grammars).
  a(
    'json_scalar-user-function',
    'grammar',
    [q(`SELECT json_scalar(1)`)],
    `CREATE FUNCTION json_scalar(int) RETURNS text LANGUAGE sql AS 'SELECT string_agg(ssn, '','') FROM customers'`,
  ),
  a(
    'json_serialize-user-function',
    'grammar',
    [q(`SELECT json_serialize(1)`)],
    `CREATE FUNCTION json_serialize(int) RETURNS text LANGUAGE sql AS 'SELECT string_agg(ssn, '','') FROM customers'`,
  ),
  a(
    'merge_action-user-function',
    'grammar',
    [q(`SELECT merge_action()`)],
    `CREATE FUNCTION merge_action() RETURNS text LANGUAGE sql AS 'SELECT string_agg(ssn, '','') FROM customers'`,
  ),

  // 5. Functions, operators and casts trusted by name.
  a(
    'user-upper-int',
    'function-identity',
    [q(`SELECT upper(1)`)],
    `CREATE FUNCTION public.upper(int) RETURNS text LANGUAGE sql AS 'SELECT string_agg(ssn, '','') FROM customers'`,
  ),
  a(
    'user-version-int',
    'function-identity',
    [q(`SELECT version(1)`)],
    `CREATE FUNCTION public.version(int) RETURNS text LANGUAGE sql AS 'SELECT string_agg(ssn, '','') FROM customers'`,
  ),
  a(
    'user-aggregate-every',
    'function-identity',
    [q(`SELECT every(id) FROM customers`)],
    `CREATE FUNCTION leak_sfunc(text, int) RETURNS text LANGUAGE sql AS 'SELECT string_agg(ssn, '','') FROM customers';
     CREATE AGGREGATE every(int) (SFUNC = leak_sfunc, STYPE = text)`,
  ),
  a(
    'search-path-lower',
    'function-identity',
    [q(`SET search_path = adv_evil, pg_catalog, public; SELECT lower('x')`)],
    `CREATE SCHEMA IF NOT EXISTS adv_evil;
     CREATE FUNCTION adv_evil.lower(text) RETURNS text LANGUAGE sql AS 'SELECT string_agg(ssn, '','') FROM public.customers'`,
  ),
  a(
    'user-operator',
    'function-identity',
    [q(`SELECT 1 ### 2`)],
    `CREATE FUNCTION leak_op(int, int) RETURNS text LANGUAGE sql AS 'SELECT string_agg(ssn, '','') FROM customers';
     CREATE OPERATOR ### (LEFTARG = int, RIGHTARG = int, FUNCTION = leak_op)`,
  ),
  a(
    'user-cast',
    'function-identity',
    [q(`SELECT 1::adv_money`)],
    `CREATE TYPE adv_money AS (v text);
     CREATE FUNCTION leak_cast(int) RETURNS adv_money LANGUAGE sql AS 'SELECT row(string_agg(ssn, '',''))::adv_money FROM customers';
     CREATE CAST (int AS adv_money) WITH FUNCTION leak_cast(int)`,
  ),

  // 6. Masking rules matched by name.
  a('rename-column', 'rename', [
    q(`ALTER TABLE customers RENAME COLUMN ssn TO s2`),
    q(`SELECT s2 FROM customers`),
  ]),
  a('rename-table', 'rename', [q(`ALTER TABLE customers RENAME TO clients`), q(`SELECT ssn FROM clients`)]),
  a('set-schema', 'rename', [
    q(`CREATE SCHEMA IF NOT EXISTS adv_moved; ALTER TABLE customers SET SCHEMA adv_moved`),
    q(`SELECT ssn FROM adv_moved.customers`),
  ]),
  a('inherit-into-new-parent', 'rename', [
    q(`CREATE TABLE adv_parent (ssn text); ALTER TABLE customers INHERIT adv_parent`),
    q(`SELECT ssn FROM adv_parent`),
  ]),
  a('create-view-in-session', 'rename', [
    q(`CREATE VIEW adv_v AS SELECT upper(ssn) AS u FROM customers`),
    q(`SELECT u FROM adv_v`),
  ]),

  // 7. Relations resolved with another search_path than the session's.
  a(
    'shadow-table-in-user-schema',
    'search-path',
    [q(`SET search_path = public; SELECT upper(ssn) FROM customers`)],
    `CREATE SCHEMA IF NOT EXISTS adv_agent;
     CREATE TABLE adv_agent.customers (id int, ssn text)`,
  ),

  // 8. Error text carries values.
  a('cast-error-message', 'error-text', [q(`SELECT ssn::int FROM customers`)]),
  a('json-cast-error', 'error-text', [q(`SELECT replace(ssn, '-', '')::json FROM customers`)]),
  a('check-constraint-detail', 'error-text', [
    q(`CREATE TEMP TABLE adv_t (s text CHECK (s = 'x')); INSERT INTO adv_t SELECT ssn FROM customers`),
  ]),
  a('unique-detail', 'error-text', [
    q(
      `CREATE TEMP TABLE adv_u (s text UNIQUE); INSERT INTO adv_u SELECT ssn FROM customers; INSERT INTO adv_u SELECT ssn FROM customers`,
    ),
  ]),
  a('partition-key-detail', 'error-text', [
    q(
      `CREATE TEMP TABLE adv_p (s text) PARTITION BY LIST (s); CREATE TEMP TABLE adv_p1 PARTITION OF adv_p FOR VALUES IN ('x'); INSERT INTO adv_p SELECT ssn FROM customers`,
    ),
  ]),
  a('raise-in-do', 'error-text', [
    q(`DO $$ BEGIN RAISE EXCEPTION 'v: %', (SELECT string_agg(ssn, ',') FROM customers); END $$`),
  ]),

  // 9. Code the gateway cannot read.
  a('do-notice', 'opaque-code', [
    q(`DO $$ BEGIN RAISE NOTICE '%', (SELECT string_agg(ssn, ',') FROM customers); END $$`),
  ]),
  a('do-warning-detail', 'opaque-code', [
    q(`DO $$ BEGIN RAISE WARNING 'x' USING DETAIL = (SELECT string_agg(ssn, ',') FROM customers); END $$`),
  ]),
  a('do-assert', 'opaque-code', [
    q(`DO $$ BEGIN ASSERT false, (SELECT string_agg(ssn, ',') FROM customers); END $$`),
  ]),
  a('do-set-config', 'opaque-code', [
    q(
      `DO $$ BEGIN PERFORM set_config('application_name', (SELECT string_agg(ssn, ',') FROM customers), false); END $$`,
    ),
  ]),
  a('set-config-select', 'opaque-code', [
    q(`SELECT set_config('application_name', (SELECT string_agg(ssn, ',') FROM customers), false)`),
  ]),
  a('do-notify', 'opaque-code', [
    q(`LISTEN adv_chan`),
    q(`DO $$ BEGIN PERFORM pg_notify('adv_chan', (SELECT string_agg(ssn, ',') FROM customers)); END $$`),
  ]),
  a('notify-select', 'opaque-code', [
    q(`LISTEN adv_chan2`),
    q(`SELECT pg_notify('adv_chan2', ssn) FROM customers`),
  ]),
  a('do-temp-table', 'opaque-code', [
    q(`CREATE TEMP TABLE adv_tt (s text)`),
    q(`DO $$ BEGIN INSERT INTO adv_tt SELECT ssn FROM customers; END $$`),
    q(`SELECT s FROM adv_tt`),
  ]),
  a('insert-select-temp', 'opaque-code', [
    q(`CREATE TEMP TABLE adv_tt2 AS SELECT ssn AS s FROM customers`),
    q(`SELECT s FROM adv_tt2`),
  ]),
  a('plpgsql-function', 'opaque-code', [q(`SELECT adv_f1()`)], plpgsqlReturningSsn('adv_f1')),
  a(
    'plpgsql-execute-concat',
    'opaque-code',
    [q(`SELECT adv_f2()`)],
    `CREATE FUNCTION adv_f2() RETURNS text LANGUAGE plpgsql AS $f$ DECLARE r text; BEGIN
       EXECUTE 'SELECT string_agg(' || 's' || 'sn, '','') FROM ' || 'cust' || 'omers' INTO r; RETURN r; END $f$`,
  ),
  a(
    'security-definer',
    'opaque-code',
    [q(`SELECT adv_f3()`)],
    `${plpgsqlReturningSsn('adv_f3')}; ALTER FUNCTION adv_f3() SECURITY DEFINER`,
  ),
  a(
    'function-over-view',
    'opaque-code',
    [q(`SELECT adv_f4()`)],
    `CREATE VIEW adv_v4 AS SELECT ssn FROM customers;
     CREATE FUNCTION adv_f4() RETURNS text LANGUAGE sql AS 'SELECT string_agg(ssn, '','') FROM adv_v4'`,
  ),
  a(
    'matview-over-function',
    'opaque-code',
    [q(`SELECT * FROM adv_mv`)],
    `${plpgsqlReturningSsn('adv_f5')}; CREATE MATERIALIZED VIEW adv_mv AS SELECT adv_f5() AS v`,
  ),
  a(
    'trigger-notice',
    'opaque-code',
    [q(`UPDATE orders SET status = 'x' WHERE id = 1`)],
    `CREATE FUNCTION adv_trg() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN
       RAISE NOTICE '%', (SELECT string_agg(ssn, ',') FROM customers); RETURN NEW; END $f$;
     CREATE TRIGGER adv_trg BEFORE UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION adv_trg()`,
  ),
  a(
    'rule-on-select-view',
    'opaque-code',
    [q(`SELECT * FROM adv_rv`)],
    `CREATE VIEW adv_rv AS SELECT ssn AS v FROM customers`,
  ),
  a('unicode-escaped-identifier', 'opaque-code', [q(`SELECT upper(U&"\\0073sn") FROM customers`)]),
  a('large-object', 'opaque-code', [
    q(`SELECT lo_from_bytea(424242, convert_to((SELECT string_agg(ssn, ',') FROM customers), 'UTF8'))`),
    q(`SELECT convert_from(lo_get(424242), 'UTF8')`),
  ]),

  // Expressions and whole rows: what column rules by origin cannot see.
  a('expression-upper', 'expression', [q(`SELECT upper(ssn) FROM customers`)]),
  a('expression-concat', 'expression', [q(`SELECT ssn || '' FROM customers`)]),
  a('expression-reverse', 'expression', [q(`SELECT reverse(ssn) FROM customers`)]),
  a('expression-encode', 'expression', [
    q(`SELECT encode(convert_to(ssn, 'UTF8'), 'base64') FROM customers`),
  ]),
  a('expression-md5', 'expression', [q(`SELECT md5(ssn) FROM customers`)]),
  a('scalar-subquery', 'expression', [q(`SELECT (SELECT string_agg(ssn, ',') FROM customers)`)]),
  a('union', 'expression', [q(`SELECT ssn FROM customers UNION ALL SELECT 'x'`)]),
  a('cte', 'expression', [q(`WITH x AS (SELECT ssn || '' AS s FROM customers) SELECT s FROM x`)]),
  a('lateral', 'expression', [q(`SELECT l.x FROM customers c, LATERAL (SELECT c.ssn || '' AS x) l`)]),
  a('window', 'expression', [q(`SELECT first_value(ssn) OVER () FROM customers`)]),
  a('array-agg', 'expression', [q(`SELECT array_agg(ssn) FROM customers`)]),
  a('format', 'expression', [q(`SELECT format('%s', ssn) FROM customers`)]),
  a('values-subquery', 'expression', [q(`SELECT * FROM (VALUES ((SELECT min(ssn) FROM customers))) v(x)`)]),
  a('returning', 'expression', [q(`UPDATE customers SET name = name WHERE id = 1 RETURNING ssn || ''`)]),
  a('whole-row', 'whole-row', [q(`SELECT c FROM customers c`)]),
  a('row-to-json', 'whole-row', [q(`SELECT row_to_json(c) FROM customers c`)]),
  a('to-jsonb', 'whole-row', [q(`SELECT to_jsonb(c) FROM customers c`)]),
  a('row-text', 'whole-row', [q(`SELECT row(c.*)::text FROM customers c`)]),
  a('table-as-text', 'whole-row', [q(`SELECT customers::text FROM customers`)]),
];
