/**
 * What the leak analysis has found so far, and the sentences that explain it: leaks (deduplicated),
 * untrusted functions, relations named. Also the vocabulary the walkers share: how a query level's
 * output is used, and where an expression sits.
 */
import type { Node, RangeVar } from 'libpg-query';
import { stringValues } from '../pg-ast.js';
import type { Leak, LeakKind, MaskingAnalysis, RelationName } from '../types.js';
import { type CompiledRule, columnKey, type MaskedColumn, rulesForTable } from './masking-rules.js';
import { type OutputColumn, type Scope, TableSource } from './masking-scope.js';

/** How the result of a query level is used, which decides what a plain masked output column means. */
export type OutputUse =
  | 'result' // the statement's result: origins reported, the gateway masks
  | 'derived' // a subquery in FROM / CTE: passes through to whoever references it
  | 'set-operation' // a branch of UNION / INTERSECT / EXCEPT
  | 'subquery' // a scalar / IN / ANY / ARRAY subquery
  | 'exists' // EXISTS (…): only whether a row exists
  | 'data-copy' // written into a table
  | 'copy' // COPY (…) TO
  | 'view-definition' // stored as a view or rule
  | 'returning'; // RETURNING of a data-modifying statement

const USE_KIND: Readonly<Record<OutputUse, LeakKind | undefined>> = {
  result: undefined,
  derived: undefined,
  exists: undefined,
  'set-operation': 'set-operation',
  subquery: 'subquery-expression',
  'data-copy': 'data-copy',
  copy: 'copy',
  'view-definition': 'view-definition',
  returning: 'returning',
};

/** The clause an expression sits in decides what a masked value there tells the agent. */
export type Sink = 'expression' | 'predicate' | 'ordering' | 'grouping' | 'data-copy';

/** Where an expression sits and what wraps the column reference being resolved. */
export interface ExprContext {
  readonly scope: Scope;
  /** For messages: 'the select list', 'WHERE', 'ORDER BY', … */
  readonly clause: string;
  readonly sink: Sink;
  /** Number of expression nodes between the clause and here. */
  readonly depth: number;
  /** True while every wrapper so far is a cast or COLLATE (true at the clause itself). */
  readonly castOnly: boolean;
  readonly castTo?: string;
  /** Innermost wrapper's name (function or operator), for messages. */
  readonly wrapper?: string;
  readonly aggregate?: string;
  readonly untrustedFunction?: string;
}

/** The context at the top of a clause. */
export function clauseContext(scope: Scope, clause: string, sink: Sink): ExprContext {
  return { scope, clause, sink, depth: 0, castOnly: true };
}

/** The kind of leak a masked column reference is, given where it sits. */
export function kindFor(ctx: ExprContext): LeakKind {
  if (ctx.untrustedFunction !== undefined) return 'function-argument';
  if (ctx.sink !== 'expression') return ctx.sink;
  if (ctx.aggregate !== undefined) return 'aggregate';
  if (ctx.castOnly && ctx.depth > 0) return 'cast';
  return 'expression';
}

/** One sentence naming the column, what happens to it and the clause. */
export function describe(kind: LeakKind, col: string, ctx: ExprContext): string {
  switch (kind) {
    case 'function-argument':
      return `${col} is passed to ${ctx.untrustedFunction}(), which is not a known built-in and may store or echo it, in ${ctx.clause}`;
    case 'predicate':
      return `${col} is tested in ${ctx.clause}, which makes the result an oracle for its value`;
    case 'ordering':
      return `${col} orders rows in ${ctx.clause}, which reveals the order of its values`;
    case 'grouping':
      return `${col} groups rows in ${ctx.clause}, which reveals which rows share a value`;
    case 'data-copy':
      return `${col} is copied by ${ctx.clause} into a column that is not masked the same way`;
    case 'aggregate':
      return `${col} is aggregated by ${ctx.aggregate}() in ${ctx.clause}; the result has no column origin`;
    case 'cast':
      return `${col} is cast to ${ctx.castTo ?? 'another type'} in ${ctx.clause}; the result has no column origin`;
    default:
      return ctx.wrapper !== undefined
        ? `${col} is used in an expression (${ctx.wrapper}) in ${ctx.clause}; the result has no column origin`
        : `${col} is used as a value in ${ctx.clause}, which has no column origin`;
  }
}

/** Catalog views that expose sample values of columns the session can read. */
const STATISTICS_VIEWS: ReadonlySet<string> = new Set([
  'pg_stats',
  'pg_stats_ext',
  'pg_stats_ext_exprs',
  'pg_statistic',
  'pg_statistic_ext_data',
]);

export function aliasColumns(alias: { colnames?: Node[] } | undefined): string[] | undefined {
  const names = stringValues(alias?.colnames);
  return names.length > 0 ? names : undefined;
}

export function relationLabel(rv: RangeVar): string {
  return rv.schemaname !== undefined ? `${rv.schemaname}.${rv.relname ?? ''}` : (rv.relname ?? '');
}

export class LeakReport {
  readonly rules: readonly CompiledRule[];
  readonly defaultSchemas: readonly string[];
  private readonly leaks = new Map<string, Leak>();
  private readonly untrusted = new Set<string>();
  private readonly relations = new Map<string, RelationName>();

  constructor(rules: readonly CompiledRule[], defaultSchemas: readonly string[]) {
    this.rules = rules;
    this.defaultSchemas = defaultSchemas;
  }

  result(): MaskingAnalysis {
    return {
      leaks: [...this.leaks.values()],
      untrustedFunctions: [...this.untrusted],
      relations: [...this.relations.values()],
    };
  }

  emit(column: MaskedColumn | string, how: LeakKind, detail: string, outputColumn?: number): void {
    const name = typeof column === 'string' ? column : columnKey(column);
    const key = `${how}\u0000${name}\u0000${detail}`;
    if (this.leaks.has(key)) return;
    const leak: Leak = { column: name, how, detail };
    if (outputColumn !== undefined) leak.outputColumn = outputColumn;
    this.leaks.set(key, leak);
  }

  /** For channels that may carry any masked column (statistics views, dynamic SQL): one per rule. */
  emitForEveryRule(how: LeakKind, detail: (rule: string) => string): void {
    for (const rule of this.rules) this.emit(rule.text, how, detail(rule.text));
  }

  untrustedFunction(name: string): void {
    this.untrusted.add(name);
  }

  /** A relation named in FROM, as a target or in DDL: noted for the gateway, and built as a source. */
  tableSource(rv: RangeVar): TableSource {
    const name = rv.relname ?? '';
    const key = `${rv.schemaname ?? ''}.${name}`;
    if (!this.relations.has(key)) {
      this.relations.set(key, rv.schemaname !== undefined ? { schema: rv.schemaname, name } : { name });
    }
    if (STATISTICS_VIEWS.has(name) && (rv.schemaname === undefined || rv.schemaname === 'pg_catalog')) {
      this.emitForEveryRule(
        'statistics',
        (rule) =>
          `${name} exposes sample values (most common values, histogram bounds) of readable columns, including ${rule}`,
      );
    }
    return new TableSource(
      rv.schemaname,
      name,
      rv.alias?.aliasname,
      aliasColumns(rv.alias),
      rulesForTable(this.rules, rv.schemaname, name, this.defaultSchemas),
    );
  }

  wholeRow(label: string, columns: MaskedColumn[], clause: string): void {
    for (const m of columns) {
      this.emit(
        m,
        'whole-row',
        `${label} is a whole-row reference in ${clause}; its value carries ${columnKey(m)} without a column origin`,
      );
    }
  }

  unknownRelation(found: ReadonlyArray<{ fn: string; rule: CompiledRule }>, clause: string): void {
    for (const { fn, rule } of found) {
      this.emit(
        rule.text,
        'unknown-relation',
        `a column named like ${rule.text} comes from ${fn}() in ${clause}; columns of a function's result have no origin`,
      );
    }
  }

  /** Writing a masked column: a unique-constraint error tells whether the value exists elsewhere. */
  writeOracle(columns: MaskedColumn[], statement: string): void {
    for (const m of columns) {
      this.emit(
        m,
        'write-oracle',
        `${statement} writes ${columnKey(m)}; a unique-constraint error would tell whether the value exists in another row`,
      );
    }
  }

  /** What a plain masked output column means for each use (see OutputUse). */
  outputs(outputs: readonly OutputColumn[], use: OutputUse, where: string): void {
    const kind = USE_KIND[use];
    if (kind === undefined) return;
    let position: number | undefined = 1;
    for (const o of outputs) {
      const masked = o.star !== undefined ? o.star.wholeRow() : o.masked;
      for (const m of masked) {
        const col = columnKey(m);
        const at = o.star === undefined ? position : undefined;
        switch (kind) {
          case 'set-operation':
            this.emit(
              m,
              kind,
              `${col} is an output column of ${where}; a set operation's columns have no origin`,
            );
            break;
          case 'subquery-expression':
            this.emit(m, kind, `${col} flows out of ${where} into an expression, which has no column origin`);
            break;
          case 'copy':
            this.emit(
              m,
              kind,
              `${col} is exported by ${where}${at !== undefined ? ` as column ${at}` : ''}`,
              at,
            );
            break;
          case 'returning':
            this.emit(m, kind, `${col} is returned by ${where}`);
            break;
          case 'view-definition':
            this.emit(m, kind, `${col} is exposed by ${where} under a name the masking rules do not cover`);
            break;
          default:
            this.emit(m, kind, `${col} is copied by ${where}`);
        }
      }
      // After a `*` the positions of later columns are not known from the text.
      position = o.star === undefined && position !== undefined ? position + 1 : undefined;
    }
  }
}
