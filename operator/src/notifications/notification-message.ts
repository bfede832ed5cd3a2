// What approvers are told about one AccessRequest, independent of the service it goes to: built
// purely from the object (whose operation text the sidecar already normalized, literals and masked
// values redacted). The payload builders for Slack, Teams and the generic webhook render this.

import type { AccessRequest } from '@chaperone/api';

export type NotificationEvent = 'requested' | 'decided';

export interface NotificationMessage {
  event: NotificationEvent;
  /** AccessRequest UID + event: the same notification always carries the same key. */
  idempotencyKey: string;
  request: { namespace: string; name: string; uid: string };
  requester: { serviceAccount: string; pod?: string; onBehalfOf?: string };
  connection: string;
  policy: string;
  rule?: string;
  operation: { type: string; class?: string; text: string; riskReasons: string[] };
  expiresAt: string;
  /** Pending, Approved, Denied or Expired. */
  phase: string;
  decision?: { verdict: string; by?: string; at?: string; comment?: string };
  /** Approvals so far (policies needing several approvers). */
  approvals: { by: string; at?: string; comment?: string }[];
  commands: { approve: string; deny: string; describe: string };
  sessionId?: string;
  /** Link to the collector's view of the session, when the collector URL is configured. */
  sessionUrl?: string;
}

/** Operation text in a chat message: long statements are cut (the request itself has all of it). */
export const MAX_OPERATION_TEXT = 2_000;

export function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** Quotes a command-line argument for a POSIX shell when it needs it. */
function shellArg(v: string): string {
  return /^[A-Za-z0-9_./:=@-]+$/.test(v) ? v : `'${v.replace(/'/g, `'\\''`)}'`;
}

export function buildNotificationMessage(
  req: AccessRequest,
  event: NotificationEvent,
  opts: { collectorUrl: string },
): NotificationMessage {
  const ns = req.metadata.namespace ?? '';
  const name = req.metadata.name ?? '';
  const uid = req.metadata.uid ?? '';
  const spec = req.spec;
  const sa = spec.requester.serviceAccount;
  const status = req.status ?? {};
  const target = `${shellArg(name)} -n ${shellArg(ns)}`;
  const d = status.decision;
  return {
    event,
    idempotencyKey: `${uid}/${event}`,
    request: { namespace: ns, name, uid },
    requester: {
      serviceAccount: `${sa.namespace}/${sa.name}`,
      ...(spec.requester.pod?.name ? { pod: `${sa.namespace}/${spec.requester.pod.name}` } : {}),
      ...(spec.requester.onBehalfOf?.user ? { onBehalfOf: spec.requester.onBehalfOf.user } : {}),
    },
    connection: spec.connection,
    policy: spec.policy,
    ...(spec.rule ? { rule: spec.rule } : {}),
    operation: {
      type: spec.operation.type,
      ...(spec.operation.class ? { class: spec.operation.class } : {}),
      text: spec.operation.text,
      riskReasons: [...(spec.operation.riskReasons ?? [])],
    },
    expiresAt: spec.expiresAt,
    phase: status.phase ?? 'Pending',
    ...(d
      ? {
          decision: {
            verdict: d.verdict,
            ...(d.by ? { by: d.by } : {}),
            ...(d.at ? { at: d.at } : {}),
            ...(d.comment ? { comment: d.comment } : {}),
          },
        }
      : {}),
    approvals: (status.approvals ?? []).map((a) => ({
      by: a.by,
      ...(a.at ? { at: a.at } : {}),
      ...(a.comment ? { comment: a.comment } : {}),
    })),
    commands: {
      approve: `kubectl chaperone approve ${target} --comment 'reviewed'`,
      deny: `kubectl chaperone deny ${target} --reason 'why not'`,
      describe: `kubectl chaperone describe ${target}`,
    },
    ...(spec.sessionId ? { sessionId: spec.sessionId } : {}),
    ...(spec.sessionId && opts.collectorUrl
      ? { sessionUrl: `${opts.collectorUrl}/ui/sessions/${encodeURIComponent(spec.sessionId)}` }
      : {}),
  };
}

/** One line saying what happened, for titles and fallback text. */
export function headline(m: NotificationMessage): string {
  const what = `${m.operation.type}${m.operation.class ? ` ${m.operation.class}` : ''} on ${m.connection}`;
  if (m.event === 'requested')
    return `Approval needed: ${m.requester.serviceAccount} wants to run ${what} (${m.request.namespace}/${m.request.name})`;
  if (m.phase === 'Expired')
    return `Expired without a decision: ${what} (${m.request.namespace}/${m.request.name}) was denied`;
  const by = m.decision?.by ? ` by ${m.decision.by}` : '';
  return `${m.decision?.verdict ?? m.phase}${by}: ${what} (${m.request.namespace}/${m.request.name})`;
}
