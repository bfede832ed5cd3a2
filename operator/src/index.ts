// Public entry point of @chaperone/operator: what tests, the e2e suite and tools may import.
export { mutatingWebhookConfiguration, WEBHOOK_NAMES } from './admission/webhook-configuration.js';
export * from './operator-constants.js';
export { type OperatorOptions, type RunningOperator, startOperator } from './operator-process.js';
