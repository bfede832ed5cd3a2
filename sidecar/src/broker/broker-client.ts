import { readFile } from 'node:fs/promises';
import {
  BROKER_PATHS,
  type BrokerAccessRequestCreate,
  type BrokerAccessRequestCreated,
  type BrokerAccessRequestDecision,
  type BrokerConfig,
  type BrokerCredential,
  type BrokerCredentialRequest,
  type BrokerError,
} from '@chaperone/api';
import { Agent, request } from 'undici';

export class BrokerCallError extends Error {
  constructor(
    /** HTTP status, or 0 when the broker could not be reached at all. */
    readonly status: number,
    message: string,
  ) {
    super(message);
  }

  /** Worth retrying: the broker or the API server behind it is unavailable, not a refusal. */
  get transient(): boolean {
    return this.status === 0 || this.status === 502 || this.status === 503 || this.status === 504;
  }
}

export interface BrokerClientOptions {
  /** https://chaperone-operator.chaperone-system.svc:443 */
  url: string;
  /** PEM of the CA that signed the broker's serving certificate. */
  caPem: string;
  /** Projected token file; re-read per call because the kubelet rotates it. */
  tokenFile: string;
  timeoutMs?: number;
}

/** The sidecar's only client for the operator: TLS verified against the broker CA, token per call. */
export class BrokerClient {
  private readonly agent: Agent;
  private readonly base: string;

  constructor(private readonly opts: BrokerClientOptions) {
    this.base = opts.url.replace(/\/$/, '');
    this.agent = new Agent({ connect: { ca: opts.caPem }, keepAliveTimeout: 30_000 });
  }

  config(): Promise<BrokerConfig> {
    return this.call('GET', BROKER_PATHS.config);
  }

  credential(body: BrokerCredentialRequest): Promise<BrokerCredential> {
    return this.call('POST', BROKER_PATHS.credentials, body);
  }

  createAccessRequest(body: BrokerAccessRequestCreate): Promise<BrokerAccessRequestCreated> {
    return this.call('POST', BROKER_PATHS.accessRequests, body);
  }

  decision(name: string, waitSeconds: number, signal?: AbortSignal): Promise<BrokerAccessRequestDecision> {
    return this.call(
      'GET',
      `${BROKER_PATHS.accessRequest(name)}/decision?waitSeconds=${waitSeconds}`,
      undefined,
      (waitSeconds + 15) * 1000,
      signal,
    );
  }

  async withdraw(name: string): Promise<void> {
    await this.call('DELETE', BROKER_PATHS.accessRequest(name));
  }

  async close(): Promise<void> {
    await this.agent.close();
  }

  private async call<T>(
    method: 'GET' | 'POST' | 'DELETE',
    path: string,
    body?: unknown,
    timeoutMs = this.opts.timeoutMs ?? 15_000,
    signal?: AbortSignal,
  ): Promise<T> {
    let token: string;
    try {
      token = (await readFile(this.opts.tokenFile, 'utf8')).trim();
    } catch (err) {
      throw new BrokerCallError(
        0,
        `cannot read the broker token ${this.opts.tokenFile}: ${(err as Error).message}`,
      );
    }
    let res: Awaited<ReturnType<typeof request>>;
    try {
      res = await request(`${this.base}${path}`, {
        method,
        dispatcher: this.agent,
        headers: {
          authorization: `Bearer ${token}`,
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        body: body !== undefined ? JSON.stringify(body) : undefined,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
        signal,
      });
    } catch (err) {
      throw new BrokerCallError(0, `the broker at ${this.base} is unreachable: ${(err as Error).message}`);
    }
    const text = await res.body.text();
    if (res.statusCode === 204) return undefined as T;
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    if (res.statusCode >= 400) {
      const e = parsed as (BrokerError & { message?: string }) | undefined;
      const message = e?.error ?? e?.message ?? text.slice(0, 200);
      throw new BrokerCallError(
        res.statusCode,
        `broker refused ${method} ${path.split('?')[0]}: ${message}${e?.hint ? ` (${e.hint})` : ''}`,
      );
    }
    return parsed as T;
  }
}
