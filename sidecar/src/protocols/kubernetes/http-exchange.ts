// One plain (non-upgrade) API request through the gateway: admit (normalise, attribute, check
// headers, verify the agent's identity, read the body), decide, forward with the gateway's token,
// deliver the response (streamed, or inspected for Secrets), record. Errors are Status objects.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { Agent, request as httpsRequest } from 'node:https';
import type { Socket } from 'node:net';
import {
  applyVerdict,
  isSelfSubjectAccessReview,
  type PolicyVerdict,
  reviewedAttributes,
} from './access-review.js';
import { checkAgentHeaders, upstreamHeaders } from './headers.js';
import type { KubeAgentIdentity, KubeDecision, KubeGatewayHooks, KubeRecordEvent } from './hooks.js';
import { deriveAttributes, type KubeRequestAttributes } from './request-attributes.js';
import { readBody, recordedBody } from './request-body.js';
import { requestRisks } from './request-risks.js';
import { normaliseRequestTarget, type RequestTarget } from './request-target.js';
import {
  type Delivery,
  type DeliveryLimits,
  deliverRaw,
  deliverRedactedBody,
  deliverRedactedWatch,
  InspectionRefused,
} from './response-delivery.js';
import { denialMessage, statusJson } from './status.js';

export interface ExchangeLimits extends DeliveryLimits {
  maxRequestBodyBytes: number;
  upstreamConnectTimeoutMs: number;
}

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE']);

/** Responses to core `secrets` requests are the ones that can carry Secret values. */
export function carriesSecrets(a: KubeRequestAttributes): boolean {
  return a.isResourceRequest && a.apiGroup === '' && a.resource === 'secrets';
}

export function requestUri(t: RequestTarget): string {
  return t.rawQuery ? `${t.path}?${t.rawQuery}` : t.path;
}

class RequestFailure extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly decision: KubeRecordEvent['decision'] = 'refused',
  ) {
    super(message);
  }
}

interface Exchange {
  started: number;
  attributes?: KubeRequestAttributes;
  identity?: KubeAgentIdentity;
  decision?: KubeDecision;
  requestBody?: string;
  requestBytes: number;
}

export function sendStatus(res: ServerResponse, code: number, message: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = statusJson(code, message);
  res.writeHead(code, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    // An unread oversized body is not drained for keep-alive: the connection ends instead.
    ...(code === 413 ? { connection: 'close' } : {}),
  });
  res.end(body);
}

export class KubeRequestHandler {
  private readonly agent: Agent;
  private readonly deliveryLimits: DeliveryLimits;

  constructor(
    private readonly hooks: KubeGatewayHooks,
    private readonly upstream: URL,
    ca: string | Buffer | undefined,
    private readonly limits: ExchangeLimits,
  ) {
    this.agent = new Agent({ keepAlive: true, ca, maxSockets: 256 });
    this.deliveryLimits = limits;
  }

  close(): void {
    this.agent.destroy();
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const ex: Exchange = { started: Date.now(), requestBytes: 0 };
    const abort = new AbortController();
    res.once('close', () => abort.abort());
    let admitted: { target: RequestTarget; body: Buffer };
    let token: string;
    try {
      admitted = await this.admit(req, ex, abort.signal);
      token = await this.hooks.upstreamToken().catch(() => {
        throw new RequestFailure(503, 'chaperone: no upstream credential available', 'error');
      });
    } catch (err) {
      const f =
        err instanceof RequestFailure ? err : new RequestFailure(500, 'chaperone: internal error', 'error');
      sendStatus(res, f.code, f.message);
      this.record(ex, f.code, f.decision, undefined, f.message);
      return;
    }
    if (abort.signal.aborted) {
      this.record(ex, 0, 'allow', undefined, 'client went away before the request was forwarded');
      return;
    }
    const review = this.hooks.evaluate !== undefined && isSelfSubjectAccessReview(ex.attributes!);
    let up: IncomingMessage;
    try {
      const inspect = carriesSecrets(ex.attributes!) || review;
      up = await this.forward(req, admitted.target, token, inspect, admitted.body);
    } catch (err) {
      sendStatus(res, 503, `chaperone: the API server is unreachable: ${(err as Error).message}`);
      this.record(ex, 503, 'error', undefined, 'upstream unreachable');
      return;
    }
    await this.deliver(ex, up, res, review);
  }

  /** Rewrites a SelfSubjectAccessReview answer to policy ∧ RBAC (fail closed). */
  private async applyPolicyToReview(doc: unknown, identity?: KubeAgentIdentity): Promise<number> {
    const reviewed = reviewedAttributes(doc);
    if (!reviewed) return 0; // an error Status, not an answer
    let verdict: PolicyVerdict;
    try {
      verdict = await this.hooks.evaluate!(reviewed, identity);
    } catch {
      verdict = { allowed: false, reason: 'policy could not be evaluated' };
    }
    return applyVerdict(doc, verdict);
  }

  private async deliver(
    ex: Exchange,
    up: IncomingMessage,
    res: ServerResponse,
    review: boolean,
  ): Promise<void> {
    const attrs = ex.attributes!;
    res.once('close', () => up.destroy());
    // Whether a Secret may be shown depends on who asks (each identity has its own policies).
    const hooks = this.hooks;
    const limits: DeliveryLimits = hooks.revealSecret
      ? { ...this.deliveryLimits, reveal: (s) => hooks.revealSecret?.(s, ex.identity) ?? false }
      : this.deliveryLimits;
    let delivery: Delivery;
    try {
      if (review) {
        const transform = (d: unknown) => this.applyPolicyToReview(d, ex.identity);
        delivery = await deliverRedactedBody(up, res, limits, transform);
      } else if (!carriesSecrets(attrs)) delivery = await deliverRaw(up, res);
      else if (attrs.verb === 'watch') delivery = await deliverRedactedWatch(up, res, limits);
      else delivery = await deliverRedactedBody(up, res, limits);
    } catch (err) {
      up.destroy();
      const msg =
        err instanceof InspectionRefused ? `chaperone: ${err.message}` : 'chaperone: response stream failed';
      const sent = res.headersSent;
      sendStatus(res, 502, msg);
      this.record(ex, sent ? (up.statusCode ?? 502) : 502, 'error', undefined, msg);
      return;
    }
    this.record(ex, delivery.status, 'allow', delivery, delivery.error);
  }

  private async admit(
    req: IncomingMessage,
    ex: Exchange,
    signal: AbortSignal,
  ): Promise<{ target: RequestTarget; body: Buffer }> {
    const target = normaliseRequestTarget(req.url ?? '');
    if (!target.ok) throw new RequestFailure(400, `chaperone: ${target.reason}`);
    const attrs = deriveAttributes(req.method ?? '', target.target);
    if (!attrs.ok) throw new RequestFailure(400, `chaperone: ${attrs.reason}`);
    ex.attributes = attrs.attributes;
    if (!METHODS.has(req.method ?? ''))
      throw new RequestFailure(405, `chaperone: method ${req.method} not allowed`);
    await this.authenticate(req, ex);
    const body = await readBody(req, this.limits.maxRequestBodyBytes);
    if (body === undefined) {
      throw new RequestFailure(
        413,
        `chaperone: request body larger than ${this.limits.maxRequestBodyBytes} bytes`,
      );
    }
    ex.requestBytes = body.length;
    ex.requestBody = recordedBody(body, req.headers['content-type'], carriesSecrets(attrs.attributes));
    const decision = await this.hooks.decide(
      {
        attributes: attrs.attributes,
        requestUri: requestUri(target.target),
        query: target.target.query,
        ...(ex.identity ? { identity: ex.identity } : {}),
        ...(body.length ? { body, contentType: req.headers['content-type'] } : {}),
        risks: requestRisks(attrs.attributes, body, req.headers['content-type']),
        signal,
      },
      // A plain API call has no channel to the agent before its response: kubectl just waits.
      () => {},
    );
    ex.decision = decision;
    if (decision.action === 'deny') {
      throw new RequestFailure(403, denialMessage(attrs.attributes, decision), 'deny');
    }
    return { target: target.target, body };
  }

  private async authenticate(req: IncomingMessage, ex: Exchange): Promise<void> {
    const auth = checkAgentHeaders(req.headers);
    if (!auth.ok) throw new RequestFailure(auth.code, `chaperone: ${auth.reason}`);
    if (auth.bearer === undefined) return;
    if (!this.hooks.verifyBearer)
      throw new RequestFailure(401, 'chaperone: bearer tokens are not accepted here');
    try {
      ex.identity = await this.hooks.verifyBearer(auth.bearer);
    } catch {
      throw new RequestFailure(401, 'chaperone: the bearer token was not accepted');
    }
  }

  private forward(
    req: IncomingMessage,
    target: RequestTarget,
    token: string,
    inspect: boolean,
    body: Buffer,
  ): Promise<IncomingMessage> {
    return new Promise<IncomingMessage>((resolve, reject) => {
      const up = httpsRequest({
        protocol: 'https:',
        hostname: this.upstream.hostname,
        port: this.upstream.port || 443,
        method: req.method,
        path: requestUri(target),
        agent: this.agent,
        headers: upstreamHeaders(req.headers, { token, inspect, bodyLength: body.length || undefined }),
      });
      up.on('response', resolve);
      up.on('error', reject);
      // Bounded connect only: once connected, responses (watches, logs -f) have no timeout.
      up.setTimeout(this.limits.upstreamConnectTimeoutMs, () =>
        up.destroy(new Error('upstream connect timeout')),
      );
      up.on('socket', (s: Socket) => {
        const connected = () => up.setTimeout(0);
        if (s.connecting || (s as Socket & { pending?: boolean }).pending) s.once('secureConnect', connected);
        else connected();
      });
      up.end(body.length ? body : undefined);
    });
  }

  private record(
    ex: Exchange,
    status: number,
    decision: KubeRecordEvent['decision'],
    d?: Delivery,
    reason?: string,
  ): void {
    if (!ex.attributes) return;
    const rule = ex.decision?.rule;
    try {
      this.hooks.record({
        attributes: ex.attributes,
        ...(ex.identity ? { identity: ex.identity } : {}),
        status,
        decision,
        ...(rule ? { rule } : {}),
        ...(reason ? { reason } : {}),
        redactedValues: d?.redacted ?? 0,
        ...(ex.requestBody !== undefined ? { requestBody: ex.requestBody } : {}),
        requestBytes: ex.requestBytes,
        responseBytes: d?.bytes ?? 0,
        durationMs: Date.now() - ex.started,
      });
    } catch {
      // A recorder failure is the recorder's to report; the request already completed.
    }
  }
}
