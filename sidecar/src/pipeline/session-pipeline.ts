import type { ApprovalOperation, ConnectionType, RecordingEventType } from '@chaperone/api';
import type { ApprovalGate } from '../approvals/approval-gate.js';
import type { CredentialOf, CredentialRequest, CredentialSource } from '../credentials/credential-source.js';
import type { Identity } from '../identity/identity.js';
import type { DataOf, SessionRecorder } from '../recording/session-recorder.js';
import type { PolicyViewFactory } from './policy-view.js';
import type { Refusal } from './refusal.js';

/** What every session of one Connection shares, whatever its protocol. */
export interface PipelineConfig<View> {
  connection: string;
  protocol: ConnectionType;
  policyFor: PolicyViewFactory<View>;
  recorderFor: (sessionId: string, identity: Identity) => SessionRecorder;
  credentials: CredentialSource;
  approvals: ApprovalGate;
}

/** An operation the policy view sent for approval. */
export interface ApprovalAsk {
  policy: string;
  rule: string;
  /** Why approval is needed (shown to the agent and to approvers). */
  reason: string;
  approvers: { groups: string[]; users: string[] };
  timeoutMs: number;
  operation: ApprovalOperation;
}

/** Told to the agent the moment its operation starts waiting: the protocol makes it a native notice. */
export interface WaitingNotice {
  request: string;
  /** "chaperone: waiting for approval of access request X (reason)" */
  message: string;
  howToApprove: string;
}

export type ApprovalResult = 'approved' | 'gone' | Refusal;

/**
 * The protocol-neutral steps of one agent session, in the order a session meets them:
 * admit (identity → policy view → recorder → credential), then per operation record and, when the
 * view asks for it, await approval; finally end. The protocol owns the wire: it reads the identity,
 * asks its policy view for a verdict, turns refusals into native errors and forwards what is allowed.
 */
export class SessionPipeline<View> {
  /** Operations the session asked for (recorded in session.end). */
  operations = 0;
  private recorderOf?: SessionRecorder;
  private ended = false;
  private readonly startedAt = Date.now();

  constructor(
    private readonly cfg: PipelineConfig<View>,
    readonly sessionId: string,
    public identity: Identity,
  ) {}

  /** Set once admit() got as far as opening the recording. */
  get recorder(): SessionRecorder | undefined {
    return this.recorderOf;
  }

  /**
   * Fail-closed admission. Without a policy view nothing is recorded; once the recorder exists,
   * every later refusal still ends with session.end.
   */
  async admit<R extends CredentialRequest>(
    request: R,
    start: Omit<DataOf<'session.start'>, 'protocol'>,
  ): Promise<{ view: View; credential: CredentialOf<R['type']> } | Refusal> {
    const view = this.cfg.policyFor(this.identity);
    if (typeof view === 'object' && view !== null && 'refused' in view) {
      return { kind: 'no-policy', message: view.refused };
    }
    try {
      this.recorderOf = this.cfg.recorderFor(this.sessionId, this.identity);
    } catch (err) {
      return { kind: 'recording-unavailable', message: `chaperone: ${(err as Error).message}` };
    }
    this.recorderOf.record('session.start', { protocol: this.cfg.protocol, ...start });
    let credential: CredentialOf<R['type']>;
    try {
      credential = await this.cfg.credentials.credentialFor(this.cfg.connection, request);
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      return {
        kind: 'no-credential',
        message: `no credential for connection ${this.cfg.connection}: ${reason}`,
      };
    }
    this.recorderOf.record('credential.issued', {
      description: credential.description,
      expiresAt: credential.expiresAt?.toISOString(),
    });
    return { view: view as View, credential };
  }

  /** Records one operation event ('query', 'command', 'denied'…) with the rule that decided it. */
  record<T extends RecordingEventType>(type: T, data: DataOf<T>, rule?: string): void {
    this.recorderOf?.record(type, data, rule);
  }

  /**
   * Opens an approval request, tells the agent it waits (through `notify`), and waits for the
   * decision. `watchGone` registers a callback for "the agent went away" and returns its removal:
   * the request is then withdrawn. 'gone' means the session ended while it waited.
   */
  async awaitApproval(
    ask: ApprovalAsk,
    notify: (notice: WaitingNotice) => void,
    watchGone: (onGone: () => void) => () => void,
  ): Promise<ApprovalResult> {
    const gate = await this.cfg.approvals.open({
      sessionId: this.sessionId,
      connection: this.cfg.connection,
      policy: ask.policy,
      rule: ask.rule,
      identity: this.identity,
      operation: ask.operation,
      approvers: ask.approvers,
      timeoutMs: ask.timeoutMs,
    });
    this.record(
      'approval.requested',
      { request: gate.name, text: ask.operation.text, reasons: [ask.reason] },
      ask.rule,
    );
    notify({
      request: gate.name,
      message: `chaperone: waiting for approval of access request ${gate.name} (${ask.reason})`,
      howToApprove: gate.howToApprove,
    });
    const unwatch = watchGone(() => gate.cancel());
    const outcome = await gate.decision;
    unwatch();
    if (this.ended) return 'gone';
    if (outcome.verdict === 'approved') {
      this.record(
        'approval.decided',
        { request: gate.name, verdict: 'approved', by: outcome.by, comment: outcome.comment },
        ask.rule,
      );
      return 'approved';
    }
    this.record(
      'approval.decided',
      {
        request: gate.name,
        verdict: outcome.verdict === 'denied' ? 'denied' : 'expired',
        by: outcome.verdict === 'denied' ? outcome.by : undefined,
      },
      ask.rule,
    );
    if (outcome.verdict === 'denied') {
      const comment = outcome.comment ? `: ${outcome.comment}` : '';
      return {
        kind: 'approval-denied',
        message: `access request ${gate.name} was denied by ${outcome.by}${comment}`,
        rule: ask.rule,
      };
    }
    if (outcome.verdict === 'expired') {
      return {
        kind: 'approval-expired',
        message: `access request ${gate.name} was not approved within ${Math.round(ask.timeoutMs / 1000)} s`,
        rule: ask.rule,
      };
    }
    return {
      kind: 'approval-unavailable',
      message: `approval is unavailable: ${outcome.reason}`,
      rule: ask.rule,
    };
  }

  /** Records session.end once and closes the recording; later calls do nothing. */
  end(reason: string): void {
    if (this.ended) return;
    this.ended = true;
    this.recorderOf?.record('session.end', {
      reason,
      statements: this.operations,
      durationMs: Date.now() - this.startedAt,
    });
    void this.recorderOf?.close();
  }
}
