// The operator's controller runtime: leader election, informers, work queues, status and Events,
// metrics, and the ControllerManager that runs the reconcilers on the leader.
export { apiErrorCode, describeApiError } from './api-errors.js';
export {
  coreV1EventSink,
  EventRecorder,
  type EventRecorderOptions,
  type EventSink,
  type EventSpec,
  type EventType,
  type InvolvedObject,
  REPORTING_CONTROLLER,
} from './events.js';
export {
  type InformerEventType,
  type InformerFactory,
  type InformerHandler,
  ResilientInformer,
  type ResilientInformerOptions,
  type RestartReason,
} from './informer.js';
export { LeaderElector, type LeaderElectorOptions } from './leader-election.js';
export {
  ControllerManager,
  type ControllerManagerOptions,
  type LeaderElectionSettings,
  objectKey,
  parseObjectKey,
} from './manager.js';
export { type ControllerMetrics, createControllerMetrics, type ReconcileResult } from './metrics.js';
export {
  type ConditionInput,
  type ConditionStatus,
  getCondition,
  isConditionTrue,
  jsonEqual,
  MAX_CONDITION_MESSAGE,
  mergePatchChanges,
  type StatusTarget,
  StatusWriter,
  setCondition,
  statusChanged,
  statusPatchBody,
} from './status.js';
export { type WorkHandler, WorkQueue, type WorkQueueOptions, type WorkResult } from './work-queue.js';
