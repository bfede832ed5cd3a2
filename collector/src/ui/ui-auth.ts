import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Auditor, AuditorAuthenticator } from '../auth/auditor-auth.js';
import { AuthError } from '../auth/auth-error.js';
import type { CollectorMetrics } from '../metrics.js';
import { renderMessagePage } from './layout.js';
import type { UiAssets } from './ui-assets.js';
import { clearedSessionCookie, readCookie, UI_COOKIE, uiAuthorization } from './ui-session-cookie.js';

export interface UiAuthDeps {
  auth: Pick<AuditorAuthenticator, 'authenticate'>;
  metrics?: Pick<CollectorMetrics, 'authFailures'>;
  assets: UiAssets;
}

/** Why the login page is shown, as a fixed code: the page never displays text taken from a URL. */
export type LoginReason = 'expired' | 'logged-out';

export function loginUrl(next: string, reason?: LoginReason): string {
  const params = new URLSearchParams();
  if (next !== '/ui') params.set('next', next);
  if (reason) params.set('reason', reason);
  const qs = params.toString();
  return qs ? `/ui/login?${qs}` : '/ui/login';
}

/**
 * The auditor behind a UI request (cookie or bearer header), checked like an API call. Otherwise
 * the reply is sent — a redirect to the login form, or a page saying why access is refused — and
 * the result is undefined.
 */
export async function authenticateUiRequest(
  deps: UiAuthDeps,
  req: FastifyRequest,
  reply: FastifyReply,
): Promise<Auditor | undefined> {
  try {
    return await deps.auth.authenticate(uiAuthorization(req));
  } catch (err) {
    if (!(err instanceof AuthError)) throw err;
    deps.metrics?.authFailures.inc({ api: 'ui', reason: err.reason });
    if (err.status === 401) {
      // A cookie that no longer works (expired ID token, rotated dev token) is dropped.
      const hadCookie = readCookie(req.headers.cookie, UI_COOKIE) !== undefined;
      if (hadCookie) reply.header('set-cookie', clearedSessionCookie(req));
      await reply.redirect(loginUrl(req.url, hadCookie ? 'expired' : undefined), 303);
      return undefined;
    }
    await reply
      .code(err.status)
      .type('text/html; charset=utf-8')
      .send(
        renderMessagePage({
          title: err.status === 403 ? 'Not an auditor' : 'Cannot check your login',
          message: err.message,
          assets: deps.assets,
          link: { href: '/ui/login', text: 'Log in with another token' },
        }),
      );
    return undefined;
  }
}
