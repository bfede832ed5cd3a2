// Masking shared by every gateway: which values a session's policies hide (the plan, compiled from
// column rules and value detectors) and what a hidden value becomes (the strategies). Protocols
// decide where values are in their own messages. Pure; no I/O.
export { maskBytes } from './mask-value.js';
export {
  type ColumnRule,
  compileMasking,
  type DetectorMatch,
  type MaskingCompileResult,
  type MaskingPlan,
  type ResultMasking,
  STRATEGY_STRENGTH,
} from './masking-plan.js';
export { BUILTIN_DETECTORS, luhnValid, MAX_SCAN_CHARS } from './value-detectors.js';
