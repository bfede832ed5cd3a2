// The protocol-neutral session steps every gateway runs (see ../README.md for the whole data path).
export type { PolicyViewFactory } from './policy-view.js';
export { isRefusal, type Refusal, type RefusalKind } from './refusal.js';
export {
  type ApprovalAsk,
  type ApprovalResult,
  type PipelineConfig,
  SessionPipeline,
  type WaitingNotice,
} from './session-pipeline.js';
