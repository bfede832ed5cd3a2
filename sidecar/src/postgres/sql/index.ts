// Public API of the PostgreSQL SQL analysis: classification for policy and guardrails, and the
// masking leak analysis. Pure functions of the SQL text (and the masking rules).
export { classifySql, initSqlParser, sqlParserHealth } from './classify.js';
export {
  analyzeMasking,
  findMaskingLeaks,
  isMaskableLeak,
  MASKABLE_LEAK_KINDS,
} from './masking-leaks.js';
export { parseMaskedColumn } from './masking-rules.js';
export { MAX_QUERY_BYTES, MAX_QUERY_NESTING, MAX_STATEMENTS } from './sql-parser.js';
export { STATEMENT_CLASSES } from './statement-classes.js';
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
