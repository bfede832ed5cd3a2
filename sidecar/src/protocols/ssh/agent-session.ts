// One agent connection to the SSH gateway, run through the shared SessionPipeline: admission
// (identity → policy view → recorder → certificate), a policy decision and, when asked, an approval
// for every operation, and the recording of what happened. Implements the wire layer's hooks.
import { randomUUID } from 'node:crypto';
import type { Client } from 'ssh2';
import { expectCredential } from '../../credentials/credential-source.js';
import type { Identity } from '../../identity/identity.js';
import { isRefusal, type PipelineConfig, type Refusal, SessionPipeline } from '../../pipeline/index.js';
import type { GatewayContext } from '../types.js';
import type {
  SshAgentIdentity,
  SshDecision,
  SshOperation,
  SshRecordEvent,
  SshSessionHooks,
} from './hooks.js';
import { redactCommandText, redactOutputFrames } from './recording-redaction.js';
import type { SessionKeyPair } from './ssh-keys.js';
import { decideSshOperation, describeSshOperation, type SshPolicyView } from './ssh-policy.js';
import { connectUpstream, type SshUpstreamTarget } from './upstream-client.js';

/** Where an ssh Connection's gateway dials and as whom (the certificate comes per session). */
export interface SshTarget extends Omit<SshUpstreamTarget, 'username' | 'credential'> {
  /** The Connection's principals: the remote users a certificate names. */
  readonly principals: readonly string[];
}

export interface SshSessionDeps {
  readonly pipeline: PipelineConfig<SshPolicyView>;
  readonly target: SshTarget;
  readonly keyPair: SessionKeyPair;
  readonly ctx: GatewayContext;
}

type Admitted = { view: SshPolicyView; certificate: string; expiresAt?: Date };

/** A certificate this close to expiry is replaced before a new upstream login. */
const RENEW_MARGIN_MS = 30_000;

export class SshAgentSession implements SshSessionHooks {
  readonly pipeline: SessionPipeline<SshPolicyView>;
  private readonly admission: Promise<Admitted | Refusal>;
  private readonly goneListeners = new Set<() => void>();
  /** Commands an approver let through, until their 'command' event is recorded. */
  private readonly approved = new Map<string, number>();
  /** An approval of one SFTP request covers the session's SFTP: scp and sftp send dozens of requests. */
  private sftpApproved = false;

  constructor(
    private readonly deps: SshSessionDeps,
    readonly agent: SshAgentIdentity,
  ) {
    this.pipeline = new SessionPipeline(deps.pipeline, randomUUID(), identityOf(deps.ctx.podIdentity, agent));
    // Fail closed on anything unexpected in admission (decide() denies every operation).
    this.admission = this.admit().catch(
      (err: Error): Refusal => ({ kind: 'recording-unavailable', message: `chaperone: ${err.message}` }),
    );
  }

  private async admit(): Promise<Admitted | Refusal> {
    const admitted = await this.pipeline.admit(
      { type: 'ssh', publicKey: this.deps.keyPair.publicKeyLine },
      {
        client: `${this.agent.remoteAddress}:${this.agent.remotePort}`,
        application: this.agent.clientVersion,
      },
    );
    if (isRefusal(admitted)) {
      this.deps.ctx.log('warn', 'ssh session refused', {
        connection: this.deps.pipeline.connection,
        reason: admitted.message,
      });
      return admitted;
    }
    const { certificate, expiresAt } = admitted.credential;
    return { view: admitted.view, certificate, expiresAt };
  }

  async decide(op: SshOperation, notify: (line: string) => void): Promise<SshDecision> {
    const admitted = await this.admission;
    this.pipeline.operations++;
    const what = describeSshOperation(op);
    let view: SshPolicyView;
    if (isRefusal(admitted)) {
      // Without a certificate nothing reaches the target: an operation the policy allows fails at the
      // upstream login with the reason (exit 255); the others are denied as usual.
      if (admitted.kind !== 'no-credential') return this.deny(what, admitted.message);
      const v = this.deps.pipeline.policyFor(this.pipeline.identity);
      if ('refused' in v) return this.deny(what, v.refused);
      view = v;
    } else {
      view = admitted.view;
    }
    const decision = decideSshOperation(view, op);
    if (decision.action === 'allow') return { verdict: 'allow', rule: decision.rule };
    if (decision.action === 'deny') return this.deny(what, decision.reason, decision.rule);
    if (op.kind === 'sftp' && this.sftpApproved) return { verdict: 'allow', rule: decision.rule };
    const result = await this.pipeline.awaitApproval(
      {
        policy: decision.policy,
        rule: decision.rule,
        reason: decision.reason,
        approvers: decision.approvers,
        timeoutMs: decision.timeoutMs,
        operation: {
          type: 'ssh',
          class: op.kind === 'subsystem' ? 'sftp' : op.kind,
          text: redactCommandText(what),
          fingerprint: redactCommandText(what),
          riskReasons: [decision.reason],
        },
      },
      (notice) => notify(`${notice.message}\n${notice.howToApprove}`),
      (onGone) => {
        this.goneListeners.add(onGone);
        return () => this.goneListeners.delete(onGone);
      },
    );
    if (result === 'gone') return { verdict: 'deny', reason: 'the session ended while waiting for approval' };
    if (result === 'approved') {
      if (op.kind === 'sftp') this.sftpApproved = true;
      this.approved.set(what, (this.approved.get(what) ?? 0) + 1);
      return { verdict: 'allow', rule: decision.rule };
    }
    return this.deny(what, result.message, result.rule);
  }

  private deny(what: string, reason: string, rule?: string): SshDecision {
    this.pipeline.record('denied', { operation: redactCommandText(what), reason }, rule);
    return { verdict: 'deny', reason, rule };
  }

  /** The upstream login for this agent connection, with a certificate that is not about to expire. */
  async connect(): Promise<Client> {
    const admitted = await this.admission;
    if (isRefusal(admitted)) {
      this.pipeline.record('denied', { operation: 'upstream login', reason: admitted.message });
      throw new Error(admitted.message);
    }
    let { certificate } = admitted;
    if (admitted.expiresAt && admitted.expiresAt.getTime() - Date.now() < RENEW_MARGIN_MS) {
      const name = this.deps.pipeline.connection;
      const fresh = expectCredential(
        name,
        'ssh',
        await this.deps.ctx.credentials.credentialFor(name, {
          type: 'ssh',
          publicKey: this.deps.keyPair.publicKeyLine,
        }),
      );
      this.pipeline.record('credential.issued', {
        description: fresh.description,
        expiresAt: fresh.expiresAt?.toISOString(),
      });
      certificate = fresh.certificate;
    }
    const { principals, ...target } = this.deps.target;
    // The agent's user name picks among the principals; it cannot reach outside them.
    const username = principals.includes(this.agent.username) ? this.agent.username : principals[0]!;
    return connectUpstream({ ...target, username, credential: { keyPair: this.deps.keyPair, certificate } });
  }

  record(event: SshRecordEvent): void {
    try {
      this.recordEvent(event);
    } catch (err) {
      this.deps.ctx.log('warn', 'ssh recording failed', { error: (err as Error).message });
    }
  }

  private recordEvent(event: SshRecordEvent): void {
    const p = this.pipeline;
    switch (event.type) {
      case 'session.start':
      case 'output.start':
        return; // admission records session.start; the asciicast header adds nothing the schema keeps
      case 'session.end':
        for (const onGone of [...this.goneListeners]) onGone();
        // After admission settles: an agent that leaves during login still gets its recording closed.
        void this.admission.then(() => p.end(event.reason));
        return;
      case 'command':
      case 'shell':
      case 'subsystem': {
        const what =
          event.type === 'command'
            ? event.command
            : event.type === 'shell'
              ? 'shell'
              : `subsystem ${event.name}`;
        const exit = 'exitStatus' in event ? event : undefined;
        p.record('command', {
          text: redactCommandText(what),
          decision: this.takeApproved(what) ? 'approved' : 'allowed',
          exitStatus: exit?.exitStatus ?? undefined,
          exitSignal: exit?.exitSignal,
          durationMs: Math.max(0, Math.round(event.durationMs)),
        });
        return;
      }
      case 'output': {
        const asciicast = redactOutputFrames(event.frames);
        if (asciicast.length > 0) p.record('output', { asciicast });
        return;
      }
      case 'forward':
        p.record('command', {
          text: `port-forward ${event.host}:${event.port}`,
          decision: this.takeApproved(`port-forward ${event.host}:${event.port}`) ? 'approved' : 'allowed',
          reason: event.error,
          durationMs: Math.max(0, Math.round(event.durationMs)),
        });
        return;
      case 'sftp': {
        if (event.outcome === 'denied') return; // decide() recorded the denial
        const what = describeSshOperation({
          kind: 'sftp',
          op: event.op,
          path: event.path,
          targetPath: event.targetPath,
        });
        p.record('command', {
          text: redactCommandText(what),
          decision: this.takeApproved(what) ? 'approved' : 'allowed',
          reason: event.outcome === 'failed' ? 'failed on the target' : undefined,
        });
        return;
      }
      case 'refused':
        p.record('denied', { operation: event.what, reason: event.reason });
        return;
    }
  }

  private takeApproved(what: string): boolean {
    const n = this.approved.get(what) ?? 0;
    if (n === 0) return false;
    if (n === 1) this.approved.delete(what);
    else this.approved.set(what, n - 1);
    return true;
  }
}

/** The pod, plus the OIDC user and groups when the agent logged in with a verified ID token. */
function identityOf(pod: Identity, agent: SshAgentIdentity): Identity {
  const v = agent.method === 'password' ? agent.verified : undefined;
  if (!v || typeof v.user !== 'string') return pod;
  const groups = Array.isArray(v.groups) ? v.groups.filter((g): g is string => typeof g === 'string') : [];
  return { ...pod, user: v.user, groups, issuer: typeof v.issuer === 'string' ? v.issuer : undefined };
}
