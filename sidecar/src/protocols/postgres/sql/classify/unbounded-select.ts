/**
 * The `unbounded-select` guardrail: a top-level SELECT that returns every row of a table. A query is
 * bounded by a LIMIT / FETCH FIRST, a WHERE that references a column, a VALUES list, or by being an
 * aggregate without GROUP BY (one row) — except aggregates that collect every value (array_agg,
 * json_agg, string_agg …), which put the whole table into that one row. Subqueries in FROM and CTEs
 * are followed: `SELECT * FROM (SELECT * FROM t LIMIT 5) s` is bounded, `WITH x AS (TABLE t)
 * SELECT * FROM x` is not.
 */
import type { Node, SelectStmt, WithClause } from 'libpg-query';
import { isAggregateName, isCollectingAggregate } from '../function-catalog.js';
import { isNullConst, isRecord, nodeAs, qualifiedName, stringValues, tagOf } from '../pg-ast.js';
import { relationDisplay } from './statement-facts.js';

type CteMap = ReadonlyMap<string, Node | undefined>;

function extendCtes(ctes: CteMap, withClause: WithClause | undefined): CteMap {
  if (withClause?.ctes === undefined || withClause.ctes.length === 0) return ctes;
  const next = new Map(ctes);
  for (const c of withClause.ctes) {
    const cte = nodeAs(c, 'CommonTableExpr');
    if (cte?.ctename !== undefined) next.set(cte.ctename, cte.ctequery);
  }
  return next;
}

interface AggregateUse {
  aggregated: boolean;
  collecting: boolean;
}

/** Looks for aggregate calls in a select-list expression (not inside subqueries). */
function scanAggregates(node: unknown, use: AggregateUse): void {
  if (Array.isArray(node)) {
    for (const n of node) scanAggregates(n, use);
    return;
  }
  if (!isRecord(node)) return;
  const tag = tagOf(node);
  if (tag === 'SubLink') return;
  if (tag === 'JsonArrayAgg' || tag === 'JsonObjectAgg') {
    use.aggregated = true;
    use.collecting = true;
    return;
  }
  const fc = nodeAs(node, 'FuncCall');
  if (fc !== undefined && fc.over === undefined) {
    const name = qualifiedName(stringValues(fc.funcname));
    const isAggregate =
      fc.agg_star === true ||
      fc.agg_distinct === true ||
      fc.agg_within_group === true ||
      fc.agg_filter !== undefined ||
      (fc.agg_order?.length ?? 0) > 0 ||
      isAggregateName(name);
    if (isAggregate) {
      use.aggregated = true;
      if (isCollectingAggregate(name)) use.collecting = true;
    }
  }
  for (const key in node) scanAggregates(node[key], use);
}

function isSingleRowAggregate(sel: SelectStmt): boolean {
  if ((sel.groupClause?.length ?? 0) > 0) return false;
  const use: AggregateUse = { aggregated: false, collecting: false };
  for (const t of sel.targetList ?? []) scanAggregates(nodeAs(t, 'ResTarget')?.val, use);
  return use.aggregated && !use.collecting;
}

class UnboundedCheck {
  private readonly seen = new Set<object>();
  private readonly filtered: WeakSet<object>;

  constructor(filtered: WeakSet<object>) {
    this.filtered = filtered;
  }

  /** The relation a SELECT reads without bound, or undefined when the SELECT is bounded. */
  select(sel: SelectStmt, outer: CteMap): string | undefined {
    const ctes = extendCtes(outer, sel.withClause);
    if (sel.limitCount !== undefined && !isNullConst(sel.limitCount)) return undefined;
    if (sel.op !== undefined && sel.op !== 'SETOP_NONE') {
      const left = sel.larg !== undefined ? this.select(sel.larg, ctes) : undefined;
      return left ?? (sel.rarg !== undefined ? this.select(sel.rarg, ctes) : undefined);
    }
    if (this.filtered.has(sel)) return undefined;
    if (sel.valuesLists !== undefined) return undefined;
    if (isSingleRowAggregate(sel)) return undefined;
    for (const item of sel.fromClause ?? []) {
      const read = this.fromItem(item, ctes);
      if (read !== undefined) return read;
    }
    return undefined;
  }

  private fromItem(item: Node | undefined, ctes: CteMap): string | undefined {
    const rv = nodeAs(item, 'RangeVar');
    if (rv !== undefined) {
      const name = rv.relname ?? '';
      if (rv.schemaname === undefined && ctes.has(name)) {
        const query = nodeAs(ctes.get(name), 'SelectStmt');
        // A CTE already being checked (a recursive self-reference) adds nothing new.
        if (query === undefined || this.seen.has(query)) return undefined;
        this.seen.add(query);
        return this.select(query, ctes);
      }
      return relationDisplay(rv);
    }
    const sub = nodeAs(item, 'RangeSubselect');
    if (sub !== undefined) {
      const query = nodeAs(sub.subquery, 'SelectStmt');
      return query !== undefined ? this.select(query, ctes) : undefined;
    }
    const join = nodeAs(item, 'JoinExpr');
    if (join !== undefined) return this.fromItem(join.larg, ctes) ?? this.fromItem(join.rarg, ctes);
    const sample = nodeAs(item, 'RangeTableSample');
    if (sample !== undefined) return this.fromItem(sample.relation, ctes);
    return undefined;
  }
}

/**
 * Why a top-level SELECT is unbounded, or undefined. `filtered` holds the SelectStmt bodies whose
 * WHERE references a column (collected by the statement walk).
 */
export function unboundedSelectReason(sel: SelectStmt, filtered: WeakSet<object>): string | undefined {
  const table = new UnboundedCheck(filtered).select(sel, new Map());
  return table === undefined ? undefined : `SELECT reads ${table} with no WHERE and no LIMIT`;
}
