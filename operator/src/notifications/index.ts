// Approver notifications: Slack, Microsoft Teams and signed generic webhooks, sent by the leader.
export {
  checkTargetUrl,
  deliver,
  EVENT_HEADER,
  IDEMPOTENCY_HEADER,
  SIGNATURE_HEADER,
  signature,
  TIMESTAMP_HEADER,
} from './delivery.js';
export { dueNotifications } from './due-notifications.js';
export {
  type NotificationConfig,
  type NotificationTarget,
  type NotificationType,
  parseNotificationConfig,
} from './notification-config.js';
export { buildNotificationMessage, type NotificationMessage } from './notification-message.js';
export { Notifier } from './notifier.js';
export { slackPayload, teamsPayload, webhookPayload } from './payloads.js';
