/**
 * Name resolution for the leak analysis: the relations a query level can see (FROM items, joins,
 * CTE references) and what each of their columns may carry. The analysis has no catalog, so a
 * table's columns are known only through the masking rules: a column is masked when a rule names it.
 */
import type { MaskedColumn, TableRules } from './masking-rules.js';

/** One output column of a query level (a select list, RETURNING). */
export interface OutputColumn {
  name: string | undefined;
  /** Masked columns this output passes through as a plain reference (PostgreSQL keeps the origin). */
  masked: MaskedColumn[];
  /** For `*` / `x.*`: the relation whose columns it passes through. */
  star?: Source;
}

/** Something in FROM that columns can be qualified with. */
export interface Source {
  /** The alias, when the FROM item has one (then only the alias qualifies its columns). */
  readonly alias: string | undefined;
  /** Without an alias: the relation or CTE name. */
  readonly relName: string | undefined;
  /** Without an alias: the schema the name was qualified with. */
  readonly relSchema: string | undefined;
  /** For messages. */
  readonly label: string;
  /** Set for relations produced by a function the analysis cannot see into. */
  readonly untrustedFunction?: string;
  /** The masked columns a reference to column `name` may denote. */
  column(name: string): MaskedColumn[];
  /** The masked columns a whole-row reference carries. */
  wholeRow(): MaskedColumn[];
}

function unique(columns: MaskedColumn[]): MaskedColumn[] {
  const seen = new Set<string>();
  return columns.filter((c) => {
    const key = `${c.schema}.${c.table}.${c.column}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

export class TableSource implements Source {
  readonly alias: string | undefined;
  readonly relName: string | undefined;
  readonly relSchema: string | undefined;
  readonly label: string;
  private readonly name: string;
  private readonly tableRules: TableRules;
  private readonly aliasColumns: readonly string[] | undefined;

  constructor(
    schema: string | undefined,
    name: string,
    alias: string | undefined,
    aliasColumns: readonly string[] | undefined,
    tableRules: TableRules,
  ) {
    this.name = name;
    this.alias = alias;
    this.relName = alias === undefined ? name : undefined;
    this.relSchema = alias === undefined ? schema : undefined;
    this.label = alias ?? (schema !== undefined ? `${schema}.${name}` : name);
    this.tableRules = tableRules;
    this.aliasColumns = aliasColumns !== undefined && aliasColumns.length > 0 ? aliasColumns : undefined;
  }

  column(name: string): MaskedColumn[] {
    // `FROM customers AS c(a, b)` renames columns by position, and positions are in the catalog,
    // not here: a renamed column may be any masked column of the table.
    if (this.aliasColumns?.includes(name) === true) {
      return this.tableRules.rules.map(({ rule, schema }) => ({
        schema,
        table: this.name,
        column: rule.literalColumn ?? name,
      }));
    }
    return unique(
      this.tableRules.rules
        .filter(({ rule }) => rule.column(name))
        .map(({ rule, schema }) => ({ schema, table: this.name, column: rule.literalColumn ?? name })),
    );
  }

  wholeRow(): MaskedColumn[] {
    return unique(
      this.tableRules.rules.map(({ rule, schema }) => ({
        schema,
        table: this.name,
        column: rule.literalColumn ?? '*',
      })),
    );
  }
}

/** A subquery in FROM, a CTE reference, or a data-modifying statement's RETURNING seen as a relation. */
export class DerivedSource implements Source {
  readonly alias: string | undefined;
  readonly relName: string | undefined;
  readonly relSchema = undefined;
  readonly label: string;
  private readonly outputs: readonly OutputColumn[];
  private readonly renamedByStar: readonly string[] | undefined;

  constructor(
    alias: string | undefined,
    relName: string | undefined,
    aliasColumns: readonly string[] | undefined,
    outputs: readonly OutputColumn[],
  ) {
    this.alias = alias;
    this.relName = alias === undefined ? relName : undefined;
    this.label = alias ?? relName ?? 'subquery';
    const hasStar = outputs.some((o) => o.star !== undefined);
    if (aliasColumns !== undefined && aliasColumns.length > 0 && !hasStar) {
      this.outputs = outputs.map((o, i) => ({ ...o, name: aliasColumns[i] ?? o.name }));
      this.renamedByStar = undefined;
    } else {
      this.outputs = outputs;
      // After a `*`, positions are unknown: an alias name may stand for any column.
      this.renamedByStar =
        hasStar && aliasColumns !== undefined && aliasColumns.length > 0 ? aliasColumns : undefined;
    }
  }

  column(name: string): MaskedColumn[] {
    if (this.renamedByStar?.includes(name) === true) return this.wholeRow();
    const out: MaskedColumn[] = [];
    for (const o of this.outputs) {
      if (o.star !== undefined) out.push(...o.star.column(name));
      else if (o.name === name) out.push(...o.masked);
    }
    return unique(out);
  }

  wholeRow(): MaskedColumn[] {
    return unique(this.outputs.flatMap((o) => (o.star !== undefined ? o.star.wholeRow() : o.masked)));
  }
}

/**
 * `(a JOIN b) AS j` (its alias may rename columns by position: `AS j(x, y)`), or `JOIN … USING (x)
 * AS j` (only the USING columns); also the aliases that name a DML target (old, new, excluded).
 */
export class JoinSource implements Source {
  readonly alias: string;
  readonly relName = undefined;
  readonly relSchema = undefined;
  readonly label: string;
  private readonly children: readonly Source[];
  private readonly usingColumns: readonly string[] | undefined;
  private readonly aliasColumns: readonly string[] | undefined;

  constructor(
    alias: string,
    children: readonly Source[],
    usingColumns?: readonly string[],
    aliasColumns?: readonly string[],
  ) {
    this.alias = alias;
    this.label = alias;
    this.children = children;
    this.usingColumns = usingColumns;
    this.aliasColumns = aliasColumns !== undefined && aliasColumns.length > 0 ? aliasColumns : undefined;
  }

  column(name: string): MaskedColumn[] {
    // Renamed by position, and the positions of a join's columns are in the catalog.
    if (this.aliasColumns?.includes(name) === true) return this.wholeRow();
    if (this.usingColumns !== undefined && !this.usingColumns.includes(name)) return [];
    return unique(this.children.flatMap((c) => c.column(name)));
  }

  wholeRow(): MaskedColumn[] {
    if (this.usingColumns !== undefined) {
      return unique(this.usingColumns.flatMap((n) => this.children.flatMap((c) => c.column(n))));
    }
    return unique(this.children.flatMap((c) => c.wholeRow()));
  }
}

/** A function in FROM (or XMLTABLE / JSON_TABLE): its columns have no origin in PostgreSQL either. */
export class FunctionSource implements Source {
  readonly alias: string | undefined;
  readonly relName: string | undefined;
  readonly relSchema = undefined;
  readonly label: string;
  readonly untrustedFunction: string | undefined;

  constructor(alias: string | undefined, functionName: string | undefined, untrusted: boolean) {
    this.alias = alias;
    this.relName = alias === undefined ? functionName : undefined;
    this.label = alias ?? functionName ?? 'function';
    this.untrustedFunction = untrusted ? functionName : undefined;
  }

  column(): MaskedColumn[] {
    return [];
  }

  wholeRow(): MaskedColumn[] {
    return [];
  }
}

/**
 * One query level. `outer` is where correlated column references resolve (sublinks, LATERAL);
 * `cteOuter` is where CTE names resolve (a non-lateral subquery in FROM sees the CTEs of its level
 * but not the FROM items next to it).
 */
export class Scope {
  readonly sources: Source[] = [];
  readonly ctes = new Map<string, readonly OutputColumn[]>();
  readonly outer: Scope | undefined;
  readonly cteOuter: Scope | undefined;

  constructor(outer: Scope | undefined, cteOuter: Scope | undefined) {
    this.outer = outer;
    this.cteOuter = cteOuter;
  }

  findCte(name: string): readonly OutputColumn[] | undefined {
    for (let s: Scope | undefined = this; s !== undefined; s = s.cteOuter) {
      const cte = s.ctes.get(name);
      if (cte !== undefined) return cte;
    }
    return undefined;
  }

  /** This level and every enclosing one, innermost first. */
  *levels(): Generator<Scope> {
    for (let s: Scope | undefined = this; s !== undefined; s = s.outer) yield s;
  }
}
