/**
 * The one place that calls libpg-query. It guards the WASM module: inputs are screened before they
 * reach it (size, NUL bytes, nesting), every call is wrapped, and a fault inside WASM (a native stack
 * overflow or a memory trap) marks the parser unusable for the rest of the process instead of letting
 * later calls run on a possibly corrupted heap. The module cannot be re-instantiated through its public
 * API, so the gateway should treat `sqlParserHealth().ok === false` as "restart the sidecar".
 */
import { createHash } from 'node:crypto';
import { fingerprintSync, loadModule, normalizeSync, type ParseResult, parseSync } from 'libpg-query';
import { lexicalNormalize, screenQuery } from './sql-lexer.js';

/** Larger query strings are refused before parsing. */
export const MAX_QUERY_BYTES = 1024 * 1024;

/** Query strings whose estimated nesting (see estimateNesting) is deeper are refused before parsing. */
export const MAX_QUERY_NESTING = 1000;

/**
 * Most statements analysed in one query string (each costs about 0.1 ms); more is refused. Scripts
 * longer than this are better sent statement by statement anyway.
 */
export const MAX_STATEMENTS = 5000;

/** Longest run of operator characters accepted (PostgreSQL's own limit is NAMEDATALEN - 1). */
export const MAX_OPERATOR_LENGTH = 63;

/**
 * Budget for the scanner's backtracking inside block comments (about 1.5 ns each): nested comment
 * starts packed into one run of operator characters make it quadratic.
 */
export const MAX_COMMENT_BACKTRACKING = 4_000_000;

/**
 * Statements whose parse tree is deeper than this (JSON levels) are normalized and fingerprinted in
 * TypeScript instead of by libpg-query, whose tree walkers overflow the native stack from about a
 * thousand levels on when the WASM code is not yet optimised.
 */
export const MAX_WASM_WALK_DEPTH = 400;

let ready = false;
let loading: Promise<void> | undefined;
let failure: string | undefined;

/** Loads the WASM parser once; await it before the first classifySql. */
export function initSqlParser(): Promise<void> {
  loading ??= loadModule().then(() => {
    ready = true;
  });
  return loading;
}

export function sqlParserHealth(): { ok: boolean; reason?: string } {
  if (failure !== undefined) return { ok: false, reason: failure };
  if (!ready) return { ok: false, reason: 'SQL parser not initialised: await initSqlParser() first' };
  return { ok: true };
}

export type ParseOutcome =
  | { ok: true; result: ParseResult }
  /** `syntax`: the parser itself refused the text (the others are limits of the gateway). */
  | { ok: false; message: string; position?: number; syntax?: boolean };

function isWasmFault(e: unknown): boolean {
  if (!(e instanceof Error)) return false;
  // WebAssembly.RuntimeError: a trap (out-of-bounds access, unreachable) inside the module.
  if (e.name === 'RuntimeError') return true;
  // A stack overflow thrown from WASM frames; one thrown later by JSON.parse has no wasm frames.
  // (The package's own files live under .../libpg-query/wasm/, so match V8's wasm frame syntax.)
  return e instanceof RangeError && /wasm:\/\/|wasm-function/.test(e.stack ?? '');
}

function poison(e: unknown): string {
  const what = e instanceof Error ? e.message : String(e);
  failure = `SQL parser unavailable after an internal failure (${what}); the sidecar must restart`;
  return failure;
}

/** libpg-query reports the cursor as a 0-based count of code points; we return a UTF-16 index. */
function codePointToIndex(s: string, codePoints: number): number {
  let index = 0;
  for (let n = 0; n < codePoints && index < s.length; n++) {
    const c = s.charCodeAt(index);
    index += c >= 0xd800 && c <= 0xdbff && index + 1 < s.length ? 2 : 1;
  }
  return index;
}

function sqlErrorPosition(e: unknown, sql: string): number | undefined {
  if (typeof e !== 'object' || e === null || !('sqlDetails' in e)) return undefined;
  const details = e.sqlDetails;
  if (typeof details !== 'object' || details === null || !('cursorPosition' in details)) return undefined;
  const cp = details.cursorPosition;
  return typeof cp === 'number' && cp >= 0 ? codePointToIndex(sql, cp) : undefined;
}

/** Parses a whole query string, never throwing. */
export function parseQuery(sql: string): ParseOutcome {
  if (failure !== undefined) return { ok: false, message: failure };
  if (!ready) return { ok: false, message: 'SQL parser not initialised: await initSqlParser() first' };
  if (typeof sql !== 'string') return { ok: false, message: 'query text is not a string' };
  // UTF-16 length bounds the UTF-8 length from below, so the exact count is only needed near the cap.
  if (sql.length > MAX_QUERY_BYTES || Buffer.byteLength(sql, 'utf8') > MAX_QUERY_BYTES) {
    return {
      ok: false,
      message: `query text is larger than ${MAX_QUERY_BYTES} bytes; refused without parsing`,
    };
  }
  const nul = sql.indexOf('\0');
  if (nul >= 0) {
    // The protocol cannot carry a NUL inside a query string, and the C parser would stop at it.
    return { ok: false, message: 'query text contains a NUL character', position: nul };
  }
  // The parser recurses natively and its scanner backtracks on some inputs: screen them out first.
  const shape = screenQuery(sql);
  if (shape.nesting > MAX_QUERY_NESTING) {
    return {
      ok: false,
      message: `query nests about ${shape.nesting} levels deep (limit ${MAX_QUERY_NESTING}); refused without parsing`,
    };
  }
  if (shape.longestOperator > MAX_OPERATOR_LENGTH) {
    return {
      ok: false,
      message: `query has a run of ${shape.longestOperator} operator characters (an operator has at most ${MAX_OPERATOR_LENGTH}); refused without parsing`,
    };
  }
  if (shape.statements > MAX_STATEMENTS) {
    return {
      ok: false,
      message: `query string holds up to ${shape.statements} statements (limit ${MAX_STATEMENTS}); send them in smaller batches`,
    };
  }
  if (shape.commentBacktracking > MAX_COMMENT_BACKTRACKING) {
    return { ok: false, message: 'query has nested comments too costly to scan; refused without parsing' };
  }
  try {
    return { ok: true, result: parseSync(sql) };
  } catch (e) {
    if (isWasmFault(e)) return { ok: false, message: poison(e) };
    const message = e instanceof Error ? e.message : String(e);
    const position = sqlErrorPosition(e, sql);
    return position === undefined
      ? { ok: false, message, syntax: true }
      : { ok: false, message, position, syntax: true };
  }
}

function firstWord(s: string): string {
  return /^\s*(\S*)/.exec(s)?.[1] ?? '';
}

/**
 * libpg-query's normalize of one statement, or a lexical fallback when it cannot be used. The module
 * returns some failures as text instead of throwing ("unterminated quoted string at or near …", with
 * a piece of the statement in it), so the result must start like the statement: normalize changes
 * only literals, and no statement starts with one.
 */
export function normalizeStatement(text: string, treeDepth: number): string {
  if (failure === undefined && treeDepth <= MAX_WASM_WALK_DEPTH) {
    try {
      const normalized = normalizeSync(text);
      if (firstWord(normalized) === firstWord(text)) return normalized;
    } catch (e) {
      if (isWasmFault(e)) poison(e);
    }
  }
  return lexicalNormalize(text);
}

/** libpg-query's fingerprint of one statement, or a hash of the lexical normalization. */
export function fingerprintStatement(text: string, treeDepth: number): string {
  if (failure === undefined && treeDepth <= MAX_WASM_WALK_DEPTH) {
    try {
      const fingerprint = fingerprintSync(text);
      if (/^[0-9a-f]{16}$/.test(fingerprint)) return fingerprint;
    } catch (e) {
      if (isWasmFault(e)) poison(e);
    }
  }
  // Same shape as libpg-query's (16 hex digits); only used for trees too deep for the WASM walkers.
  return createHash('sha256').update(lexicalNormalize(text)).digest('hex').slice(0, 16);
}
