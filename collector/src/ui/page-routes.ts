// The pages behind the login: session list, timeline, terminal replay and the replay exports.
import { SESSION_ID_PATTERN } from '@chaperone/api';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Auditor } from '../auth/auditor-auth.js';
import { ASCIICAST_CONTENT_TYPE, toAsciicast } from '../replay/asciicast.js';
import { toSqlTranscript } from '../replay/sql-transcript.js';
import type { EventStore } from '../store/event-store.js';
import { sessionState } from '../store/session-state.js';
import { verifySession } from '../verify/chain.js';
import { activityRange } from './activity-chart.js';
import { approvalRows, renderApprovalsPage } from './approvals-page.js';
import { renderMessagePage } from './layout.js';
import { setPageHeaders } from './security-headers.js';
import { loadSessionEvents, terminalStats } from './session-events.js';
import { renderSessionListPage } from './session-list-page.js';
import { parseListRequest } from './session-list-query.js';
import { renderTimelinePage } from './session-timeline-page.js';
import { renderTerminalPage } from './terminal-page.js';
import { authenticateUiRequest, type UiAuthDeps } from './ui-auth.js';

export interface PageRouteDeps extends UiAuthDeps {
  store: EventStore;
  abandonedAfterMs: number;
}

/** The approvals page covers this many days (?days=N for another window), at most APPROVALS_LIMIT events. */
export const APPROVALS_DAYS = 7;
export const APPROVALS_LIMIT = 2_000;

/** Events per timeline page: a long session pages instead of building one huge document. */
export const TIMELINE_PAGE = 1_000;

type Handler<P> = (
  req: FastifyRequest<{ Params: P; Querystring: Record<string, unknown> }>,
  reply: FastifyReply,
  auditor: Auditor,
) => Promise<unknown>;

const HTML = 'text/html; charset=utf-8';

export function registerPageRoutes(scope: FastifyInstance, deps: PageRouteDeps): void {
  const { store, assets } = deps;

  /** Only an authenticated auditor reaches `handler`. */
  const guarded =
    <P>(handler: Handler<P>) =>
    async (req: FastifyRequest<{ Params: P; Querystring: Record<string, unknown> }>, reply: FastifyReply) => {
      const auditor = await authenticateUiRequest(deps, req, reply);
      if (!auditor) return reply;
      return handler(req, reply, auditor);
    };

  const notFound = (reply: FastifyReply, auditor: Auditor, id: string) =>
    reply
      .code(404)
      .type(HTML)
      .send(
        renderMessagePage({
          title: 'No such session',
          message: `No session ${id} is stored (it may have been removed by retention).`,
          assets,
          auditor,
          link: { href: '/ui', text: 'Back to the session list' },
        }),
      );

  const findSession = async (reply: FastifyReply, auditor: Auditor, id: string) => {
    const session = SESSION_ID_PATTERN.test(id) ? await store.getSession(id) : undefined;
    if (!session) await notFound(reply, auditor, id);
    return session;
  };

  scope.get(
    '/',
    { schema: { hide: true } },
    guarded(async (req, reply, auditor) => {
      const request = parseListRequest(req.query);
      const now = new Date();
      const range = activityRange({ from: request.query?.from, to: request.query?.to, now });
      const [page, buckets] = request.query
        ? await Promise.all([store.searchSessions(request.query), store.activity(range)])
        : [undefined, []];
      return reply
        .code(request.query ? 200 : 400)
        .type(HTML)
        .send(
          renderSessionListPage({
            assets,
            auditor,
            request,
            page,
            ...(request.query ? { activity: { range, buckets } } : {}),
            stateOf: (s) => sessionState(s, now, deps.abandonedAfterMs),
          }),
        );
    }),
  );

  scope.get(
    '/approvals',
    { schema: { hide: true } },
    guarded(async (req, reply, auditor) => {
      const raw = req.query.days;
      const days =
        typeof raw === 'string' && /^\d{1,4}$/.test(raw) && Number(raw) > 0 ? Number(raw) : APPROVALS_DAYS;
      const since = new Date(Date.now() - days * 86_400_000);
      const rows = approvalRows(await store.approvalEvents({ since, limit: APPROVALS_LIMIT }));
      return reply.type(HTML).send(renderApprovalsPage({ assets, auditor, rows, sinceDays: days }));
    }),
  );

  scope.get(
    '/sessions/:id',
    { schema: { hide: true } },
    guarded<{ id: string }>(async (req, reply, auditor) => {
      const session = await findSession(reply, auditor, req.params.id);
      if (!session) return reply;
      const raw = req.query.afterSeq;
      const afterSeq = typeof raw === 'string' && /^-?\d{1,15}$/.test(raw) ? Math.max(-1, Number(raw)) : -1;
      const [events, verification] = await Promise.all([
        store.sessionEvents(session.sessionId, { afterSeq, limit: TIMELINE_PAGE }),
        verifySession(store, session.sessionId),
      ]);
      const last = events.at(-1);
      const nextAfterSeq =
        last && events.length === TIMELINE_PAGE && last.seq < session.lastSeq ? last.seq : null;
      return reply.type(HTML).send(
        renderTimelinePage({
          assets,
          auditor,
          session,
          events,
          afterSeq,
          nextAfterSeq,
          verification,
          state: sessionState(session, new Date(), deps.abandonedAfterMs),
        }),
      );
    }),
  );

  scope.get(
    '/sessions/:id/terminal',
    { schema: { hide: true } },
    guarded<{ id: string }>(async (req, reply, auditor) => {
      const session = await findSession(reply, auditor, req.params.id);
      if (!session) return reply;
      const stats = terminalStats(await loadSessionEvents(store, session.sessionId));
      setPageHeaders(reply, { wasm: true });
      return reply.type(HTML).send(
        renderTerminalPage({
          assets,
          auditor,
          session,
          frames: stats.frames,
          lastFrameSeconds: stats.lastSeconds,
        }),
      );
    }),
  );

  scope.get(
    '/sessions/:id/replay.cast',
    { schema: { hide: true } },
    guarded<{ id: string }>(async (req, reply, auditor) => {
      const session = await findSession(reply, auditor, req.params.id);
      if (!session) return reply;
      const events = await loadSessionEvents(store, session.sessionId);
      reply.header('content-disposition', `inline; filename="${session.sessionId}.cast"`);
      return reply.type(ASCIICAST_CONTENT_TYPE).send(toAsciicast(session, events));
    }),
  );

  scope.get(
    '/sessions/:id/transcript.txt',
    { schema: { hide: true } },
    guarded<{ id: string }>(async (req, reply, auditor) => {
      const session = await findSession(reply, auditor, req.params.id);
      if (!session) return reply;
      const events = await loadSessionEvents(store, session.sessionId);
      reply.header('content-disposition', `inline; filename="${session.sessionId}.txt"`);
      return reply.type('text/plain; charset=utf-8').send(toSqlTranscript(session, events));
    }),
  );
}
