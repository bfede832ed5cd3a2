// The statement- and call-specific visitors of the one walk (see statement-facts.ts): function calls,
// SELECT scoping, DML targets and their WHERE, MERGE, COPY, CREATE FUNCTION, DROP, SET ROLE.
import type { FuncCall } from 'libpg-query';
import { baseName, functionClass, isDynamicSqlFunction, isFileAccessFunction } from '../function-catalog.js';
import {
  constString,
  findOption,
  listStrings,
  type NodeOf,
  nodeAs,
  qualifiedName,
  stringValues,
} from '../pg-ast.js';
import {
  FactState,
  objectName,
  objectTypeWord,
  RELATION_OBJECT_TYPES,
  relationDisplay,
  UNTRUSTED_LANGUAGES,
} from './fact-state.js';
import { SECURITY_SETTINGS } from './statement-classes.js';

export abstract class StatementVisitors extends FactState {
  protected visitFuncCall(fc: FuncCall, depth: number): void {
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

  protected visitSetConfig(fc: FuncCall): void {
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

  protected visitSelect(sel: NodeOf<'SelectStmt'>, depth: number): void {
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

  protected visitModify(tag: string, body: Record<string, unknown>, depth: number): void {
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
  protected visitMergeClauses(stmt: NodeOf<'MergeStmt'>, target: string, depth: number): void {
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

  protected visitCopy(copy: NodeOf<'CopyStmt'>, depth: number): void {
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

  protected visitCreateFunction(fn: NodeOf<'CreateFunctionStmt'>, depth: number): void {
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

  protected visitDrop(drop: NodeOf<'DropStmt'>): void {
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

  protected visitSet(set: NodeOf<'VariableSetStmt'>): void {
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
