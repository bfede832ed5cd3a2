// The wire layer's hooks, implemented with the shared pipeline. HTTP has no session: one recorded
// session per identity (the pod's, and each on-behalf-of user that presented an OIDC token) holds
// every API request of that identity for the life of the listener, so that admit (policy view,
// recorder, credential) runs once per identity, not once per request.

import { randomUUID } from 'node:crypto';
import type { Identity } from '../../identity/identity.js';
import { isRefusal, type Refusal, SessionPipeline, type WaitingNotice } from '../../pipeline/index.js';
import type { GatewayContext, ServedConnection } from '../types.js';
import type {
  KubeAgentIdentity,
  KubeDecision,
  KubeGatewayHooks,
  KubeRecordEvent,
  KubeRequestContext,
} from './hooks.js';
import { type KubernetesView, ruleName } from './kubernetes-policy.js';
import { describeAttributes, type KubeRequestAttributes } from './request-attributes.js';
import type { KubeTarget } from './target.js';

interface IdentitySession {
  pipeline: SessionPipeline<KubernetesView>;
  admitted: Promise<KubernetesView | Refusal>;
  /** Resolved view, for the synchronous revealSecret hook. */
  view?: KubernetesView;
}

/** On-behalf-of identities held at once; the least recently used one's session ends beyond it. */
const MAX_IDENTITIES = 256;

export interface PipelineHooks {
  hooks: KubeGatewayHooks;
  readonly activeSessions: number;
  endAll(reason: string): void;
}

export function pipelineHooks(
  served: ServedConnection<KubeTarget, KubernetesView>,
  ctx: GatewayContext,
): PipelineHooks {
  const sessions = new Map<string, IdentitySession>();
  // Requests that went through an approval: their record says 'approved'.
  const approved = new WeakSet<KubeRequestAttributes>();
  const keyOf = (id?: KubeAgentIdentity) => (id ? `${id.user}\0${[...id.groups].sort().join(',')}` : '');

  const sessionFor = (agent?: KubeAgentIdentity): IdentitySession => {
    const key = keyOf(agent);
    const hit = sessions.get(key);
    if (hit) {
      sessions.delete(key);
      sessions.set(key, hit);
      return hit;
    }
    const identity: Identity = agent
      ? { ...ctx.podIdentity, user: agent.user, groups: [...agent.groups] }
      : ctx.podIdentity;
    const pipeline = new SessionPipeline<KubernetesView>(
      {
        connection: served.name,
        protocol: 'kubernetes',
        policyFor: served.policyFor,
        recorderFor: ctx.recorderFor,
        credentials: ctx.credentials,
        approvals: ctx.approvals,
      },
      `kube-${Date.now().toString(36)}-${randomUUID().slice(0, 8)}`,
      identity,
    );
    const s: IdentitySession = {
      pipeline,
      admitted: pipeline
        .admit({ type: 'kubernetes' }, { client: `127.0.0.1:${served.listenPort}` })
        .then((r) => {
          if (isRefusal(r)) {
            // A refused identity is tried afresh next time (policies may change in a restart only,
            // but the credential may come back).
            pipeline.end(r.message);
            if (sessions.get(key) === s) sessions.delete(key);
            return r;
          }
          s.view = r.view;
          return r.view;
        }),
    };
    sessions.set(key, s);
    if (sessions.size > MAX_IDENTITIES) {
      const [oldKey, old] = sessions.entries().next().value as [string, IdentitySession];
      sessions.delete(oldKey);
      old.pipeline.end('too many identities on this listener');
    }
    return s;
  };

  const decide = async (req: KubeRequestContext, notify: (m: string) => void): Promise<KubeDecision> => {
    if (ctx.requireToken && !req.identity) {
      return { action: 'deny', reason: 'this gateway requires an OIDC token for every request' };
    }
    const s = sessionFor(req.identity);
    const view = await s.admitted;
    if (isRefusal(view)) return { action: 'deny', reason: view.message };
    s.pipeline.operations++;
    const d = view.decide(req.attributes, req.risks);
    const rule = ruleName(d);
    if (d.action === 'allow') return { action: 'allow', ...(rule ? { rule } : {}) };
    if (d.action === 'deny') return { action: 'deny', reason: d.reason, ...(rule ? { rule } : {}) };
    let accessRequest: string | undefined;
    const text = describeAttributes(req.attributes);
    const result = await s.pipeline.awaitApproval(
      {
        policy: d.policy,
        rule: rule ?? d.rule,
        reason: d.reason,
        approvers: d.approvers,
        timeoutMs: d.timeoutMs,
        operation: {
          type: 'kubernetes',
          class: req.attributes.verb,
          text,
          fingerprint: text,
          riskReasons: req.risks.map((r) => r.reason),
        },
      },
      (notice: WaitingNotice) => {
        accessRequest = notice.request;
        notify(notice.message);
      },
      (onGone) => {
        if (req.signal.aborted) queueMicrotask(onGone);
        req.signal.addEventListener('abort', onGone, { once: true });
        return () => req.signal.removeEventListener('abort', onGone);
      },
    );
    if (result === 'approved') {
      approved.add(req.attributes);
      return { action: 'allow', ...(rule ? { rule } : {}) };
    }
    const refusal = result === 'gone' ? undefined : result;
    return {
      action: 'deny',
      reason: refusal?.message ?? 'the client went away while the request waited for approval',
      ...(rule ? { rule } : {}),
      ...(accessRequest ? { accessRequest } : {}),
    };
  };

  const record = (e: KubeRecordEvent): void => {
    const s = sessionFor(e.identity);
    void s.admitted.then((view) => {
      if (isRefusal(view)) return;
      s.pipeline.record('command', commandData(e, approved.has(e.attributes)), e.rule);
    });
  };

  return {
    get activeSessions() {
      return sessions.size;
    },
    endAll(reason) {
      for (const s of sessions.values()) s.pipeline.end(reason);
      sessions.clear();
    },
    hooks: {
      decide,
      record,
      async upstreamToken() {
        // The source caches and renews (broker: a third into the token's life; standalone: as is).
        const c = await ctx.credentials.credentialFor(served.name, { type: 'kubernetes' });
        return c.token;
      },
      ...(ctx.tokenVerifier
        ? {
            verifyBearer: async (token: string) => {
              const v = await ctx.tokenVerifier!.verify(token);
              return { user: v.user, groups: v.groups };
            },
          }
        : {}),
      revealSecret(_secret, identity) {
        // Only an identity whose policies all say `allow` sees values; unknown yet: redact.
        return sessions.get(keyOf(identity))?.view?.secretData === 'allow';
      },
      async evaluate(attributes, identity) {
        const view = await sessionFor(identity).admitted;
        if (isRefusal(view)) return { allowed: false, reason: view.message };
        const d = view.decide(attributes, []);
        const rule = ruleName(d);
        return d.action === 'deny'
          ? { allowed: false, reason: d.reason, ...(rule ? { rule } : {}) }
          : { allowed: true, ...(rule ? { rule } : {}) };
      },
    },
  };
}

/** One `command` event per API request: RBAC's attributes, the status, what was redacted. */
function commandData(e: KubeRecordEvent, wasApproved: boolean) {
  const a = e.attributes;
  const decision =
    e.decision === 'allow'
      ? wasApproved
        ? ('approved' as const)
        : ('allowed' as const)
      : e.decision === 'error' && e.rule
        ? ('allowed' as const)
        : ('denied' as const);
  const argv = e.exec ? ` -- ${e.exec.command.join(' ')}` : '';
  return {
    text: `${describeAttributes(a)}${argv}`,
    decision,
    ...(e.reason ? { reason: e.reason } : {}),
    verb: a.verb,
    ...(a.isResourceRequest ? { apiGroup: a.apiGroup, resource: a.resource } : {}),
    ...(a.subresource ? { subresource: a.subresource } : {}),
    ...(a.namespace ? { namespace: a.namespace } : {}),
    ...(a.name ? { name: a.name } : {}),
    status: e.status,
    redactedValues: e.redactedValues,
    ...(e.requestBody !== undefined ? { body: e.requestBody } : {}),
  };
}
