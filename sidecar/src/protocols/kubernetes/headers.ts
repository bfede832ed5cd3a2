// What the agent may send and what goes upstream. Pure.
//
// The agent's credentials never reach the API server: a bearer token is its on-behalf-of OIDC
// identity (verified by the caller), any other Authorization scheme is refused, and the gateway's
// own token is the only one sent upstream. Impersonation would let the agent choose whom RBAC
// checks, so any Impersonate-* header is refused outright rather than stripped silently.

import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';

export type AgentHeaderCheck =
  | { ok: true; bearer?: string }
  | { ok: false; code: 400 | 401 | 403; reason: string };

export function checkAgentHeaders(headers: IncomingHttpHeaders): AgentHeaderCheck {
  for (const name of Object.keys(headers)) {
    if (name.startsWith('impersonate-')) {
      return { ok: false, code: 403, reason: `impersonation is not allowed through the gateway (${name})` };
    }
  }
  const auth = headers.authorization;
  if (auth === undefined) return { ok: true };
  const m = /^Bearer[ \t]+([^\s]+)[ \t]*$/i.exec(auth);
  if (!m) return { ok: false, code: 401, reason: 'only a bearer token (an OIDC ID token) is accepted' };
  return { ok: true, bearer: m[1]! };
}

/** Hop-by-hop and credential-bearing headers never forwarded upstream. */
const DROP_UPSTREAM = new Set([
  'authorization',
  'proxy-authorization',
  'cookie',
  'host',
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'forwarded',
  'content-length',
  'expect',
]);
const DROP_UPSTREAM_PREFIXES = ['impersonate-', 'x-remote-', 'x-forwarded-', 'proxy-'];

function connectionTokens(headers: IncomingHttpHeaders): Set<string> {
  const v = headers.connection;
  return new Set(
    (v ?? '')
      .split(',')
      .map((t) => t.trim().toLowerCase())
      .filter(Boolean),
  );
}

export interface UpstreamHeaderOptions {
  token: string;
  /** Accept only JSON, uncompressed (responses that must be inspected). */
  inspect: boolean;
  bodyLength?: number;
}

export function upstreamHeaders(
  headers: IncomingHttpHeaders,
  opts: UpstreamHeaderOptions,
): OutgoingHttpHeaders {
  const listed = connectionTokens(headers);
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || DROP_UPSTREAM.has(name) || listed.has(name)) continue;
    if (DROP_UPSTREAM_PREFIXES.some((p) => name.startsWith(p))) continue;
    out[name] = value;
  }
  out.authorization = `Bearer ${opts.token}`;
  if (opts.bodyLength !== undefined) out['content-length'] = String(opts.bodyLength);
  if (opts.inspect) {
    out.accept = jsonOnlyAccept(headers.accept);
    out['accept-encoding'] = 'identity';
  }
  return out;
}

const JSON_TYPE = 'application/json';

/**
 * Rewrites an Accept header so that every media range is JSON, keeping parameters such as
 * `as=Table;g=meta.k8s.io;v=v1` (the API server picks the representation from them). Protobuf,
 * CBOR and YAML cannot be inspected here, so they are never asked for.
 */
export function jsonOnlyAccept(accept: string | undefined): string {
  const ranges: string[] = [];
  for (const range of (accept ?? '').split(',')) {
    const [type, ...params] = range.split(';').map((p) => p.trim());
    if (!type) continue;
    const kept = params.filter((p) => p !== '' && !/^q=/i.test(p));
    const json = [JSON_TYPE, ...kept].join(';');
    if (!ranges.includes(json)) ranges.push(json);
  }
  if (!ranges.includes(JSON_TYPE)) ranges.push(JSON_TYPE);
  return ranges.join(',');
}

const DROP_DOWNSTREAM = new Set([
  'connection',
  'keep-alive',
  'transfer-encoding',
  'trailer',
  'upgrade',
  'proxy-connection',
  'te',
]);

/** Upstream response headers for the client; `rewritten` drops length/encoding of a changed body. */
export function downstreamHeaders(
  headers: IncomingHttpHeaders,
  rewritten: boolean,
): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || DROP_DOWNSTREAM.has(name)) continue;
    if (rewritten && (name === 'content-length' || name === 'content-encoding')) continue;
    out[name] = value;
  }
  return out;
}
