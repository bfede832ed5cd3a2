// Public API of the PostgreSQL SQL analysis: classification for policy and guardrails, and the
// masking leak analysis. Pure functions of the SQL text (and the masking rules).
export { classifySql, initSqlParser, sqlParserHealth } from './classify/classify.js';
export { STATEMENT_CLASSES } from './classify/statement-classes.js';
export {
  analyzeMasking,
  findMaskingLeaks,
  isMaskableLeak,
  MASKABLE_LEAK_KINDS,
} from './leaks/masking-leaks.js';
export { parseMaskedColumn } from './leaks/masking-rules.js';
export { MAX_QUERY_BYTES, MAX_QUERY_NESTING, MAX_STATEMENTS } from './screen/sql-parser.js';
export type {
  Leak,
  LeakKind,
  MaskedColumnRule,
  MaskingAnalysis,
  MaskingOptions,
  OperationClass,
  PostgresGuardrailDetector,
  RelationName,
  Risk,
  SqlAnalysis,
  SqlStatementTree,
  StatementAnalysis,
  TableRef,
} from './types.js';
export { POSTGRES_GUARDRAIL_DETECTORS } from './types.js';
