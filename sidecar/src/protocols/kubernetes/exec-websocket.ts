// exec / attach over WebSocket (`v5.channel.k8s.io`, `v4.channel.k8s.io`), terminated here and
// re-originated to the API server with the gateway's token, as Teleport does: the agent's socket
// never reaches the API server and the gateway sees every frame (channel byte first).
//
// The client's upgrade is accepted before the decision so that an approval can wait while kubectl
// keeps pinging (it gives up after 61 s without a pong); a denial or an upstream failure is then
// told the way kubectl expects it from a server: a Status on the error channel (3), then close.
// Answering the upgrade itself with an error would make kubectl retry over SPDY and lose the
// message.

import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import WebSocket, { type RawData, WebSocketServer } from 'ws';
import { checkAgentHeaders } from './headers.js';
import type { KubeAgentIdentity, KubeExecSummary, KubeGatewayHooks, KubeRecordEvent } from './hooks.js';
import { requestUri } from './http-exchange.js';
import type { KubeRequestAttributes } from './request-attributes.js';
import { requestRisks } from './request-risks.js';
import type { RequestTarget } from './request-target.js';
import { denialMessage, kubeStatus } from './status.js';

export const EXEC_SUBPROTOCOLS = ['v5.channel.k8s.io', 'v4.channel.k8s.io'] as const;
const ERROR_CHANNEL = 3;
/** Client frames buffered while the decision (or the upstream dial) is pending. */
const MAX_EARLY_BYTES = 1024 * 1024;
const HIGH_WATER = 4 * 1024 * 1024;
const MAX_FRAME = 16 * 1024 * 1024;

export interface ExecDeps {
  hooks: KubeGatewayHooks;
  upstream: URL;
  ca: string | Buffer | undefined;
}

/** A WebSocket upgrade for pods/exec or pods/attach offering a channel protocol we speak. */
export function isWebSocketExec(req: IncomingMessage, a: KubeRequestAttributes): boolean {
  if (!(a.isResourceRequest && a.apiGroup === '' && a.resource === 'pods')) return false;
  if (a.subresource !== 'exec' && a.subresource !== 'attach') return false;
  if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket') return false;
  return offeredProtocol(req) !== undefined;
}

function offeredProtocol(req: IncomingMessage): string | undefined {
  const offered = String(req.headers['sec-websocket-protocol'] ?? '')
    .split(',')
    .map((p) => p.trim());
  return EXEC_SUBPROTOCOLS.find((p) => offered.includes(p));
}

function frame(channel: number, data: string): Buffer {
  return Buffer.concat([Buffer.from([channel]), Buffer.from(data)]);
}

function errorFrame(code: number, message: string): Buffer {
  return frame(ERROR_CHANNEL, JSON.stringify(kubeStatus(code, message)));
}

/** Exit code from an error-channel Status (Success -> 0, NonZeroExitCode -> its cause). */
export function exitCodeOf(frame: Buffer): number | undefined {
  try {
    const s = JSON.parse(frame.subarray(1).toString('utf8')) as {
      status?: string;
      reason?: string;
      details?: { causes?: Array<{ reason?: string; message?: string }> };
    };
    if (s.status === 'Success') return 0;
    const cause = s.details?.causes?.find((c) => c.reason === 'ExitCode');
    if (s.reason === 'NonZeroExitCode' && cause?.message) return Number(cause.message);
  } catch {
    // not a Status: no exit code
  }
  return undefined;
}

const wss = new WebSocketServer({
  noServer: true,
  maxPayload: MAX_FRAME,
  handleProtocols: (protocols) => EXEC_SUBPROTOCOLS.find((p) => protocols.has(p)) ?? false,
});

function toBuffer(data: RawData): Buffer {
  return Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
}

/** Relays frames one way with backpressure (pause the source while the sink's buffer is full). */
function relay(from: WebSocket, to: WebSocket, onFrame: (frame: Buffer) => void): void {
  from.on('message', (data: RawData) => {
    const frame = toBuffer(data);
    onFrame(frame);
    if (to.readyState !== WebSocket.OPEN) return;
    to.send(frame, { binary: true }, () => {
      if (from.isPaused && to.bufferedAmount < HIGH_WATER / 2) from.resume();
    });
    if (to.bufferedAmount > HIGH_WATER) from.pause();
  });
}

function closeCode(code: number): number {
  return code === 1000 || (code >= 3000 && code < 5000) ? code : 1000;
}

export function handleExecUpgrade(
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  attrs: KubeRequestAttributes,
  target: RequestTarget,
  deps: ExecDeps,
): void {
  const started = Date.now();
  const exec: KubeExecSummary = {
    command: target.query.filter(([k]) => k === 'command').map(([, v]) => v),
    container: target.query.find(([k]) => k === 'container')?.[1] ?? '',
    tty: ['1', 'true'].includes(target.query.find(([k]) => k === 'tty')?.[1] ?? ''),
    subprotocol: offeredProtocol(req) ?? '',
    stdinBytes: 0,
    stdoutBytes: 0,
    stderrBytes: 0,
  };
  wss.handleUpgrade(req, socket, head, (client) => {
    void runExec(client, req, attrs, target, exec, deps, started);
  });
}

async function runExec(
  client: WebSocket,
  req: IncomingMessage,
  attrs: KubeRequestAttributes,
  target: RequestTarget,
  exec: KubeExecSummary,
  deps: ExecDeps,
  started: number,
): Promise<void> {
  const { hooks } = deps;
  const abort = new AbortController();
  let identity: KubeAgentIdentity | undefined;
  let rule: string | undefined;
  const early: Buffer[] = [];
  let earlyBytes = 0;
  const onEarly = (data: RawData) => {
    const frame = toBuffer(data);
    earlyBytes += frame.length;
    if (earlyBytes > MAX_EARLY_BYTES) client.terminate();
    else early.push(frame);
  };
  client.on('message', onEarly);
  client.on('close', () => abort.abort());
  client.on('error', () => client.terminate());
  const finish = (status: number, decision: KubeRecordEvent['decision'], reason?: string) => {
    try {
      hooks.record({
        attributes: attrs,
        ...(identity ? { identity } : {}),
        status,
        decision,
        ...(rule ? { rule } : {}),
        ...(reason ? { reason } : {}),
        redactedValues: 0,
        requestBytes: exec.stdinBytes,
        responseBytes: exec.stdoutBytes + exec.stderrBytes,
        durationMs: Date.now() - started,
        exec,
      });
    } catch {
      // the recorder reports its own failures
    }
  };
  const fail = (code: number, message: string, decision: KubeRecordEvent['decision']) => {
    if (client.readyState === WebSocket.OPEN) {
      client.send(errorFrame(code, message), { binary: true });
      client.close(1000);
    }
    finish(code, decision, message);
  };

  try {
    const auth = checkAgentHeaders(req.headers);
    if (!auth.ok) return fail(auth.code, `chaperone: ${auth.reason}`, 'refused');
    const bearer = auth.bearer;
    if (bearer !== undefined) {
      if (!hooks.verifyBearer) return fail(401, 'chaperone: bearer tokens are not accepted here', 'refused');
      identity = await hooks.verifyBearer(bearer).catch(() => undefined);
      if (!identity) return fail(401, 'chaperone: the bearer token was not accepted', 'refused');
    }
    const decision = await hooks.decide(
      {
        attributes: attrs,
        requestUri: requestUri(target),
        query: target.query,
        ...(identity ? { identity } : {}),
        risks: requestRisks(attrs),
        signal: abort.signal,
      },
      // Tell the waiting agent why nothing happens yet, on stderr (kubectl prints it at once),
      // as the SSH gateway does.
      (message) => {
        if (client.readyState === WebSocket.OPEN) client.send(frame(2, `${message}\n`), { binary: true });
      },
    );
    rule = decision.rule;
    if (decision.action === 'deny') return fail(403, denialMessage(attrs, decision), 'deny');
    if (abort.signal.aborted) return finish(0, 'allow', 'client went away before the exec started');
    const token = await hooks.upstreamToken();
    const upstream = await dialUpstream(deps, target, exec.subprotocol, token);
    if ('error' in upstream) return fail(upstream.code, upstream.error, 'error');
    if (client.readyState !== WebSocket.OPEN) {
      upstream.ws.terminate();
      return finish(0, 'allow', 'client went away while the exec was being dialled');
    }
    bridge(client, upstream.ws, early, onEarly, exec, () => finish(101, 'allow'));
  } catch (err) {
    fail(500, `chaperone: exec failed: ${(err as Error).message}`, 'error');
  }
}

function dialUpstream(
  deps: ExecDeps,
  target: RequestTarget,
  protocol: string,
  token: string,
): Promise<{ ws: WebSocket } | { error: string; code: number }> {
  const url = `wss://${deps.upstream.host}${target.path}${target.rawQuery ? `?${target.rawQuery}` : ''}`;
  return new Promise((resolve) => {
    const ws = new WebSocket(url, [protocol], {
      ca: deps.ca,
      headers: { authorization: `Bearer ${token}` },
      maxPayload: MAX_FRAME,
      handshakeTimeout: 10_000,
    });
    ws.once('open', () => resolve({ ws }));
    ws.once('unexpected-response', (_req, res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size <= 64 * 1024) chunks.push(c);
      });
      res.on('end', () => {
        const code = res.statusCode ?? 502;
        let message = `the API server refused the exec (HTTP ${code})`;
        try {
          const s = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { message?: string };
          if (s.message) message = s.message;
        } catch {
          // not a Status: keep the generic message
        }
        ws.terminate();
        resolve({ error: message, code });
      });
    });
    // `on`, not `once`: a second error before the bridge takes over must not go unhandled.
    ws.on('error', (err) =>
      resolve({ error: `chaperone: the API server is unreachable: ${err.message}`, code: 503 }),
    );
  });
}

function bridge(
  client: WebSocket,
  upstream: WebSocket,
  early: Buffer[],
  onEarly: (data: RawData) => void,
  exec: KubeExecSummary,
  done: () => void,
): void {
  client.off('message', onEarly);
  const fromClient = (frame: Buffer) => {
    if (frame[0] === 0) exec.stdinBytes += frame.length - 1;
  };
  const fromUpstream = (frame: Buffer) => {
    if (frame[0] === 1) exec.stdoutBytes += frame.length - 1;
    else if (frame[0] === 2) exec.stderrBytes += frame.length - 1;
    else if (frame[0] === ERROR_CHANNEL) {
      const code = exitCodeOf(frame);
      if (code !== undefined) exec.exitCode = code;
    }
  };
  for (const frame of early) {
    fromClient(frame);
    upstream.send(frame, { binary: true });
  }
  relay(client, upstream, fromClient);
  relay(upstream, client, fromUpstream);
  let ended = false;
  const end = () => {
    if (ended) return;
    ended = true;
    done();
  };
  upstream.on('close', (code) => {
    if (client.readyState === WebSocket.OPEN) client.close(closeCode(code));
    end();
  });
  client.on('close', (code) => {
    if (upstream.readyState === WebSocket.OPEN) upstream.close(closeCode(code));
    else upstream.terminate();
    end();
  });
  upstream.on('error', () => {
    upstream.terminate();
    client.terminate();
  });
}
