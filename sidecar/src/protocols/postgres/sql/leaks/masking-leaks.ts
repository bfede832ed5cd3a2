/**
 * Masking leak analysis. The gateway masks result cells by the column origin PostgreSQL reports in
 * RowDescription (table OID + attribute number), and PostgreSQL reports an origin only for a result
 * column that is a plain column reference (followed through subqueries in FROM and CTEs). Every
 * other way a masked column's value — or information about it — can reach the agent is found here,
 * from the parse tree alone, before the query runs. The agent is assumed adversarial.
 *
 * The rule: a reference to a masked column is safe only as a plain output column of the statement's
 * result (or of a subquery / CTE that the result then references plainly). Anywhere else — inside an
 * expression, a predicate, an ordering, a set operation, a subquery expression, a write into another
 * table, a whole-row value — it is reported, with how it leaks. The walkers live in
 * statement-leaks.ts, query-leaks.ts and expression-leaks.ts; README.md in this folder has the threat
 * model and the full list of cases.
 */

import { isRecord } from '../pg-ast.js';
import type {
  Leak,
  LeakKind,
  MaskedColumnRule,
  MaskingAnalysis,
  MaskingOptions,
  SqlStatementTree,
  StatementAnalysis,
} from '../types.js';
import { LeakReport } from './leak-report.js';
import { compileRules } from './masking-rules.js';
import { Scope } from './masking-scope.js';
import { StatementLeaks } from './statement-leaks.js';

/**
 * Leak kinds the gateway can still mask itself: COPY rows by column position, RETURNING columns by
 * the origin PostgreSQL reports for them (checked: a plain RETURNING column carries its table OID
 * and attribute number in RowDescription).
 */
export const MASKABLE_LEAK_KINDS: ReadonlySet<LeakKind> = new Set<LeakKind>(['copy', 'returning']);

export function isMaskableLeak(kind: LeakKind): boolean {
  return MASKABLE_LEAK_KINDS.has(kind);
}

function treeOf(stmt: Pick<StatementAnalysis, 'tree'> | SqlStatementTree): SqlStatementTree | undefined {
  if (isRecord(stmt) && 'tree' in stmt) {
    const tree = (stmt as Pick<StatementAnalysis, 'tree'>).tree;
    return isRecord(tree) ? tree : undefined;
  }
  return isRecord(stmt) ? (stmt as SqlStatementTree) : undefined;
}

/**
 * The full leak analysis of one statement: leaks, the functions the gateway must vet in the catalog,
 * and the relations it must resolve (views, partitions, foreign tables). `stmt` is a
 * StatementAnalysis from classifySql or its `tree`. Never throws: an internal failure is reported as
 * an `analysis-failed` leak, so the statement is refused.
 */
export function analyzeMasking(
  stmt: Pick<StatementAnalysis, 'tree'> | SqlStatementTree,
  rules: readonly MaskedColumnRule[],
  opts: MaskingOptions = {},
): MaskingAnalysis {
  const report = new LeakReport(compileRules(rules), opts.defaultSchemas ?? ['public']);
  const tree = treeOf(stmt);
  if (tree === undefined) {
    report.emit('*', 'analysis-failed', 'no parse tree was given to the leak analysis');
    return report.result();
  }
  try {
    new StatementLeaks(report).statement(tree, new Scope(undefined, undefined));
  } catch (e) {
    // Only TypeScript runs here; a RangeError is a tree deeper than the walkers' recursion.
    const why =
      e instanceof RangeError ? 'the statement nests too deeply' : e instanceof Error ? e.message : String(e);
    report.emit('*', 'analysis-failed', `the leak analysis failed (${why}); refuse the statement`);
  }
  return report.result();
}

/**
 * The ways one statement could reveal a masked column past row masking (analyzeMasking also lists the
 * functions and relations the gateway must check in the catalog).
 */
export function findMaskingLeaks(
  stmt: Pick<StatementAnalysis, 'tree'> | SqlStatementTree,
  rules: readonly MaskedColumnRule[],
  opts: MaskingOptions = {},
): Leak[] {
  if (rules.length === 0) return [];
  return analyzeMasking(stmt, rules, opts).leaks;
}
