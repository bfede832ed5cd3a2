/**
 * Masking leak analysis. The gateway masks result cells by the column origin PostgreSQL reports in
 * RowDescription (table OID + attribute number), and PostgreSQL reports an origin only for a result
 * column that is a plain column reference (followed through subqueries in FROM and CTEs). Every
 * other way a masked column's value — or information about it — can reach the agent is found here,
 * from the parse tree alone, before the query runs. The agent is assumed adversarial.
 *
 * The rule of thumb: a reference to a masked column is safe only as a plain output column of the
 * statement's result (or of a subquery / CTE that the result then references plainly). Anywhere
 * else — inside an expression, a predicate, an ordering, a set operation, a subquery expression, a
 * write into another table, a whole-row value — it is reported, with how it leaks.
 * See README.md in this folder for the threat model and the full list of cases.
 */
import type { FuncCall, Node, RangeVar, SelectStmt } from 'libpg-query';
import {
  isAggregateName,
  isBuiltinFunction,
  isDynamicSqlFunction,
  isWindowFunctionName,
} from './function-catalog.js';
import {
  type CompiledRule,
  columnKey,
  compileRules,
  type MaskedColumn,
  rulesForTable,
} from './masking-rules.js';
import {
  DerivedSource,
  FunctionSource,
  JoinSource,
  type OutputColumn,
  Scope,
  type Source,
  TableSource,
} from './masking-scope.js';
import { bodyOf, isRecord, type NodeOf, nodeAs, qualifiedName, stringValues, tagOf } from './pg-ast.js';
import type {
  Leak,
  LeakKind,
  MaskedColumnRule,
  MaskingAnalysis,
  MaskingOptions,
  RelationName,
  SqlStatementTree,
  StatementAnalysis,
} from './types.js';

/**
 * Leak kinds the gateway can still mask itself: COPY rows by column position, RETURNING columns by
 * the origin PostgreSQL reports for them (verified: a plain RETURNING column carries its table OID
 * and attribute number in RowDescription).
 */
export const MASKABLE_LEAK_KINDS: ReadonlySet<LeakKind> = new Set<LeakKind>(['copy', 'returning']);

export function isMaskableLeak(kind: LeakKind): boolean {
  return MASKABLE_LEAK_KINDS.has(kind);
}

/** Catalog views that expose sample values of columns the session can read. */
const STATISTICS_VIEWS: ReadonlySet<string> = new Set([
  'pg_stats',
  'pg_stats_ext',
  'pg_stats_ext_exprs',
  'pg_statistic',
  'pg_statistic_ext_data',
]);

/** How the result of a query level is used, which decides what a plain masked output column means. */
type OutputUse =
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

type Sink = 'expression' | 'predicate' | 'ordering' | 'grouping' | 'data-copy';

/** Where an expression sits and what wraps the column reference being resolved. */
interface ExprContext {
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

/** What a column reference denotes. */
interface Resolution {
  /** Plain masked columns (origin kept if used as a plain output). */
  plain: MaskedColumn[];
  /** Whole-row references: the relation and the masked columns its value carries. */
  rows: Array<{ label: string; columns: MaskedColumn[] }>;
  /** Field selections from a composite column that may be masked (an expression). */
  fields: MaskedColumn[];
  /** `*` / `x.*`: the relations expanded. */
  star: Source[] | undefined;
  /** A column of an untrusted function's result, named like a masked column. */
  unknown: Array<{ fn: string; rule: CompiledRule }>;
}

function aliasColumns(alias: { colnames?: Node[] } | undefined): string[] | undefined {
  const names = stringValues(alias?.colnames);
  return names.length > 0 ? names : undefined;
}

function typeLabel(typeName: { names?: Node[] } | undefined): string {
  const names = stringValues(typeName?.names).filter((n) => n !== 'pg_catalog');
  return names.join('.') || 'another type';
}

function columnRefFields(ref: NodeOf<'ColumnRef'>): { names: string[]; star: boolean } {
  const names: string[] = [];
  let star = false;
  for (const f of ref.fields ?? []) {
    const s = nodeAs(f, 'String');
    if (s?.sval !== undefined) names.push(s.sval);
    else if (nodeAs(f, 'A_Star') !== undefined) star = true;
  }
  return { names, star };
}

class LeakAnalyzer {
  private readonly rules: readonly CompiledRule[];
  private readonly defaultSchemas: readonly string[];
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

  private emit(column: MaskedColumn | string, how: LeakKind, detail: string, outputColumn?: number): void {
    const name = typeof column === 'string' ? column : columnKey(column);
    const key = `${how}\u0000${name}\u0000${detail}`;
    if (this.leaks.has(key)) return;
    const leak: Leak = { column: name, how, detail };
    if (outputColumn !== undefined) leak.outputColumn = outputColumn;
    this.leaks.set(key, leak);
  }

  private emitForEveryRule(how: LeakKind, detail: (rule: string) => string): void {
    for (const rule of this.rules) this.emit(rule.text, how, detail(rule.text));
  }

  // ---- relations -------------------------------------------------------------------------------

  private noteRelation(rv: RangeVar): void {
    const name = rv.relname;
    if (name === undefined) return;
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
  }

  private tableSource(rv: RangeVar): TableSource {
    this.noteRelation(rv);
    const name = rv.relname ?? '';
    return new TableSource(
      rv.schemaname,
      name,
      rv.alias?.aliasname,
      aliasColumns(rv.alias),
      rulesForTable(this.rules, rv.schemaname, name, this.defaultSchemas),
    );
  }

  // ---- column references ----------------------------------------------------------------------

  private matches(source: Source, qualifier: readonly string[]): boolean {
    const [a, b] = qualifier;
    if (qualifier.length === 1) return source.alias !== undefined ? source.alias === a : source.relName === a;
    if (qualifier.length === 2 && source.alias === undefined && source.relName === b) {
      if (source.relSchema !== undefined) return source.relSchema === a;
      return this.defaultSchemas.some((ds) => ds === '*' || ds === a);
    }
    return false;
  }

  /** The sources a qualifier names, at the innermost level that has any (SQL's scoping rule). */
  private qualified(scope: Scope, qualifier: readonly string[]): Source[] {
    for (const level of scope.levels()) {
      const found = level.sources.filter((s) => this.matches(s, qualifier));
      if (found.length > 0) return found;
    }
    return [];
  }

  private unknownColumns(source: Source, name: string, out: Resolution['unknown']): void {
    if (source.untrustedFunction === undefined) return;
    for (const rule of this.rules) {
      if (rule.literalColumn === name.toLowerCase()) out.push({ fn: source.untrustedFunction, rule });
    }
  }

  /**
   * Resolves a column reference. Without a catalog an unqualified name may belong to any relation in
   * scope, at any level: it is taken to be every masked column of that name (the careful reading).
   */
  private resolve(ref: NodeOf<'ColumnRef'>, scope: Scope): Resolution {
    const { names, star } = columnRefFields(ref);
    const res: Resolution = { plain: [], rows: [], fields: [], star: undefined, unknown: [] };
    if (star) {
      res.star = names.length === 0 ? [...scope.sources] : this.qualified(scope, names.slice(-2));
      return res;
    }
    const last = names[names.length - 1];
    if (last === undefined) return res;
    if (names.length === 1) {
      for (const level of scope.levels()) {
        for (const s of level.sources) {
          res.plain.push(...s.column(last));
          this.unknownColumns(s, last, res.unknown);
          // PostgreSQL reads a bare relation name as a whole-row reference when no column has it.
          if (this.matches(s, [last])) res.rows.push({ label: last, columns: s.wholeRow() });
        }
      }
      return res;
    }
    // q.col, s.q.col, db.s.q.col
    const qualifier = names.slice(Math.max(0, names.length - 3), -1);
    const sources = this.qualified(scope, qualifier.slice(-2));
    if (sources.length > 0) {
      for (const s of sources) {
        res.plain.push(...s.column(last));
        this.unknownColumns(s, last, res.unknown);
      }
    } else {
      // q.f where q is not a relation: field f of a composite column q (an expression over q).
      const base = this.resolve({ fields: ref.fields?.slice(0, -1) ?? [] }, scope);
      res.fields.push(...base.plain, ...base.fields, ...base.rows.flatMap((r) => r.columns));
    }
    // s.q as schema.table: a whole-row reference.
    if (names.length === 2 && this.qualified(scope, names).length > 0) {
      for (const s of this.qualified(scope, names))
        res.rows.push({ label: names.join('.'), columns: s.wholeRow() });
    }
    return res;
  }

  // ---- expressions ----------------------------------------------------------------------------

  private kindFor(ctx: ExprContext): LeakKind {
    if (ctx.untrustedFunction !== undefined) return 'function-argument';
    if (ctx.sink !== 'expression') return ctx.sink;
    if (ctx.aggregate !== undefined) return 'aggregate';
    if (ctx.castOnly && ctx.depth > 0) return 'cast';
    return 'expression';
  }

  private describe(kind: LeakKind, col: string, ctx: ExprContext): string {
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

  private columnRef(ref: NodeOf<'ColumnRef'>, ctx: ExprContext): void {
    const res = this.resolve(ref, ctx.scope);
    if (res.star !== undefined) {
      // x.* inside an expression (row_to_json(c.*), ROW(c.*)) is a whole-row value.
      for (const s of res.star) this.wholeRow(s.label, s.wholeRow(), ctx);
      return;
    }
    const kind = this.kindFor(ctx);
    for (const m of res.plain) this.emit(m, kind, this.describe(kind, columnKey(m), ctx));
    for (const m of res.fields) {
      const k = kind === 'cast' ? 'expression' : kind;
      this.emit(m, k, this.describe(k, columnKey(m), { ...ctx, wrapper: 'field selection' }));
    }
    for (const row of res.rows) this.wholeRow(row.label, row.columns, ctx);
    this.unknownRelation(res, ctx.clause);
  }

  private wholeRow(label: string, columns: MaskedColumn[], ctx: { clause: string }): void {
    for (const m of columns) {
      this.emit(
        m,
        'whole-row',
        `${label} is a whole-row reference in ${ctx.clause}; its value carries ${columnKey(m)} without a column origin`,
      );
    }
  }

  private unknownRelation(res: Resolution, clause: string): void {
    for (const { fn, rule } of res.unknown) {
      this.emit(
        rule.text,
        'unknown-relation',
        `a column named like ${rule.text} comes from ${fn}() in ${clause}; columns of a function's result have no origin`,
      );
    }
  }

  private deeper(ctx: ExprContext, wrapper: string | undefined, keepCast = false): ExprContext {
    return {
      ...ctx,
      depth: ctx.depth + 1,
      castOnly: keepCast && ctx.castOnly,
      wrapper: wrapper ?? ctx.wrapper,
    };
  }

  private funcCall(fc: FuncCall, ctx: ExprContext): void {
    const parts = stringValues(fc.funcname);
    const name = qualifiedName(parts);
    const untrusted = !isBuiltinFunction(parts);
    if (untrusted) this.untrusted.add(name);
    if (isDynamicSqlFunction(name)) {
      this.emitForEveryRule(
        'dynamic-sql',
        (rule) => `${name}() runs SQL given as a string, which may read ${rule}`,
      );
    }
    const aggregate =
      fc.over !== undefined ||
      fc.agg_star === true ||
      fc.agg_distinct === true ||
      fc.agg_within_group === true ||
      fc.agg_filter !== undefined ||
      (fc.agg_order?.length ?? 0) > 0 ||
      isAggregateName(name) ||
      isWindowFunctionName(name);
    const inner: ExprContext = {
      ...this.deeper(ctx, `${name}()`),
      aggregate: aggregate ? name : ctx.aggregate,
      untrustedFunction: untrusted ? name : ctx.untrustedFunction,
    };
    this.expr(fc.args, inner);
    if (fc.agg_within_group === true) this.expr(fc.agg_order, inner);
    else this.expr(fc.agg_order, { ...inner, sink: 'ordering', clause: `the ORDER BY of ${name}()` });
    this.expr(fc.agg_filter, { ...inner, sink: 'predicate', clause: `the FILTER of ${name}()` });
    if (fc.over !== undefined) this.windowDef(fc.over, inner, name);
  }

  private windowDef(w: NodeOf<'WindowDef'>, ctx: ExprContext, name: string): void {
    this.expr(w.partitionClause, { ...ctx, sink: 'grouping', clause: `the PARTITION BY of ${name}` });
    this.expr(w.orderClause, { ...ctx, sink: 'ordering', clause: `the window ORDER BY of ${name}` });
    this.expr(w.startOffset, { ...ctx, sink: 'predicate', clause: `the window frame of ${name}` });
    this.expr(w.endOffset, { ...ctx, sink: 'predicate', clause: `the window frame of ${name}` });
  }

  private subLink(link: NodeOf<'SubLink'>, ctx: ExprContext): void {
    this.expr(link.testexpr, this.deeper(ctx, 'subquery comparison'));
    const exists = link.subLinkType === 'EXISTS_SUBLINK';
    const outputs = this.query(
      link.subselect,
      new Scope(ctx.scope, ctx.scope),
      exists ? 'exists' : 'subquery',
      `a subquery in ${ctx.clause}`,
    );
    if (!exists) this.reportOutputs(outputs, 'subquery', `a subquery in ${ctx.clause}`);
  }

  /** Walks an expression (or a list, or a bare struct) and reports every masked reference in it. */
  private expr(node: unknown, ctx: ExprContext): void {
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
        this.expr(cast.arg, { ...this.deeper(ctx, 'cast', true), castTo: typeLabel(cast.typeName) });
        return;
      }
      case 'CollateClause':
        this.expr((body as NodeOf<'CollateClause'>).arg, {
          ...this.deeper(ctx, 'COLLATE', true),
          castTo: 'a collation',
        });
        return;
      case 'SubLink':
        this.subLink(body as NodeOf<'SubLink'>, ctx);
        return;
      case 'A_Expr': {
        const e = body as NodeOf<'A_Expr'>;
        const op = stringValues(e.name).join(' ') || 'operator';
        const inner = this.deeper(ctx, `${op}`);
        this.expr(e.lexpr, inner);
        this.expr(e.rexpr, inner);
        return;
      }
      case 'JsonArrayAgg':
      case 'JsonObjectAgg': {
        const inner: ExprContext = {
          ...this.deeper(ctx, tag),
          aggregate: tag === 'JsonArrayAgg' ? 'json_arrayagg' : 'json_objectagg',
        };
        for (const key in body) {
          if (key === 'constructor') continue;
          this.expr(body[key], inner);
        }
        const ctor = body.constructor;
        if (isRecord(ctor)) {
          const c = ctor as NodeOf<'JsonAggConstructor'>;
          this.expr(c.agg_order, {
            ...inner,
            sink: 'ordering',
            clause: `the ORDER BY of ${inner.aggregate}()`,
          });
          this.expr(c.agg_filter, {
            ...inner,
            sink: 'predicate',
            clause: `the FILTER of ${inner.aggregate}()`,
          });
          if (c.over !== undefined) this.windowDef(c.over, inner, inner.aggregate ?? tag);
        }
        return;
      }
      case 'SelectStmt':
      case 'InsertStmt':
      case 'UpdateStmt':
      case 'DeleteStmt':
      case 'MergeStmt':
        // Only reachable from constructs this walker does not model: treat the rows as a subquery's.
        this.reportOutputs(
          this.query(node as Node, new Scope(ctx.scope, ctx.scope), 'subquery', ctx.clause),
          'subquery',
          ctx.clause,
        );
        return;
      default: {
        const inner = this.deeper(ctx, tag);
        for (const key in body) this.expr(body[key], inner);
      }
    }
  }

  // ---- query levels ---------------------------------------------------------------------------

  /** Analyses a statement that produces rows and returns its output columns. */
  private query(node: Node | undefined, scope: Scope, use: OutputUse, clause: string): OutputColumn[] {
    const select = nodeAs(node, 'SelectStmt');
    if (select !== undefined) return this.select(select, scope, use, clause);
    const tag = tagOf(node);
    const body = bodyOf(node);
    if (
      (tag === 'InsertStmt' || tag === 'UpdateStmt' || tag === 'DeleteStmt' || tag === 'MergeStmt') &&
      body !== undefined
    ) {
      return this.modify(tag, body, scope, use);
    }
    if (node !== undefined) this.statement(node, scope);
    return [];
  }

  private defineCtes(withClause: NodeOf<'SelectStmt'>['withClause'], scope: Scope): void {
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
      const renamed =
        names.length > 0 ? new DerivedSource(undefined, cte.ctename, names, outputs) : undefined;
      scope.ctes.set(
        cte.ctename,
        renamed !== undefined ? [{ name: undefined, masked: [], star: renamed }] : outputs,
      );
    }
  }

  private fromItem(item: Node, scope: Scope): Source[] {
    const rv = nodeAs(item, 'RangeVar');
    if (rv !== undefined) {
      const name = rv.relname ?? '';
      const cte = rv.schemaname === undefined ? scope.findCte(name) : undefined;
      const source =
        cte !== undefined
          ? new DerivedSource(rv.alias?.aliasname, name, aliasColumns(rv.alias), cte)
          : this.tableSource(rv);
      scope.sources.push(source);
      return [source];
    }
    const sub = nodeAs(item, 'RangeSubselect');
    if (sub !== undefined) {
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
        // Functions in FROM may reference earlier FROM items, as if LATERAL.
        this.expr(f, { scope, clause: 'a function in FROM', sink: 'expression', depth: 1, castOnly: false });
      }
      const source = new FunctionSource(fn.alias?.aliasname, first, untrusted);
      scope.sources.push(source);
      return [source];
    }
    const sample = nodeAs(item, 'RangeTableSample');
    if (sample !== undefined) {
      this.expr(sample.args, { scope, clause: 'TABLESAMPLE', sink: 'predicate', depth: 0, castOnly: true });
      this.expr(sample.repeatable, {
        scope,
        clause: 'TABLESAMPLE',
        sink: 'predicate',
        depth: 0,
        castOnly: true,
      });
      return sample.relation !== undefined ? this.fromItem(sample.relation, scope) : [];
    }
    // XMLTABLE, JSON_TABLE and anything newer: their inputs are expressions, their columns have no origin.
    const tag = tagOf(item) ?? 'FROM item';
    this.expr(bodyOf(item), {
      scope,
      clause: `${tag} in FROM`,
      sink: 'expression',
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
    this.expr(join.quals, { scope, clause: 'JOIN … ON', sink: 'predicate', depth: 0, castOnly: true });
    const using = stringValues(join.usingClause);
    for (const col of using) {
      for (const m of both.flatMap((s) => s.column(col))) {
        this.emit(
          m,
          'predicate',
          `${columnKey(m)} is compared in JOIN … USING (${col}), which makes the result an oracle for its value`,
        );
      }
    }
    if (join.isNatural === true) {
      for (const m of both.flatMap((s) => s.wholeRow())) {
        this.emit(m, 'predicate', `NATURAL JOIN may compare ${columnKey(m)} with a column of the same name`);
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
  private targets(
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
        this.expr(target.val, { scope, clause, sink, depth: 0, castOnly: true });
        outputs.push({ name: target.name, masked: [] });
        continue;
      }
      const res = this.resolve(ref, scope);
      if (res.star !== undefined) {
        for (const s of res.star) outputs.push({ name: undefined, masked: [], star: s });
        continue;
      }
      for (const row of res.rows) this.wholeRow(row.label, row.columns, { clause });
      for (const m of res.fields) {
        this.emit(
          m,
          'expression',
          `${columnKey(m)} is read through a field selection in ${clause}; the result has no column origin`,
        );
      }
      this.unknownRelation(res, clause);
      const { names } = columnRefFields(ref);
      outputs.push({ name: target.name ?? names[names.length - 1], masked: res.plain });
    }
    return outputs;
  }

  /** What a plain masked output column means for each use (see OutputUse). */
  private reportOutputs(outputs: readonly OutputColumn[], use: OutputUse, where: string): void {
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
      if (stars.length > 0) {
        return { name: undefined, masked: stars.flatMap((o) => o.star?.wholeRow() ?? []) };
      }
      return outputs[position - 1];
    }
    const ref = nodeAs(node, 'ColumnRef');
    if (ref === undefined) return undefined;
    const { names, star } = columnRefFields(ref);
    if (star || names.length !== 1) return undefined;
    return outputs.find((o) => o.name === names[0]);
  }

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
        for (const m of masked) this.emit(m, ctx.sink, this.describe(ctx.sink, columnKey(m), ctx));
      }
      if (nodeAs(node, 'A_Const') === undefined) this.expr(node, ctx);
    }
  }

  private select(sel: SelectStmt, parent: Scope, requested: OutputUse, clause: string): OutputColumn[] {
    const use: OutputUse = sel.intoClause !== undefined ? 'data-copy' : requested;
    const scope = new Scope(parent, parent);
    this.defineCtes(sel.withClause, scope);
    const into =
      sel.intoClause?.rel !== undefined ? `SELECT … INTO ${relationLabel(sel.intoClause.rel)}` : undefined;
    const ctx = (c: string, sink: Sink): ExprContext => ({
      scope,
      clause: c,
      sink,
      depth: 0,
      castOnly: true,
    });

    if (sel.op !== undefined && sel.op !== 'SETOP_NONE') {
      const word = sel.op.replace('SETOP_', '');
      const where = `a ${word} (set operation)`;
      const left = sel.larg !== undefined ? this.select(sel.larg, scope, 'set-operation', where) : [];
      const right = sel.rarg !== undefined ? this.select(sel.rarg, scope, 'set-operation', where) : [];
      this.reportOutputs(left, 'set-operation', where);
      this.reportOutputs(right, 'set-operation', where);
      // ORDER BY of a set operation names its output columns; an ordering over them is an oracle too.
      const merged = left.map((o, i) => ({
        name: o.name,
        masked: [...o.masked, ...(right[i]?.masked ?? [])],
        star: o.star,
      }));
      this.byOutput(sel.sortClause, merged, ctx('ORDER BY', 'ordering'));
      this.expr([sel.limitCount, sel.limitOffset], ctx('LIMIT / OFFSET', 'predicate'));
      if (into !== undefined) this.reportOutputs(merged, 'data-copy', into);
      return left.map((o) => ({ name: o.name, masked: [] }));
    }

    for (const item of sel.fromClause ?? []) this.fromItem(item, scope);
    this.expr(sel.whereClause, ctx('WHERE', 'predicate'));

    let outputs: OutputColumn[];
    if (sel.valuesLists !== undefined) {
      // VALUES rows have no origin even for plain references (LATERAL (VALUES (c.ssn))).
      const sink: Sink = use === 'data-copy' ? 'data-copy' : 'expression';
      for (const row of sel.valuesLists) {
        this.expr(nodeAs(row, 'List')?.items, ctx('VALUES', sink));
      }
      outputs = (nodeAs(sel.valuesLists[0], 'List')?.items ?? []).map((_, i) => ({
        name: `column${i + 1}`,
        masked: [],
      }));
    } else {
      outputs = this.targets(sel.targetList, scope, use, into ?? clause);
    }

    for (const g of sel.groupClause ?? []) {
      const out = this.outputReference(g, outputs);
      const gctx = ctx('GROUP BY', 'grouping');
      if (out !== undefined) {
        for (const m of out.star !== undefined ? out.star.wholeRow() : out.masked) {
          this.emit(m, 'grouping', this.describe('grouping', columnKey(m), gctx));
        }
      }
      if (nodeAs(g, 'A_Const') === undefined) this.expr(g, gctx);
    }
    this.expr(sel.havingClause, ctx('HAVING', 'predicate'));
    for (const w of sel.windowClause ?? []) {
      const def = nodeAs(w, 'WindowDef');
      if (def !== undefined)
        this.windowDef(def, ctx('WINDOW', 'expression'), `window ${def.name ?? ''}`.trim());
    }
    const distinct = sel.distinctClause ?? [];
    if (distinct.length > 0) {
      const plainDistinct = distinct.every((d) => tagOf(d) === undefined);
      if (plainDistinct) {
        const dctx = ctx('SELECT DISTINCT', 'grouping');
        for (const o of outputs) {
          for (const m of o.star !== undefined ? o.star.wholeRow() : o.masked) {
            this.emit(m, 'grouping', this.describe('grouping', columnKey(m), dctx));
          }
        }
      } else {
        this.byOutput(distinct, outputs, ctx('DISTINCT ON', 'ordering'));
      }
    }
    this.byOutput(sel.sortClause, outputs, ctx('ORDER BY', 'ordering'));
    this.expr([sel.limitCount, sel.limitOffset], ctx('LIMIT / OFFSET', 'predicate'));

    if (into !== undefined) {
      this.reportOutputs(outputs, 'data-copy', into);
      return outputs.map((o) => ({ name: o.name, masked: [] }));
    }
    return outputs;
  }

  // ---- data-modifying statements --------------------------------------------------------------

  /** Writing a masked column: a unique-constraint error tells whether the value exists elsewhere. */
  private writeOracle(columns: MaskedColumn[], statement: string): void {
    for (const m of columns) {
      this.emit(
        m,
        'write-oracle',
        `${statement} writes ${columnKey(m)}; a unique-constraint error would tell whether the value exists in another row`,
      );
    }
  }

  /** UPDATE … SET / ON CONFLICT DO UPDATE SET / MERGE … UPDATE SET. */
  private assignments(
    list: readonly Node[] | undefined,
    scope: Scope,
    target: Source,
    statement: string,
  ): void {
    for (const t of list ?? []) {
      const rt = nodeAs(t, 'ResTarget');
      if (rt === undefined) continue;
      const column = rt.name ?? '';
      const targetMasked = target.column(column);
      this.writeOracle(targetMasked, statement);
      const clause = `${statement} SET ${column}`;
      const multi = nodeAs(rt.val, 'MultiAssignRef');
      if (multi !== undefined) {
        const link = nodeAs(multi.source, 'SubLink');
        if (link !== undefined) {
          // SET (a, b) = (SELECT …): the subquery's outputs are written.
          const outputs = this.query(link.subselect, new Scope(scope, scope), 'derived', clause);
          this.reportOutputs(outputs, 'data-copy', clause);
        } else {
          this.expr(multi.source, { scope, clause, sink: 'data-copy', depth: 0, castOnly: true });
        }
        continue;
      }
      const ref = nodeAs(rt.val, 'ColumnRef');
      if (ref !== undefined) {
        const res = this.resolve(ref, scope);
        const same = new Set(targetMasked.map(columnKey));
        for (const m of res.plain) {
          // SET ssn = ssn keeps the value where it was.
          if (!same.has(columnKey(m)))
            this.emit(
              m,
              'data-copy',
              `${columnKey(m)} is copied by ${clause} into a column that is not masked the same way`,
            );
        }
        for (const row of res.rows) this.wholeRow(row.label, row.columns, { clause });
        continue;
      }
      // An expression written back into a masked column stays masked, but can still fail with its
      // value in the error message; written elsewhere, it is a copy.
      const sink: Sink = targetMasked.length > 0 ? 'expression' : 'data-copy';
      this.expr(rt.val, { scope, clause, sink, depth: 0, castOnly: true });
    }
  }

  private returning(
    clause: NodeOf<'InsertStmt'>['returningClause'],
    scope: Scope,
    target: Source,
    use: OutputUse,
  ): OutputColumn[] {
    if (clause === undefined) return [];
    // RETURNING old.* / new.* (and WITH (OLD AS o, NEW AS n)) name the target relation's row.
    const aliases = ['old', 'new'];
    for (const o of clause.options ?? []) {
      const value = nodeAs(o, 'ReturningOption')?.value;
      if (value !== undefined) aliases.push(value);
    }
    // In the statement's own level, so that RETURNING * still expands the FROM / USING relations.
    for (const a of aliases) scope.sources.push(new JoinSource(a, [target]));
    const outUse: OutputUse = use === 'derived' || use === 'copy' ? use : 'returning';
    const outputs = this.targets(clause.exprs, scope, outUse, 'RETURNING');
    if (outUse === 'returning') this.reportOutputs(outputs, 'returning', 'RETURNING');
    return outputs;
  }

  private modify(tag: string, body: Record<string, unknown>, parent: Scope, use: OutputUse): OutputColumn[] {
    const stmt = body as NodeOf<'UpdateStmt'> &
      NodeOf<'DeleteStmt'> &
      NodeOf<'MergeStmt'> &
      NodeOf<'InsertStmt'>;
    const scope = new Scope(parent, parent);
    this.defineCtes(stmt.withClause, scope);
    if (stmt.relation === undefined) return [];
    const target = this.tableSource(stmt.relation);
    const ctx = (clause: string, sink: Sink): ExprContext => ({
      scope,
      clause,
      sink,
      depth: 0,
      castOnly: true,
    });

    if (tag === 'InsertStmt') {
      const columns = (stmt.cols ?? []).map((c) => nodeAs(c, 'ResTarget')?.name ?? '');
      this.writeOracle(
        columns.length > 0 ? columns.flatMap((c) => target.column(c)) : target.wholeRow(),
        `INSERT INTO ${target.label}`,
      );
      // The INSERT's own rows cannot see the target relation.
      const outputs = this.query(stmt.selectStmt, new Scope(parent, scope), 'data-copy', 'INSERT');
      this.reportOutputs(outputs, 'data-copy', `INSERT INTO ${target.label}`);
      scope.sources.push(target);
      const conflict = stmt.onConflictClause;
      if (conflict !== undefined) {
        scope.sources.push(new JoinSource('excluded', [target]));
        this.expr(conflict.infer?.whereClause, ctx('ON CONFLICT … WHERE', 'predicate'));
        this.assignments(
          conflict.targetList,
          scope,
          target,
          `INSERT INTO ${target.label} ON CONFLICT DO UPDATE`,
        );
        this.expr(conflict.whereClause, ctx('ON CONFLICT DO UPDATE … WHERE', 'predicate'));
      }
      return this.returning(stmt.returningClause, scope, target, use);
    }

    scope.sources.push(target);
    if (tag === 'UpdateStmt' || tag === 'DeleteStmt') {
      for (const item of [...(stmt.fromClause ?? []), ...(stmt.usingClause ?? [])])
        this.fromItem(item, scope);
      this.expr(stmt.whereClause, ctx('WHERE', 'predicate'));
      if (tag === 'UpdateStmt') this.assignments(stmt.targetList, scope, target, `UPDATE ${target.label}`);
      return this.returning(stmt.returningClause, scope, target, use);
    }

    // MERGE
    if (stmt.sourceRelation !== undefined) this.fromItem(stmt.sourceRelation, scope);
    this.expr(stmt.joinCondition, ctx('MERGE … ON', 'predicate'));
    for (const w of stmt.mergeWhenClauses ?? []) {
      const when = nodeAs(w, 'MergeWhenClause');
      if (when === undefined) continue;
      this.expr(when.condition, ctx('MERGE … WHEN … AND', 'predicate'));
      if (when.commandType === 'CMD_UPDATE')
        this.assignments(when.targetList, scope, target, `MERGE INTO ${target.label}`);
      if (when.commandType === 'CMD_INSERT') {
        const columns = (when.targetList ?? []).map((c) => nodeAs(c, 'ResTarget')?.name ?? '');
        this.writeOracle(
          columns.length > 0 ? columns.flatMap((c) => target.column(c)) : target.wholeRow(),
          `MERGE INTO ${target.label}`,
        );
        this.expr(when.values, ctx(`MERGE INTO ${target.label} … INSERT`, 'data-copy'));
      }
    }
    return this.returning(stmt.returningClause, scope, target, use);
  }

  // ---- statements -----------------------------------------------------------------------------

  private copy(copy: NodeOf<'CopyStmt'>, scope: Scope): void {
    if (copy.query !== undefined) {
      const outputs = this.query(copy.query, new Scope(scope, scope), 'copy', 'COPY (…) TO');
      this.reportOutputs(outputs, 'copy', 'COPY (…) TO');
      return;
    }
    if (copy.relation === undefined) return;
    const table = this.tableSource(copy.relation);
    const columns = stringValues(copy.attlist);
    if (copy.is_from === true) {
      this.writeOracle(
        columns.length > 0 ? columns.flatMap((c) => table.column(c)) : table.wholeRow(),
        `COPY ${table.label} FROM`,
      );
      return;
    }
    if (columns.length > 0) {
      columns.forEach((c, i) => {
        for (const m of table.column(c))
          this.emit(
            m,
            'copy',
            `${columnKey(m)} is exported by COPY ${table.label} TO as column ${i + 1}`,
            i + 1,
          );
      });
    } else {
      for (const m of table.wholeRow()) {
        this.emit(
          m,
          'copy',
          `${columnKey(m)} is exported by COPY ${table.label} TO (all columns, in table order)`,
        );
      }
    }
  }

  /**
   * Statements not modelled query by query (DDL, CALL, …): every relation they name is in scope and
   * every masked column they mention is reported — CREATE INDEX / ADD CONSTRAINT / ALTER COLUMN TYPE
   * over a masked column can echo its values in errors, policies and statistics expose them.
   */
  private generic(node: Node, scope: Scope, label: string): void {
    const level = new Scope(scope, scope);
    this.collectRelations(node, level);
    const ctx: ExprContext = { scope: level, clause: label, sink: 'expression', depth: 0, castOnly: true };
    this.genericWalk(node, level, ctx);
  }

  private collectRelations(value: unknown, scope: Scope): void {
    if (Array.isArray(value)) {
      for (const v of value) this.collectRelations(v, scope);
      return;
    }
    if (!isRecord(value)) return;
    const tag = tagOf(value);
    if (
      tag === 'SelectStmt' ||
      tag === 'InsertStmt' ||
      tag === 'UpdateStmt' ||
      tag === 'DeleteStmt' ||
      tag === 'MergeStmt'
    )
      return;
    const rv =
      tag === 'RangeVar'
        ? nodeAs(value, 'RangeVar')
        : tag === undefined && typeof value.relname === 'string'
          ? (value as RangeVar)
          : undefined;
    if (rv !== undefined) {
      scope.sources.push(this.tableSource(rv));
      return;
    }
    for (const key in value) this.collectRelations(value[key], scope);
  }

  private genericWalk(value: unknown, scope: Scope, ctx: ExprContext): void {
    if (Array.isArray(value)) {
      for (const v of value) this.genericWalk(v, scope, ctx);
      return;
    }
    if (!isRecord(value)) return;
    const tag = tagOf(value);
    if (tag === undefined) {
      for (const key in value) this.genericWalk(value[key], scope, ctx);
      return;
    }
    switch (tag) {
      case 'SelectStmt':
      case 'InsertStmt':
      case 'UpdateStmt':
      case 'DeleteStmt':
      case 'MergeStmt': {
        // Stored statements (rule actions, SQL function bodies) expose what they return.
        const outputs = this.query(value as Node, new Scope(scope, scope), 'view-definition', ctx.clause);
        this.reportOutputs(outputs, 'view-definition', ctx.clause);
        return;
      }
      case 'IndexElem':
      case 'StatsElem': {
        const name = (value[tag] as { name?: string } | undefined)?.name;
        if (name !== undefined)
          this.genericColumn(name, scope, ctx, tag === 'IndexElem' ? 'an index on' : 'statistics on');
        break;
      }
      case 'Constraint': {
        const c = nodeAs(value, 'Constraint');
        for (const key of [
          ...stringValues(c?.keys),
          ...stringValues(c?.including),
          ...stringValues(c?.fk_attrs),
        ]) {
          this.genericColumn(key, scope, ctx, 'a constraint on');
        }
        break;
      }
      case 'AlterTableCmd': {
        const cmd = nodeAs(value, 'AlterTableCmd');
        if (cmd?.subtype === 'AT_AlterColumnType' && cmd.name !== undefined) {
          for (const m of scope.sources.flatMap((s) => s.column(cmd.name ?? ''))) {
            this.emit(
              m,
              'cast',
              `ALTER COLUMN ${cmd.name} TYPE converts ${columnKey(m)}; a failing conversion echoes its values in the error`,
            );
          }
        }
        break;
      }
      case 'ColumnRef':
      case 'FuncCall':
      case 'SubLink':
      case 'TypeCast':
      case 'A_Expr':
        this.expr(value, ctx);
        return;
      default:
        break;
    }
    const body = value[tag];
    if (isRecord(body)) for (const key in body) this.genericWalk(body[key], scope, ctx);
  }

  private genericColumn(name: string, scope: Scope, ctx: ExprContext, what: string): void {
    for (const m of scope.sources.flatMap((s) => s.column(name))) {
      this.emit(
        m,
        'expression',
        `${ctx.clause} creates ${what} ${columnKey(m)}; uniqueness errors and statistics can reveal its values`,
      );
    }
  }

  /** One top-level statement. */
  statement(node: Node, scope: Scope): void {
    const tag = tagOf(node) ?? 'statement';
    switch (tag) {
      case 'SelectStmt':
      case 'InsertStmt':
      case 'UpdateStmt':
      case 'DeleteStmt':
      case 'MergeStmt':
        this.query(node, scope, 'result', 'the select list');
        return;
      case 'ExplainStmt':
        // Plain EXPLAIN runs nothing but its estimates come from column statistics; analysed like the
        // statement itself (the careful reading).
        this.statementOrNothing(nodeAs(node, 'ExplainStmt')?.query, scope);
        return;
      case 'DeclareCursorStmt':
        this.statementOrNothing(nodeAs(node, 'DeclareCursorStmt')?.query, scope);
        return;
      case 'PrepareStmt':
        this.statementOrNothing(nodeAs(node, 'PrepareStmt')?.query, scope);
        return;
      case 'CopyStmt': {
        const copy = nodeAs(node, 'CopyStmt');
        if (copy !== undefined) this.copy(copy, scope);
        return;
      }
      case 'CreateTableAsStmt': {
        const ctas = nodeAs(node, 'CreateTableAsStmt');
        const name = ctas?.into?.rel !== undefined ? relationLabel(ctas.into.rel) : 'a new table';
        const outputs = this.query(ctas?.query, scope, 'data-copy', `CREATE TABLE ${name} AS`);
        this.reportOutputs(
          outputs,
          'data-copy',
          `CREATE ${ctas?.objtype === 'OBJECT_MATVIEW' ? 'MATERIALIZED VIEW' : 'TABLE'} ${name} AS`,
        );
        return;
      }
      case 'ViewStmt': {
        const view = nodeAs(node, 'ViewStmt');
        const where =
          `the definition of view ${view?.view !== undefined ? relationLabel(view.view) : ''}`.trim();
        this.reportOutputs(
          this.query(view?.query, scope, 'view-definition', where),
          'view-definition',
          where,
        );
        return;
      }
      case 'CallStmt': {
        const call = nodeAs(node, 'CallStmt')?.funccall;
        if (call !== undefined)
          this.funcCall(call, { scope, clause: 'CALL', sink: 'expression', depth: 0, castOnly: true });
        return;
      }
      default:
        this.generic(node, scope, STATEMENT_LABELS[tag] ?? tag);
    }
  }

  private statementOrNothing(node: Node | undefined, scope: Scope): void {
    if (node !== undefined) this.statement(node, scope);
  }
}

const STATEMENT_LABELS: Readonly<Record<string, string>> = {
  IndexStmt: 'CREATE INDEX',
  AlterTableStmt: 'ALTER TABLE',
  CreatePolicyStmt: 'CREATE POLICY',
  AlterPolicyStmt: 'ALTER POLICY',
  RuleStmt: 'CREATE RULE',
  CreateTrigStmt: 'CREATE TRIGGER',
  CreateStatsStmt: 'CREATE STATISTICS',
  CreateFunctionStmt: 'CREATE FUNCTION',
  CreateStmt: 'CREATE TABLE',
};

function relationLabel(rv: RangeVar): string {
  return rv.schemaname !== undefined ? `${rv.schemaname}.${rv.relname ?? ''}` : (rv.relname ?? '');
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
 * and the relations it must resolve (views, partitions, foreign tables). Never throws: an internal
 * failure is reported as an `analysis-failed` leak, so the statement is refused.
 */
export function analyzeMasking(
  stmt: Pick<StatementAnalysis, 'tree'> | SqlStatementTree,
  rules: readonly MaskedColumnRule[],
  opts: MaskingOptions = {},
): MaskingAnalysis {
  const compiled = compileRules(rules);
  const analyzer = new LeakAnalyzer(compiled, opts.defaultSchemas ?? ['public']);
  const tree = treeOf(stmt);
  if (tree === undefined) {
    return {
      leaks: [
        { column: '*', how: 'analysis-failed', detail: 'no parse tree was given to the leak analysis' },
      ],
      untrustedFunctions: [],
      relations: [],
    };
  }
  try {
    analyzer.statement(tree, new Scope(undefined, undefined));
    return analyzer.result();
  } catch (e) {
    const why =
      e instanceof RangeError ? 'the statement nests too deeply' : e instanceof Error ? e.message : String(e);
    const partial = analyzer.result();
    partial.leaks.push({
      column: '*',
      how: 'analysis-failed',
      detail: `the leak analysis failed (${why}); refuse the statement`,
    });
    return partial;
  }
}

/**
 * The ways one statement could reveal a masked column past row masking (see analyzeMasking for the
 * functions and relations the gateway must also check). `stmt` is a StatementAnalysis from
 * classifySql or its `tree`.
 */
export function findMaskingLeaks(
  stmt: Pick<StatementAnalysis, 'tree'> | SqlStatementTree,
  rules: readonly MaskedColumnRule[],
  opts: MaskingOptions = {},
): Leak[] {
  if (rules.length === 0) return [];
  return analyzeMasking(stmt, rules, opts).leaks;
}
