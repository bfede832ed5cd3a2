// The leader's notifier: for each AccessRequest the controller sees, starts the notifications that
// are due (due-notifications.ts), one target's messages in order (the follow-up never overtakes
// the request), records each outcome in status.notifications, and reports it as an Event on the
// request and in chaperone_notification_* metrics. It never touches the decision: a target that
// is down delays nothing but its own message.

import type { AccessPolicy, AccessRequest, Logger, NotificationDelivery } from '@chaperone/api';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { EventSpec } from '../controller/events.js';
import { checkTargetUrl, type DeliveryResult, deliver } from './delivery.js';
import { type DueNotification, deliveryKey, dueNotifications, recordedKeys } from './due-notifications.js';
import type { NotificationConfig, NotificationTarget } from './notification-config.js';
import { buildNotificationMessage, type NotificationEvent } from './notification-message.js';
import { slackPayload, teamsPayload, webhookPayload } from './payloads.js';

export interface NotifierDeps {
  config: NotificationConfig;
  /** A Secret's data in the operator's namespace, decoded; undefined when it does not exist. */
  readSecret(name: string): Promise<Record<string, string> | undefined>;
  /** Merge-patches status.notifications (the whole list) of the request. */
  writeDeliveries(req: AccessRequest, records: NotificationDelivery[]): Promise<void>;
  recordEvent(req: AccessRequest, event: EventSpec): void;
  registry: Registry;
  log?: Logger;
  now?: () => Date;
  fetch?: typeof fetch;
  random?: () => number;
}

interface NotifierMetrics {
  deliveries: Counter<'target' | 'type' | 'event' | 'result'>;
  attempts: Counter<'target' | 'type' | 'result'>;
  inFlight: Gauge;
}

function metric<T>(registry: Registry, name: string, create: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? create();
}

export function notifierMetrics(registry: Registry): NotifierMetrics {
  const registers = [registry];
  return {
    deliveries: metric(
      registry,
      'chaperone_notification_deliveries_total',
      () =>
        new Counter({
          name: 'chaperone_notification_deliveries_total',
          help: 'Approver notifications by outcome: delivered, or failed after the last retry (or not sendable).',
          labelNames: ['target', 'type', 'event', 'result'],
          registers,
        }),
    ),
    attempts: metric(
      registry,
      'chaperone_notification_attempts_total',
      () =>
        new Counter({
          name: 'chaperone_notification_attempts_total',
          help: 'HTTP attempts of approver notifications: success, retry (will try again) or failure (gave up).',
          labelNames: ['target', 'type', 'result'],
          registers,
        }),
    ),
    inFlight: metric(
      registry,
      'chaperone_notification_in_flight',
      () =>
        new Gauge({
          name: 'chaperone_notification_in_flight',
          help: 'Approver notifications being sent or waiting for a retry.',
          registers,
        }),
    ),
  };
}

/** Requests whose recent outcomes are remembered until the informer shows them in status. */
const MAX_REMEMBERED = 4_096;
const WRITE_ATTEMPTS = 4;

export class Notifier {
  private readonly deps: NotifierDeps;
  private readonly metrics: NotifierMetrics;
  private readonly abort = new AbortController();
  /** uid -> outcomes written (or being written), newer than what the informer may show. */
  private readonly outcomes = new Map<string, Map<string, NotificationDelivery>>();
  private readonly inFlight = new Set<string>();
  /** uid/target -> the tail of that target's messages for the request. */
  private readonly chains = new Map<string, Promise<void>>();
  /** uid -> the tail of its status writes. */
  private readonly writes = new Map<string, Promise<void>>();
  private closed = false;

  constructor(deps: NotifierDeps) {
    this.deps = deps;
    this.metrics = notifierMetrics(deps.registry);
  }

  /** Starts what is due for the request; returns at once. */
  sync(req: AccessRequest, policy: AccessPolicy | undefined): void {
    const uid = req.metadata.uid;
    if (this.closed || !uid || req.metadata.deletionTimestamp) return;
    const remembered = this.outcomes.get(uid);
    const recorded = recordedKeys([...(req.status?.notifications ?? []), ...(remembered?.values() ?? [])]);
    for (const due of dueNotifications(req, policy, this.deps.config, recorded)) {
      const key = `${uid}/${deliveryKey(due.targetName, due.event)}`;
      if (this.inFlight.has(key)) continue;
      this.inFlight.add(key);
      this.metrics.inFlight.inc();
      const chainKey = `${uid}/${due.targetName}`;
      const tail = (this.chains.get(chainKey) ?? Promise.resolve())
        .then(() => this.notify(req, due))
        .catch((err: unknown) =>
          this.deps.log?.('error', 'notification failed unexpectedly', {
            accessRequest: `${req.metadata.namespace}/${req.metadata.name}`,
            target: due.targetName,
            error: err instanceof Error ? err.message : String(err),
          }),
        )
        .finally(() => {
          this.inFlight.delete(key);
          this.metrics.inFlight.dec();
          if (this.chains.get(chainKey) === tail) this.chains.delete(chainKey);
        });
      this.chains.set(chainKey, tail);
    }
  }

  /** Stops retries and waits for what is in flight (leadership lost, shutdown). */
  async close(): Promise<void> {
    this.closed = true;
    this.abort.abort();
    await Promise.allSettled([...this.chains.values()]);
    await Promise.allSettled([...this.writes.values()]);
  }

  private async notify(req: AccessRequest, due: DueNotification): Promise<void> {
    if (this.abort.signal.aborted) return;
    const type = due.target?.type ?? 'unknown';
    const labels = { target: due.targetName, type };
    const result = due.target
      ? await this.send(req, due.target, due.event)
      : {
          ok: false,
          attempts: 0,
          message: `no target named ${due.targetName} in the operator's notification configuration`,
        };
    // Stopped mid-way: the next leader sends it; recording a failure would lose it.
    if (!result.ok && result.message === 'stopped') return;
    this.metrics.deliveries.inc({ ...labels, event: due.event, result: result.ok ? 'delivered' : 'failed' });
    const what = due.event === 'requested' ? 'of the request' : 'of the outcome';
    this.deps.recordEvent(
      req,
      result.ok
        ? {
            type: 'Normal',
            reason: 'Notified',
            message: `told ${due.targetName} (${type}) ${what}`,
          }
        : {
            type: 'Warning',
            reason: 'NotificationFailed',
            message: `could not tell ${due.targetName} (${type}) ${what}: ${result.message}; the request still waits for a decision through kubectl`,
          },
    );
    if (!result.ok) {
      this.deps.log?.('warn', 'notification failed', {
        accessRequest: `${req.metadata.namespace}/${req.metadata.name}`,
        target: due.targetName,
        event: due.event,
        error: result.message,
      });
    }
    await this.record(req, {
      target: due.targetName,
      event: due.event,
      state: result.ok ? 'Delivered' : 'Failed',
      attempts: result.attempts,
      at: (this.deps.now?.() ?? new Date()).toISOString().replace(/\.\d{3}Z$/, 'Z'),
      ...(result.message ? { message: result.message.slice(0, 1024) } : {}),
    });
  }

  private async send(
    req: AccessRequest,
    target: NotificationTarget,
    event: NotificationEvent,
  ): Promise<DeliveryResult> {
    let data: Record<string, string> | undefined;
    try {
      data = await this.deps.readSecret(target.secretName);
    } catch {
      return { ok: false, attempts: 0, message: `could not read Secret ${target.secretName}` };
    }
    const url = data?.[target.urlKey];
    if (!data)
      return {
        ok: false,
        attempts: 0,
        message: `Secret ${target.secretName} does not exist in the operator's namespace`,
      };
    if (!url)
      return { ok: false, attempts: 0, message: `Secret ${target.secretName} has no key ${target.urlKey}` };
    const urlProblem = checkTargetUrl(url, this.deps.config.allowHttp);
    if (urlProblem)
      return {
        ok: false,
        attempts: 0,
        message: `${urlProblem} (Secret ${target.secretName}, key ${target.urlKey})`,
      };
    let signingKey: string | undefined;
    if (target.type === 'webhook') {
      signingKey = data[target.signingKeyKey];
      if (!signingKey)
        return {
          ok: false,
          attempts: 0,
          message: `Secret ${target.secretName} has no signing key ${target.signingKeyKey}`,
        };
    }
    const message = buildNotificationMessage(req, event, { collectorUrl: this.deps.config.collectorUrl });
    const payload =
      target.type === 'slack'
        ? slackPayload(message)
        : target.type === 'teams'
          ? teamsPayload(message)
          : webhookPayload(message);
    return deliver(
      {
        url: url.trim(),
        body: JSON.stringify(payload),
        ...(signingKey !== undefined ? { signingKey } : {}),
        idempotencyKey: message.idempotencyKey,
        event,
      },
      {
        retry: this.deps.config.retry,
        signal: this.abort.signal,
        ...(this.deps.fetch ? { fetch: this.deps.fetch } : {}),
        ...(this.deps.random ? { random: this.deps.random } : {}),
        onAttempt: (result) => this.metrics.attempts.inc({ target: target.name, type: target.type, result }),
      },
    );
  }

  /** Remembers the outcome and writes every outcome known for the request, one write at a time. */
  private record(req: AccessRequest, outcome: NotificationDelivery): Promise<void> {
    const uid = req.metadata.uid as string;
    let known = this.outcomes.get(uid);
    if (!known) {
      known = new Map((req.status?.notifications ?? []).map((r) => [deliveryKey(r.target, r.event), r]));
      this.outcomes.set(uid, known);
      while (this.outcomes.size > MAX_REMEMBERED)
        this.outcomes.delete(this.outcomes.keys().next().value as string);
    }
    known.set(deliveryKey(outcome.target, outcome.event), outcome);
    const snapshot = known;
    const tail = (this.writes.get(uid) ?? Promise.resolve()).then(async () => {
      for (let attempt = 1; ; attempt++) {
        try {
          await this.deps.writeDeliveries(req, [...snapshot.values()]);
          return;
        } catch (err) {
          const code = (err as { code?: number }).code;
          if (code === 404 || attempt >= WRITE_ATTEMPTS || this.closed) {
            if (code !== 404)
              this.deps.log?.('warn', 'could not record notification delivery', {
                accessRequest: `${req.metadata.namespace}/${req.metadata.name}`,
                error: err instanceof Error ? err.message : String(err),
              });
            return;
          }
          await new Promise((r) => setTimeout(r, 250 * 2 ** attempt));
        }
      }
    });
    this.writes.set(uid, tail);
    void tail.finally(() => {
      if (this.writes.get(uid) === tail) this.writes.delete(uid);
    });
    return tail;
  }
}
