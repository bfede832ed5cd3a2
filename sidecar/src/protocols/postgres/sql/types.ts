import type { Node } from 'libpg-query';

/**
 * What a statement does, as the AccessPolicy rules see it. `session` is not a policy class: it marks
 * statements that only change the state of the connection (transactions, ordinary settings, prepared
 * statements) and that the gateway lets through when the rest of the query string is allowed.
 */
export type OperationClass = 'read' | 'write' | 'ddl' | 'admin' | 'copy' | 'session';

/**
 * The postgres guardrail detectors, spelled exactly as in the AccessPolicy CRD enum
 * (`spec.guardrails[].detector`). A test checks them against the generated API types.
 */
export const POSTGRES_GUARDRAIL_DETECTORS = [
  'delete-without-where',
  'update-without-where',
  'truncate',
  'drop',
  'unbounded-select',
  'copy-to',
  'set-role',
  'alter-system',
  'file-access',
  'multi-statement-write',
] as const;

export type PostgresGuardrailDetector = (typeof POSTGRES_GUARDRAIL_DETECTORS)[number];

/** A relation a statement touches. `schema` is undefined when the SQL did not qualify the name. */
export interface TableRef {
  schema?: string;
  name: string;
  access: 'read' | 'write';
}

export interface Risk {
  detector: PostgresGuardrailDetector;
  /** One human sentence naming the part of the statement that fired the detector. */
  reason: string;
}

/** The parse tree of one statement: the `stmt` of libpg-query's RawStmt. */
export type SqlStatementTree = Node;

export interface StatementAnalysis {
  /** This statement's own slice of the query string, without surrounding whitespace. */
  text: string;
  /** The text with literals replaced by $n (libpg-query normalize); safe to record. */
  normalized: string;
  /** libpg-query fingerprint: equal for statements that differ only in literals. */
  fingerprint: string;
  /** Top node type, e.g. 'SelectStmt'. */
  kind: string;
  /** Non-empty, sorted, without duplicates. */
  classes: OperationClass[];
  /** Every relation touched at any depth (names of CTEs are not relations). */
  tables: TableRef[];
  /** Every function called, as written ('pg_read_file', 'public.f'), lower-cased, without duplicates. */
  functions: string[];
  risks: Risk[];
  /** For PREPARE name AS …: the statement that EXECUTE name will run. */
  prepared?: { name: string; statement: StatementAnalysis };
  /** For EXECUTE name: the prepared statement's name (the gateway resolves it from its own map). */
  executes?: string;
  /**
   * The parse tree, for findMaskingLeaks. Not enumerable, so it stays out of JSON and recordings.
   */
  readonly tree: SqlStatementTree;
}

export interface SqlAnalysis {
  statements: StatementAnalysis[];
  /**
   * Set when the query string could not be analysed (syntax error, too large, too deeply nested,
   * parser unavailable). `statements` is then empty and policy must deny ("default deny").
   * `position` is a 0-based index into the query string (UTF-16 code units) when known.
   */
  error?: {
    message: string;
    position?: number;
    /**
     * `syntax`: the parser refused the text (PostgreSQL answers 42601 with the same message);
     * `empty`: no statement at all, only blanks, comments and semicolons (PostgreSQL answers
     * EmptyQueryResponse); otherwise a limit of the analysis.
     */
    kind?: 'syntax' | 'empty';
  };
}

/** A masking rule target. Each segment is a name or a glob ('*' any run, '?' one character). */
export interface MaskedColumnRule {
  schema: string;
  table: string;
  column: string;
}

/**
 * How a masked column's value (or information about it) could reach the agent without the gateway
 * being able to mask it by the column origin PostgreSQL reports in RowDescription.
 */
export type LeakKind =
  /** An expression over the column in an output position: upper(ssn), ssn || '', CASE WHEN ssn …. */
  | 'expression'
  /** A cast or COLLATE of the column: ssn::text, CAST(ssn AS varchar), ssn COLLATE "C". */
  | 'cast'
  /** An aggregate or window function over the column: max(ssn), string_agg(ssn, ','), lag(ssn) OVER (). */
  | 'aggregate'
  /** The column passed to a function that is not a known built-in (it may store or echo it). */
  | 'function-argument'
  /** A whole-row reference to a relation with masked columns: SELECT c, row_to_json(c), c::text. */
  | 'whole-row'
  /** The column in WHERE, JOIN … ON/USING, HAVING, FILTER, LIMIT: the row count is an oracle. */
  | 'predicate'
  /** ORDER BY / DISTINCT ON / window ORDER BY the column: the order is an oracle. */
  | 'ordering'
  /** GROUP BY / DISTINCT / PARTITION BY the column: group sizes are an oracle. */
  | 'grouping'
  /** The column in an output column of UNION / INTERSECT / EXCEPT: PostgreSQL reports no origin. */
  | 'set-operation'
  /** The column flows out of a scalar, IN, ANY/ALL or ARRAY subquery into an expression. */
  | 'subquery-expression'
  /** RETURNING of the column (or *): origins are reported, so the gateway can mask it. */
  | 'returning'
  /** The value is copied into a table (INSERT … SELECT, UPDATE SET other = ssn, CREATE TABLE AS, SELECT INTO). */
  | 'data-copy'
  /** COPY … TO of the column: no RowDescription, the gateway masks COPY rows by column position. */
  | 'copy'
  /** A view (or rule) definition exposes the column under a new relation the rules do not name. */
  | 'view-definition'
  /** A write to the column: a unique-constraint error tells whether a value exists in another row. */
  | 'write-oracle'
  /** pg_stats and friends expose sample values (most_common_vals, histogram_bounds) of every readable column. */
  | 'statistics'
  /** A built-in that runs SQL given as a string (query_to_xml, table_to_xml, ts_stat …): unseen tables. */
  | 'dynamic-sql'
  /** A column of a relation produced by an untrusted function, named like a masked column. */
  | 'unknown-relation'
  /** The analysis itself failed (e.g. a tree too deep): fail closed. */
  | 'analysis-failed';

export interface Leak {
  /** schema.table.column as matched; the column is '*' when a whole row or every column is meant. */
  column: string;
  how: LeakKind;
  /** One human sentence: what the statement does with the column and where. */
  detail: string;
  /** For `copy`: the 1-based position of the column in the COPY output, when the text tells it. */
  outputColumn?: number;
}

/** A relation named in a statement, as written. */
export interface RelationName {
  schema?: string;
  name: string;
}

export interface MaskingAnalysis {
  leaks: Leak[];
  /**
   * Functions called anywhere (FROM included) that are not known pg_catalog built-ins, as written and
   * lower-cased. Their bodies can read masked tables and return the values without a column origin;
   * the gateway must check them in pg_proc (schema, language, volatility) before the query runs.
   */
  untrustedFunctions: string[];
  /**
   * Every relation the statement names (CTE names excluded). The analysis only sees names: the gateway
   * must resolve them in the catalog and treat views, partitions, inheritance children and foreign
   * tables over masked tables like the masked tables themselves.
   */
  relations: RelationName[];
}

export interface MaskingOptions {
  /**
   * Schemas an unqualified table name may resolve to (the session's search_path). Default ['public'].
   * '*' matches every schema (the most careful choice when the search_path is not known).
   */
  defaultSchemas?: string[];
}
