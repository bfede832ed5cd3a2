/**
 * Masking rules compiled for name matching. Matching is case-insensitive: a rule written
 * `public.Customers.SSN` catches the table the parser folds to `customers` — over-matching only makes
 * the leak analysis more careful.
 */
import type { MaskedColumnRule } from '../types.js';

/** A masked column as the analysis resolved it, for messages: every part a concrete name or '*'. */
export interface MaskedColumn {
  schema: string;
  table: string;
  column: string;
}

export function columnKey(c: MaskedColumn): string {
  return `${c.schema}.${c.table}.${c.column}`;
}

type NameMatcher = (name: string) => boolean;

function globMatcher(glob: string): { match: NameMatcher; literal: string | undefined } {
  const lower = glob.toLowerCase();
  if (lower === '*') return { match: () => true, literal: undefined };
  if (!lower.includes('*') && !lower.includes('?')) {
    return { match: (name) => name.toLowerCase() === lower, literal: lower };
  }
  let source = '';
  for (const ch of lower) {
    if (ch === '*') source += '.*';
    else if (ch === '?') source += '.';
    else source += ch.replace(/[\\^$.*+?()[\]{}|/]/g, '\\$&');
  }
  const re = new RegExp(`^${source}$`, 'is');
  return { match: (name) => re.test(name), literal: undefined };
}

export interface CompiledRule {
  /** The rule as written, schema.table.column. */
  readonly text: string;
  readonly schema: NameMatcher;
  readonly table: NameMatcher;
  readonly column: NameMatcher;
  /** The rule's schema / column when it names exactly one, lower-cased. */
  readonly literalSchema: string | undefined;
  readonly literalColumn: string | undefined;
}

const compiledCache = new WeakMap<readonly MaskedColumnRule[], CompiledRule[]>();

/** Compiles the rules once per rules array (the gateway passes the same array for a whole session). */
export function compileRules(rules: readonly MaskedColumnRule[]): CompiledRule[] {
  const cached = compiledCache.get(rules);
  if (cached !== undefined) return cached;
  const compiled = rules.map((r) => {
    const schema = globMatcher(r.schema);
    const column = globMatcher(r.column);
    return {
      text: `${r.schema}.${r.table}.${r.column}`,
      schema: schema.match,
      table: globMatcher(r.table).match,
      column: column.match,
      literalSchema: schema.literal,
      literalColumn: column.literal,
    };
  });
  compiledCache.set(rules, compiled);
  return compiled;
}

/**
 * Parses the CRD's `schema.table.column` form (each segment a name or glob; a segment may be a
 * double-quoted identifier holding dots). Returns undefined unless there are exactly three segments.
 */
export function parseMaskedColumn(spec: string): MaskedColumnRule | undefined {
  const parts: string[] = [];
  let current = '';
  let quoted = false;
  for (let i = 0; i < spec.length; i++) {
    const ch = spec[i];
    if (ch === '"') {
      if (quoted && spec[i + 1] === '"') {
        current += '"';
        i++;
      } else quoted = !quoted;
    } else if (ch === '.' && !quoted) {
      parts.push(current);
      current = '';
    } else current += ch;
  }
  parts.push(current);
  const [schema, table, column] = parts;
  if (parts.length !== 3 || schema === undefined || table === undefined || column === undefined)
    return undefined;
  if (schema === '' || table === '' || column === '') return undefined;
  return { schema, table, column };
}

/** The rules that apply to one table, with the schema to show in messages. */
export interface TableRules {
  readonly rules: ReadonlyArray<{ rule: CompiledRule; schema: string }>;
}

/**
 * The rules that may apply to a table named `schema.name` (schema undefined: unqualified, resolved
 * through `defaultSchemas`, where '*' stands for any schema).
 */
export function rulesForTable(
  rules: readonly CompiledRule[],
  schema: string | undefined,
  name: string,
  defaultSchemas: readonly string[],
): TableRules {
  const out: Array<{ rule: CompiledRule; schema: string }> = [];
  for (const rule of rules) {
    if (!rule.table(name)) continue;
    if (schema !== undefined) {
      if (rule.schema(schema)) out.push({ rule, schema });
      continue;
    }
    for (const ds of defaultSchemas) {
      if (ds === '*') {
        out.push({ rule, schema: rule.literalSchema ?? '*' });
        break;
      }
      if (rule.schema(ds)) {
        out.push({ rule, schema: ds });
        break;
      }
    }
  }
  return { rules: out };
}
