import { hash } from 'node:crypto';
import { validateRecordingEvent } from '@chaperone/api';
import type { PreparedEvent } from '../store/event-store.js';
import { canonicalText } from './canonical-text.js';

export interface RejectedEvent {
  index: number;
  sessionId?: string;
  seq?: number;
  errors: string[];
}

export type PreparedBatch =
  | { ok: true; events: PreparedEvent[] }
  | { ok: false; status: 400 | 413; error: string; message: string; events?: RejectedEvent[] };

/** Reported per response; a batch of garbage should not produce a megabyte of errors. */
const MAX_REPORTED = 20;

function locate(index: number, value: unknown): RejectedEvent {
  const v = (typeof value === 'object' && value !== null ? value : {}) as {
    sessionId?: unknown;
    seq?: unknown;
  };
  return {
    index,
    ...(typeof v.sessionId === 'string' ? { sessionId: v.sessionId } : {}),
    ...(typeof v.seq === 'number' ? { seq: v.seq } : {}),
    errors: [],
  };
}

export function describeEvent(r: Omit<RejectedEvent, 'errors'>): string {
  return `event ${r.index}${r.sessionId !== undefined ? ` (session ${r.sessionId}${r.seq !== undefined ? ` seq ${r.seq}` : ''})` : ''}`;
}

/**
 * Validates a request body `{ events: [...] }` and computes each event's canonical text and hash.
 * All or nothing: one invalid event refuses the whole batch, so a producer never has to work out
 * which part of a batch was kept.
 */
export function prepareBatch(body: unknown, maxEvents: number): PreparedBatch {
  if (
    typeof body !== 'object' ||
    body === null ||
    Array.isArray(body) ||
    !Array.isArray((body as { events?: unknown }).events)
  ) {
    return {
      ok: false,
      status: 400,
      error: 'invalid_batch',
      message: 'body must be a JSON object { "events": [ … ] }',
    };
  }
  const extra = Object.keys(body).filter((k) => k !== 'events');
  if (extra.length) {
    return {
      ok: false,
      status: 400,
      error: 'invalid_batch',
      message: `unknown field ${extra[0]} in the batch; only "events" is accepted`,
    };
  }
  const raw = (body as { events: unknown[] }).events;
  if (raw.length > maxEvents) {
    return {
      ok: false,
      status: 413,
      error: 'batch_too_large',
      message: `batch of ${raw.length} events exceeds the limit of ${maxEvents}; split it`,
    };
  }
  const rejected: RejectedEvent[] = [];
  let rejectedCount = 0;
  const events: PreparedEvent[] = [];
  raw.forEach((value, index) => {
    const result = validateRecordingEvent(value);
    if (!result.ok) {
      rejectedCount++;
      if (rejected.length < MAX_REPORTED) rejected.push({ ...locate(index, value), errors: result.errors });
      return;
    }
    const canonical = canonicalText(result.event);
    events.push({ event: result.event, canonical, hash: hash('sha256', canonical, 'hex') });
  });
  const first = rejected[0];
  if (first) {
    return {
      ok: false,
      status: 400,
      error: 'invalid_event',
      message: `${describeEvent(first)}: ${first.errors.join('; ')}${rejectedCount > 1 ? ` (and ${rejectedCount - 1} more invalid events)` : ''}; nothing from this batch was stored`,
      events: rejected,
    };
  }
  return { ok: true, events };
}
