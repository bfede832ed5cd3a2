// The auditor web UI: server-rendered pages under /ui, no front-end build. One registration line
// in the app factory: `registerUi(app, { store, auth: auditorAuth, metrics })`.
import type { FastifyError, FastifyInstance } from 'fastify';
import type { AuditorAuthenticator } from '../auth/auditor-auth.js';
import { AuthError } from '../auth/auth-error.js';
import type { CollectorMetrics } from '../metrics.js';
import type { EventStore } from '../store/event-store.js';
import { DEFAULT_ABANDONED_AFTER_MS } from '../store/session-state.js';
import { renderMessagePage } from './layout.js';
import { renderLoginPage } from './login-page.js';
import { registerPageRoutes } from './page-routes.js';
import { firstString } from './request-values.js';
import { setAssetHeaders, setPageHeaders } from './security-headers.js';
import { loadUiAssets } from './ui-assets.js';
import { type LoginReason, loginUrl } from './ui-auth.js';
import { clearedSessionCookie, isCrossSiteForm, safeReturnPath, sessionCookie } from './ui-session-cookie.js';

export interface UiOptions {
  store: EventStore;
  /** The auditor API's authenticator: the UI admits exactly whom the API admits. */
  auth: Pick<AuditorAuthenticator, 'authenticate'>;
  /** Refused logins are counted with api="ui". */
  metrics?: Pick<CollectorMetrics, 'authFailures'>;
  /** See session-state.ts; default 1 h. */
  abandonedAfterMs?: number;
}

const HTML = 'text/html; charset=utf-8';
/** Enough for a large OIDC ID token; a login form has nothing else. */
const LOGIN_BODY_LIMIT = 32 * 1024;

const LOGIN_NOTICES: Record<LoginReason, string> = {
  expired: 'Your login is no longer valid (the token expired or was replaced). Log in again.',
  'logged-out': 'You are logged out.',
};

export function registerUi(app: FastifyInstance, opts: UiOptions): void {
  // Read once, here: a missing player package fails the collector's start, not an auditor's page.
  const assets = loadUiAssets();
  const deps = {
    store: opts.store,
    auth: opts.auth,
    metrics: opts.metrics,
    assets,
    abandonedAfterMs: opts.abandonedAfterMs ?? DEFAULT_ABANDONED_AFTER_MS,
  };

  app.register(
    async (ui) => {
      // Login posts an HTML form; the rest of the collector accepts JSON only.
      ui.addContentTypeParser(
        'application/x-www-form-urlencoded',
        { parseAs: 'string', bodyLimit: LOGIN_BODY_LIMIT },
        (_req, body, done) => done(null, Object.fromEntries(new URLSearchParams(body as string))),
      );
      ui.addHook('onRequest', async (_req, reply) => setPageHeaders(reply));
      // Errors become pages here, not the API's JSON bodies.
      ui.setErrorHandler((err: FastifyError, req, reply) => {
        const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
        if (status === 500) req.log.error({ err }, 'UI request failed');
        return reply
          .code(status)
          .type(HTML)
          .send(
            renderMessagePage({
              title: status === 500 ? 'Something went wrong' : 'Bad request',
              message: status === 500 ? 'Internal error; see the collector log.' : err.message,
              assets,
            }),
          );
      });
      ui.setNotFoundHandler((req, reply) =>
        reply
          .code(404)
          .type(HTML)
          .send(
            renderMessagePage({
              title: 'Not found',
              message: `There is no page ${req.url.split('?')[0]}.`,
              assets,
              link: { href: '/ui', text: 'Back to the session list' },
            }),
          ),
      );

      ui.get<{ Params: { name: string } }>(
        '/assets/:name',
        { schema: { hide: true } },
        async (req, reply) => {
          const asset = assets.get(req.params.name);
          if (!asset) return reply.callNotFound();
          setAssetHeaders(reply);
          return reply.type(asset.contentType).send(asset.body);
        },
      );

      ui.get<{ Querystring: Record<string, unknown> }>(
        '/login',
        { schema: { hide: true } },
        async (req, reply) => {
          const reason = firstString(req.query.reason);
          const notice =
            reason && Object.hasOwn(LOGIN_NOTICES, reason) ? LOGIN_NOTICES[reason as LoginReason] : undefined;
          return reply
            .type(HTML)
            .send(renderLoginPage({ assets, next: safeReturnPath(firstString(req.query.next)), notice }));
        },
      );

      ui.post<{ Body: Record<string, unknown> | undefined }>(
        '/login',
        { schema: { hide: true }, bodyLimit: LOGIN_BODY_LIMIT },
        async (req, reply) => {
          const next = safeReturnPath(firstString(req.body?.next));
          const again = (status: number, error: string) =>
            reply.code(status).type(HTML).send(renderLoginPage({ assets, next, error }));
          if (isCrossSiteForm(req))
            return again(403, 'This login form was posted from another site; refused.');
          const token = firstString(req.body?.token)?.trim() ?? '';
          if (!token) return again(400, 'Paste a token.');
          if (/\s/.test(token)) return again(401, 'A token is a single word without spaces or line breaks.');
          try {
            await opts.auth.authenticate(`Bearer ${token}`);
          } catch (err) {
            if (!(err instanceof AuthError)) throw err;
            opts.metrics?.authFailures.inc({ api: 'ui', reason: err.reason });
            return again(err.status, err.message);
          }
          reply.header('set-cookie', sessionCookie(req, token));
          return reply.redirect(next, 303);
        },
      );

      ui.post('/logout', { schema: { hide: true } }, async (req, reply) => {
        if (isCrossSiteForm(req))
          return reply
            .code(403)
            .type(HTML)
            .send(renderMessagePage({ title: 'Refused', message: 'Cross-site logout refused.', assets }));
        reply.header('set-cookie', clearedSessionCookie(req));
        return reply.redirect(loginUrl('/ui', 'logged-out'), 303);
      });

      registerPageRoutes(ui, deps);
    },
    { prefix: '/ui' },
  );
}
