import type { RecordingEvent } from '@chaperone/api';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Auditor, AuditorAuthenticator } from '../auth/auditor-auth.js';
import { AuthError } from '../auth/auth-error.js';
import { errorBodySchema } from '../http/errors.js';
import type { CollectorMetrics } from '../metrics.js';
import { ASCIICAST_CONTENT_TYPE, toAsciicast } from '../replay/asciicast.js';
import { toSqlTranscript } from '../replay/sql-transcript.js';
import {
  DECISION_FILTERS,
  type DecisionFilter,
  type EventStore,
  type SessionQuery,
  type SessionSummary,
} from '../store/event-store.js';
import { sessionState } from '../store/session-state.js';
import { verifyRange, verifySession } from '../verify/chain.js';
import { decodeCursor, encodeCursor, parseTimeRange } from './cursor.js';
import { sessionSummarySchema, verifyResponseSchema } from './schemas.js';

export interface AuditorRouteOptions {
  store: EventStore;
  auth: AuditorAuthenticator;
  metrics: CollectorMetrics;
  /** See session-state.ts; default 1 h. */
  abandonedAfterMs?: number;
}

declare module 'fastify' {
  interface FastifyRequest {
    auditor?: Auditor;
  }
}

const SESSION_ID = { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$' } as const;
const errors = {
  400: errorBodySchema,
  401: errorBodySchema,
  403: errorBodySchema,
  404: errorBodySchema,
} as const;
const security = [{ auditorToken: [] }];
const EVENT_PAGE = 5_000;

const badRequest = (reply: FastifyReply, message: string) =>
  reply.code(400).send({ error: 'invalid_request', message });

export function registerAuditorRoutes(app: FastifyInstance, opts: AuditorRouteOptions): void {
  const { store } = opts;
  const withState = (s: SessionSummary) => ({
    ...s,
    state: sessionState(s, new Date(), opts.abandonedAfterMs),
  });

  app.register(async (scope) => {
    scope.addHook('onRequest', async (req, reply) => {
      try {
        req.auditor = await opts.auth.authenticate(req.headers.authorization);
      } catch (err) {
        if (!(err instanceof AuthError)) throw err;
        opts.metrics.authFailures.inc({ api: 'auditor', reason: err.reason });
        if (err.status === 401) reply.header('www-authenticate', 'Bearer realm="chaperone-collector"');
        return reply.code(err.status).send({ error: err.code, message: err.message });
      }
    });

    scope.get<{
      Querystring: {
        identity?: string;
        group?: string;
        verb?: string;
        resource?: string;
        namespace?: string;
        connection?: string;
        from?: string;
        to?: string;
        decision?: DecisionFilter;
        text?: string;
        limit: number;
        cursor?: string;
      };
    }>(
      '/v1/sessions',
      {
        schema: {
          summary: 'Search sessions, newest first',
          description:
            'All filters combine (AND). Pages are keyset-paginated: pass nextCursor back as cursor; a page costs the same however deep it is.',
          tags: ['auditor'],
          security,
          querystring: {
            type: 'object',
            additionalProperties: false,
            properties: {
              identity: {
                type: 'string',
                maxLength: 512,
                description: 'ServiceAccount (namespace/name) or user, exact',
              },
              group: { type: 'string', maxLength: 512, description: 'a group of the identity, exact' },
              verb: {
                type: 'string',
                maxLength: 64,
                description:
                  'Kubernetes sessions with an API request of this verb (get, list, delete…), exact',
              },
              resource: {
                type: 'string',
                maxLength: 253,
                description:
                  'Kubernetes sessions with an API request on this resource (pods, secrets…), exact',
              },
              namespace: {
                type: 'string',
                maxLength: 253,
                description: 'Kubernetes sessions with an API request in this namespace, exact',
              },
              connection: { type: 'string', maxLength: 512 },
              from: {
                type: 'string',
                description: 'sessions active at or after this time (ISO 8601 or YYYY-MM-DD)',
              },
              to: { type: 'string', description: 'sessions active at or before this time' },
              decision: {
                type: 'string',
                enum: [...DECISION_FILTERS],
                description:
                  'sessions with at least one statement allowed / denied / approved, or masked values',
              },
              text: {
                type: 'string',
                minLength: 3,
                maxLength: 1000,
                description: 'case-insensitive substring of a recorded statement',
              },
              limit: { type: 'integer', minimum: 1, maximum: 500, default: 50 },
              cursor: { type: 'string', maxLength: 1000 },
            },
          },
          response: {
            200: {
              type: 'object',
              properties: {
                sessions: { type: 'array', items: sessionSummarySchema },
                nextCursor: { type: ['string', 'null'], description: 'null on the last page' },
              },
            },
            ...errors,
          },
        },
      },
      async (req, reply) => {
        const q = req.query;
        const query: SessionQuery = { limit: q.limit };
        const keys = [
          'identity',
          'group',
          'verb',
          'resource',
          'namespace',
          'connection',
          'decision',
          'text',
        ] as const;
        for (const key of keys) {
          if (q[key] !== undefined && q[key] !== '') Object.assign(query, { [key]: q[key] });
        }
        const parsed = parseTimeRange(q);
        if (!parsed.ok) return badRequest(reply, parsed.message);
        Object.assign(query, parsed.range);
        if (query.from && query.to && query.from > query.to)
          return badRequest(reply, 'from must not be after to');
        if (q.cursor) {
          const cursor = decodeCursor(q.cursor);
          if (!cursor) return badRequest(reply, 'cursor: not a cursor returned by this API');
          query.cursor = cursor;
        }
        const page = await store.searchSessions(query);
        return {
          sessions: page.sessions.map(withState),
          nextCursor: page.nextCursor ? encodeCursor(page.nextCursor) : null,
        };
      },
    );

    scope.get<{ Params: { id: string }; Querystring: { afterSeq: number; limit: number } }>(
      '/v1/sessions/:id',
      {
        schema: {
          summary: 'A session: its summary and its events in seq order',
          description:
            'Events are returned exactly as stored (the canonical JSON the hash chain covers). Long sessions page with afterSeq = nextAfterSeq.',
          tags: ['auditor'],
          security,
          params: { type: 'object', properties: { id: SESSION_ID }, required: ['id'] },
          querystring: {
            type: 'object',
            additionalProperties: false,
            properties: {
              afterSeq: { type: 'integer', minimum: -1, default: -1 },
              limit: { type: 'integer', minimum: 1, maximum: EVENT_PAGE, default: 1000 },
            },
          },
          response: {
            200: {
              type: 'object',
              properties: {
                session: sessionSummarySchema,
                events: { type: 'array', items: { type: 'object', additionalProperties: true } },
                nextAfterSeq: { type: ['integer', 'null'] },
              },
            },
            ...errors,
          },
        },
      },
      async (req, reply) => {
        const session = await store.getSession(req.params.id);
        if (!session) return notFound(reply, req.params.id);
        const rows = await store.sessionEvents(req.params.id, {
          afterSeq: req.query.afterSeq,
          limit: req.query.limit,
        });
        const last = rows.at(-1);
        const next = last && rows.length === req.query.limit && last.seq < session.lastSeq ? last.seq : null;
        // The stored texts are JSON already: splice them in instead of parsing and re-serializing.
        reply.type('application/json');
        return `{"session":${JSON.stringify(withState(session))},"events":[${rows.map((r) => r.canonical).join(',')}],"nextAfterSeq":${next}}`;
      },
    );

    scope.get<{ Params: { id: string }; Querystring: { format: 'auto' | 'asciicast' | 'transcript' } }>(
      '/v1/sessions/:id/replay',
      {
        schema: {
          summary: 'Replay export of a session',
          description:
            'asciicast v2 (application/x-asciicast) for terminal sessions, built from output events; a plain-text transcript for SQL and other sessions: time, decision, statement, result rows and masked values, approvals with who decided. format=auto picks by protocol.',
          tags: ['auditor'],
          security,
          params: { type: 'object', properties: { id: SESSION_ID }, required: ['id'] },
          querystring: {
            type: 'object',
            additionalProperties: false,
            properties: {
              format: { type: 'string', enum: ['auto', 'asciicast', 'transcript'], default: 'auto' },
            },
          },
          response: {
            200: {
              description: 'asciicast v2 lines or a text/plain transcript',
              content: {
                [ASCIICAST_CONTENT_TYPE]: { schema: { type: 'string' } },
                'text/plain': { schema: { type: 'string' } },
              },
            },
            ...errors,
          },
        },
      },
      async (req, reply) => {
        const session = await store.getSession(req.params.id);
        if (!session) return notFound(reply, req.params.id);
        const events: RecordingEvent[] = [];
        let afterSeq = -1;
        for (;;) {
          const rows = await store.sessionEvents(session.sessionId, { afterSeq, limit: EVENT_PAGE });
          for (const r of rows) events.push(JSON.parse(r.canonical) as RecordingEvent);
          const last = rows.at(-1);
          if (!last || rows.length < EVENT_PAGE) break;
          afterSeq = last.seq;
        }
        const terminal =
          req.query.format === 'asciicast' ||
          (req.query.format === 'auto' &&
            (session.protocol === 'ssh' ||
              (session.protocol === null && events.some((e) => e.type === 'output'))));
        reply.header(
          'content-disposition',
          `inline; filename="${session.sessionId}.${terminal ? 'cast' : 'txt'}"`,
        );
        if (terminal) return reply.type(ASCIICAST_CONTENT_TYPE).send(toAsciicast(session, events));
        return reply.type('text/plain; charset=utf-8').send(toSqlTranscript(session, events));
      },
    );

    scope.get<{ Querystring: { session?: string; from?: string; to?: string } }>(
      '/v1/verify',
      {
        schema: {
          summary: 'Verify hash chains: one session, or every session active in a time range',
          description:
            'ok=false names each broken session and link: the seq whose prevHash does not match (expected vs actual), missing seqs, events altered after ingest. A broken chain is still a 200: the check itself succeeded.',
          tags: ['auditor'],
          security,
          querystring: {
            type: 'object',
            additionalProperties: false,
            properties: { session: SESSION_ID, from: { type: 'string' }, to: { type: 'string' } },
          },
          response: { 200: verifyResponseSchema, ...errors },
        },
      },
      async (req, reply) => {
        const { session, from, to } = req.query;
        if (session !== undefined) {
          if (from !== undefined || to !== undefined)
            return badRequest(reply, 'give either session or from/to, not both');
          if (!(await store.getSession(session))) return notFound(reply, session);
          const v = await verifySession(store, session);
          return {
            ok: v.ok,
            from: null,
            to: null,
            sessionsChecked: 1,
            eventsChecked: v.events,
            broken: v.ok ? [] : [v],
          };
        }
        if (from === undefined && to === undefined)
          return badRequest(reply, 'give session=ID, or from and/or to');
        const parsed = parseTimeRange({ from, to }, { emptyIsAbsent: false });
        if (!parsed.ok) return badRequest(reply, parsed.message);
        const range = parsed.range;
        return verifyRange(store, range);
      },
    );
  });
}

function notFound(reply: FastifyReply, id: string) {
  return reply.code(404).send({ error: 'not_found', message: `no session ${id}` });
}
