// Property tests: the analysis is on the data path and sees whatever an adversarial agent sends,
// so it must never throw, always answer (statements or an error), and keep its leak verdicts
// consistent on SQL it has never seen.
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { classifySql, initSqlParser, sqlParserHealth } from './classify/classify.js';
import { analyzeMasking, isMaskableLeak } from './leaks/masking-leaks.js';
import { estimateNesting, lexicalNormalize } from './screen/sql-lexer.js';
import { MAX_QUERY_BYTES } from './screen/sql-parser.js';
import { type MaskedColumnRule, POSTGRES_GUARDRAIL_DETECTORS, type SqlAnalysis } from './types.js';

beforeAll(async () => {
  await initSqlParser();
});

const RULES: MaskedColumnRule[] = [
  { schema: 'public', table: 'customers', column: 'ssn' },
  { schema: '*', table: 'cards', column: 'pan' },
];
const CLASSES = new Set(['read', 'write', 'ddl', 'admin', 'copy', 'session']);
const DETECTORS = new Set<string>(POSTGRES_GUARDRAIL_DETECTORS);

/** The shape every answer must have, whatever the input. */
function checkAnswer(result: SqlAnalysis): void {
  if (result.error !== undefined) {
    expect(result.statements).toEqual([]);
    expect(typeof result.error.message).toBe('string');
    expect(result.error.message.length).toBeGreaterThan(0);
    return;
  }
  expect(result.statements.length).toBeGreaterThan(0);
  for (const st of result.statements) {
    expect(st.classes.length).toBeGreaterThan(0);
    expect([...st.classes].sort()).toEqual(st.classes);
    expect(new Set(st.classes).size).toBe(st.classes.length);
    for (const c of st.classes) expect(CLASSES.has(c)).toBe(true);
    for (const r of st.risks) expect(DETECTORS.has(r.detector)).toBe(true);
    expect(typeof st.normalized).toBe('string');
    expect(st.fingerprint).toMatch(/^[0-9a-f]{16}$/);
  }
}

function classifyAndAnalyse(sql: string): SqlAnalysis {
  const result = classifySql(sql);
  checkAnswer(result);
  for (const st of result.statements) {
    const analysis = analyzeMasking(st, RULES);
    expect(analysis.leaks.filter((l) => l.how === 'analysis-failed')).toEqual([]);
  }
  return result;
}

const TOKENS = [
  'SELECT',
  'FROM',
  'WHERE',
  'AND',
  'OR',
  'NOT',
  'IN',
  'EXISTS',
  'UNION',
  'ALL',
  'JOIN',
  'ON',
  'USING',
  'AS',
  'INSERT',
  'INTO',
  'VALUES',
  'UPDATE',
  'SET',
  'DELETE',
  'RETURNING',
  'WITH',
  'RECURSIVE',
  'COPY',
  'TO',
  'STDOUT',
  'CASE',
  'WHEN',
  'THEN',
  'ELSE',
  'END',
  'ORDER',
  'BY',
  'GROUP',
  'HAVING',
  'LIMIT',
  'DISTINCT',
  'OVER',
  'LATERAL',
  'customers',
  'c',
  'ssn',
  'c.ssn',
  'c.*',
  '*',
  'id',
  'name',
  'orders',
  'o',
  'upper',
  'count',
  'row_to_json',
  '(',
  ')',
  ',',
  ';',
  '=',
  '<',
  '||',
  '::',
  'text',
  "'x'",
  "E'\\''",
  '$$a$$',
  '$1',
  '1',
  '1.5',
  'NULL',
  'true',
  '--',
  '/*',
  '*/',
  '"q"',
  '[',
  ']',
  'ARRAY',
  'ROW',
  'EXPLAIN',
  'ANALYZE',
  'PREPARE',
  'EXECUTE',
  'p',
];

describe('classifySql never throws and always answers', () => {
  it('on arbitrary printable text', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (s) => void classifyAndAnalyse(s)),
      { numRuns: 400 },
    );
  });

  it('on arbitrary Unicode, astral planes and control characters included', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 200 }), (s) => void classifyAndAnalyse(s)),
      {
        numRuns: 400,
      },
    );
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 100 }), (s) => void classifyAndAnalyse(s)),
      {
        numRuns: 200,
      },
    );
  });

  it('on lone surrogates and other broken UTF-16', () => {
    const unit = fc.oneof(
      fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c)),
      fc.constantFrom('SELECT ', "'", '1', ' ', ';', 'é', '😀'),
    );
    fc.assert(
      fc.property(fc.string({ unit, maxLength: 60 }), (s) => void classifyAndAnalyse(s)),
      { numRuns: 300 },
    );
  });

  it('on binary garbage', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        classifyAndAnalyse(Buffer.from(bytes).toString('latin1'));
        classifyAndAnalyse(Buffer.from(bytes).toString('utf8'));
      }),
      { numRuns: 300 },
    );
  });

  it('on SQL-shaped token soup', () => {
    const soup = fc.array(fc.constantFrom(...TOKENS), { maxLength: 40 }).map((t) => t.join(' '));
    fc.assert(
      fc.property(soup, (s) => void classifyAndAnalyse(s)),
      { numRuns: 1500 },
    );
  });

  it('on huge, deeply nested and scanner-hostile inputs, quickly and without losing the parser', () => {
    const inputs = [
      'x'.repeat(MAX_QUERY_BYTES + 1),
      `SELECT ${'('.repeat(200_000)}`,
      `SELECT ${'1+'.repeat(300_000)}1`,
      `SELECT ${'NOT '.repeat(100_000)}true`,
      `SELECT ${'CASE WHEN true THEN '.repeat(20_000)}1`,
      `SELECT ${'ARRAY['.repeat(50_000)}1${']'.repeat(50_000)}`,
      `SELECT 1 ${'UNION SELECT 1 '.repeat(20_000)}`,
      // the server's scanner is quadratic on these two
      `SELECT 1 ${'+'.repeat(500_000)} 1`,
      `/*${'/*'.repeat(100_000)}`,
      `SELECT '${"''".repeat(300_000)}'`,
      `SELECT $a$${'$'.repeat(500_000)}`,
      ';'.repeat(500_000),
      'SELECT 1;'.repeat(50_000),
    ];
    const started = performance.now();
    for (const sql of inputs) classifyAndAnalyse(sql);
    expect(performance.now() - started).toBeLessThan(5_000);
    expect(sqlParserHealth()).toEqual({ ok: true });
  }, 30_000);
});

describe('the nesting screen and the lexical normalizer never throw', () => {
  it('on arbitrary text', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 300 }), (s) => {
        expect(estimateNesting(s)).toBeGreaterThanOrEqual(0);
        expect(typeof lexicalNormalize(s)).toBe('string');
      }),
      { numRuns: 500 },
    );
  });
});

// ---- a small SQL generator for the leak properties ----------------------------------------------

const MASKED_LEAVES = ['ssn', 'c.ssn'];
const CLEAN_LEAVES = ['id', 'c.name', "'lit'", '42', '$1', 'NULL', 'now()'];

/** Wraps an expression in one SQL construct that computes a new value from it. */
const wrappers: Array<(e: string) => string> = [
  (e) => `upper(${e})`,
  (e) => `(${e} || 'x')`,
  (e) => `${e}::text`,
  (e) => `CAST(${e} AS varchar(10))`,
  (e) => `coalesce(${e}, 'a')`,
  (e) => `CASE WHEN ${e} IS NULL THEN 1 ELSE 2 END`,
  (e) => `length(${e}) + 1`,
  (e) => `ARRAY[${e}]`,
  (e) => `(SELECT ${e})`,
  (e) => `(${e} = 'x')`,
  (e) => `${e} COLLATE "C"`,
  (e) => `max(${e})`,
  (e) => `string_agg(${e}, ',')`,
  (e) => `row(${e}, 1)`,
  (e) => `json_build_object('k', ${e})`,
  (e) => `launder(${e})`,
  (e) => `${e} IN ('a', 'b')`,
  (e) => `NOT (${e} IS DISTINCT FROM 'z')`,
  (e) => `lag(${e}) OVER (ORDER BY id)`,
  (e) => `(${e}).f`,
];

function wrapped(leaves: string[], minDepth: number): fc.Arbitrary<string> {
  return fc
    .tuple(
      fc.constantFrom(...leaves),
      fc.array(fc.nat({ max: wrappers.length - 1 }), { minLength: minDepth, maxLength: 5 }),
    )
    .map(([leaf, path]) => path.reduce((e, i) => wrappers[i]!(e), leaf));
}

function hardLeaks(sql: string): string[] {
  const result = classifySql(sql);
  checkAnswer(result);
  expect(result.error).toBeUndefined();
  return result.statements.flatMap((st) =>
    analyzeMasking(st, RULES)
      .leaks.filter((l) => !isMaskableLeak(l.how))
      .map((l) => `${l.how}:${l.column}`),
  );
}

describe('leak verdicts on generated SQL', () => {
  it('any computation over a masked column in the select list is a hard leak', () => {
    fc.assert(
      fc.property(wrapped(MASKED_LEAVES, 1), (e) => {
        expect(hardLeaks(`SELECT ${e} FROM customers c`).length).toBeGreaterThan(0);
      }),
      { numRuns: 500 },
    );
  });

  it('any use of a masked column in WHERE, ORDER BY or GROUP BY is a hard leak', () => {
    const clause = fc.constantFrom(
      (e: string) => `SELECT id FROM customers c WHERE ${e} IS NOT NULL`,
      (e: string) => `SELECT id FROM customers c ORDER BY ${e}`,
      (e: string) => `SELECT count(*) FROM customers c GROUP BY ${e}`,
      (e: string) => `SELECT id FROM orders o JOIN customers c ON ${e} = o.ref`,
      (e: string) => `DELETE FROM customers c WHERE ${e} = 'x'`,
    );
    fc.assert(
      fc.property(wrapped(MASKED_LEAVES, 0), clause, (e, make) => {
        expect(hardLeaks(make(e)).length).toBeGreaterThan(0);
      }),
      { numRuns: 500 },
    );
  });

  it('the same constructs over unmasked columns report nothing', () => {
    fc.assert(
      fc.property(wrapped(CLEAN_LEAVES, 0), (e) => {
        expect(hardLeaks(`SELECT ${e} FROM customers c WHERE ${e} IS NOT NULL ORDER BY ${e}`)).toEqual([]);
      }),
      { numRuns: 500 },
    );
  });

  it('plain references stay safe through any number of derived tables and CTEs', () => {
    const layer = fc.constantFrom(
      (q: string) => `SELECT s.ssn, s.id FROM (${q}) s`,
      (q: string) => `WITH x AS (${q}) SELECT ssn, id FROM x`,
      (q: string) => `SELECT * FROM (${q}) s`,
      (q: string) => `SELECT t.* FROM (${q}) t WHERE t.id > 1`,
    );
    fc.assert(
      fc.property(fc.array(layer, { maxLength: 6 }), (layers) => {
        const sql = layers.reduce((q, wrap) => wrap(q), 'SELECT id, ssn FROM customers');
        expect(hardLeaks(sql)).toEqual([]);
      }),
      { numRuns: 300 },
    );
  });

  it('never fails on statements built from random clauses', () => {
    const expr = fc.oneof(wrapped(MASKED_LEAVES, 0), wrapped(CLEAN_LEAVES, 0));
    const statement = fc.oneof(
      fc.tuple(expr, expr).map(([a, b]) => `SELECT ${a}, ${b} FROM customers c WHERE ${b} IS NULL`),
      fc.tuple(expr, expr).map(([a, b]) => `SELECT ${a} FROM customers c UNION SELECT ${b} FROM customers c`),
      fc
        .tuple(expr, expr)
        .map(([a, b]) => `WITH w AS (SELECT ${a} AS v FROM customers c) SELECT v, ${b} FROM w, customers c`),
      fc
        .tuple(expr, expr)
        .map(([a, b]) => `UPDATE customers c SET name = ${a} WHERE ${b} IS NULL RETURNING ${a}`),
      fc.tuple(expr).map(([a]) => `INSERT INTO log SELECT ${a} FROM customers c RETURNING *`),
      fc.tuple(expr).map(([a]) => `DELETE FROM customers c WHERE ${a} IS NULL RETURNING c.*`),
      fc.tuple(expr).map(([a]) => `COPY (SELECT ${a} FROM customers c) TO STDOUT`),
      fc.tuple(expr).map(([a]) => `CREATE VIEW v AS SELECT ${a} FROM customers c`),
      fc.tuple(expr).map(([a]) => `EXPLAIN ANALYZE SELECT ${a} FROM customers c`),
      fc
        .tuple(expr, expr)
        .map(
          ([a, b]) =>
            `MERGE INTO log l USING customers c ON l.id = c.id WHEN MATCHED THEN UPDATE SET m = ${a} WHEN NOT MATCHED THEN INSERT VALUES (${b})`,
        ),
      fc
        .tuple(expr)
        .map(([a]) => `SELECT * FROM customers c, LATERAL (SELECT ${a} AS v) x, cards WHERE pan IS NOT NULL`),
    );
    fc.assert(
      fc.property(statement, (sql) => void classifyAndAnalyse(sql)),
      { numRuns: 600 },
    );
  });
});
