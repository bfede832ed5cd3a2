// The Kubernetes API gateway: plain HTTP on loopback toward the agent's kubectl, TLS toward the
// API server with the gateway's own token. Every request is normalised, attributed as the API
// server would, decided by the hooks, forwarded, and its response streamed (or, for Secrets,
// inspected and redacted) back. Errors are metav1.Status objects with a matching code.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Agent, createServer as createHttpsServer, request as httpsRequest } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { handleExecUpgrade, isWebSocketExec } from './exec-websocket.js';
import { checkAgentHeaders, upstreamHeaders } from './headers.js';
import type { KubeAgentIdentity, KubeDecision, KubeGatewayHooks, KubeRecordEvent } from './hooks.js';
import { deriveAttributes, describeAttributes, type KubeRequestAttributes } from './request-attributes.js';
import { readBody, recordedBody } from './request-body.js';
import { normaliseRequestTarget, type RequestTarget } from './request-target.js';
import {
  type Delivery,
  type DeliveryLimits,
  deliverRaw,
  deliverRedactedBody,
  deliverRedactedWatch,
  InspectionRefused,
} from './response-delivery.js';
import { rawStatusResponse, statusJson } from './status.js';

export interface KubeGatewayOptions {
  /** https://host:port of the API server. */
  upstreamUrl: string;
  /** PEM CA bundle that signs the API server's certificate. */
  upstreamCa: string | Buffer;
  hooks: KubeGatewayHooks;
  /** Loopback port; 0 picks a free one. */
  port?: number;
  host?: string;
  limits?: Partial<KubeGatewayLimits>;
  /**
   * Serve HTTPS instead of plain HTTP. kubectl (client-go) sends no credential at all to an
   * http:// server, so an agent's on-behalf-of OIDC token only arrives over TLS.
   */
  tls?: { cert: string | Buffer; key: string | Buffer };
}

export interface KubeGatewayLimits extends DeliveryLimits {
  maxRequestBodyBytes: number;
  maxHeaderBytes: number;
  /** Slowloris bound: the whole header block must arrive within this time. */
  headersTimeoutMs: number;
  /** The whole request (headers + body) must arrive within this time (responses are unbounded). */
  requestTimeoutMs: number;
  upstreamConnectTimeoutMs: number;
}

const DEFAULT_LIMITS: KubeGatewayLimits = {
  maxBodyBytes: 64 * 1024 * 1024,
  maxEventBytes: 16 * 1024 * 1024,
  maxRequestBodyBytes: 8 * 1024 * 1024,
  maxHeaderBytes: 32 * 1024,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 120_000,
  upstreamConnectTimeoutMs: 10_000,
};

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE']);

export interface KubeGateway {
  readonly port: number;
  readonly url: string;
  close(): Promise<void>;
}

/** Responses to core `secrets` requests are the ones that can carry Secret values. */
function carriesSecrets(a: KubeRequestAttributes): boolean {
  return a.isResourceRequest && a.apiGroup === '' && a.resource === 'secrets';
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

export async function startKubeGateway(opts: KubeGatewayOptions): Promise<KubeGateway> {
  const limits: KubeGatewayLimits = { ...DEFAULT_LIMITS, ...opts.limits };
  const upstream = new URL(opts.upstreamUrl);
  if (upstream.protocol !== 'https:') throw new Error('the Kubernetes API server must be reached over https');
  const agent = new Agent({ keepAlive: true, ca: opts.upstreamCa, maxSockets: 256 });
  const { hooks } = opts;

  const sendStatus = (res: ServerResponse, code: number, message: string): void => {
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
  };

  const record = (
    ex: Exchange,
    status: number,
    decision: KubeRecordEvent['decision'],
    d?: Delivery,
    reason?: string,
  ) => {
    if (!ex.attributes) return;
    const rule = ex.decision?.rule;
    try {
      hooks.record({
        attributes: ex.attributes,
        identity: ex.identity,
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
  };

  const admit = async (
    req: IncomingMessage,
    ex: Exchange,
    signal: AbortSignal,
  ): Promise<{ target: RequestTarget; body: Buffer }> => {
    const target = normaliseRequestTarget(req.url ?? '');
    if (!target.ok) throw new RequestFailure(400, `chaperone: ${target.reason}`);
    const attrs = deriveAttributes(req.method ?? '', target.target);
    if (!attrs.ok) throw new RequestFailure(400, `chaperone: ${attrs.reason}`);
    ex.attributes = attrs.attributes;
    if (!METHODS.has(req.method ?? ''))
      throw new RequestFailure(405, `chaperone: method ${req.method} not allowed`);
    const auth = checkAgentHeaders(req.headers);
    if (!auth.ok) throw new RequestFailure(auth.code, `chaperone: ${auth.reason}`);
    if (auth.bearer !== undefined) {
      if (!hooks.verifyBearer)
        throw new RequestFailure(401, 'chaperone: bearer tokens are not accepted here');
      try {
        ex.identity = await hooks.verifyBearer(auth.bearer);
      } catch {
        throw new RequestFailure(401, 'chaperone: the bearer token was not accepted');
      }
    }
    const body = await readBody(req, limits.maxRequestBodyBytes);
    if (body === undefined) {
      throw new RequestFailure(
        413,
        `chaperone: request body larger than ${limits.maxRequestBodyBytes} bytes`,
      );
    }
    ex.requestBytes = body.length;
    ex.requestBody = recordedBody(body, req.headers['content-type'], carriesSecrets(attrs.attributes));
    const decision = await hooks.decide(
      {
        attributes: attrs.attributes,
        requestUri: target.target.rawQuery
          ? `${target.target.path}?${target.target.rawQuery}`
          : target.target.path,
        query: target.target.query,
        ...(ex.identity ? { identity: ex.identity } : {}),
        ...(body.length ? { body, contentType: req.headers['content-type'] } : {}),
        signal,
      },
      () => {},
    );
    ex.decision = decision;
    if (decision.action === 'deny') {
      const rule = decision.rule ? ` by rule "${decision.rule}"` : '';
      const ar = decision.accessRequest ? ` (AccessRequest ${decision.accessRequest})` : '';
      throw new RequestFailure(
        403,
        `chaperone: ${describeAttributes(attrs.attributes)} denied${rule}${ar}: ${decision.reason}`,
        'deny',
      );
    }
    return { target: target.target, body };
  };

  const forward = (
    req: IncomingMessage,
    target: RequestTarget,
    token: string,
    inspect: boolean,
    body: Buffer,
  ) =>
    new Promise<IncomingMessage>((resolve, reject) => {
      const path = target.rawQuery ? `${target.path}?${target.rawQuery}` : target.path;
      const up = httpsRequest({
        protocol: 'https:',
        hostname: upstream.hostname,
        port: upstream.port || 443,
        method: req.method,
        path,
        agent,
        headers: upstreamHeaders(req.headers, { token, inspect, bodyLength: body.length || undefined }),
      });
      up.on('response', resolve);
      up.on('error', reject);
      up.setTimeout(limits.upstreamConnectTimeoutMs, () => up.destroy(new Error('upstream connect timeout')));
      up.on('socket', (s: Socket) => {
        const connected = () => up.setTimeout(0);
        if (s.connecting || (s as Socket & { pending?: boolean }).pending) s.once('secureConnect', connected);
        else connected();
      });
      up.end(body.length ? body : undefined);
    });

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const ex: Exchange = { started: Date.now(), requestBytes: 0 };
    const abort = new AbortController();
    res.once('close', () => abort.abort());
    let admitted: { target: RequestTarget; body: Buffer };
    let token: string;
    try {
      admitted = await admit(req, ex, abort.signal);
      token = await hooks.upstreamToken().catch(() => {
        throw new RequestFailure(503, 'chaperone: no upstream credential available', 'error');
      });
    } catch (err) {
      const f =
        err instanceof RequestFailure ? err : new RequestFailure(500, 'chaperone: internal error', 'error');
      sendStatus(res, f.code, f.message);
      record(ex, f.code, f.decision, undefined, f.message);
      return;
    }
    if (abort.signal.aborted) {
      record(ex, 0, 'allow', undefined, 'client went away before the request was forwarded');
      return;
    }
    const attrs = ex.attributes!;
    const inspect = carriesSecrets(attrs);
    let up: IncomingMessage;
    try {
      up = await forward(req, admitted.target, token, inspect, admitted.body);
    } catch (err) {
      sendStatus(res, 503, `chaperone: the API server is unreachable: ${(err as Error).message}`);
      record(ex, 503, 'error', undefined, 'upstream unreachable');
      return;
    }
    res.once('close', () => up.destroy());
    let delivery: Delivery;
    try {
      if (!inspect) delivery = await deliverRaw(up, res);
      else if (attrs.verb === 'watch') delivery = await deliverRedactedWatch(up, res, limits);
      else delivery = await deliverRedactedBody(up, res, limits);
    } catch (err) {
      up.destroy();
      const msg =
        err instanceof InspectionRefused ? `chaperone: ${err.message}` : 'chaperone: response stream failed';
      sendStatus(res, 502, msg);
      record(ex, res.headersSent ? (up.statusCode ?? 502) : 502, 'error', undefined, msg);
      return;
    }
    record(ex, delivery.status, 'allow', delivery, delivery.error);
  };

  const serverOptions = {
    maxHeaderSize: limits.maxHeaderBytes,
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: 5_000,
    connectionsCheckingInterval: Math.min(1_000, limits.headersTimeoutMs),
  };
  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    handle(req, res).catch(() => sendStatus(res, 500, 'chaperone: internal error'));
  };
  const server: Server = opts.tls
    ? createHttpsServer({ ...serverOptions, cert: opts.tls.cert, key: opts.tls.key }, onRequest)
    : createServer(serverOptions, onRequest);
  const execDeps = { hooks, upstream, ca: opts.upstreamCa };
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    const target = normaliseRequestTarget(req.url ?? '');
    const attrs = target.ok ? deriveAttributes(req.method ?? '', target.target) : undefined;
    if (target.ok && attrs?.ok && req.method === 'GET' && isWebSocketExec(req, attrs.attributes)) {
      handleExecUpgrade(req, socket, head, attrs.attributes, target.target, execDeps);
    } else {
      refuseUpgrade(req, socket, hooks);
    }
  });
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    const code =
      err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
    socket.end(
      rawStatusResponse(code, `chaperone: malformed or incomplete HTTP request (${err.code ?? 'error'})`),
    );
  });
  server.on(opts.tls ? 'secureConnection' : 'connection', (s: Socket) => s.setNoDelay(true));
  if (opts.tls) server.on('tlsClientError', (_err: Error, s: Socket) => s.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: `${opts.tls ? 'https' : 'http'}://${opts.host ?? '127.0.0.1'}:${port}`,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      agent.destroy();
    },
  };
}

/** Upgrades other than WebSocket exec/attach (SPDY, port-forward, anything else) are refused. */
function refuseUpgrade(req: IncomingMessage, socket: Socket, hooks: KubeGatewayHooks): void {
  const started = Date.now();
  const target = normaliseRequestTarget(req.url ?? '');
  const attrs = target.ok ? deriveAttributes(req.method ?? '', target.target) : undefined;
  const message = attrs?.ok
    ? `chaperone: ${describeAttributes(attrs.attributes)}: only WebSocket exec/attach (v5.channel.k8s.io) is supported; SPDY and port-forward are not yet`
    : 'chaperone: invalid upgrade request';
  const code = attrs?.ok ? 403 : 400;
  socket.on('error', () => socket.destroy());
  socket.end(rawStatusResponse(code, message));
  if (attrs?.ok) {
    try {
      hooks.record({
        attributes: attrs.attributes,
        status: code,
        decision: 'refused',
        reason: message,
        redactedValues: 0,
        requestBytes: 0,
        responseBytes: 0,
        durationMs: Date.now() - started,
      });
    } catch {
      // see record() above
    }
  }
}
