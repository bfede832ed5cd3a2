// One notification's HTTP delivery: POST with a per-attempt timeout, retried with capped
// exponential backoff and full jitter on network errors, 408, 429 and 5xx; any other answer is
// final. The generic webhook is signed (HMAC-SHA256 over "timestamp.body") and carries an
// idempotency key, so a receiver can drop the rare duplicate (a delivery whose success the
// operator could not record before it stopped).
//
// No error message carries the URL or the key: they are secrets (a Slack or Teams webhook URL is
// its own credential). Messages say the status code or the network error code only.

import { createHmac } from 'node:crypto';
import type { RetrySettings } from './notification-config.js';

export const SIGNATURE_HEADER = 'x-chaperone-signature';
export const TIMESTAMP_HEADER = 'x-chaperone-timestamp';
export const IDEMPOTENCY_HEADER = 'idempotency-key';
export const EVENT_HEADER = 'x-chaperone-event';

export interface DeliveryRequest {
  url: string;
  body: string;
  /** webhook targets: HMAC key. */
  signingKey?: string;
  idempotencyKey: string;
  event: string;
}

export interface DeliveryResult {
  ok: boolean;
  attempts: number;
  /** Why the last attempt failed (never the URL). */
  message?: string;
}

export interface DeliveryDeps {
  retry: RetrySettings;
  /** Stops waiting and sending (leadership lost, shutdown). */
  signal?: AbortSignal;
  now?: () => number;
  random?: () => number;
  fetch?: typeof fetch;
  onAttempt?: (result: 'success' | 'retry' | 'failure') => void;
}

/** `sha256=HEX` of HMAC-SHA256(key, `${timestamp}.${body}`), what receivers recompute. */
export function signature(key: string, timestamp: string, body: string): string {
  return `sha256=${createHmac('sha256', key).update(`${timestamp}.${body}`).digest('hex')}`;
}

/** Full jitter: a random delay up to min(max, base * 2^attempt). */
export function backoffDelay(attempt: number, retry: RetrySettings, random: () => number): number {
  const cap = Math.min(retry.maxDelayMs, retry.baseDelayMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * cap);
}

function retryable(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/** Retry-After in seconds (the HTTP-date form is ignored), capped by the backoff maximum. */
function retryAfterMs(value: string | null, retry: RetrySettings): number | undefined {
  if (!value || !/^\d{1,6}$/.test(value.trim())) return undefined;
  return Math.min(retry.maxDelayMs, Number(value.trim()) * 1000);
}

function describeError(err: unknown): string {
  const e = err as { name?: string; code?: string; cause?: { code?: string; name?: string } };
  if (e?.name === 'TimeoutError' || e?.cause?.name === 'TimeoutError') return 'timed out';
  const code = e?.cause?.code ?? e?.code;
  return typeof code === 'string' && /^[A-Z_]{2,40}$/.test(code) ? `network error ${code}` : 'network error';
}

function sleep(ms: number, signal?: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve(false);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export async function deliver(req: DeliveryRequest, deps: DeliveryDeps): Promise<DeliveryResult> {
  const doFetch = deps.fetch ?? fetch;
  const random = deps.random ?? Math.random;
  const now = deps.now ?? Date.now;
  let message = 'not attempted';
  let attempts = 0;
  for (let attempt = 0; attempt < deps.retry.attempts; attempt++) {
    if (deps.signal?.aborted) return { ok: false, attempts, message: 'stopped' };
    attempts++;
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'user-agent': 'chaperone-operator',
    };
    if (req.signingKey !== undefined) {
      const ts = String(Math.floor(now() / 1000));
      headers[TIMESTAMP_HEADER] = ts;
      headers[SIGNATURE_HEADER] = signature(req.signingKey, ts, req.body);
      headers[IDEMPOTENCY_HEADER] = req.idempotencyKey;
      headers[EVENT_HEADER] = req.event;
    }
    let wait: number | undefined;
    try {
      const signals = [AbortSignal.timeout(deps.retry.timeoutMs), ...(deps.signal ? [deps.signal] : [])];
      const res = await doFetch(req.url, {
        method: 'POST',
        headers,
        body: req.body,
        redirect: 'error',
        signal: AbortSignal.any(signals),
      });
      // The body is not needed (and is not logged); read it so the connection can be reused.
      await res.arrayBuffer().catch(() => undefined);
      if (res.ok) {
        deps.onAttempt?.('success');
        return { ok: true, attempts };
      }
      message = `HTTP ${res.status}`;
      if (!retryable(res.status)) {
        deps.onAttempt?.('failure');
        return { ok: false, attempts, message: `${message} (not retried)` };
      }
      wait = retryAfterMs(res.headers.get('retry-after'), deps.retry);
    } catch (err) {
      if (deps.signal?.aborted) return { ok: false, attempts, message: 'stopped' };
      message = describeError(err);
    }
    if (attempt + 1 >= deps.retry.attempts) break;
    deps.onAttempt?.('retry');
    if (!(await sleep(wait ?? backoffDelay(attempt, deps.retry, random), deps.signal)))
      return { ok: false, attempts, message: 'stopped' };
  }
  deps.onAttempt?.('failure');
  return { ok: false, attempts, message: `${message} after ${attempts} attempt${attempts === 1 ? '' : 's'}` };
}

/** Checks a webhook URL before it is used; the message never repeats the URL. */
export function checkTargetUrl(raw: string, allowHttp: boolean): string | undefined {
  let u: URL;
  try {
    u = new URL(raw.trim());
  } catch {
    return 'the URL in the Secret is not an absolute URL';
  }
  if (u.protocol === 'https:') return undefined;
  if (u.protocol === 'http:' && allowHttp) return undefined;
  return allowHttp ? 'the URL in the Secret must be http(s)' : 'the URL in the Secret must be https';
}
