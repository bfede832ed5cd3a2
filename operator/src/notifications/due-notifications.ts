// Which notifications an AccessRequest still needs, pure: every target its policy names plus the
// targets configured for all policies; "requested" while it is pending, "decided" once it is
// decided or expired. A notification recorded in status.notifications (Delivered or Failed) is
// never due again, which is what keeps a restart or a new leader from sending it twice.

import type { AccessPolicy, AccessRequest, NotificationDelivery } from '@chaperone/api';
import type { NotificationConfig, NotificationTarget } from './notification-config.js';
import type { NotificationEvent } from './notification-message.js';

export interface DueNotification {
  /** Undefined: the policy names a target the configuration does not have. */
  target: NotificationTarget | undefined;
  targetName: string;
  event: NotificationEvent;
}

export function deliveryKey(target: string, event: NotificationEvent | string): string {
  return `${target}/${event}`;
}

export function isFinal(req: AccessRequest): boolean {
  return (req.status?.phase ?? 'Pending') !== 'Pending' || req.status?.decision !== undefined;
}

/** Target names for the request, configured-for-all first, each once. */
export function targetNames(policy: AccessPolicy | undefined, config: NotificationConfig): string[] {
  const names = config.targets.filter((t) => t.allPolicies).map((t) => t.name);
  for (const n of policy?.spec.approval?.notify ?? []) if (!names.includes(n.target)) names.push(n.target);
  return names;
}

export function dueNotifications(
  req: AccessRequest,
  policy: AccessPolicy | undefined,
  config: NotificationConfig,
  recorded: ReadonlySet<string>,
): DueNotification[] {
  // A request that is already decided is not worth a first message, and a follow-up only follows
  // a message that was sent (or given up): requests decided while the operator was down, or before
  // notifications were configured, tell nobody anything.
  const event: NotificationEvent = isFinal(req) ? 'decided' : 'requested';
  const due: DueNotification[] = [];
  for (const name of targetNames(policy, config)) {
    if (recorded.has(deliveryKey(name, event))) continue;
    if (event === 'decided' && !recorded.has(deliveryKey(name, 'requested'))) continue;
    due.push({ target: config.targets.find((t) => t.name === name), targetName: name, event });
  }
  return due;
}

export function recordedKeys(records: readonly NotificationDelivery[] | undefined): Set<string> {
  return new Set((records ?? []).map((r) => deliveryKey(r.target, r.event)));
}
