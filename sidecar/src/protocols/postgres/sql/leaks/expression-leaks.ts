/**
 * The expression walker of the leak analysis: every masked column reference inside an expression is
 * a leak, of a kind that depends on the clause (ExprContext.sink) and on what wraps it (a cast, an
 * aggregate, a function that is not a known built-in). Subqueries are handed back to the query walker.
 */
import type { FuncCall, Node } from 'libpg-query';
import {
  isAggregateName,
  isBuiltinFunction,
  isDynamicSqlFunction,
  isWindowFunctionName,
} from '../function-catalog.js';
import { isRecord, type NodeOf, qualifiedName, stringValues, tagOf } from '../pg-ast.js';
import type { ColumnResolver } from './column-resolution.js';
import { describe, type ExprContext, kindFor, type LeakReport, type OutputUse } from './leak-report.js';
import { columnKey } from './masking-rules.js';
import { type OutputColumn, Scope } from './masking-scope.js';

/** The part of the query walker that expressions need: analysing a subquery. */
export interface SubqueryWalker {
  query(node: Node | undefined, scope: Scope, use: OutputUse, clause: string): OutputColumn[];
}

function typeLabel(typeName: { names?: Node[] } | undefined): string {
  const names = stringValues(typeName?.names).filter((n) => n !== 'pg_catalog');
  return names.join('.') || 'another type';
}

function deeper(ctx: ExprContext, wrapper: string | undefined, keepCast = false): ExprContext {
  return {
    ...ctx,
    depth: ctx.depth + 1,
    castOnly: keepCast && ctx.castOnly,
    wrapper: wrapper ?? ctx.wrapper,
  };
}

function isAggregateCall(fc: FuncCall, name: string): boolean {
  return (
    fc.over !== undefined ||
    fc.agg_star === true ||
    fc.agg_distinct === true ||
    fc.agg_within_group === true ||
    fc.agg_filter !== undefined ||
    (fc.agg_order?.length ?? 0) > 0 ||
    isAggregateName(name) ||
    isWindowFunctionName(name)
  );
}

export class ExpressionLeaks {
  private readonly report: LeakReport;
  private readonly resolver: ColumnResolver;
  private readonly queries: SubqueryWalker;

  constructor(report: LeakReport, resolver: ColumnResolver, queries: SubqueryWalker) {
    this.report = report;
    this.resolver = resolver;
    this.queries = queries;
  }

  /** Walks an expression (or a list, or a bare struct) and reports every masked reference in it. */
  expr(node: unknown, ctx: ExprContext): void {
    if (node === undefined || node === null) return;
    if (Array.isArray(node)) {
      for (const n of node) this.expr(n, ctx);
      return;
    }
    if (!isRecord(node)) return;
    const tag = tagOf(node);
    if (tag === undefined) {
      // A bare struct (WindowDef, JsonValueExpr, TypeName …): walk its fields.
      for (const key in node) this.expr(node[key], ctx);
      return;
    }
    const body = node[tag];
    if (!isRecord(body)) return;
    switch (tag) {
      case 'ColumnRef':
        this.columnRef(body as NodeOf<'ColumnRef'>, ctx);
        return;
      case 'A_Const':
      case 'ParamRef':
      case 'String':
      case 'Integer':
      case 'Float':
      case 'Boolean':
      case 'BitString':
      case 'TypeName':
      case 'A_Star':
        return;
      case 'FuncCall':
        this.funcCall(body as FuncCall, ctx);
        return;
      case 'TypeCast': {
        const cast = body as NodeOf<'TypeCast'>;
        this.expr(cast.arg, { ...deeper(ctx, 'cast', true), castTo: typeLabel(cast.typeName) });
        return;
      }
      case 'CollateClause':
        this.expr((body as NodeOf<'CollateClause'>).arg, {
          ...deeper(ctx, 'COLLATE', true),
          castTo: 'a collation',
        });
        return;
      case 'SubLink':
        this.subLink(body as NodeOf<'SubLink'>, ctx);
        return;
      case 'A_Expr': {
        const e = body as NodeOf<'A_Expr'>;
        const inner = deeper(ctx, stringValues(e.name).join(' ') || 'operator');
        this.expr(e.lexpr, inner);
        this.expr(e.rexpr, inner);
        return;
      }
      case 'JsonArrayAgg':
      case 'JsonObjectAgg':
        this.jsonAggregate(tag, body, ctx);
        return;
      case 'SelectStmt':
      case 'InsertStmt':
      case 'UpdateStmt':
      case 'DeleteStmt':
      case 'MergeStmt': {
        // Only reachable from constructs this walker does not model: treat the rows as a subquery's.
        const outputs = this.queries.query(
          node as Node,
          new Scope(ctx.scope, ctx.scope),
          'subquery',
          ctx.clause,
        );
        this.report.outputs(outputs, 'subquery', ctx.clause);
        return;
      }
      default: {
        const inner = deeper(ctx, tag);
        for (const key in body) this.expr(body[key], inner);
      }
    }
  }

  funcCall(fc: FuncCall, ctx: ExprContext): void {
    const parts = stringValues(fc.funcname);
    const name = qualifiedName(parts);
    const untrusted = !isBuiltinFunction(parts);
    if (untrusted) this.report.untrustedFunction(name);
    if (isDynamicSqlFunction(name)) {
      this.report.emitForEveryRule(
        'dynamic-sql',
        (rule) => `${name}() runs SQL given as a string, which may read ${rule}`,
      );
    }
    const inner: ExprContext = {
      ...deeper(ctx, `${name}()`),
      aggregate: isAggregateCall(fc, name) ? name : ctx.aggregate,
      untrustedFunction: untrusted ? name : ctx.untrustedFunction,
    };
    this.expr(fc.args, inner);
    if (fc.agg_within_group === true) this.expr(fc.agg_order, inner);
    else this.expr(fc.agg_order, { ...inner, sink: 'ordering', clause: `the ORDER BY of ${name}()` });
    this.expr(fc.agg_filter, { ...inner, sink: 'predicate', clause: `the FILTER of ${name}()` });
    if (fc.over !== undefined) this.windowDef(fc.over, inner, name);
  }

  windowDef(w: NodeOf<'WindowDef'>, ctx: ExprContext, name: string): void {
    this.expr(w.partitionClause, { ...ctx, sink: 'grouping', clause: `the PARTITION BY of ${name}` });
    this.expr(w.orderClause, { ...ctx, sink: 'ordering', clause: `the window ORDER BY of ${name}` });
    this.expr(w.startOffset, { ...ctx, sink: 'predicate', clause: `the window frame of ${name}` });
    this.expr(w.endOffset, { ...ctx, sink: 'predicate', clause: `the window frame of ${name}` });
  }

  private columnRef(ref: NodeOf<'ColumnRef'>, ctx: ExprContext): void {
    const res = this.resolver.resolve(ref, ctx.scope);
    if (res.star !== undefined) {
      // x.* inside an expression (row_to_json(c.*), ROW(c.*)) is a whole-row value.
      for (const s of res.star) this.report.wholeRow(s.label, s.wholeRow(), ctx.clause);
      return;
    }
    const kind = kindFor(ctx);
    for (const m of res.plain) this.report.emit(m, kind, describe(kind, columnKey(m), ctx));
    const fieldKind = kind === 'cast' ? 'expression' : kind;
    for (const m of res.fields) {
      this.report.emit(
        m,
        fieldKind,
        describe(fieldKind, columnKey(m), { ...ctx, wrapper: 'field selection' }),
      );
    }
    for (const row of res.rows) this.report.wholeRow(row.label, row.columns, ctx.clause);
    this.report.unknownRelation(res.unknown, ctx.clause);
  }

  private subLink(link: NodeOf<'SubLink'>, ctx: ExprContext): void {
    this.expr(link.testexpr, deeper(ctx, 'subquery comparison'));
    const exists = link.subLinkType === 'EXISTS_SUBLINK';
    const where = `a subquery in ${ctx.clause}`;
    // EXISTS only tells whether a row exists: its select list is no sink (its WHERE is, as usual).
    const outputs = this.queries.query(
      link.subselect,
      new Scope(ctx.scope, ctx.scope),
      exists ? 'exists' : 'subquery',
      where,
    );
    if (!exists) this.report.outputs(outputs, 'subquery', where);
  }

  private jsonAggregate(tag: string, body: Record<string, unknown>, ctx: ExprContext): void {
    const aggregate = tag === 'JsonArrayAgg' ? 'json_arrayagg' : 'json_objectagg';
    const inner: ExprContext = { ...deeper(ctx, tag), aggregate };
    for (const key in body) {
      if (key !== 'constructor') this.expr(body[key], inner);
    }
    // `constructor` is an own field of these nodes, not Object.prototype's.
    const ctor = Object.hasOwn(body, 'constructor') ? body.constructor : undefined;
    if (!isRecord(ctor)) return;
    const c = ctor as NodeOf<'JsonAggConstructor'>;
    this.expr(c.agg_order, { ...inner, sink: 'ordering', clause: `the ORDER BY of ${aggregate}()` });
    this.expr(c.agg_filter, { ...inner, sink: 'predicate', clause: `the FILTER of ${aggregate}()` });
    if (c.over !== undefined) this.windowDef(c.over, inner, aggregate);
  }
}
