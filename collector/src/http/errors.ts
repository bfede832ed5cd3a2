import type { FastifyError, FastifyInstance } from 'fastify';

/** Every error response has this shape: a stable code and a sentence that says what to fix. */
export interface ErrorBody {
  error: string;
  message: string;
  [detail: string]: unknown;
}

export const errorBodySchema = {
  type: 'object',
  required: ['error', 'message'],
  properties: { error: { type: 'string' }, message: { type: 'string' } },
  additionalProperties: true,
} as const;

/** Maps fastify's own errors (body limits, bad JSON, schema validation) to ErrorBody. */
export function installErrorHandler(
  app: FastifyInstance,
  onRejected: (url: string, reason: string) => void,
): void {
  app.setErrorHandler((err: FastifyError, req, reply) => {
    const send = (status: number, body: ErrorBody, reason: string) => {
      onRejected(req.routeOptions.url ?? req.url, reason);
      return reply.code(status).send(body);
    };
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      const limit = req.routeOptions.bodyLimit;
      return send(
        413,
        {
          error: 'payload_too_large',
          message: `request body exceeds the limit of ${limit} bytes; send smaller batches`,
        },
        'too_large',
      );
    }
    if (err.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || err.code === 'FST_ERR_CTP_EMPTY_JSON_BODY') {
      return send(
        400,
        { error: 'invalid_json', message: `request body is not valid JSON: ${err.message}` },
        'invalid_json',
      );
    }
    if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      return send(415, { error: 'unsupported_media_type', message: 'send application/json' }, 'media_type');
    }
    if (err.validation) {
      return send(400, { error: 'invalid_request', message: err.message }, 'invalid_request');
    }
    if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) {
      return send(err.statusCode, { error: 'bad_request', message: err.message }, 'bad_request');
    }
    req.log.error({ err }, 'request failed');
    return reply.code(500).send({ error: 'internal', message: 'internal error; see the collector log' });
  });
  app.setNotFoundHandler((req, reply) =>
    reply.code(404).send({ error: 'not_found', message: `no route ${req.method} ${req.url.split('?')[0]}` }),
  );
}
