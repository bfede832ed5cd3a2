/**
 * The query-level walker of the leak analysis: WITH, FROM (tables, subqueries, joins, functions),
 * WHERE, the select list, GROUP BY / HAVING / WINDOW / DISTINCT / ORDER BY / LIMIT and set
 * operations. Each level returns its output columns — with the masked columns they pass through as
 * plain references — and its caller decides what those mean (see OutputUse). Data-modifying
 * statements and everything else are left to StatementLeaks.
 */
import type { Node, SelectStmt } from 'libpg-query';
import { isBuiltinFunction } from '../function-catalog.js';
import { bodyOf, type NodeOf, nodeAs, qualifiedName, stringValues, tagOf } from '../pg-ast.js';
import { ColumnResolver, columnRefFields } from './column-resolution.js';
import { ExpressionLeaks, type SubqueryWalker } from './expression-leaks.js';
import {
  aliasColumns,
  clauseContext,
  describe,
  type ExprContext,
  type LeakReport,
  type OutputUse,
  relationLabel,
  type Sink,
} from './leak-report.js';
import { columnKey } from './masking-rules.js';
import {
  DerivedSource,
  FunctionSource,
  JoinSource,
  type OutputColumn,
  Scope,
  type Source,
} from './masking-scope.js';

const MODIFYING = new Set(['InsertStmt', 'UpdateStmt', 'DeleteStmt', 'MergeStmt']);

export abstract class QueryLeaks implements SubqueryWalker {
  protected readonly report: LeakReport;
  protected readonly resolver: ColumnResolver;
  protected readonly exprs: ExpressionLeaks;

  constructor(report: LeakReport) {
    this.report = report;
    this.resolver = new ColumnResolver(report.rules, report.defaultSchemas);
    this.exprs = new ExpressionLeaks(report, this.resolver, this);
  }

  /** A data-modifying statement (top level or in a CTE); returns its RETURNING outputs. */
  protected abstract modify(
    tag: string,
    body: Record<string, unknown>,
    parent: Scope,
    use: OutputUse,
  ): OutputColumn[];

  /** Any other statement. */
  abstract statement(node: Node, scope: Scope): void;

  /** Analyses a statement that produces rows and returns its output columns. */
  query(node: Node | undefined, scope: Scope, use: OutputUse, clause: string): OutputColumn[] {
    const select = nodeAs(node, 'SelectStmt');
    if (select !== undefined) return this.select(select, scope, use, clause);
    const tag = tagOf(node);
    const body = bodyOf(node);
    if (tag !== undefined && MODIFYING.has(tag) && body !== undefined)
      return this.modify(tag, body, scope, use);
    if (node !== undefined) this.statement(node, scope);
    return [];
  }

  protected defineCtes(withClause: NodeOf<'SelectStmt'>['withClause'], scope: Scope): void {
    const ctes = withClause?.ctes ?? [];
    if (withClause?.recursive === true) {
      // A recursive self-reference sees no masked columns: the recursive term is a UNION branch,
      // whose columns are reported as set-operation leaks anyway.
      for (const c of ctes) {
        const name = nodeAs(c, 'CommonTableExpr')?.ctename;
        if (name !== undefined) scope.ctes.set(name, []);
      }
    }
    for (const c of ctes) {
      const cte = nodeAs(c, 'CommonTableExpr');
      if (cte?.ctename === undefined) continue;
      // Defined after its own query: in a plain WITH, `t AS (SELECT * FROM t)` reads table t.
      const outputs = this.query(
        cte.ctequery,
        new Scope(scope.outer, scope),
        'derived',
        `the CTE ${cte.ctename}`,
      );
      const names = stringValues(cte.aliascolnames);
      // WITH x(a, b) AS (…) renames by position: wrap the outputs in a source that knows how.
      scope.ctes.set(
        cte.ctename,
        names.length > 0
          ? [{ name: undefined, masked: [], star: new DerivedSource(undefined, cte.ctename, names, outputs) }]
          : outputs,
      );
    }
  }

  /** Adds a FROM item's sources to the level and returns them. */
  protected fromItem(item: Node, scope: Scope): Source[] {
    const rv = nodeAs(item, 'RangeVar');
    if (rv !== undefined) {
      const name = rv.relname ?? '';
      const cte = rv.schemaname === undefined ? scope.findCte(name) : undefined;
      const source =
        cte !== undefined
          ? new DerivedSource(rv.alias?.aliasname, name, aliasColumns(rv.alias), cte)
          : this.report.tableSource(rv);
      scope.sources.push(source);
      return [source];
    }
    const sub = nodeAs(item, 'RangeSubselect');
    if (sub !== undefined) {
      // Only a LATERAL subquery sees the FROM items before it; every subquery sees the level's CTEs.
      const inner = sub.lateral === true ? new Scope(scope, scope) : new Scope(scope.outer, scope);
      const outputs = this.query(sub.subquery, inner, 'derived', 'a subquery in FROM');
      const source = new DerivedSource(sub.alias?.aliasname, undefined, aliasColumns(sub.alias), outputs);
      scope.sources.push(source);
      return [source];
    }
    const join = nodeAs(item, 'JoinExpr');
    if (join !== undefined) return this.join(join, scope);
    const fn = nodeAs(item, 'RangeFunction');
    if (fn !== undefined) {
      let first: string | undefined;
      let untrusted = false;
      for (const f of fn.functions ?? []) {
        const call = nodeAs(nodeAs(f, 'List')?.items?.[0], 'FuncCall');
        if (call !== undefined) {
          const parts = stringValues(call.funcname);
          first ??= qualifiedName(parts);
          if (!isBuiltinFunction(parts)) untrusted = true;
        }
        // Functions in FROM may reference earlier FROM items, as if LATERAL; their results have no origin.
        this.exprs.expr(f, {
          ...clauseContext(scope, 'a function in FROM', 'expression'),
          depth: 1,
          castOnly: false,
        });
      }
      const source = new FunctionSource(fn.alias?.aliasname, first, untrusted);
      scope.sources.push(source);
      return [source];
    }
    const sample = nodeAs(item, 'RangeTableSample');
    if (sample !== undefined) {
      this.exprs.expr([sample.args, sample.repeatable], clauseContext(scope, 'TABLESAMPLE', 'predicate'));
      return sample.relation !== undefined ? this.fromItem(sample.relation, scope) : [];
    }
    // XMLTABLE, JSON_TABLE and anything newer: their inputs are expressions, their columns have no origin.
    const tag = tagOf(item) ?? 'FROM item';
    this.exprs.expr(bodyOf(item), {
      ...clauseContext(scope, `${tag} in FROM`, 'expression'),
      depth: 1,
      castOnly: false,
    });
    const alias =
      nodeAs(item, 'RangeTableFunc')?.alias?.aliasname ?? nodeAs(item, 'JsonTable')?.alias?.aliasname;
    const source = new FunctionSource(alias, undefined, false);
    scope.sources.push(source);
    return [source];
  }

  private join(join: NodeOf<'JoinExpr'>, scope: Scope): Source[] {
    const left = join.larg !== undefined ? this.fromItem(join.larg, scope) : [];
    const right = join.rarg !== undefined ? this.fromItem(join.rarg, scope) : [];
    const both = [...left, ...right];
    this.exprs.expr(join.quals, clauseContext(scope, 'JOIN … ON', 'predicate'));
    const using = stringValues(join.usingClause);
    for (const col of using) {
      for (const m of both.flatMap((s) => s.column(col))) {
        this.report.emit(
          m,
          'predicate',
          `${columnKey(m)} is compared in JOIN … USING (${col}), which makes the result an oracle for its value`,
        );
      }
    }
    if (join.isNatural === true) {
      for (const m of both.flatMap((s) => s.wholeRow())) {
        this.report.emit(
          m,
          'predicate',
          `NATURAL JOIN may compare ${columnKey(m)} with a column of the same name`,
        );
      }
    }
    const sources: Source[] = [...both];
    if (join.join_using_alias?.aliasname !== undefined) {
      const s = new JoinSource(join.join_using_alias.aliasname, both, using);
      scope.sources.push(s);
      sources.push(s);
    }
    if (join.alias?.aliasname !== undefined) {
      const s = new JoinSource(join.alias.aliasname, both, undefined, aliasColumns(join.alias));
      scope.sources.push(s);
      sources.push(s);
    }
    return sources;
  }

  /** The select list (or RETURNING list) of one level: reports what is not plain, returns the outputs. */
  protected targets(
    list: readonly Node[] | undefined,
    scope: Scope,
    use: OutputUse,
    clause: string,
  ): OutputColumn[] {
    const outputs: OutputColumn[] = [];
    const sink: Sink = use === 'data-copy' ? 'data-copy' : 'expression';
    for (const t of list ?? []) {
      const target = nodeAs(t, 'ResTarget');
      if (target === undefined) continue;
      const ref = nodeAs(target.val, 'ColumnRef');
      if (ref === undefined) {
        this.exprs.expr(target.val, clauseContext(scope, clause, sink));
        outputs.push({ name: target.name, masked: [] });
        continue;
      }
      const res = this.resolver.resolve(ref, scope);
      if (res.star !== undefined) {
        for (const s of res.star) outputs.push({ name: undefined, masked: [], star: s });
        continue;
      }
      for (const row of res.rows) this.report.wholeRow(row.label, row.columns, clause);
      for (const m of res.fields) {
        this.report.emit(
          m,
          'expression',
          `${columnKey(m)} is read through a field selection in ${clause}; the result has no column origin`,
        );
      }
      this.report.unknownRelation(res.unknown, clause);
      const { names } = columnRefFields(ref);
      outputs.push({ name: target.name ?? names[names.length - 1], masked: res.plain });
    }
    return outputs;
  }

  /** ORDER BY / GROUP BY / DISTINCT ON items may name an output column by position or alias. */
  private outputReference(
    node: Node | undefined,
    outputs: readonly OutputColumn[],
  ): OutputColumn | undefined {
    const c = nodeAs(node, 'A_Const');
    if (c?.ival !== undefined) {
      const position = c.ival.ival ?? 0;
      // After a `*` the text no longer tells which column sits at a position: any of the expanded
      // relations' masked columns may.
      const stars = outputs.slice(0, position).filter((o) => o.star !== undefined);
      if (stars.length > 0)
        return { name: undefined, masked: stars.flatMap((o) => o.star?.wholeRow() ?? []) };
      return outputs[position - 1];
    }
    const ref = nodeAs(node, 'ColumnRef');
    if (ref === undefined) return undefined;
    const { names, star } = columnRefFields(ref);
    if (star || names.length !== 1) return undefined;
    return outputs.find((o) => o.name === names[0]);
  }

  /** ORDER BY, GROUP BY, DISTINCT ON: through the output columns they name, and as expressions. */
  private byOutput(
    items: readonly Node[] | undefined,
    outputs: readonly OutputColumn[],
    ctx: ExprContext,
  ): void {
    for (const item of items ?? []) {
      const node = nodeAs(item, 'SortBy')?.node ?? item;
      const out = this.outputReference(node, outputs);
      if (out !== undefined) {
        const masked = out.star !== undefined ? out.star.wholeRow() : out.masked;
        for (const m of masked) this.report.emit(m, ctx.sink, describe(ctx.sink, columnKey(m), ctx));
      }
      if (nodeAs(node, 'A_Const') === undefined) this.exprs.expr(node, ctx);
    }
  }

  private setOperation(sel: SelectStmt, scope: Scope, into: string | undefined): OutputColumn[] {
    const where = `a ${(sel.op ?? '').replace('SETOP_', '')} (set operation)`;
    const left = sel.larg !== undefined ? this.select(sel.larg, scope, 'set-operation', where) : [];
    const right = sel.rarg !== undefined ? this.select(sel.rarg, scope, 'set-operation', where) : [];
    this.report.outputs(left, 'set-operation', where);
    this.report.outputs(right, 'set-operation', where);
    // ORDER BY of a set operation names its output columns; an ordering over them is an oracle too.
    const merged = left.map((o, i) => ({
      name: o.name,
      masked: [...o.masked, ...(right[i]?.masked ?? [])],
      star: o.star,
    }));
    this.byOutput(sel.sortClause, merged, clauseContext(scope, 'ORDER BY', 'ordering'));
    this.exprs.expr([sel.limitCount, sel.limitOffset], clauseContext(scope, 'LIMIT / OFFSET', 'predicate'));
    if (into !== undefined) this.report.outputs(merged, 'data-copy', into);
    // The set operation's own columns have no origin: nothing passes through plainly.
    return left.map((o) => ({ name: o.name, masked: [] }));
  }

  protected select(sel: SelectStmt, parent: Scope, use: OutputUse, clause: string): OutputColumn[] {
    const scope = new Scope(parent, parent);
    this.defineCtes(sel.withClause, scope);
    const into =
      sel.intoClause?.rel !== undefined ? `SELECT … INTO ${relationLabel(sel.intoClause.rel)}` : undefined;
    if (sel.op !== undefined && sel.op !== 'SETOP_NONE') return this.setOperation(sel, scope, into);
    const ctx = (c: string, sink: Sink): ExprContext => clauseContext(scope, c, sink);

    for (const item of sel.fromClause ?? []) this.fromItem(item, scope);
    this.exprs.expr(sel.whereClause, ctx('WHERE', 'predicate'));

    let outputs: OutputColumn[];
    const sink: Sink = use === 'data-copy' || into !== undefined ? 'data-copy' : 'expression';
    if (sel.valuesLists !== undefined) {
      // VALUES rows have no origin, even for plain references (LATERAL (VALUES (c.ssn))).
      for (const row of sel.valuesLists) this.exprs.expr(nodeAs(row, 'List')?.items, ctx('VALUES', sink));
      const width = nodeAs(sel.valuesLists[0], 'List')?.items?.length ?? 0;
      outputs = Array.from({ length: width }, (_, i) => ({ name: `column${i + 1}`, masked: [] }));
    } else {
      outputs = this.targets(sel.targetList, scope, into !== undefined ? 'data-copy' : use, into ?? clause);
    }

    this.byOutput(sel.groupClause, outputs, ctx('GROUP BY', 'grouping'));
    this.exprs.expr(sel.havingClause, ctx('HAVING', 'predicate'));
    for (const w of sel.windowClause ?? []) {
      const def = nodeAs(w, 'WindowDef');
      if (def !== undefined)
        this.exprs.windowDef(def, ctx('WINDOW', 'expression'), `window ${def.name ?? ''}`.trim());
    }
    const distinct = sel.distinctClause ?? [];
    if (distinct.length > 0 && distinct.every((d) => tagOf(d) === undefined)) {
      // Plain DISTINCT (a list of one empty node): every output column groups.
      const dctx = ctx('SELECT DISTINCT', 'grouping');
      for (const o of outputs) {
        for (const m of o.star !== undefined ? o.star.wholeRow() : o.masked) {
          this.report.emit(m, 'grouping', describe('grouping', columnKey(m), dctx));
        }
      }
    } else {
      this.byOutput(distinct, outputs, ctx('DISTINCT ON', 'ordering'));
    }
    this.byOutput(sel.sortClause, outputs, ctx('ORDER BY', 'ordering'));
    this.exprs.expr([sel.limitCount, sel.limitOffset], ctx('LIMIT / OFFSET', 'predicate'));

    if (into !== undefined) {
      this.report.outputs(outputs, 'data-copy', into);
      return outputs.map((o) => ({ name: o.name, masked: [] }));
    }
    return outputs;
  }
}
