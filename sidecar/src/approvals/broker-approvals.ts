import { BROKER_MAX_WAIT_SECONDS, type Logger } from '@chaperone/api';
import { BrokerCallError, type BrokerClient } from '../broker/broker-client.js';
import type { ApprovalGate, ApprovalOutcome, ApprovalRequest, PendingApproval } from './approval-gate.js';

/** Grace after the request's own expiry before the sidecar stops waiting for the operator to expire it. */
const EXPIRY_GRACE_MS = 5_000;

/**
 * Paused operations become AccessRequests in the cluster (created by the broker, which fills in
 * the requester from the pod's verified token); the decision is long-polled. Never rejects: a
 * broker that cannot be reached is an 'unavailable' outcome, which the gateway turns into a denial.
 */
export class BrokerApprovalGate implements ApprovalGate {
  constructor(
    private readonly broker: BrokerClient,
    private readonly log?: Logger,
  ) {}

  async open(request: ApprovalRequest): Promise<PendingApproval> {
    const timeoutSeconds = Math.max(1, Math.ceil(request.timeoutMs / 1000));
    let created: Awaited<ReturnType<BrokerClient['createAccessRequest']>>;
    try {
      created = await this.broker.createAccessRequest({
        connection: request.connection,
        policy: request.policy,
        // The gateway names rules policy-qualified; the AccessRequest has the policy in its own field.
        rule: request.rule.startsWith(`${request.policy}/`)
          ? request.rule.slice(request.policy.length + 1)
          : request.rule,
        sessionId: request.sessionId,
        ...(request.identity.user
          ? { onBehalfOf: { user: request.identity.user, groups: request.identity.groups } }
          : {}),
        operation: request.operation,
        timeoutSeconds,
      });
    } catch (err) {
      const reason = `cannot create an AccessRequest: ${(err as Error).message}`;
      this.log?.('warn', reason, { connection: request.connection });
      return {
        name: '(not created)',
        howToApprove: 'the approval service is unavailable; the operation is refused',
        decision: Promise.resolve({ verdict: 'unavailable', reason }),
        cancel() {},
      };
    }
    const abort = new AbortController();
    const deadline = new Date(created.expiresAt).getTime() + EXPIRY_GRACE_MS;
    const decision = this.waitFor(created.name, deadline, abort.signal);
    return {
      name: created.name,
      howToApprove: created.howToApprove,
      decision,
      cancel: () => {
        if (abort.signal.aborted) return;
        abort.abort();
        this.broker.withdraw(created.name).catch(() => {
          // Best effort: the operator expires it at expiresAt anyway.
        });
      },
    };
  }

  private async waitFor(name: string, deadline: number, signal: AbortSignal): Promise<ApprovalOutcome> {
    let backoffMs = 500;
    while (!signal.aborted) {
      const left = deadline - Date.now();
      if (left <= 0) return { verdict: 'expired' };
      try {
        const wait = Math.min(BROKER_MAX_WAIT_SECONDS, Math.ceil(left / 1000));
        const d = await this.broker.decision(name, wait, signal);
        backoffMs = 500;
        if (d.phase === 'Approved') return { verdict: 'approved', by: d.by ?? 'unknown', comment: d.comment };
        if (d.phase === 'Denied') return { verdict: 'denied', by: d.by ?? 'unknown', comment: d.comment };
        if (d.phase === 'Expired') return { verdict: 'expired' };
      } catch (err) {
        if (signal.aborted) break;
        if (err instanceof BrokerCallError && !err.transient) {
          return { verdict: 'unavailable', reason: err.message };
        }
        this.log?.('warn', 'waiting for an approval decision: broker unavailable, retrying', {
          request: name,
          error: (err as Error).message,
        });
        await new Promise((r) => setTimeout(r, Math.min(backoffMs, Math.max(0, deadline - Date.now()))));
        backoffMs = Math.min(backoffMs * 2, 5_000);
      }
    }
    return { verdict: 'unavailable', reason: 'the agent went away' };
  }
}
