import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';
import type { LocalApprovalGate } from '../approvals/local-approvals.js';

export interface AdminServerOptions {
  host: string;
  port: number;
  registry: Registry;
  /** Present in standalone mode: approvals are decided here. */
  approvals?: LocalApprovalGate;
  ready: () => boolean;
}

const MAX_BODY = 16 * 1024;

/**
 * The sidecar's own HTTP endpoint on loopback: health and readiness probes, Prometheus metrics,
 * and (standalone) the approval queue. Loopback only: anyone who can reach it can approve.
 */
export class AdminServer {
  private server?: Server;

  constructor(private readonly opts: AdminServerOptions) {}

  get port(): number {
    const a = this.server?.address();
    return typeof a === 'object' && a ? a.port : this.opts.port;
  }

  async listen(): Promise<void> {
    const server = createServer((req, res) => {
      this.handle(req, res).catch((err: Error) => send(res, 500, { error: err.message }));
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.opts.port, this.opts.host, resolve);
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (req.method === 'GET' && url.pathname === '/healthz') return send(res, 200, { status: 'ok' });
    if (req.method === 'GET' && url.pathname === '/readyz') {
      return this.opts.ready() ? send(res, 200, { status: 'ready' }) : send(res, 503, { status: 'starting' });
    }
    if (req.method === 'GET' && url.pathname === '/metrics') {
      res.writeHead(200, { 'content-type': this.opts.registry.contentType });
      res.end(await this.opts.registry.metrics());
      return;
    }
    const approvals = this.opts.approvals;
    if (approvals && req.method === 'GET' && url.pathname === '/approvals')
      return send(res, 200, { items: approvals.list() });
    const m = /^\/approvals\/([a-z0-9-]+)\/(approve|deny)$/.exec(url.pathname);
    if (approvals && req.method === 'POST' && m?.[1] && m[2]) {
      const body = await readJson(req);
      const by = typeof body.by === 'string' && body.by ? body.by : 'local-operator';
      const comment = typeof body.comment === 'string' ? body.comment : undefined;
      const ok = approvals.decide(m[1], m[2] === 'approve' ? 'approved' : 'denied', by, comment);
      return ok
        ? send(res, 200, { name: m[1], verdict: m[2] === 'approve' ? 'Approved' : 'Denied', by })
        : send(res, 404, { error: `no pending request named ${m[1]}` });
    }
    send(res, 404, { error: `no route ${req.method} ${url.pathname}` });
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(`${JSON.stringify(body)}\n`);
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_BODY) throw new Error('request body too large');
    chunks.push(c as Buffer);
  }
  if (!size) return {};
  const parsed: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  return parsed && typeof parsed === 'object' ? (parsed as Record<string, unknown>) : {};
}
