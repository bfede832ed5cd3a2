import type { SessionCursor } from '../store/event-store.js';

/** Opaque to clients: base64url of [startMs, sessionId]. */
export function encodeCursor(c: SessionCursor): string {
  return Buffer.from(JSON.stringify([c.startMs, c.sessionId])).toString('base64url');
}

export function decodeCursor(text: string): SessionCursor | undefined {
  try {
    const v: unknown = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
    if (Array.isArray(v) && v.length === 2 && Number.isSafeInteger(v[0]) && typeof v[1] === 'string') {
      return { startMs: v[0] as number, sessionId: v[1] };
    }
  } catch {
    // fall through: reported by the caller
  }
  return undefined;
}

const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/;
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;

/** `2025-01-31` (UTC midnight) or an ISO 8601 date-time with a zone; anything else is ambiguous. */
export function parseTimeParam(text: string): Date | undefined {
  if (!DATE_ONLY.test(text) && !DATE_TIME.test(text)) return undefined;
  const ms = Date.parse(DATE_ONLY.test(text) ? `${text}T00:00:00Z` : text);
  return Number.isFinite(ms) ? new Date(ms) : undefined;
}

/**
 * Parses optional `from` / `to` query values (empty means absent) into a time range, or says what
 * is wrong with them — shared by session search and range verification.
 */
export function parseTimeRange(
  values: { from?: string; to?: string },
  { emptyIsAbsent = true }: { emptyIsAbsent?: boolean } = {},
): { ok: true; range: { from?: Date; to?: Date } } | { ok: false; message: string } {
  const range: { from?: Date; to?: Date } = {};
  for (const key of ['from', 'to'] as const) {
    const raw = values[key];
    if (raw === undefined || (raw === '' && emptyIsAbsent)) continue;
    const t = parseTimeParam(raw);
    if (!t)
      return {
        ok: false,
        message: `${key}: expected YYYY-MM-DD or an ISO 8601 date-time with a zone, got ${raw}`,
      };
    range[key] = t;
  }
  return { ok: true, range };
}
