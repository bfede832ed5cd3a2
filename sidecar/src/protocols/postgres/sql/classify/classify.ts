/**
 * classifySql: what each statement of a query string does, for policy. Pure (no I/O, no catalog),
 * one parse per query string, one walk per statement, and it never throws: anything it cannot
 * analyse comes back as `error` so policy denies it.
 */
import type { Node } from 'libpg-query';
import { defElemIsTrue, findOption, nodeAs, tagOf } from '../pg-ast.js';
import { preparedBodyOffset } from '../screen/sql-lexer.js';
import {
  fingerprintStatement,
  MAX_STATEMENTS,
  normalizeStatement,
  parseQuery,
} from '../screen/sql-parser.js';
import type { OperationClass, Risk, SqlAnalysis, StatementAnalysis } from '../types.js';
import { statementClasses } from './statement-classes.js';
import { collectStatementFacts, type StatementFacts } from './statement-facts.js';
import { unboundedSelectReason } from './unbounded-select.js';

export { initSqlParser, sqlParserHealth } from '../screen/sql-parser.js';

const MODIFYING = new Set(['InsertStmt', 'UpdateStmt', 'DeleteStmt', 'MergeStmt']);

/** The statement EXPLAIN ANALYZE / DECLARE CURSOR run, whose classes they take. */
function runStatement(stmt: Node): Node {
  const explain = nodeAs(stmt, 'ExplainStmt');
  if (explain?.query !== undefined) {
    const analyze = findOption(explain.options, 'analyze');
    if (analyze !== undefined && defElemIsTrue(analyze)) return explain.query;
  }
  const cursor = nodeAs(stmt, 'DeclareCursorStmt');
  if (cursor?.query !== undefined) return cursor.query;
  return stmt;
}

function classesOf(stmt: Node, facts: StatementFacts): OperationClass[] {
  const run = runStatement(stmt);
  const classes = new Set<OperationClass>(statementClasses(run));
  for (const c of facts.addedClasses) classes.add(c);
  // A data change that also returns or reads data is a read as well: RETURNING hands rows back and
  // INSERT … SELECT / UPDATE … FROM / DELETE … USING read other relations.
  const runTag = tagOf(run);
  if (runTag !== undefined && MODIFYING.has(runTag)) {
    if (facts.hasReturning || facts.tables.some((t) => t.access === 'read')) classes.add('read');
  }
  return [...classes].sort();
}

function risksOf(stmt: Node, facts: StatementFacts): Risk[] {
  const risks = [...facts.risks];
  const select = nodeAs(stmt, 'SelectStmt');
  if (select !== undefined && select.intoClause === undefined) {
    const reason = unboundedSelectReason(select, facts.filteredSelects);
    if (reason !== undefined) risks.push({ detector: 'unbounded-select', reason });
  }
  return risks;
}

function withTree(analysis: Omit<StatementAnalysis, 'tree'>, tree: Node): StatementAnalysis {
  Object.defineProperty(analysis, 'tree', { value: tree, enumerable: false, writable: false });
  return analysis as StatementAnalysis;
}

function analyzeStatement(stmt: Node, text: string): StatementAnalysis {
  const facts = collectStatementFacts(stmt);
  const analysis: Omit<StatementAnalysis, 'tree'> = {
    text,
    normalized: normalizeStatement(text, facts.depth),
    fingerprint: fingerprintStatement(text, facts.depth),
    kind: tagOf(stmt) ?? 'Unknown',
    classes: classesOf(stmt, facts),
    tables: facts.tables,
    functions: facts.functions,
    risks: risksOf(stmt, facts),
  };
  const prepare = nodeAs(stmt, 'PrepareStmt');
  if (prepare?.query !== undefined) {
    const offset = preparedBodyOffset(text);
    const inner = offset !== undefined ? text.slice(offset).trim() : text;
    analysis.prepared = { name: prepare.name ?? '', statement: analyzeStatement(prepare.query, inner) };
  }
  const execute = nodeAs(stmt, 'ExecuteStmt');
  if (execute !== undefined) analysis.executes = execute.name ?? '';
  return withTree(analysis, stmt);
}

/** Slices statements out of the query by libpg-query's byte offsets (UTF-8). */
function statementSlicer(sql: string): (location: number, length: number) => string {
  if (Buffer.byteLength(sql, 'utf8') === sql.length) {
    return (location, length) => sql.slice(location, length > 0 ? location + length : undefined).trim();
  }
  const bytes = Buffer.from(sql, 'utf8');
  return (location, length) =>
    bytes
      .subarray(location, length > 0 ? location + length : bytes.length)
      .toString('utf8')
      .trim();
}

const CHANGE_VERBS: ReadonlyArray<[OperationClass, string]> = [
  ['admin', 'is an admin operation'],
  ['ddl', 'changes the schema'],
  ['write', 'changes data'],
];

/** Several statements in one query string run as one implicit transaction, without a pause between. */
function addMultiStatementRisks(statements: StatementAnalysis[]): void {
  if (statements.length < 2) return;
  statements.forEach((s, i) => {
    const verb = CHANGE_VERBS.find(([cls]) => s.classes.includes(cls))?.[1];
    if (verb === undefined) return;
    s.risks.push({
      detector: 'multi-statement-write',
      reason: `statement ${i + 1} of ${statements.length} in one query string ${verb}`,
    });
  });
}

const EMPTY_QUERY = { message: 'empty query: the text holds no statement', kind: 'empty' as const };

/**
 * Classifies every statement of a query string (simple-query protocol: several statements allowed).
 * Needs `await initSqlParser()` once before the first call; until then it returns an error.
 */
export function classifySql(input: string): SqlAnalysis {
  // A lone surrogate cannot arrive over the wire (the server sees UTF-8), and the WASM module's
  // encoder would pair it with the next character, hiding that character from the parser.
  const sql = typeof input === 'string' && !input.isWellFormed() ? input.toWellFormed() : input;
  // The parser refuses a text with nothing in it; PostgreSQL answers it as an empty query.
  if (typeof sql === 'string' && sql.trim() === '') return { statements: [], error: EMPTY_QUERY };
  const parsed = parseQuery(sql);
  if (!parsed.ok) {
    const kind = parsed.syntax ? { kind: 'syntax' as const } : {};
    const error =
      parsed.position === undefined
        ? { message: parsed.message, ...kind }
        : { message: parsed.message, position: parsed.position, ...kind };
    return { statements: [], error };
  }
  const raws = parsed.result.stmts ?? [];
  if (raws.length === 0) return { statements: [], error: EMPTY_QUERY };
  if (raws.length > MAX_STATEMENTS) {
    return {
      statements: [],
      error: {
        message: `query string holds ${raws.length} statements (limit ${MAX_STATEMENTS}); send them in smaller batches`,
      },
    };
  }
  try {
    const slice = statementSlicer(sql);
    const statements: StatementAnalysis[] = [];
    for (const raw of raws) {
      if (raw.stmt === undefined) continue;
      statements.push(analyzeStatement(raw.stmt, slice(raw.stmt_location ?? 0, raw.stmt_len ?? 0)));
    }
    if (statements.length === 0) return { statements: [], error: EMPTY_QUERY };
    addMultiStatementRisks(statements);
    return { statements };
  } catch (e) {
    // Only our own TypeScript runs here (the parse is done), so a failure cannot hurt the parser.
    const message =
      e instanceof RangeError
        ? 'statement nests too deeply to analyse'
        : `internal error while analysing the statement: ${e instanceof Error ? e.message : String(e)}`;
    return { statements: [], error: { message } };
  }
}
