/**
 * One walk over a statement's parse tree that collects everything classify needs: the relations it
 * touches (and how), the functions it calls, the guardrail risks at any depth, the classes that nested
 * statements and side-effect functions add, and the tree's depth.
 *
 * Parts of a statement run at different times, which decides what they contribute:
 * - executed: runs now (the statement itself, its CTEs, EXPLAIN ANALYZE's statement, COPY's query);
 * - persisted: stored to run later (view queries, rule actions, SQL function bodies, policy quals):
 *   risks count (a rule that deletes every row is as dangerous as the DELETE), classes do not;
 * - inert: never runs (plain EXPLAIN's statement): only its relations are recorded, as reads.
 */
import type { FuncCall, Node, RangeVar } from 'libpg-query';
import {
  defElemIsTrue,
  findOption,
  isRecord,
  type NodeOf,
  nodeAs,
  qualifiedName,
  stringValues,
  tagOf,
} from '../pg-ast.js';
import {
  type Access,
  DROP_STATEMENTS,
  FILE_ACCESS_EXTENSIONS,
  FILE_ACCESS_ROLES,
  RELATION_OBJECT_TYPES,
  relationDisplay,
  type StatementFacts,
} from './fact-state.js';
import { StatementVisitors } from './statement-visitors.js';

export { relationDisplay, type StatementFacts } from './fact-state.js';

/** The walk: `visit` dispatches every node; the visitors and the collected state are its bases. */
class FactWalker extends StatementVisitors {
  /**
   * `target` is the access of a bare RangeVar met below: bare RangeVars are the target relations of
   * the enclosing statement (INSERT INTO t, ALTER TABLE t, SELECT … INTO t, COPY t …).
   */
  visit(value: unknown, depth: number, target: Access): void {
    if (depth > this.depth) this.depth = depth;
    if (Array.isArray(value)) {
      for (const v of value) this.visit(v, depth + 1, target);
      return;
    }
    if (!isRecord(value)) return;
    const tag = tagOf(value);
    if (tag === undefined) {
      if (typeof value.relname === 'string') this.addRelation(value as RangeVar, target);
      else this.visitFields(value, depth, target);
      return;
    }
    const body = value[tag];
    if (isRecord(body)) this.visitNode(tag, body, depth + 1);
  }

  protected visitNode(tag: string, body: Record<string, unknown>, depth: number): void {
    switch (tag) {
      case 'ColumnRef':
      case 'CurrentOfExpr': // WHERE CURRENT OF cursor: one row
        this.columnRefs++;
        return;
      case 'A_Const':
      case 'String':
      case 'Integer':
      case 'Float':
      case 'Boolean':
      case 'BitString':
      case 'ParamRef':
      case 'A_Star':
      case 'TypeName':
      case 'RoleSpec':
        return;
      case 'RangeVar':
        // Wrapped RangeVars are FROM items and the like: read. Statements with lists of target
        // relations (TRUNCATE, LOCK, GRANT) add theirs before getting here.
        this.addRelation(body as RangeVar, 'read', true);
        return;
      case 'FuncCall':
        this.visitFuncCall(body as FuncCall, depth);
        return;
      case 'SelectStmt':
        this.visitSelect(body as NodeOf<'SelectStmt'>, depth);
        return;
      case 'InsertStmt':
      case 'UpdateStmt':
      case 'DeleteStmt':
      case 'MergeStmt':
        this.visitModify(tag, body, depth);
        return;
      case 'CommonTableExpr':
        // Only reached through withScope; a stray one is still visited for completeness.
        this.visit(body.ctequery, depth + 1, 'write');
        return;
      case 'ExplainStmt': {
        const explain = body as NodeOf<'ExplainStmt'>;
        const option = findOption(explain.options, 'analyze');
        const analyze = option !== undefined && defElemIsTrue(option);
        this.inMode(analyze ? 'executed' : 'inert', () => this.visit(explain.query, depth + 1, 'write'));
        return;
      }
      case 'PrepareStmt':
        // The prepared statement does not run now; classify analyses it on its own.
        return;
      case 'CopyStmt':
        this.visitCopy(body as NodeOf<'CopyStmt'>, depth);
        return;
      case 'ViewStmt': {
        const view = body as NodeOf<'ViewStmt'>;
        if (view.view !== undefined) this.addRelation(view.view, 'write');
        this.inMode('persisted', () => this.visit(view.query, depth + 1, 'write'));
        return;
      }
      case 'RuleStmt': {
        const rule = body as NodeOf<'RuleStmt'>;
        if (rule.relation !== undefined) this.addRelation(rule.relation, 'write');
        this.inMode('persisted', () => {
          this.visit(rule.whereClause, depth + 1, 'write');
          this.visit(rule.actions, depth + 1, 'write');
        });
        return;
      }
      case 'CreateFunctionStmt':
        this.visitCreateFunction(body as NodeOf<'CreateFunctionStmt'>, depth);
        return;
      case 'CreateTrigStmt': {
        const trigger = body as NodeOf<'CreateTrigStmt'>;
        const fn = stringValues(trigger.funcname);
        if (fn.length > 0) this.functions.add(qualifiedName(fn));
        if (trigger.relation !== undefined) this.addRelation(trigger.relation, 'write');
        this.inMode('persisted', () => this.visit(trigger.whenClause, depth + 1, 'write'));
        return;
      }
      case 'CreatePolicyStmt':
      case 'AlterPolicyStmt': {
        const policy = body as NodeOf<'CreatePolicyStmt'>;
        if (policy.table !== undefined) this.addRelation(policy.table, 'write');
        this.inMode('persisted', () => {
          this.visit(policy.qual, depth + 1, 'write');
          this.visit(policy.with_check, depth + 1, 'write');
        });
        return;
      }
      case 'TruncateStmt': {
        const truncate = body as NodeOf<'TruncateStmt'>;
        const names: string[] = [];
        for (const r of truncate.relations ?? []) {
          const rv = nodeAs(r, 'RangeVar');
          if (rv === undefined) continue;
          this.addRelation(rv, 'write');
          names.push(relationDisplay(rv));
        }
        this.addClass('write');
        this.risk('truncate', `TRUNCATE ${names.join(', ')} removes every row`);
        return;
      }
      case 'LockStmt':
        for (const r of (body as NodeOf<'LockStmt'>).relations ?? []) {
          const rv = nodeAs(r, 'RangeVar');
          if (rv !== undefined) this.addRelation(rv, 'write');
        }
        return;
      case 'GrantStmt': {
        const grant = body as NodeOf<'GrantStmt'>;
        if (grant.targtype === 'ACL_TARGET_OBJECT' && grant.objtype !== undefined) {
          if (RELATION_OBJECT_TYPES.has(grant.objtype)) {
            for (const o of grant.objects ?? []) {
              const rv = nodeAs(o, 'RangeVar');
              if (rv !== undefined) this.addRelation(rv, 'write');
            }
          }
        }
        return;
      }
      case 'GrantRoleStmt': {
        const grant = body as NodeOf<'GrantRoleStmt'>;
        if (grant.is_grant !== true) return;
        for (const r of grant.granted_roles ?? []) {
          const role = nodeAs(r, 'AccessPriv')?.priv_name;
          if (role !== undefined && FILE_ACCESS_ROLES.has(role)) {
            this.risk('file-access', `GRANT ${role} gives access to the server's files or programs`);
          }
        }
        return;
      }
      case 'DropStmt':
        this.visitDrop(body as NodeOf<'DropStmt'>);
        return;
      case 'AlterTableStmt': {
        const alter = body as NodeOf<'AlterTableStmt'>;
        for (const c of alter.cmds ?? []) {
          const cmd = nodeAs(c, 'AlterTableCmd');
          if (cmd?.subtype === 'AT_DropColumn') {
            this.risk(
              'drop',
              `ALTER TABLE ${relationDisplay(alter.relation ?? {})} DROP COLUMN ${cmd.name ?? ''}`,
            );
          }
        }
        this.visitFields(body, depth, 'write');
        return;
      }
      case 'VariableSetStmt':
        this.visitSet(body as NodeOf<'VariableSetStmt'>);
        return;
      case 'DiscardStmt':
        if ((body as NodeOf<'DiscardStmt'>).target === 'DISCARD_ALL') {
          this.risk('set-role', 'DISCARD ALL resets the current role to the session user');
        }
        return;
      case 'AlterSystemStmt': {
        const name = (body as NodeOf<'AlterSystemStmt'>).setstmt?.name ?? 'ALL';
        this.risk('alter-system', `ALTER SYSTEM changes the server configuration (${name})`);
        return;
      }
      case 'CreateExtensionStmt':
      case 'AlterExtensionStmt':
      case 'AlterExtensionContentsStmt': {
        const ext = (body as NodeOf<'CreateExtensionStmt'>).extname;
        if (ext !== undefined && FILE_ACCESS_EXTENSIONS.has(ext)) {
          const verb = tag === 'CreateExtensionStmt' ? 'CREATE' : 'ALTER';
          this.risk(
            'file-access',
            `${verb} EXTENSION ${ext} gives access to server files or remote databases`,
          );
        }
        this.visitFields(body, depth, 'write');
        return;
      }
      case 'CreateForeignServerStmt': {
        const fdw = (body as NodeOf<'CreateForeignServerStmt'>).fdwname;
        if (fdw !== undefined && (FILE_ACCESS_EXTENSIONS.has(fdw) || fdw === 'dblink_fdw')) {
          this.risk(
            'file-access',
            `CREATE SERVER … FOREIGN DATA WRAPPER ${fdw} reaches server files or other databases`,
          );
        }
        return;
      }
      case 'LoadStmt':
        this.risk('file-access', "LOAD loads a shared library from the database server's disk");
        return;
      case 'CallStmt': {
        const call = (body as NodeOf<'CallStmt'>).funccall;
        if (call !== undefined) this.visitFuncCall(call, depth + 1);
        return;
      }
      default: {
        const drop = DROP_STATEMENTS[tag];
        if (drop !== undefined) this.risk('drop', `${drop} removes cluster objects`);
        // Bare RangeVars under COPY and references to other tables are reads; others are targets.
        const target: Access = tag === 'Constraint' || tag === 'TableLikeClause' ? 'read' : 'write';
        this.visitFields(body, depth, target);
      }
    }
  }
}

/** Walks one statement's tree once and returns what classify needs. */
export function collectStatementFacts(stmt: Node): StatementFacts {
  const walker = new FactWalker();
  walker.visit(stmt, 0, 'write');
  return walker.facts();
}
