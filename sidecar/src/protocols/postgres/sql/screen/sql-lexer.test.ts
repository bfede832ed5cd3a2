import { describe, expect, it } from 'vitest';
import { estimateNesting, lexicalNormalize, preparedBodyOffset, screenQuery } from './sql-lexer.js';

describe('estimateNesting', () => {
  it.each<[string, number]>([
    ['SELECT 1', 0],
    ['SELECT a + b * c', 2],
    ['SELECT f(g(h(1)))', 3],
    ['SELECT (SELECT (SELECT 1))', 2],
    ['SELECT CASE WHEN a THEN CASE WHEN b THEN 1 END END', 2],
    ['SELECT 1 UNION SELECT 2 UNION SELECT 3', 2],
    ['SELECT 1::int::text', 2],
    ['SELECT a[1][2][3]', 1],
  ])('%s → %i', (sql, depth) => {
    expect(estimateNesting(sql)).toBe(depth);
  });

  it('does not count commas, AND or OR chains, which the parser keeps flat', () => {
    expect(estimateNesting(`SELECT ${Array.from({ length: 5000 }, (_, i) => `c${i}`).join(', ')}`)).toBe(0);
    expect(estimateNesting(`SELECT 1 WHERE ${'a = 1 AND '.repeat(5000)}true`)).toBe(1);
    expect(estimateNesting(`INSERT INTO t VALUES ${'(1, 2),'.repeat(5000)}(1, 2)`)).toBe(1);
  });

  it('counts chains that the parser nests', () => {
    expect(estimateNesting(`SELECT 1${'+1'.repeat(3000)}`)).toBe(3000);
    expect(estimateNesting(`SELECT ${'NOT '.repeat(3000)}true`)).toBe(3000);
    expect(estimateNesting(`SELECT * FROM t0${' JOIN t ON true'.repeat(3000)}`)).toBeGreaterThanOrEqual(3000);
  });

  it('skips strings, quoted identifiers, dollar quotes and comments', () => {
    expect(
      estimateNesting("SELECT '((((((', \"((((\", $$((((($$, E'\\'(((' -- ((((\n/* (( /* (( */ */"),
    ).toBe(0);
    expect(estimateNesting('SELECT $tag$ ) ) ) $notit$ $tag$, $1')).toBe(0);
  });

  it('survives unbalanced brackets and unterminated tokens', () => {
    expect(estimateNesting(')))) ]]] END END (((')).toBe(3);
    expect(estimateNesting("SELECT 'unterminated")).toBe(0);
    expect(estimateNesting('SELECT $$ unterminated')).toBe(0);
    expect(estimateNesting('/* unterminated')).toBe(0);
  });
});

describe('screenQuery', () => {
  it('measures operator runs outside comments, where a comment start ends the run', () => {
    expect(screenQuery('SELECT 1 <> 2').longestOperator).toBe(2);
    expect(screenQuery(`SELECT 1 ${'+'.repeat(70)} 1`).longestOperator).toBe(70);
    expect(screenQuery('SELECT 1 +/* ++++++++ */ 1').longestOperator).toBe(1);
    expect(screenQuery('SELECT 1 -- ++++++++++').longestOperator).toBe(0);
  });

  it('prices comment starts packed into one run of operator characters', () => {
    expect(screenQuery(`/*${'*'.repeat(1000)}/ SELECT 1`).commentBacktracking).toBeLessThan(2000);
    expect(screenQuery('/* a /* b */ c */ SELECT 1').commentBacktracking).toBeLessThan(10);
    expect(screenQuery(`/*${'/*'.repeat(1000)}`).commentBacktracking).toBeGreaterThan(1_000_000);
  });
});

describe('lexicalNormalize', () => {
  it('replaces every literal, numbering after existing parameters', () => {
    expect(
      lexicalNormalize("SELECT 'a', 1.5e+3, E'x\\'y', $$body$$, B'01', X'ff' FROM t WHERE id = $2"),
    ).toBe('SELECT $3, $4, $5, $6, $7, $8 FROM t WHERE id = $2');
  });
  it('keeps identifiers, quoted identifiers and comments', () => {
    expect(lexicalNormalize('SELECT "it\'s" /* 42 */ FROM t1')).toBe('SELECT "it\'s" /* 42 */ FROM t1');
  });
});

describe('preparedBodyOffset', () => {
  it('finds the statement after AS, past a parameter type list', () => {
    const text = 'PREPARE p (int, text) AS SELECT $1 AS a';
    expect(text.slice(preparedBodyOffset(text))).toBe(' SELECT $1 AS a');
    expect(preparedBodyOffset('PREPARE p')).toBeUndefined();
  });
});
