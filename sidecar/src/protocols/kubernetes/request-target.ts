// Normalises an HTTP request target before anything decides on it. The gateway forwards the
// canonical form it returns, so the path policy sees and the path the API server routes are one
// and the same string: ambiguity is refused, never interpreted.

export interface RequestTarget {
  /** Canonical path: decoded segments, no empty, `.` or `..` segments, no trailing slash. */
  readonly path: string;
  /** Decoded path segments of `path`. */
  readonly segments: readonly string[];
  /** The query exactly as received (without `?`): it parses identically in Go once accepted. */
  readonly rawQuery: string;
  /** Decoded query pairs in order; Go's `url.Query()` sees the same. */
  readonly query: ReadonlyArray<readonly [string, string]>;
}

export type RequestTargetResult = { ok: true; target: RequestTarget } | { ok: false; reason: string };

const MAX_TARGET_LENGTH = 8192;

/** Characters left as-is when a decoded segment is re-encoded (RFC 3986 pchar minus `%`). */
const PCHAR_SAFE = /[A-Za-z0-9\-._~!$&'()*+,;=:@]/;

export function encodeSegment(segment: string): string {
  let out = '';
  for (const ch of segment) out += PCHAR_SAFE.test(ch) ? ch : encodeURIComponent(ch);
  return out;
}

function hasControl(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}

function strictDecode(s: string): string | undefined {
  if (/%(?![0-9A-Fa-f]{2})/.test(s)) return undefined;
  try {
    return decodeURIComponent(s);
  } catch {
    return undefined; // invalid UTF-8 after decoding
  }
}

function normalisePath(rawPath: string): { segments: string[] } | { reason: string } {
  const segments: string[] = [];
  for (const raw of rawPath.split('/')) {
    const seg = strictDecode(raw);
    if (seg === undefined) return { reason: 'invalid percent-encoding in path' };
    // An encoded slash or percent would mean one thing here and another to a server or proxy
    // that decodes once more; a backslash is a separator to some implementations.
    if (seg.includes('/')) return { reason: 'encoded "/" in path' };
    if (seg.includes('%')) return { reason: 'double percent-encoding in path' };
    if (seg.includes('\\')) return { reason: 'backslash in path' };
    if (hasControl(seg)) return { reason: 'control character in path' };
    if (seg === '' || seg === '.') continue;
    if (seg === '..') {
      if (segments.length === 0) return { reason: 'path escapes the root' };
      segments.pop();
      continue;
    }
    segments.push(seg);
  }
  return { segments };
}

/** Go's url.ParseQuery as the API server reads it, refusing what Go would silently drop. */
export function parseQuery(rawQuery: string): Array<[string, string]> | { reason: string } {
  const pairs: Array<[string, string]> = [];
  if (rawQuery.includes(';')) return { reason: 'semicolon in query (Go ignores such pairs)' };
  for (const part of rawQuery.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const rawKey = eq < 0 ? part : part.slice(0, eq);
    const rawValue = eq < 0 ? '' : part.slice(eq + 1);
    const key = strictDecode(rawKey.replaceAll('+', ' '));
    const value = strictDecode(rawValue.replaceAll('+', ' '));
    if (key === undefined || value === undefined) return { reason: 'invalid percent-encoding in query' };
    pairs.push([key, value]);
  }
  return pairs;
}

/** Accepts only origin-form targets (`/path?query`), as a server (not a forward proxy) does. */
export function normaliseRequestTarget(rawTarget: string): RequestTargetResult {
  if (rawTarget.length > MAX_TARGET_LENGTH) return { ok: false, reason: 'request target too long' };
  if (!rawTarget.startsWith('/')) return { ok: false, reason: 'request target must be a path' };
  if (rawTarget.includes('#')) return { ok: false, reason: 'fragment in request target' };
  const q = rawTarget.indexOf('?');
  const rawPath = q < 0 ? rawTarget : rawTarget.slice(0, q);
  const rawQuery = q < 0 ? '' : rawTarget.slice(q + 1);
  const path = normalisePath(rawPath);
  if ('reason' in path) return { ok: false, reason: path.reason };
  const query = parseQuery(rawQuery);
  if ('reason' in query) return { ok: false, reason: query.reason };
  return {
    ok: true,
    target: {
      path: `/${path.segments.map(encodeSegment).join('/')}`,
      segments: path.segments,
      rawQuery,
      query,
    },
  };
}

export function firstQueryValue(
  query: ReadonlyArray<readonly [string, string]>,
  key: string,
): string | undefined {
  for (const [k, v] of query) if (k === key) return v;
  return undefined;
}
