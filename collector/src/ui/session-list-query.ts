// The list page's GET form, read into a store query. Unlike the JSON API, a mistake in a filter
// does not fail the request: the page shows the form again with a message next to it.
import { decodeCursor, encodeCursor, parseTimeParam } from '../auditor/cursor.js';
import {
  DECISION_FILTERS,
  type DecisionFilter,
  type SessionCursor,
  type SessionQuery,
} from '../store/event-store.js';
import { firstString } from './request-values.js';

export const LIST_FIELDS = ['identity', 'group', 'connection', 'from', 'to', 'decision', 'text'] as const;
export type ListField = (typeof LIST_FIELDS)[number];

/** What the auditor typed, to fill the form again. */
export type ListForm = Record<ListField, string>;

export interface ListRequest {
  form: ListForm;
  /** Set when the form is valid. */
  query?: SessionQuery;
  errors: string[];
}

export const DEFAULT_PAGE_SIZE = 50;
const MAX_PAGE_SIZE = 200;
const MAX_FIELD = 1000;

const first = (value: unknown): string => firstString(value)?.trim() ?? '';

export function parseListRequest(raw: Record<string, unknown>): ListRequest {
  const form = Object.fromEntries(LIST_FIELDS.map((f) => [f, first(raw[f])])) as ListForm;
  const errors: string[] = [];
  const limitText = first(raw.limit);
  const limit = limitText ? Number(limitText) : DEFAULT_PAGE_SIZE;
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_PAGE_SIZE)
    errors.push(`limit: expected a whole number from 1 to ${MAX_PAGE_SIZE}`);
  const query: SessionQuery = { limit: Math.min(Math.max(1, Math.trunc(limit) || 1), MAX_PAGE_SIZE) };

  for (const key of LIST_FIELDS) {
    if (form[key].length > MAX_FIELD) errors.push(`${key}: at most ${MAX_FIELD} characters`);
  }
  for (const key of ['identity', 'group', 'connection'] as const) {
    if (form[key]) query[key] = form[key];
  }
  for (const key of ['from', 'to'] as const) {
    if (!form[key]) continue;
    const t = parseTimeParam(form[key]);
    if (t) query[key] = t;
    else
      errors.push(
        `${key}: expected YYYY-MM-DD or an ISO 8601 date-time with a zone, like 2025-03-01T10:00:00Z`,
      );
  }
  if (query.from && query.to && query.from > query.to) errors.push('from must not be after to');
  if (form.decision) {
    if ((DECISION_FILTERS as readonly string[]).includes(form.decision))
      query.decision = form.decision as DecisionFilter;
    else errors.push(`decision: one of ${DECISION_FILTERS.join(', ')}`);
  }
  if (form.text) {
    // The text index matches substrings of three or more characters.
    if (form.text.length < 3) errors.push('statement text: at least 3 characters');
    else query.text = form.text;
  }
  const cursorText = first(raw.cursor);
  if (cursorText) {
    const cursor = decodeCursor(cursorText);
    if (cursor) query.cursor = cursor;
    else errors.push('cursor: not a page link of this UI; start from the first page');
  }
  return errors.length ? { form, errors } : { form, query, errors };
}

/** The list URL for these filters, optionally at a page. */
export function listUrl(form: ListForm, opts: { cursor?: SessionCursor; limit?: number } = {}): string {
  const params = new URLSearchParams();
  for (const key of LIST_FIELDS) if (form[key]) params.set(key, form[key]);
  if (opts.limit && opts.limit !== DEFAULT_PAGE_SIZE) params.set('limit', String(opts.limit));
  if (opts.cursor) params.set('cursor', encodeCursor(opts.cursor));
  const qs = params.toString();
  return qs ? `/ui?${qs}` : '/ui';
}
