import { type Pending, parseRowDescription, type ResultLayout, withFormats } from './extended-query.js';
import { buildLayout, copyData, redactErrorDetail, startCopyMasking } from './result-masking.js';
import type { PostgresSessionState } from './session-state.js';
import * as msg from './wire/backend-messages.js';
import { Backend } from './wire/codes.js';
import type { Frame } from './wire/message-reader.js';

/**
 * Handles one server frame (the server half of the frame state machine): pairs it with the head
 * of the pending queue, masks rows, rewrites denial stand-ins, counts results. Returns a promise
 * only when a result layout must first be looked up in the catalog. DataRow is the hot path.
 */
export function onServerFrame(s: PostgresSessionState, f: Frame): Promise<void> | undefined {
  const head = s.query.pending[0];
  switch (f.type) {
    case Backend.DataRow:
      return onDataRow(s, f, head);
    case Backend.RowDescription:
      return onRowDescription(s, f, head);
    case Backend.ParameterDescription:
      if (head?.kind === 'describe-statement' && head.hidden) return undefined;
      s.toClient(f.raw);
      return undefined;
    case Backend.NoData:
      if (head?.kind === 'describe-statement' || head?.kind === 'describe-portal') {
        s.query.pending.shift();
        if (head.kind === 'describe-statement' && head.hidden) return undefined;
      }
      s.toClient(f.raw);
      return undefined;
    case Backend.ParseComplete:
    case Backend.BindComplete:
    case Backend.CloseComplete:
      s.query.pending.shift();
      s.toClient(f.raw);
      return undefined;
    case Backend.CommandComplete:
    case Backend.EmptyQueryResponse:
    case Backend.PortalSuspended:
      onResultEnd(s, f, head);
      return undefined;
    case Backend.CopyOutResponse:
      s.toClient(f.raw);
      if (head?.kind === 'query' && s.masks && s.maskingContext)
        return startCopyMasking(s.maskingContext, head, f.body);
      return undefined;
    case Backend.CopyData:
      onCopyData(s, f, head);
      return undefined;
    case Backend.ErrorResponse:
      onErrorResponse(s, f, head);
      return undefined;
    case Backend.ReadyForQuery:
      s.query.pending.shift();
      // Stand-ins the server skipped (after an earlier error) will never report back.
      if (s.query.pending.length === 0) s.denials.clear();
      s.toClient(f.raw);
      return undefined;
    default:
      // ParameterStatus, NoticeResponse, NotificationResponse, CopyIn/Both responses, CopyDone…
      s.toClient(f.raw);
      return undefined;
  }
}

function onDataRow(s: PostgresSessionState, f: Frame, head: Pending | undefined): Promise<void> | undefined {
  let layout: ResultLayout | undefined;
  if (!s.masks) {
    // Fast path: nothing to mask in this session.
  } else if (head?.kind === 'query') layout = head.layout;
  else if (head?.kind === 'execute') {
    const portal = s.query.portals.get(head.portal);
    layout = portal?.layout;
    const stmt = portal && !layout ? s.query.statements.get(portal.statement) : undefined;
    if (portal && stmt?.columns) {
      // First row of a portal nobody described: its layout is the statement's columns in
      // the formats Bind asked for, built once per statement and format list.
      const key = portal.formats.join(',');
      const cached = stmt.layouts?.get(key);
      if (cached) {
        portal.layout = cached;
        layout = cached;
      } else {
        return layoutFor(s, withFormats(stmt.columns, portal.formats)).then((l) => {
          portal.layout = l;
          stmt.layouts ??= new Map();
          stmt.layouts.set(key, l);
          onServerFrame(s, f);
        });
      }
    }
  }
  const results = s.results;
  results.rows++;
  results.bytes += f.raw.length;
  if (layout?.masker) {
    const { frame, masked } = layout.masker.rewrite(f.body);
    results.masked += masked;
    s.toClient(frame);
  } else s.toClient(f.raw);
  return undefined;
}

function onRowDescription(
  s: PostgresSessionState,
  f: Frame,
  head: Pending | undefined,
): Promise<void> | undefined {
  const columns = parseRowDescription(f.body);
  if (head?.kind === 'describe-statement') {
    s.query.pending.shift();
    const st = s.query.statements.get(head.statement);
    if (st) st.columns = columns;
    if (head.hidden) return undefined;
    s.toClient(f.raw);
    return undefined;
  }
  s.toClient(f.raw);
  if (head?.kind === 'describe-portal') {
    s.query.pending.shift();
    const portal = s.query.portals.get(head.portal);
    if (portal && s.masks) {
      return layoutFor(s, columns).then((l) => {
        portal.layout = l;
      });
    }
    return undefined;
  }
  if (head?.kind === 'query' && s.masks) {
    return layoutFor(s, columns).then((l) => {
      head.layout = l;
    });
  }
  return undefined;
}

function layoutFor(s: PostgresSessionState, columns: ResultLayout['columns']): Promise<ResultLayout> {
  return s.maskingContext ? buildLayout(s.maskingContext, columns) : Promise.resolve({ columns });
}

/** CommandComplete, EmptyQueryResponse, PortalSuspended: the result is recorded. */
function onResultEnd(s: PostgresSessionState, f: Frame, head: Pending | undefined): void {
  s.results.flush(
    f.type === Backend.CommandComplete ? f.body.toString('utf8', 0, f.body.length - 1) : undefined,
    undefined,
    head?.kind === 'execute' ? s.query.portals.get(head.portal)?.statement : undefined,
  );
  if (head?.kind === 'execute') {
    s.query.pending.shift();
  } else if (head?.kind === 'query') {
    head.layout = undefined;
  }
  s.toClient(f.raw);
}

function onCopyData(s: PostgresSessionState, f: Frame, head: Pending | undefined): void {
  const results = s.results;
  results.bytes += f.raw.length;
  const masker = head?.kind === 'query' ? head.copyMasker : undefined;
  if (masker) {
    const { data, masked } = masker.rewrite(f.body);
    results.masked += masked;
    s.toClient(copyData(data));
  } else s.toClient(f.raw);
  results.rows++;
}

function onErrorResponse(s: PostgresSessionState, f: Frame, head: Pending | undefined): void {
  const fields = msg.parseNoticeFields(f.body);
  const denial = s.denials.take(fields.get('M'));
  s.toClient(denial ? msg.errorResponse(denial) : s.masks ? redactErrorDetail(f, fields) : f.raw);
  if (!denial) s.results.flush(undefined, fields.get('M'));
  // In the extended protocol the server now skips everything up to Sync.
  if (head && head.kind !== 'query') s.query.skipToSync();
  else if (head?.kind === 'query') head.layout = undefined;
}
