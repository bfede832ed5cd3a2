// `kubectl chaperone describe NAME`: the request from the API server, and the session's recent
// statements from the collector's auditor API (GET /v1/sessions/ID). The collector is optional:
// without it, or when it does not answer, the request is still shown with the reason.

import { RECENT_STATEMENTS, recentStatements, type SessionContext } from './describe-format.js';

export interface CollectorAccess {
  /** Base URL of the collector (its auditor API and UI). */
  url?: string;
  /** Auditor bearer token. */
  token?: string;
  timeoutMs?: number;
}

interface SessionPage {
  session?: { lastSeq?: number };
  events?: unknown[];
}

async function getJson(url: string, access: CollectorAccess): Promise<SessionPage> {
  const res = await fetch(url, {
    headers: {
      accept: 'application/json',
      ...(access.token ? { authorization: `Bearer ${access.token}` } : {}),
    },
    signal: AbortSignal.timeout(access.timeoutMs ?? 5_000),
    redirect: 'error',
  });
  if (res.status === 401 || res.status === 403)
    throw new Error(
      `the collector refused the token (HTTP ${res.status}); set CHAPERONE_COLLECTOR_TOKEN to an auditor token`,
    );
  if (res.status === 404) throw new Error('the collector has no such session (yet)');
  if (!res.ok) throw new Error(`the collector answered HTTP ${res.status}`);
  return (await res.json()) as SessionPage;
}

export async function sessionContext(
  sessionId: string | undefined,
  access: CollectorAccess,
): Promise<SessionContext> {
  if (!sessionId) return { kind: 'unavailable', reason: 'the request names no session' };
  if (!access.url)
    return {
      kind: 'unavailable',
      reason: 'no collector configured (pass --collector URL or set CHAPERONE_COLLECTOR_URL)',
    };
  let base: URL;
  try {
    base = new URL(access.url);
  } catch {
    return { kind: 'unavailable', reason: `--collector ${JSON.stringify(access.url)} is not a URL` };
  }
  const root = base.href.replace(/\/+$/, '');
  const api = `${root}/v1/sessions/${encodeURIComponent(sessionId)}`;
  try {
    // The summary says where the session ends; then one page of its last events.
    const head = await getJson(`${api}?limit=1`, access);
    const lastSeq = head.session?.lastSeq ?? 0;
    const afterSeq = Math.max(-1, lastSeq - RECENT_STATEMENTS * 4);
    const page = await getJson(`${api}?afterSeq=${afterSeq}&limit=${RECENT_STATEMENTS * 4 + 1}`, access);
    return {
      kind: 'statements',
      statements: recentStatements(page.events ?? []),
      sessionUrl: `${root}/ui/sessions/${encodeURIComponent(sessionId)}`,
    };
  } catch (err) {
    const e = err as Error & { cause?: { code?: string } };
    const reason =
      e.name === 'TimeoutError'
        ? 'the collector did not answer in time'
        : e.cause?.code
          ? `cannot reach the collector (${e.cause.code})`
          : e.message;
    return { kind: 'unavailable', reason };
  }
}
