import { randomBytes } from 'node:crypto';
import type { ApprovalGate, ApprovalOutcome, ApprovalRequest, PendingApproval } from './approval-gate.js';

export interface LocalRequestView {
  name: string;
  connection: string;
  policy: string;
  rule: string;
  requester: string;
  operation: string;
  reasons: string[];
  createdAt: string;
  expiresAt: string;
}

interface Entry {
  view: LocalRequestView;
  request: ApprovalRequest;
  settle: (o: ApprovalOutcome) => void;
  timer: NodeJS.Timeout;
}

/**
 * Standalone approvals: pending requests live in this process and are decided through the admin
 * HTTP endpoint on loopback (`chaperone-sidecar approvals list|approve|deny`). Timeout = deny.
 */
export class LocalApprovalGate implements ApprovalGate {
  private readonly pending = new Map<string, Entry>();

  constructor(private readonly howTo: (name: string) => string) {}

  async open(request: ApprovalRequest): Promise<PendingApproval> {
    const name = `ar-${request.connection}-${randomBytes(3).toString('hex')}`;
    const now = Date.now();
    let settle!: (o: ApprovalOutcome) => void;
    const decision = new Promise<ApprovalOutcome>((resolve) => {
      settle = resolve;
    });
    const timer = setTimeout(() => this.finish(name, { verdict: 'expired' }), request.timeoutMs);
    timer.unref();
    const who = request.identity.user ?? request.identity.serviceAccount?.name ?? 'unknown';
    this.pending.set(name, {
      request,
      settle,
      timer,
      view: {
        name,
        connection: request.connection,
        policy: request.policy,
        rule: request.rule,
        requester: who,
        operation: request.operation.text,
        reasons: request.operation.riskReasons,
        createdAt: new Date(now).toISOString(),
        expiresAt: new Date(now + request.timeoutMs).toISOString(),
      },
    });
    return {
      name,
      howToApprove: this.howTo(name),
      decision,
      cancel: () => this.finish(name, { verdict: 'expired' }),
    };
  }

  list(): LocalRequestView[] {
    return [...this.pending.values()].map((e) => e.view);
  }

  /** Returns false when there is no such pending request. */
  decide(name: string, verdict: 'approved' | 'denied', by: string, comment?: string): boolean {
    return this.finish(name, { verdict, by, comment });
  }

  private finish(name: string, outcome: ApprovalOutcome): boolean {
    const e = this.pending.get(name);
    if (!e) return false;
    this.pending.delete(name);
    clearTimeout(e.timer);
    e.settle(outcome);
    return true;
  }
}
