/**
 * The statement-level walker of the leak analysis: INSERT / UPDATE / DELETE / MERGE (writes,
 * RETURNING, copies into other columns), COPY, CREATE TABLE AS / VIEW, EXPLAIN, cursors, prepared
 * statements, CALL, and a careful generic pass over everything else (DDL that mentions a masked
 * column can echo its values in errors or expose them through statistics and policies).
 */
import type { Node, RangeVar } from 'libpg-query';
import { isRecord, type NodeOf, nodeAs, stringValues, tagOf } from '../pg-ast.js';
import { clauseContext, type ExprContext, type OutputUse, relationLabel, type Sink } from './leak-report.js';
import { columnKey } from './masking-rules.js';
import { JoinSource, type OutputColumn, Scope, type Source } from './masking-scope.js';
import { QueryLeaks } from './query-leaks.js';

const ROW_STATEMENTS = new Set(['SelectStmt', 'InsertStmt', 'UpdateStmt', 'DeleteStmt', 'MergeStmt']);

/** Names of statements the generic pass reports on, for messages. */
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

export class StatementLeaks extends QueryLeaks {
  /** One top-level statement. */
  statement(node: Node, scope: Scope): void {
    const tag = tagOf(node) ?? 'statement';
    if (ROW_STATEMENTS.has(tag)) {
      this.query(node, scope, 'result', 'the select list');
      return;
    }
    switch (tag) {
      case 'ExplainStmt':
        // Plain EXPLAIN runs nothing, but its estimates come from column statistics: analysed like
        // the statement itself (the careful reading).
        this.statementIfAny(nodeAs(node, 'ExplainStmt')?.query, scope);
        return;
      case 'DeclareCursorStmt':
        this.statementIfAny(nodeAs(node, 'DeclareCursorStmt')?.query, scope);
        return;
      case 'PrepareStmt':
        this.statementIfAny(nodeAs(node, 'PrepareStmt')?.query, scope);
        return;
      case 'CopyStmt': {
        const copy = nodeAs(node, 'CopyStmt');
        if (copy !== undefined) this.copy(copy, scope);
        return;
      }
      case 'CreateTableAsStmt': {
        const ctas = nodeAs(node, 'CreateTableAsStmt');
        const name = ctas?.into?.rel !== undefined ? relationLabel(ctas.into.rel) : 'a new table';
        const where = `CREATE ${ctas?.objtype === 'OBJECT_MATVIEW' ? 'MATERIALIZED VIEW' : 'TABLE'} ${name} AS`;
        this.report.outputs(this.query(ctas?.query, scope, 'data-copy', where), 'data-copy', where);
        return;
      }
      case 'ViewStmt': {
        const view = nodeAs(node, 'ViewStmt');
        const where =
          `the definition of view ${view?.view !== undefined ? relationLabel(view.view) : ''}`.trim();
        this.report.outputs(
          this.query(view?.query, scope, 'view-definition', where),
          'view-definition',
          where,
        );
        return;
      }
      case 'CallStmt': {
        const call = nodeAs(node, 'CallStmt')?.funccall;
        if (call !== undefined) this.exprs.funcCall(call, clauseContext(scope, 'CALL', 'expression'));
        return;
      }
      default:
        this.generic(node, scope, STATEMENT_LABELS[tag] ?? tag);
    }
  }

  private statementIfAny(node: Node | undefined, scope: Scope): void {
    if (node !== undefined) this.statement(node, scope);
  }

  // ---- data-modifying statements --------------------------------------------------------------

  protected modify(
    tag: string,
    body: Record<string, unknown>,
    parent: Scope,
    use: OutputUse,
  ): OutputColumn[] {
    const stmt = body as NodeOf<'UpdateStmt'> &
      NodeOf<'DeleteStmt'> &
      NodeOf<'MergeStmt'> &
      NodeOf<'InsertStmt'>;
    const scope = new Scope(parent, parent);
    this.defineCtes(stmt.withClause, scope);
    if (stmt.relation === undefined) return [];
    // The target is a table even when a CTE has its name.
    const target = this.report.tableSource(stmt.relation);
    const ctx = (clause: string, sink: Sink): ExprContext => clauseContext(scope, clause, sink);

    if (tag === 'InsertStmt') {
      const columns = (stmt.cols ?? []).map((c) => nodeAs(c, 'ResTarget')?.name ?? '');
      this.report.writeOracle(this.written(target, columns), `INSERT INTO ${target.label}`);
      // The INSERT's own rows cannot see the target relation.
      const outputs = this.query(stmt.selectStmt, new Scope(parent, scope), 'data-copy', 'INSERT');
      this.report.outputs(outputs, 'data-copy', `INSERT INTO ${target.label}`);
      scope.sources.push(target);
      const conflict = stmt.onConflictClause;
      if (conflict !== undefined) {
        scope.sources.push(new JoinSource('excluded', [target]));
        this.exprs.expr(conflict.infer?.whereClause, ctx('ON CONFLICT … WHERE', 'predicate'));
        this.assignments(
          conflict.targetList,
          scope,
          target,
          `INSERT INTO ${target.label} ON CONFLICT DO UPDATE`,
        );
        this.exprs.expr(conflict.whereClause, ctx('ON CONFLICT DO UPDATE … WHERE', 'predicate'));
      }
      return this.returning(stmt.returningClause, scope, target, use);
    }

    scope.sources.push(target);
    if (tag === 'UpdateStmt' || tag === 'DeleteStmt') {
      for (const item of [...(stmt.fromClause ?? []), ...(stmt.usingClause ?? [])])
        this.fromItem(item, scope);
      // The command tag's row count answers the WHERE.
      this.exprs.expr(stmt.whereClause, ctx('WHERE', 'predicate'));
      if (tag === 'UpdateStmt') this.assignments(stmt.targetList, scope, target, `UPDATE ${target.label}`);
      return this.returning(stmt.returningClause, scope, target, use);
    }

    // MERGE
    if (stmt.sourceRelation !== undefined) this.fromItem(stmt.sourceRelation, scope);
    this.exprs.expr(stmt.joinCondition, ctx('MERGE … ON', 'predicate'));
    for (const w of stmt.mergeWhenClauses ?? []) {
      const when = nodeAs(w, 'MergeWhenClause');
      if (when === undefined) continue;
      this.exprs.expr(when.condition, ctx('MERGE … WHEN … AND', 'predicate'));
      if (when.commandType === 'CMD_UPDATE') {
        this.assignments(when.targetList, scope, target, `MERGE INTO ${target.label}`);
      } else if (when.commandType === 'CMD_INSERT') {
        const columns = (when.targetList ?? []).map((c) => nodeAs(c, 'ResTarget')?.name ?? '');
        this.report.writeOracle(this.written(target, columns), `MERGE INTO ${target.label}`);
        this.exprs.expr(when.values, ctx(`MERGE INTO ${target.label} … INSERT`, 'data-copy'));
      }
    }
    return this.returning(stmt.returningClause, scope, target, use);
  }

  /** The masked columns a write names (all of them without a column list). */
  private written(target: Source, columns: readonly string[]) {
    return columns.length > 0 ? columns.flatMap((c) => target.column(c)) : target.wholeRow();
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
      this.report.writeOracle(targetMasked, statement);
      const clause = `${statement} SET ${column}`;
      const multi = nodeAs(rt.val, 'MultiAssignRef');
      if (multi !== undefined) {
        const link = nodeAs(multi.source, 'SubLink');
        if (link !== undefined) {
          // SET (a, b) = (SELECT …): the subquery's outputs are written.
          const outputs = this.query(link.subselect, new Scope(scope, scope), 'derived', clause);
          this.report.outputs(outputs, 'data-copy', clause);
        } else {
          this.exprs.expr(multi.source, clauseContext(scope, clause, 'data-copy'));
        }
        continue;
      }
      const ref = nodeAs(rt.val, 'ColumnRef');
      if (ref !== undefined) {
        const res = this.resolver.resolve(ref, scope);
        // SET ssn = ssn keeps the value where it was.
        const same = new Set(targetMasked.map(columnKey));
        for (const m of res.plain) {
          if (same.has(columnKey(m))) continue;
          this.report.emit(
            m,
            'data-copy',
            `${columnKey(m)} is copied by ${clause} into a column that is not masked the same way`,
          );
        }
        for (const row of res.rows) this.report.wholeRow(row.label, row.columns, clause);
        continue;
      }
      // An expression written back into a masked column stays masked but can still fail with its
      // value in the error message; written elsewhere, it is a copy.
      this.exprs.expr(
        rt.val,
        clauseContext(scope, clause, targetMasked.length > 0 ? 'expression' : 'data-copy'),
      );
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
    if (outUse === 'returning') this.report.outputs(outputs, 'returning', 'RETURNING');
    return outputs;
  }

  // ---- COPY -------------------------------------------------------------------------------------

  private copy(copy: NodeOf<'CopyStmt'>, scope: Scope): void {
    if (copy.query !== undefined) {
      const outputs = this.query(copy.query, new Scope(scope, scope), 'copy', 'COPY (…) TO');
      this.report.outputs(outputs, 'copy', 'COPY (…) TO');
      return;
    }
    if (copy.relation === undefined) return;
    const table = this.report.tableSource(copy.relation);
    const columns = stringValues(copy.attlist);
    if (copy.is_from === true) {
      this.report.writeOracle(this.written(table, columns), `COPY ${table.label} FROM`);
      return;
    }
    if (columns.length === 0) {
      for (const m of table.wholeRow()) {
        this.report.emit(
          m,
          'copy',
          `${columnKey(m)} is exported by COPY ${table.label} TO (all columns, in table order)`,
        );
      }
      return;
    }
    columns.forEach((c, i) => {
      for (const m of table.column(c)) {
        this.report.emit(
          m,
          'copy',
          `${columnKey(m)} is exported by COPY ${table.label} TO as column ${i + 1}`,
          i + 1,
        );
      }
    });
  }

  // ---- everything else --------------------------------------------------------------------------

  /**
   * Statements not modelled query by query (DDL, …): every relation they name is in scope and every
   * masked column they mention is reported — CREATE INDEX / ADD CONSTRAINT / ALTER COLUMN TYPE over a
   * masked column can echo its values in errors; policies and statistics expose them.
   */
  private generic(node: Node, scope: Scope, label: string): void {
    const level = new Scope(scope, scope);
    this.collectRelations(node, level);
    this.genericWalk(node, level, clauseContext(level, label, 'expression'));
  }

  private collectRelations(value: unknown, scope: Scope): void {
    if (Array.isArray(value)) {
      for (const v of value) this.collectRelations(v, scope);
      return;
    }
    if (!isRecord(value)) return;
    const tag = tagOf(value);
    if (tag !== undefined && ROW_STATEMENTS.has(tag)) return;
    const bare = tag === undefined && typeof value.relname === 'string' ? (value as RangeVar) : undefined;
    const rv = tag === 'RangeVar' ? nodeAs(value, 'RangeVar') : bare;
    if (rv !== undefined) {
      scope.sources.push(this.report.tableSource(rv));
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
    if (ROW_STATEMENTS.has(tag)) {
      // Stored statements (rule actions, SQL function bodies) expose what they return.
      const outputs = this.query(value as Node, new Scope(scope, scope), 'view-definition', ctx.clause);
      this.report.outputs(outputs, 'view-definition', ctx.clause);
      return;
    }
    switch (tag) {
      case 'ColumnRef':
      case 'FuncCall':
      case 'SubLink':
      case 'TypeCast':
      case 'A_Expr':
        this.exprs.expr(value, ctx);
        return;
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
        const name = cmd?.name;
        if (cmd?.subtype === 'AT_AlterColumnType' && name !== undefined) {
          for (const m of scope.sources.flatMap((s) => s.column(name))) {
            this.report.emit(
              m,
              'cast',
              `ALTER COLUMN ${name} TYPE converts ${columnKey(m)}; a failing conversion echoes its values in the error`,
            );
          }
        }
        break;
      }
      default:
        break;
    }
    const body = value[tag];
    if (isRecord(body)) for (const key in body) this.genericWalk(body[key], scope, ctx);
  }

  private genericColumn(name: string, scope: Scope, ctx: ExprContext, what: string): void {
    for (const m of scope.sources.flatMap((s) => s.column(name))) {
      this.report.emit(
        m,
        'expression',
        `${ctx.clause} creates ${what} ${columnKey(m)}; uniqueness errors and statistics can reveal its values`,
      );
    }
  }
}
