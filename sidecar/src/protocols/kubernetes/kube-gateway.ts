// The Kubernetes API gateway: HTTP (or HTTPS) on loopback toward the agent's kubectl, TLS toward
// the API server with the gateway's own token. Plain requests go through KubeRequestHandler;
// WebSocket exec/attach upgrades through the exec relay; every other upgrade is refused.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { handleExecUpgrade, isWebSocketExec } from './exec-websocket.js';
import type { KubeGatewayHooks } from './hooks.js';
import { type ExchangeLimits, KubeRequestHandler, sendStatus } from './http-exchange.js';
import { type AttributesResult, deriveAttributes, describeAttributes } from './request-attributes.js';
import { normaliseRequestTarget } from './request-target.js';
import { rawStatusResponse } from './status.js';

export interface KubeGatewayOptions {
  /** https://host:port of the API server. */
  upstreamUrl: string;
  /** PEM CA bundle that signs the API server's certificate; absent: the system trust store. */
  upstreamCa?: string | Buffer;
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

export interface KubeGatewayLimits extends ExchangeLimits {
  maxHeaderBytes: number;
  /** Open connections at once (watches and exec sessions hold one each); more are dropped. */
  maxConnections: number;
  /** Slowloris bound: the whole header block must arrive within this time. */
  headersTimeoutMs: number;
  /** The whole request (headers + body) must arrive within this time (responses are unbounded). */
  requestTimeoutMs: number;
}

const DEFAULT_LIMITS: KubeGatewayLimits = {
  maxBodyBytes: 64 * 1024 * 1024,
  maxEventBytes: 16 * 1024 * 1024,
  maxRequestBodyBytes: 8 * 1024 * 1024,
  maxHeaderBytes: 32 * 1024,
  maxConnections: 512,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 120_000,
  upstreamConnectTimeoutMs: 10_000,
};

export interface KubeGateway {
  readonly port: number;
  readonly url: string;
  close(): Promise<void>;
}

function createListener(
  opts: KubeGatewayOptions,
  limits: KubeGatewayLimits,
  handler: KubeRequestHandler,
): Server {
  const serverOptions = {
    maxHeaderSize: limits.maxHeaderBytes,
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: 5_000,
    connectionsCheckingInterval: Math.min(1_000, limits.headersTimeoutMs),
  };
  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    handler.handle(req, res).catch(() => sendStatus(res, 500, 'chaperone: internal error'));
  };
  const server: Server = opts.tls
    ? createHttpsServer({ ...serverOptions, cert: opts.tls.cert, key: opts.tls.key }, onRequest)
    : createServer(serverOptions, onRequest);
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
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
  server.maxConnections = limits.maxConnections;
  server.on(opts.tls ? 'secureConnection' : 'connection', (s: Socket) => s.setNoDelay(true));
  if (opts.tls) server.on('tlsClientError', (_err: Error, s: Socket) => s.destroy());
  return server;
}

export async function startKubeGateway(opts: KubeGatewayOptions): Promise<KubeGateway> {
  const limits: KubeGatewayLimits = { ...DEFAULT_LIMITS, ...opts.limits };
  const upstream = new URL(opts.upstreamUrl);
  if (upstream.protocol !== 'https:') throw new Error('the Kubernetes API server must be reached over https');
  const { hooks } = opts;
  const handler = new KubeRequestHandler(hooks, upstream, opts.upstreamCa, limits);
  const server = createListener(opts, limits, handler);
  const execDeps = { hooks, upstream, ca: opts.upstreamCa };
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    const target = normaliseRequestTarget(req.url ?? '');
    const attrs = target.ok ? deriveAttributes(req.method ?? '', target.target) : undefined;
    if (target.ok && attrs?.ok && req.method === 'GET' && isWebSocketExec(req, attrs.attributes)) {
      handleExecUpgrade(req, socket, head, attrs.attributes, target.target, execDeps);
    } else {
      refuseUpgrade(socket, attrs, hooks);
    }
  });
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
      handler.close();
    },
  };
}

/** Upgrades other than WebSocket exec/attach (SPDY, port-forward, anything else) are refused. */
function refuseUpgrade(socket: Duplex, attrs: AttributesResult | undefined, hooks: KubeGatewayHooks): void {
  const message = attrs?.ok
    ? `chaperone: ${describeAttributes(attrs.attributes)}: only WebSocket exec/attach (v5.channel.k8s.io) is supported; SPDY and port-forward are not yet`
    : 'chaperone: invalid upgrade request';
  const code = attrs?.ok ? 403 : 400;
  socket.end(rawStatusResponse(code, message));
  if (!attrs?.ok) return;
  try {
    hooks.record({
      attributes: attrs.attributes,
      status: code,
      decision: 'refused',
      reason: message,
      redactedValues: 0,
      requestBytes: 0,
      responseBytes: 0,
      durationMs: 0,
    });
  } catch {
    // the recorder reports its own failures
  }
}
