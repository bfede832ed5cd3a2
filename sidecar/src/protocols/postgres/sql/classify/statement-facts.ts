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
import type { FuncCall, Node, RangeVar, WithClause } from 'libpg-query';
import { baseName, functionClass, isDynamicSqlFunction, isFileAccessFunction } from '../function-catalog.js';
import {
  constString,
  defElemIsTrue,
  findOption,
  isRecord,
  listStrings,
  type NodeOf,
  nodeAs,
  qualifiedName,
  stringValues,
  tagOf,
} from '../pg-ast.js';
import type { OperationClass, PostgresGuardrailDetector, Risk, TableRef } from '../types.js';
import { SECURITY_SETTINGS } from './statement-classes.js';

type Mode = 'executed' | 'persisted' | 'inert';
type Access = TableRef['access'];

/** Extensions that read files, run programs or open network connections from the server. */
const FILE_ACCESS_EXTENSIONS: ReadonlySet<string> = new Set([
  'file_fdw',
  'adminpack',
  'dblink',
  'postgres_fdw',
]);

/** Predefined roles that grant server file and program access. */
const FILE_ACCESS_ROLES: ReadonlySet<string> = new Set([
  'pg_read_server_files',
  'pg_write_server_files',
  'pg_execute_server_program',
]);

/** Languages whose functions run with the server's operating-system privileges. */
const UNTRUSTED_LANGUAGES: ReadonlySet<string> = new Set([
  'c',
  'internal',
  'plpythonu',
  'plpython2u',
  'plpython3u',
  'plperlu',
  'pltclu',
  'plsh',
  'pljavau',
  'plv8u',
]);

/** DROP object types whose names are relations. */
const RELATION_OBJECT_TYPES: ReadonlySet<string> = new Set([
  'OBJECT_TABLE',
  'OBJECT_VIEW',
  'OBJECT_MATVIEW',
  'OBJECT_FOREIGN_TABLE',
  'OBJECT_SEQUENCE',
]);

const DROP_STATEMENTS: Readonly<Record<string, string>> = {
  DropRoleStmt: 'DROP ROLE',
  DropdbStmt: 'DROP DATABASE',
  DropTableSpaceStmt: 'DROP TABLESPACE',
  DropSubscriptionStmt: 'DROP SUBSCRIPTION',
  DropUserMappingStmt: 'DROP USER MAPPING',
  DropOwnedStmt: 'DROP OWNED',
};

const EMPTY_NAMES: ReadonlySet<string> = new Set();

export function relationDisplay(rv: { schemaname?: string; relname?: string }): string {
  return rv.schemaname !== undefined ? `${rv.schemaname}.${rv.relname ?? ''}` : (rv.relname ?? '');
}

function objectTypeWord(objectType: string | undefined): string {
  return (objectType ?? 'OBJECT').replace(/^OBJECT_/, '').replace(/_/g, ' ');
}

/** A DROP object's name for messages: a qualified name, a function signature's name or a type. */
function objectName(o: Node): string {
  const fn = nodeAs(o, 'ObjectWithArgs');
  if (fn !== undefined) return stringValues(fn.objname).join('.');
  const type = nodeAs(o, 'TypeName');
  if (type !== undefined) return stringValues(type.names).join('.');
  return listStrings(o).join('.');
}

export interface StatementFacts {
  tables: TableRef[];
  functions: string[];
  risks: Risk[];
  /** Classes added by what the statement contains (data-modifying CTEs, side-effect functions). */
  addedClasses: ReadonlySet<OperationClass>;
  /** Depth of the parse tree in JSON levels. */
  depth: number;
  /** SelectStmt bodies whose WHERE references a column (a WHERE true does not filter anything). */
  filteredSelects: WeakSet<object>;
  /** True when a data-modifying statement has a RETURNING clause. */
  hasReturning: boolean;
}

class FactWalker {
  private readonly tables = new Map<string, TableRef>();
  private readonly functions = new Set<string>();
  private readonly risks = new Map<string, Risk>();
  readonly classes = new Set<OperationClass>();
  readonly filteredSelects = new WeakSet<object>();
  depth = 0;
  hasReturning = false;
  /** Counts ColumnRefs seen, to tell whether a WHERE clause references any column. */
  private columnRefs = 0;
  private cteNames: ReadonlySet<string> = EMPTY_NAMES;
  private mode: Mode = 'executed';

  facts(): StatementFacts {
    return {
      tables: [...this.tables.values()],
      functions: [...this.functions],
      risks: [...this.risks.values()],
      addedClasses: this.classes,
      depth: this.depth,
      filteredSelects: this.filteredSelects,
      hasReturning: this.hasReturning,
    };
  }

  private risk(detector: PostgresGuardrailDetector, reason: string): void {
    if (this.mode === 'inert') return;
    const key = `${detector}\u0000${reason}`;
    if (!this.risks.has(key)) this.risks.set(key, { detector, reason });
  }

  private addClass(cls: OperationClass): void {
    if (this.mode === 'executed') this.classes.add(cls);
  }

  private addTable(schema: string | undefined, name: string, access: Access): void {
    const effective: Access = this.mode === 'inert' ? 'read' : access;
    const key = `${schema ?? ''}\u0000${name}\u0000${effective}`;
    if (this.tables.has(key)) return;
    this.tables.set(
      key,
      schema !== undefined ? { schema, name, access: effective } : { name, access: effective },
    );
  }

  /**
   * `fromItem`: the name is read in a FROM list, where an unqualified name that a visible WITH defines
   * is the CTE. Target relations (INSERT INTO, DELETE FROM, TRUNCATE …) are never CTEs: a CTE named
   * like the table does not stop `WITH t AS (…) DELETE FROM t` from deleting from table t.
   */
  private addRelation(rv: RangeVar, access: Access, fromItem = false): void {
    const name = rv.relname;
    if (name === undefined) return;
    if (fromItem && rv.schemaname === undefined && this.cteNames.has(name)) return;
    this.addTable(rv.schemaname, name, access);
  }

  private inMode(mode: Mode, fn: () => void): void {
    const saved = this.mode;
    // Never upgrade: a view inside an inert EXPLAIN stays inert.
    if (!(saved === 'inert' || (saved === 'persisted' && mode === 'executed'))) this.mode = mode;
    try {
      fn();
    } finally {
      this.mode = saved;
    }
  }

  /** Visits `fn` with the CTE names of `withClause` in scope, and each CTE body with the right ones. */
  private withScope(withClause: WithClause | undefined, depth: number, fn: () => void): void {
    const ctes = withClause?.ctes ?? [];
    if (ctes.length === 0) {
      fn();
      return;
    }
    const saved = this.cteNames;
    const all = new Set(saved);
    for (const c of ctes) {
      const name = nodeAs(c, 'CommonTableExpr')?.ctename;
      if (name !== undefined) all.add(name);
    }
    try {
      // A non-recursive CTE sees only the CTEs before it: `WITH t AS (SELECT * FROM t)` reads table t.
      const visible = withClause?.recursive === true ? all : new Set(saved);
      for (const c of ctes) {
        const cte = nodeAs(c, 'CommonTableExpr');
        if (cte === undefined) continue;
        this.cteNames = visible;
        this.visit(cte.ctequery, depth + 1, 'write');
        if (cte.ctename !== undefined) visible.add(cte.ctename);
      }
      this.cteNames = all;
      fn();
    } finally {
      this.cteNames = saved;
    }
  }

  /** Visits every field of a struct except the named ones. */
  private visitFields(
    body: Record<string, unknown>,
    depth: number,
    target: Access,
    skip?: ReadonlySet<string>,
  ): void {
    for (const key in body) {
      if (skip?.has(key) === true) continue;
      this.visit(body[key], depth + 1, target);
    }
  }

  /** Visits a WHERE-like clause and reports whether it referenced any column. */
  private visitFilter(node: Node | undefined, depth: number): boolean {
    if (node === undefined) return false;
    const before = this.columnRefs;
    this.visit(node, depth + 1, 'write');
    return this.columnRefs > before;
  }

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

  private visitNode(tag: string, body: Record<string, unknown>, depth: number): void {
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

  private visitFuncCall(fc: FuncCall, depth: number): void {
    const parts = stringValues(fc.funcname);
    const name = qualifiedName(parts);
    if (name.length > 0) {
      this.functions.add(name);
      if (isFileAccessFunction(name)) {
        const what = baseName(name).startsWith('dblink')
          ? 'opens connections to other databases from the server'
          : 'reads or writes files on the database server';
        this.risk('file-access', `${name}() ${what}`);
      }
      if (baseName(name) === 'set_config') this.visitSetConfig(fc);
      else {
        const cls = functionClass(name);
        if (cls !== undefined) this.addClass(cls);
      }
      if (isDynamicSqlFunction(name)) this.addClass('admin');
    }
    for (const key in fc) {
      if (key !== 'funcname') this.visit((fc as Record<string, unknown>)[key], depth + 1, 'write');
    }
  }

  private visitSetConfig(fc: FuncCall): void {
    const setting = constString(fc.args?.[0])?.toLowerCase();
    if (setting === undefined) {
      this.risk('set-role', 'set_config() with a setting name that is not a literal could change the role');
      this.addClass('admin');
    } else if (setting === 'role' || setting === 'session_authorization') {
      this.risk('set-role', `set_config('${setting}', …) changes the current role`);
      this.addClass('admin');
    } else {
      this.addClass(SECURITY_SETTINGS.has(setting) ? 'admin' : 'session');
    }
  }

  private visitSelect(sel: NodeOf<'SelectStmt'>, depth: number): void {
    this.withScope(sel.withClause, depth, () => {
      for (const key in sel) {
        if (key === 'withClause') continue;
        if (key === 'whereClause') {
          if (this.visitFilter(sel.whereClause, depth)) this.filteredSelects.add(sel);
          continue;
        }
        if (key === 'larg' || key === 'rarg') {
          const branch = sel[key];
          if (branch !== undefined) this.visitSelect(branch, depth + 1);
          continue;
        }
        this.visit((sel as Record<string, unknown>)[key], depth + 1, 'write');
      }
    });
  }

  private visitModify(tag: string, body: Record<string, unknown>, depth: number): void {
    const stmt = body as NodeOf<'UpdateStmt'> & NodeOf<'MergeStmt'>;
    this.addClass('write');
    if (stmt.returningClause !== undefined) this.hasReturning = true;
    this.withScope(stmt.withClause, depth, () => {
      const target = relationDisplay(stmt.relation ?? {});
      if (stmt.relation !== undefined) this.addRelation(stmt.relation, 'write');
      if (tag === 'DeleteStmt' || tag === 'UpdateStmt') {
        const filtered = this.visitFilter(stmt.whereClause, depth);
        const verb = tag === 'DeleteStmt' ? 'DELETE FROM' : 'UPDATE';
        const detector = tag === 'DeleteStmt' ? 'delete-without-where' : 'update-without-where';
        if (stmt.whereClause === undefined) this.risk(detector, `${verb} ${target} has no WHERE clause`);
        else if (!filtered)
          this.risk(detector, `${verb} ${target} has a WHERE clause that references no column`);
      }
      if (tag === 'MergeStmt') this.visitMergeClauses(stmt, target, depth);
      const skip = new Set(['withClause', 'relation', 'whereClause', 'joinCondition', 'mergeWhenClauses']);
      this.visitFields(body, depth, 'write', skip);
    });
  }

  /** MERGE … ON <no column> WHEN MATCHED THEN DELETE / UPDATE touches every row of the target. */
  private visitMergeClauses(stmt: NodeOf<'MergeStmt'>, target: string, depth: number): void {
    const joinFiltered = this.visitFilter(stmt.joinCondition, depth);
    for (const w of stmt.mergeWhenClauses ?? []) {
      const when = nodeAs(w, 'MergeWhenClause');
      if (when === undefined) continue;
      const filtered = this.visitFilter(when.condition, depth + 1) || joinFiltered;
      if (!filtered && when.matchKind === 'MERGE_WHEN_MATCHED') {
        if (when.commandType === 'CMD_DELETE') {
          this.risk(
            'delete-without-where',
            `MERGE INTO ${target} deletes every matched row and its ON condition references no column`,
          );
        } else if (when.commandType === 'CMD_UPDATE') {
          this.risk(
            'update-without-where',
            `MERGE INTO ${target} updates every matched row and its ON condition references no column`,
          );
        }
      }
      this.visit(when.targetList, depth + 2, 'write');
      this.visit(when.values, depth + 2, 'write');
    }
  }

  private visitCopy(copy: NodeOf<'CopyStmt'>, depth: number): void {
    const source = copy.relation !== undefined ? relationDisplay(copy.relation) : '(query)';
    // File names and program lines stay out of the reasons: reasons are recorded and shown to
    // approvers, and a program line can hold credentials.
    const where =
      copy.is_program === true
        ? 'PROGRAM'
        : copy.filename !== undefined
          ? 'a file'
          : copy.is_from === true
            ? 'STDIN'
            : 'STDOUT';
    const direction = copy.is_from === true ? 'FROM' : 'TO';
    if (copy.is_from !== true) this.risk('copy-to', `COPY ${source} TO ${where} exports data`);
    if (copy.is_program === true) {
      this.risk('file-access', `COPY ${source} ${direction} PROGRAM runs a program on the database server`);
    } else if (copy.filename !== undefined) {
      const verb = copy.is_from === true ? 'reads' : 'writes';
      this.risk('file-access', `COPY ${source} ${direction} a file ${verb} the database server's disk`);
    }
    if (copy.relation !== undefined)
      this.addRelation(copy.relation, copy.is_from === true ? 'write' : 'read');
    this.visit(copy.query, depth + 1, 'write');
    this.visit(copy.whereClause, depth + 1, 'write');
  }

  private visitCreateFunction(fn: NodeOf<'CreateFunctionStmt'>, depth: number): void {
    const language = constString(findOption(fn.options, 'language')?.arg)?.toLowerCase();
    const as = findOption(fn.options, 'as')?.arg;
    const objectFile = nodeAs(as, 'List')?.items?.length === 2;
    if ((language !== undefined && UNTRUSTED_LANGUAGES.has(language)) || objectFile) {
      const name = qualifiedName(stringValues(fn.funcname));
      this.risk(
        'file-access',
        `CREATE FUNCTION ${name} in language ${language ?? 'c'} runs with the server's operating-system access`,
      );
    }
    this.inMode('persisted', () => this.visit(fn.sql_body, depth + 1, 'write'));
    this.visit(fn.parameters, depth + 1, 'write');
  }

  private visitDrop(drop: NodeOf<'DropStmt'>): void {
    const names = (drop.objects ?? []).map(objectName).filter((n) => n.length > 0);
    this.risk('drop', `DROP ${objectTypeWord(drop.removeType)} ${names.join(', ')}`.trimEnd());
    if (drop.removeType === undefined || !RELATION_OBJECT_TYPES.has(drop.removeType)) return;
    for (const o of drop.objects ?? []) {
      const parts = listStrings(o);
      const name = parts[parts.length - 1];
      if (name !== undefined)
        this.addTable(parts.length > 1 ? parts[parts.length - 2] : undefined, name, 'write');
    }
  }

  private visitSet(set: NodeOf<'VariableSetStmt'>): void {
    const name = set.name?.toLowerCase();
    if (name !== 'role' && name !== 'session_authorization') return;
    const what = name === 'role' ? 'ROLE' : 'SESSION AUTHORIZATION';
    if (set.kind === 'VAR_RESET') {
      this.risk('set-role', `RESET ${what} returns to the session user's privileges`);
    } else {
      const value = constString(set.args?.[0]) ?? (set.kind === 'VAR_SET_DEFAULT' ? 'DEFAULT' : '…');
      this.risk('set-role', `SET ${what} ${value} changes the current role`);
    }
  }
}

/** Walks one statement's tree once and returns what classify needs. */
export function collectStatementFacts(stmt: Node): StatementFacts {
  const walker = new FactWalker();
  walker.visit(stmt, 0, 'write');
  return walker.facts();
}
