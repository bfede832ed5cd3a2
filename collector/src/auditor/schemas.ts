// OpenAPI (JSON Schema) shapes of the auditor API, used for docs and response serialization.
export const sessionSummarySchema = {
  type: 'object',
  properties: {
    sessionId: { type: 'string' },
    connection: { type: 'string' },
    protocol: { type: ['string', 'null'] },
    client: { type: ['string', 'null'] },
    application: { type: ['string', 'null'] },
    identity: {
      type: 'object',
      properties: {
        serviceAccount: { type: ['string', 'null'] },
        pod: { type: ['string', 'null'] },
        user: { type: ['string', 'null'] },
        groups: { type: 'array', items: { type: 'string' } },
      },
    },
    startTime: { type: 'string', format: 'date-time' },
    endTime: { type: 'string', format: 'date-time', description: 'time of the latest stored event' },
    ended: { type: 'boolean', description: 'a session.end event is stored' },
    state: {
      type: 'string',
      enum: ['running', 'ended', 'abandoned'],
      description:
        'ended: a session.end is stored; abandoned: none, and no event for longer than --abandoned-after (the sidecar most likely died); running otherwise',
    },
    endReason: { type: ['string', 'null'] },
    events: { type: 'integer' },
    lastSeq: { type: 'integer' },
    missingEvents: { type: 'integer', description: 'sequence numbers up to lastSeq not received (yet)' },
    counts: {
      type: 'object',
      properties: {
        statements: { type: 'integer' },
        allowed: { type: 'integer' },
        denied: { type: 'integer' },
        approved: { type: 'integer' },
        maskedValues: { type: 'integer' },
      },
    },
  },
} as const;

const problemSchema = {
  type: 'object',
  properties: {
    kind: { type: 'string', enum: ['missing', 'broken-link', 'altered', 'after-end'] },
    seq: { type: 'integer' },
    fromSeq: { type: 'integer' },
    toSeq: { type: 'integer' },
    expectedPrevHash: { type: 'string' },
    actualPrevHash: { type: 'string' },
    message: { type: 'string' },
  },
} as const;

export const sessionVerificationSchema = {
  type: 'object',
  properties: {
    sessionId: { type: 'string' },
    ok: { type: 'boolean' },
    events: { type: 'integer' },
    lastSeq: { type: 'integer' },
    ended: { type: 'boolean' },
    lastEventTime: { type: ['string', 'null'] },
    problems: { type: 'array', items: problemSchema },
  },
} as const;

export const verifyResponseSchema = {
  type: 'object',
  properties: {
    ok: { type: 'boolean' },
    from: { type: ['string', 'null'] },
    to: { type: ['string', 'null'] },
    sessionsChecked: { type: 'integer' },
    eventsChecked: { type: 'integer' },
    broken: { type: 'array', items: sessionVerificationSchema, description: 'sessions with problems only' },
  },
} as const;
