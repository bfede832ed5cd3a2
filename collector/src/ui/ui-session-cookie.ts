// Browsers cannot put a bearer token on a navigation, so the UI keeps the auditor's token (the OIDC
// ID token or the dev token) in a cookie and checks it on every request exactly as the API checks
// the header. Nothing is kept on the server: several collector replicas behind one Service all
// accept the cookie, and an ID token stops working in the UI when it expires.
import type { FastifyRequest } from 'fastify';

export const UI_COOKIE = 'chaperone_auditor';
/** An upper bound; an OIDC ID token usually expires well before. */
const MAX_AGE_SECONDS = 8 * 3600;

/** The first value of cookie `name` in a Cookie header. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0 || part.slice(0, eq).trim() !== name) continue;
    const value = part.slice(eq + 1).trim();
    try {
      return decodeURIComponent(value);
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/** The bearer credential of a UI request: the Authorization header wins over the cookie. */
export function uiAuthorization(req: FastifyRequest): string | undefined {
  if (req.headers.authorization) return req.headers.authorization;
  const token = readCookie(req.headers.cookie, UI_COOKIE);
  return token ? `Bearer ${token}` : undefined;
}

function attributes(req: FastifyRequest): string {
  // HttpOnly: page script (there is little, but a bug could add some) never sees the token.
  // SameSite=Strict: no other site can make the browser send it (covers CSRF on logout).
  // Secure whenever the collector is reached over TLS.
  return `Path=/ui; HttpOnly; SameSite=Strict${req.protocol === 'https' ? '; Secure' : ''}`;
}

export function sessionCookie(req: FastifyRequest, token: string): string {
  return `${UI_COOKIE}=${encodeURIComponent(token)}; ${attributes(req)}; Max-Age=${MAX_AGE_SECONDS}`;
}

export function clearedSessionCookie(req: FastifyRequest): string {
  return `${UI_COOKIE}=; ${attributes(req)}; Max-Age=0`;
}

/**
 * Where to go after logging in: only a path inside the UI, so that the login form cannot be used
 * to send an auditor to another site (an open redirect).
 */
export function safeReturnPath(next: string | undefined): string {
  if (!next?.startsWith('/ui') || next.startsWith('//')) return '/ui';
  try {
    const url = new URL(next, 'http://collector.invalid');
    if (url.origin !== 'http://collector.invalid') return '/ui';
    if (url.pathname !== '/ui' && !url.pathname.startsWith('/ui/')) return '/ui';
    if (url.pathname.startsWith('/ui/login') || url.pathname.startsWith('/ui/logout')) return '/ui';
    return url.pathname + url.search;
  } catch {
    return '/ui';
  }
}

/**
 * A form posted from another site. Browsers say where a request comes from in Sec-Fetch-Site
 * (current ones) or Origin; a request with neither is not from a browser and has no ambient
 * cookie to abuse. An opaque `Origin: null` (sandboxed frames, data: URLs) counts as foreign.
 */
export function isCrossSiteForm(req: FastifyRequest): boolean {
  const site = req.headers['sec-fetch-site'];
  if (typeof site === 'string') return site !== 'same-origin' && site !== 'none';
  const origin = req.headers.origin;
  if (origin === undefined) return false;
  if (origin === 'null') return true;
  try {
    return new URL(origin).host !== req.headers.host;
  } catch {
    return true;
  }
}
