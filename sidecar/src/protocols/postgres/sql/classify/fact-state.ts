// The state of the one walk over a statement (see statement-facts.ts): what it has collected so far
// and the scoping (run mode, visible CTE names) the visitors consult. Split from the walker by size.
import type { Node, RangeVar, WithClause } from 'libpg-query';
import { listStrings, nodeAs, stringValues } from '../pg-ast.js';
import type { OperationClass, PostgresGuardrailDetector, Risk, TableRef } from '../types.js';

export type Mode = 'executed' | 'persisted' | 'inert';
export type Access = TableRef['access'];

/** Extensions that read files, run programs or open network connections from the server. */
export const FILE_ACCESS_EXTENSIONS: ReadonlySet<string> = new Set([
  'file_fdw',
  'adminpack',
  'dblink',
  'postgres_fdw',
]);

/** Predefined roles that grant server file and program access. */
export const FILE_ACCESS_ROLES: ReadonlySet<string> = new Set([
  'pg_read_server_files',
  'pg_write_server_files',
  'pg_execute_server_program',
]);

/** Languages whose functions run with the server's operating-system privileges. */
export const UNTRUSTED_LANGUAGES: ReadonlySet<string> = new Set([
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
export const RELATION_OBJECT_TYPES: ReadonlySet<string> = new Set([
  'OBJECT_TABLE',
  'OBJECT_VIEW',
  'OBJECT_MATVIEW',
  'OBJECT_FOREIGN_TABLE',
  'OBJECT_SEQUENCE',
]);

export const DROP_STATEMENTS: Readonly<Record<string, string>> = {
  DropRoleStmt: 'DROP ROLE',
  DropdbStmt: 'DROP DATABASE',
  DropTableSpaceStmt: 'DROP TABLESPACE',
  DropSubscriptionStmt: 'DROP SUBSCRIPTION',
  DropUserMappingStmt: 'DROP USER MAPPING',
  DropOwnedStmt: 'DROP OWNED',
};

export const EMPTY_NAMES: ReadonlySet<string> = new Set();

export function relationDisplay(rv: { schemaname?: string; relname?: string }): string {
  return rv.schemaname !== undefined ? `${rv.schemaname}.${rv.relname ?? ''}` : (rv.relname ?? '');
}

export function objectTypeWord(objectType: string | undefined): string {
  return (objectType ?? 'OBJECT').replace(/^OBJECT_/, '').replace(/_/g, ' ');
}

/** A DROP object's name for messages: a qualified name, a function signature's name or a type. */
export function objectName(o: Node): string {
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

/** What the walk collects, and the helpers every visitor uses to record it. */
export abstract class FactState {
  protected readonly tables = new Map<string, TableRef>();
  protected readonly functions = new Set<string>();
  protected readonly risks = new Map<string, Risk>();
  readonly classes = new Set<OperationClass>();
  readonly filteredSelects = new WeakSet<object>();
  depth = 0;
  hasReturning = false;
  /** Counts ColumnRefs seen, to tell whether a WHERE clause references any column. */
  protected columnRefs = 0;
  protected cteNames: ReadonlySet<string> = EMPTY_NAMES;
  protected mode: Mode = 'executed';

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

  protected risk(detector: PostgresGuardrailDetector, reason: string): void {
    if (this.mode === 'inert') return;
    const key = `${detector}\u0000${reason}`;
    if (!this.risks.has(key)) this.risks.set(key, { detector, reason });
  }

  protected addClass(cls: OperationClass): void {
    if (this.mode === 'executed') this.classes.add(cls);
  }

  protected addTable(schema: string | undefined, name: string, access: Access): void {
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
  protected addRelation(rv: RangeVar, access: Access, fromItem = false): void {
    const name = rv.relname;
    if (name === undefined) return;
    if (fromItem && rv.schemaname === undefined && this.cteNames.has(name)) return;
    this.addTable(rv.schemaname, name, access);
  }

  protected inMode(mode: Mode, fn: () => void): void {
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
  protected withScope(withClause: WithClause | undefined, depth: number, fn: () => void): void {
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
  protected visitFields(
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
  protected visitFilter(node: Node | undefined, depth: number): boolean {
    if (node === undefined) return false;
    const before = this.columnRefs;
    this.visit(node, depth + 1, 'write');
    return this.columnRefs > before;
  }

  /** Visits any part of the tree (FactWalker). */
  abstract visit(value: unknown, depth: number, target: Access): void;
}
