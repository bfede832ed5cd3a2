/**
 * What a column reference denotes, without a catalog. An unqualified name may belong to any relation
 * in scope, at this query level or an enclosing one, so it is taken to be every masked column of that
 * name (PostgreSQL would pick one; the analysis cannot know which). Qualified names follow SQL's
 * scoping: the innermost level with a relation of that name or alias wins.
 */

import { type NodeOf, nodeAs } from '../pg-ast.js';
import type { CompiledRule, MaskedColumn } from './masking-rules.js';
import type { Scope, Source } from './masking-scope.js';

export interface Resolution {
  /** Plain masked columns (their origin is kept if used as a plain output column). */
  plain: MaskedColumn[];
  /** Whole-row references: the relation and the masked columns its value carries. */
  rows: Array<{ label: string; columns: MaskedColumn[] }>;
  /** Fields selected from a composite column that may be masked (an expression over it). */
  fields: MaskedColumn[];
  /** `*` / `x.*`: the relations expanded. */
  star: Source[] | undefined;
  /** Columns of an untrusted function's result named like a masked column. */
  unknown: Array<{ fn: string; rule: CompiledRule }>;
}

export function columnRefFields(ref: NodeOf<'ColumnRef'>): { names: string[]; star: boolean } {
  const names: string[] = [];
  let star = false;
  for (const f of ref.fields ?? []) {
    const s = nodeAs(f, 'String');
    if (s?.sval !== undefined) names.push(s.sval);
    else if (nodeAs(f, 'A_Star') !== undefined) star = true;
  }
  return { names, star };
}

export class ColumnResolver {
  private readonly rules: readonly CompiledRule[];
  private readonly defaultSchemas: readonly string[];

  constructor(rules: readonly CompiledRule[], defaultSchemas: readonly string[]) {
    this.rules = rules;
    this.defaultSchemas = defaultSchemas;
  }

  /** Whether `qualifier` (`q` or `schema.q`) names this source. */
  private matches(source: Source, qualifier: readonly string[]): boolean {
    const [a, b] = qualifier;
    if (qualifier.length === 1) return source.alias !== undefined ? source.alias === a : source.relName === a;
    if (qualifier.length === 2 && source.alias === undefined && source.relName === b) {
      if (source.relSchema !== undefined) return source.relSchema === a;
      return this.defaultSchemas.some((ds) => ds === '*' || ds === a);
    }
    return false;
  }

  /** The sources a qualifier names, at the innermost level that has any (SQL's scoping rule). */
  qualified(scope: Scope, qualifier: readonly string[]): Source[] {
    for (const level of scope.levels()) {
      const found = level.sources.filter((s) => this.matches(s, qualifier));
      if (found.length > 0) return found;
    }
    return [];
  }

  private unknownColumns(source: Source, name: string, out: Resolution['unknown']): void {
    if (source.untrustedFunction === undefined) return;
    for (const rule of this.rules) {
      if (rule.literalColumn === name.toLowerCase()) out.push({ fn: source.untrustedFunction, rule });
    }
  }

  resolve(ref: NodeOf<'ColumnRef'>, scope: Scope): Resolution {
    const { names, star } = columnRefFields(ref);
    const res: Resolution = { plain: [], rows: [], fields: [], star: undefined, unknown: [] };
    if (star) {
      res.star = names.length === 0 ? [...scope.sources] : this.qualified(scope, names.slice(-2));
      return res;
    }
    const last = names[names.length - 1];
    if (last === undefined) return res;
    if (names.length === 1) {
      for (const level of scope.levels()) {
        for (const s of level.sources) {
          res.plain.push(...s.column(last));
          this.unknownColumns(s, last, res.unknown);
          // PostgreSQL reads a bare relation name as a whole-row reference when no column has it.
          if (this.matches(s, [last])) res.rows.push({ label: last, columns: s.wholeRow() });
        }
      }
      return res;
    }
    // q.col, s.q.col, db.s.q.col
    const qualifier = names.slice(Math.max(0, names.length - 3), -1);
    const sources = this.qualified(scope, qualifier.slice(-2));
    if (sources.length > 0) {
      for (const s of sources) {
        res.plain.push(...s.column(last));
        this.unknownColumns(s, last, res.unknown);
      }
    } else {
      // q.f where q is not a relation: field f of a composite column q (an expression over q).
      const base = this.resolve({ fields: ref.fields?.slice(0, -1) ?? [] }, scope);
      res.fields.push(...base.plain, ...base.fields, ...base.rows.flatMap((r) => r.columns));
    }
    // s.q as schema.table: a whole-row reference.
    if (names.length === 2) {
      for (const s of this.qualified(scope, names))
        res.rows.push({ label: names.join('.'), columns: s.wholeRow() });
    }
    return res;
  }
}
