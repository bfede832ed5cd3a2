/**
 * A small PostgreSQL lexer in plain TypeScript, for the few jobs that must not (or need not) go
 * through the WASM parser:
 *
 * - `estimateNesting`: libpg-query recurses on the native stack while it turns the tree into JSON,
 *   normalizes or fingerprints it. A stack overflow inside WASM surfaces as a RangeError but leaves the
 *   module's allocator in an undefined state (we saw it fail with "memory access out of bounds" after a
 *   few hundred such overflows). So the input is screened before it reaches the parser.
 * - `lexicalNormalize`: the fallback for `normalized` when the tree is too deep for libpg-query's
 *   normalize (which overflows at a few hundred nesting levels).
 * - `preparedBodyOffset`: where the statement inside PREPARE name AS … starts.
 *
 * It follows the server's default lexical rules (standard_conforming_strings = on); the gateway pins
 * that setting, because with it off the server would read backslashes differently from this module.
 */

// Token kinds (numbers rather than an enum: the project compiles with erasableSyntaxOnly).
const Tok = { End: 0, Ident: 1, String: 2, Number: 3, Param: 4, Operator: 5, Punct: 6 } as const;
type Tok = (typeof Tok)[keyof typeof Tok];

function isIdentStart(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95 || c >= 128;
}

function isIdentChar(c: number): boolean {
  return isIdentStart(c) || (c >= 48 && c <= 57) || c === 36;
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

function isSpace(c: number): boolean {
  return c === 32 || c === 9 || c === 10 || c === 13 || c === 12 || c === 11;
}

// + - * / < > = ~ ! @ # % ^ & | ` ?
function isOperatorChar(c: number): boolean {
  return (
    c === 43 ||
    c === 45 ||
    c === 42 ||
    c === 47 ||
    c === 60 ||
    c === 62 ||
    c === 61 ||
    c === 126 ||
    c === 33 ||
    c === 64 ||
    c === 35 ||
    c === 37 ||
    c === 94 ||
    c === 38 ||
    c === 124 ||
    c === 96 ||
    c === 63
  );
}

/** A forward-only tokenizer over a string; comments and whitespace are skipped. */
class Lexer {
  pos = 0;
  start = 0;
  kind: Tok = Tok.End;
  /** Longest operator token seen (see screenQuery). */
  longestOperator = 0;
  /** Sum over operator-character runs inside block comments of (comment opens in the run × run length). */
  commentBacktracking = 0;
  private readonly s: string;

  constructor(s: string) {
    this.s = s;
  }

  text(): string {
    return this.s.slice(this.start, this.pos);
  }

  /** The current token's first character code (for punctuation). */
  first(): number {
    return this.s.charCodeAt(this.start);
  }

  next(): Tok {
    const s = this.s;
    const n = s.length;
    let i = this.pos;
    // Skip whitespace and comments.
    for (;;) {
      while (i < n && isSpace(s.charCodeAt(i))) i++;
      if (i + 1 < n && s.charCodeAt(i) === 45 && s.charCodeAt(i + 1) === 45) {
        i += 2;
        while (i < n && s.charCodeAt(i) !== 10 && s.charCodeAt(i) !== 13) i++;
        continue;
      }
      if (i + 1 < n && s.charCodeAt(i) === 47 && s.charCodeAt(i + 1) === 42) {
        i = this.skipBlockComment(i);
        continue;
      }
      break;
    }
    this.start = i;
    if (i >= n) {
      this.pos = n;
      this.kind = Tok.End;
      return this.kind;
    }
    const c = s.charCodeAt(i);
    if (c === 39) {
      this.pos = this.skipQuoted(i, 39, false);
      this.kind = Tok.String;
    } else if (c === 34) {
      this.pos = this.skipQuoted(i, 34, false);
      this.kind = Tok.Ident;
    } else if (isIdentStart(c)) {
      const next = s.charCodeAt(i + 1);
      const lower = c | 32;
      if (next === 39 && (lower === 101 || lower === 98 || lower === 120 || lower === 110)) {
        // E'…' (backslash escapes), B'…', X'…', N'…'
        this.pos = this.skipQuoted(i + 1, 39, lower === 101);
        this.kind = Tok.String;
      } else if (lower === 117 && next === 38 && (s.charCodeAt(i + 2) === 39 || s.charCodeAt(i + 2) === 34)) {
        // U&'…' and U&"…"
        const q = s.charCodeAt(i + 2);
        this.pos = this.skipQuoted(i + 2, q, false);
        this.kind = q === 39 ? Tok.String : Tok.Ident;
      } else {
        let j = i + 1;
        while (j < n && isIdentChar(s.charCodeAt(j))) j++;
        this.pos = j;
        this.kind = Tok.Ident;
      }
    } else if (isDigit(c) || (c === 46 && isDigit(s.charCodeAt(i + 1)))) {
      let j = i + 1;
      while (j < n) {
        const d = s.charCodeAt(j);
        if (isDigit(d) || isIdentStart(d) || d === 46) {
          // 1e+5 / 1e-5
          if ((d | 32) === 101 && (s.charCodeAt(j + 1) === 43 || s.charCodeAt(j + 1) === 45)) j++;
          j++;
        } else break;
      }
      this.pos = j;
      this.kind = Tok.Number;
    } else if (c === 36) {
      const end = this.skipDollar(i);
      if (end > 0) {
        this.pos = end;
        this.kind = Tok.String;
      } else {
        let j = i + 1;
        while (j < n && isDigit(s.charCodeAt(j))) j++;
        this.pos = j;
        this.kind = j > i + 1 ? Tok.Param : Tok.Operator;
      }
    } else if (isOperatorChar(c)) {
      let j = i + 1;
      while (j < n && isOperatorChar(s.charCodeAt(j))) {
        // A comment start ends the operator.
        const d = s.charCodeAt(j);
        if ((d === 45 && s.charCodeAt(j + 1) === 45) || (d === 47 && s.charCodeAt(j + 1) === 42)) break;
        j++;
      }
      this.pos = j;
      this.kind = Tok.Operator;
      if (j - i > this.longestOperator) this.longestOperator = j - i;
    } else if (c === 58 && s.charCodeAt(i + 1) === 58) {
      this.pos = i + 2;
      this.kind = Tok.Operator;
    } else {
      this.pos = i + 1;
      this.kind = Tok.Punct;
    }
    return this.kind;
  }

  /**
   * Index after a block comment starting at `i` (they nest in PostgreSQL). Also measures what makes
   * the server's scanner quadratic here: at every comment start it matches the whole run of operator
   * characters that follows and then backs up, so a run holding many comment starts costs
   * (starts × run length).
   */
  private skipBlockComment(i: number): number {
    const s = this.s;
    const n = s.length;
    let depth = 1;
    let run = 2;
    let opens = 1;
    let j = i + 2;
    const endRun = (): void => {
      if (opens > 0) this.commentBacktracking += opens * run;
      run = 0;
      opens = 0;
    };
    while (j < n && depth > 0) {
      const c = s.charCodeAt(j);
      if (c === 47 && s.charCodeAt(j + 1) === 42) {
        depth++;
        opens++;
        run += 2;
        j += 2;
      } else if (c === 42 && s.charCodeAt(j + 1) === 47) {
        depth--;
        run += 2;
        j += 2;
      } else {
        if (isOperatorChar(c)) run++;
        else endRun();
        j++;
      }
    }
    endRun();
    return j;
  }

  /** Index after the closing quote (doubled quotes and, in E'' strings, backslashes escape). */
  private skipQuoted(open: number, quote: number, backslash: boolean): number {
    const s = this.s;
    const n = s.length;
    let j = open + 1;
    while (j < n) {
      const c = s.charCodeAt(j);
      if (backslash && c === 92) {
        j += 2;
        continue;
      }
      if (c === quote) {
        if (s.charCodeAt(j + 1) === quote) {
          j += 2;
          continue;
        }
        return j + 1;
      }
      j++;
    }
    return n;
  }

  /** Index after a dollar-quoted string starting at `i`, or 0 if `$` does not open one. */
  private skipDollar(i: number): number {
    const s = this.s;
    let j = i + 1;
    if (j < s.length && s.charCodeAt(j) !== 36) {
      if (!isIdentStart(s.charCodeAt(j))) return 0;
      while (j < s.length && isIdentChar(s.charCodeAt(j)) && s.charCodeAt(j) !== 36) j++;
      if (s.charCodeAt(j) !== 36) return 0;
    }
    const tag = s.slice(i, j + 1);
    const close = s.indexOf(tag, j + 1);
    return close < 0 ? s.length : close + tag.length;
  }
}

// Keywords that make the parse tree one level deeper without brackets (left- or right-recursive
// grammar rules). AND / OR are not here: the parser flattens their chains into one BoolExpr.
const CHAINING_KEYWORDS = new Set([
  'union',
  'intersect',
  'except',
  'join',
  'not',
  'is',
  'isnull',
  'notnull',
  'like',
  'ilike',
  'similar',
  'between',
  'in',
  'collate',
  'at',
  'operator',
  'overlaps',
  'escape',
]);

interface NestingFrame {
  /** Chaining operators in the current comma/AND/OR-separated segment. */
  ops: number;
  /** Deepest bracketed child seen in the current segment. */
  child: number;
  /** Deepest completed segment of this frame. */
  best: number;
  /** Opened by CASE (closed by END) rather than a bracket. */
  isCase: boolean;
}

function closeSegment(f: NestingFrame): void {
  const depth = f.ops + f.child;
  if (depth > f.best) f.best = depth;
  f.ops = 0;
  f.child = 0;
}

/** What the pre-parse screen measures about a query string. */
export interface QueryShape {
  /**
   * An upper estimate of how deep the parse tree of the deepest statement nests, in grammar levels
   * (brackets, CASE … END and chains of operators, casts, set operations and joins). A query whose
   * estimate is under a thousand stays far away from the parser's native stack limit.
   */
  nesting: number;
  /**
   * The longest run of operator characters outside comments and strings. PostgreSQL operators are at
   * most 63 characters, and the server's scanner backs up once per trailing + or - of a run, so a
   * long run of them costs time quadratic in its length before it fails anyway.
   */
  longestOperator: number;
  /** See Lexer.skipBlockComment: the scanner's backtracking work inside comments. */
  commentBacktracking: number;
  /** Semicolons outside strings and comments, plus one: an upper bound of the number of statements. */
  statements: number;
}

/** One pass over the text, before anything reaches the WASM parser. */
export function screenQuery(sql: string): QueryShape {
  const lx = new Lexer(sql);
  const stack: NestingFrame[] = [{ ops: 0, child: 0, best: 0, isCase: false }];
  let worst = 0;
  let statements = 1;
  const pop = (): void => {
    const f = stack.pop();
    const parent = stack[stack.length - 1];
    if (f === undefined || parent === undefined) return;
    closeSegment(f);
    const depth = f.best + 1;
    if (depth > parent.child) parent.child = depth;
  };
  for (let t = lx.next(); t !== Tok.End; t = lx.next()) {
    const top = stack[stack.length - 1]!;
    if (t === Tok.Punct) {
      const c = lx.first();
      if (c === 40 || c === 91) stack.push({ ops: 0, child: 0, best: 0, isCase: false });
      else if (c === 41 || c === 93) {
        if (stack.length > 1 && !top.isCase) pop();
        else if (stack.length > 1) {
          // A bracket closing across an unterminated CASE: unwind to the bracket.
          while (stack.length > 1 && stack[stack.length - 1]!.isCase) pop();
          if (stack.length > 1) pop();
        }
      } else if (c === 44) closeSegment(top);
      else if (c === 59) {
        statements++;
        while (stack.length > 1) pop();
        closeSegment(stack[0]!);
        if (stack[0]!.best > worst) worst = stack[0]!.best;
        stack[0] = { ops: 0, child: 0, best: 0, isCase: false };
      }
    } else if (t === Tok.Operator) {
      top.ops++;
    } else if (t === Tok.Ident) {
      const len = lx.pos - lx.start;
      if (len < 2 || len > 9) continue;
      const word = lx.text().toLowerCase();
      if (word === 'and' || word === 'or') closeSegment(top);
      else if (word === 'case') stack.push({ ops: 0, child: 0, best: 0, isCase: true });
      else if (word === 'end' && top.isCase) pop();
      else if (CHAINING_KEYWORDS.has(word)) top.ops++;
    }
  }
  while (stack.length > 1) pop();
  closeSegment(stack[0]!);
  return {
    nesting: Math.max(worst, stack[0]!.best),
    longestOperator: lx.longestOperator,
    commentBacktracking: lx.commentBacktracking,
    statements,
  };
}

/** The nesting estimate alone (see QueryShape.nesting). */
export function estimateNesting(sql: string): number {
  return screenQuery(sql).nesting;
}

/**
 * Replaces every literal (strings, numbers, bit strings, dollar-quoted bodies) with $n, numbering
 * after the highest parameter already in the text. Cruder than libpg-query's normalize (type modifiers
 * and booleans are treated alike) but it never recurses, so it works for any input.
 */
export function lexicalNormalize(text: string): string {
  const lx = new Lexer(text);
  let maxParam = 0;
  for (let t = lx.next(); t !== Tok.End; t = lx.next()) {
    if (t === Tok.Param) {
      const n = Number.parseInt(text.slice(lx.start + 1, lx.pos), 10);
      if (n > maxParam) maxParam = n;
    }
  }
  const out: string[] = [];
  let copied = 0;
  let next = maxParam + 1;
  const lx2 = new Lexer(text);
  for (let t = lx2.next(); t !== Tok.End; t = lx2.next()) {
    if (t === Tok.String || t === Tok.Number) {
      out.push(text.slice(copied, lx2.start), `$${next++}`);
      copied = lx2.pos;
    }
  }
  out.push(text.slice(copied));
  return out.join('');
}

/**
 * The offset of the statement inside `PREPARE name [(types)] AS statement`, or undefined when the
 * text is not shaped like that.
 */
export function preparedBodyOffset(text: string): number | undefined {
  const lx = new Lexer(text);
  let depth = 0;
  for (let t = lx.next(); t !== Tok.End; t = lx.next()) {
    if (t === Tok.Punct) {
      const c = lx.first();
      if (c === 40) depth++;
      else if (c === 41) depth--;
    } else if (
      t === Tok.Ident &&
      depth === 0 &&
      lx.pos - lx.start === 2 &&
      lx.text().toLowerCase() === 'as'
    ) {
      const rest = lx.pos;
      return lx.next() === Tok.End ? undefined : rest;
    }
  }
  return undefined;
}
