import { type RecordingEvent, validateRecordingEvent } from '@chaperone/api';
import type { Auditor } from '../auth/auditor-auth.js';
import type { SessionSummary, StoredEvent } from '../store/event-store.js';
import type { SessionState } from '../store/session-state.js';
import type { SessionVerification } from '../verify/chain.js';
import { eventDetails } from './event-details.js';
import { formatDateTime, formatDuration, formatTimeOfDay, plural } from './format.js';
import { type Html, html } from './html.js';
import { renderPage } from './layout.js';
import { sessionUrl } from './session-list-page.js';
import type { UiAssets } from './ui-assets.js';

export interface TimelineOptions {
  assets: UiAssets;
  auditor: Auditor;
  session: SessionSummary;
  /** One page of stored events, in seq order. */
  events: readonly StoredEvent[];
  /** The last seq shown before this page (-1 on the first page). */
  afterSeq: number;
  /** Set when more events follow this page. */
  nextAfterSeq: number | null;
  verification: SessionVerification;
  /** running, ended or abandoned (session-state.ts). */
  state: SessionState;
}

export const replayUrls = (sessionId: string) => {
  const base = sessionUrl(sessionId);
  return {
    transcript: `${base}/transcript.txt`,
    asciicast: `${base}/replay.cast`,
    terminal: `${base}/terminal`,
  };
};

function chainBadge(v: SessionVerification, state: SessionState): Html {
  const liveness =
    state === 'abandoned'
      ? ' (no session.end, and no event for a long time: the session was abandoned, its sidecar most likely died)'
      : state === 'running' && ' (no session.end yet: the session may still be running)';
  if (v.ok)
    return html`<div class="chain"><span class="badge verified">✔ chain verified</span>
<span class="small muted">${plural(v.events, 'event')}, every link and stored hash checked${liveness}</span></div>`;
  const first = v.problems[0];
  const at = first ? ('seq' in first ? first.seq : first.fromSeq) : undefined;
  return html`<div class="chain"><span class="badge broken">✘ chain broken${at !== undefined && ` at seq ${at}`}</span>
<ul class="small">${v.problems.map((p) => html`<li>${p.message}</li>`)}</ul></div>`;
}

function identity(s: SessionSummary): Html {
  const id = s.identity;
  return html`${id.serviceAccount ? html`ServiceAccount <strong>${id.serviceAccount}</strong>` : html`<span class="muted">no ServiceAccount</span>`}${
    id.pod && html`, pod <code>${id.pod}</code>`
  }${id.user && html`, on behalf of <strong>${id.user}</strong>`}${
    id.groups.length > 0 && html` <span class="small muted">(groups ${id.groups.join(', ')})</span>`
  }`;
}

function livenessBadge(s: SessionSummary, state: SessionState): Html {
  if (state === 'ended') return html` · ended: ${s.endReason ?? ''}`;
  if (state === 'abandoned')
    return html` · <span class="badge abandoned" title="no session.end and no event for longer than the collector's --abandoned-after">abandoned</span>`;
  return html` · <span class="badge open">running (no session.end yet)</span>`;
}

type DecidedEvent = Extract<RecordingEvent, { type: 'approval.decided' }>;

/** Every approval on this page: what was asked, and who decided, when, with which comment. */
function approvals(rows: Row[], decisions: ReadonlyMap<string, DecidedEvent>): Html | false {
  const asked = rows.flatMap((r) => (r.event?.type === 'approval.requested' ? [r.event] : []));
  if (asked.length === 0) return false;
  return html`<h2>Approvals</h2>
<table class="approvals">
<thead><tr><th>Requested (UTC)</th><th>AccessRequest</th><th>Operation</th><th>Outcome</th><th>By</th><th>At (UTC)</th><th>Comment</th></tr></thead>
<tbody>
${asked.map((a) => {
  const d = decisions.get(a.data.request);
  return html`<tr><td><a href="#seq-${a.seq}">${formatTimeOfDay(a.time)}</a></td><td><code>${a.data.request}</code></td>
<td><pre class="statement">${a.data.text}</pre></td>
<td>${d ? html`<span class="badge ${d.data.verdict === 'approved' ? 'approved-verdict' : d.data.verdict}">${d.data.verdict}</span>` : html`<span class="badge pending">pending</span>`}</td>
<td>${d?.data.by ?? ''}</td><td>${d ? formatTimeOfDay(d.time) : ''}</td><td>${d?.data.comment ?? ''}</td></tr>`;
})}
</tbody>
</table>`;
}

function summary(s: SessionSummary, state: SessionState): Html {
  const c = s.counts;
  return html`<dl class="summary">
<dt>Session</dt><dd class="mono">${s.sessionId}</dd>
<dt>Identity</dt><dd>${identity(s)}</dd>
<dt>Connection</dt><dd><strong>${s.connection}</strong>${s.protocol && ` (${s.protocol})`}${s.client && html`, client <code>${s.client}</code>`}${
    s.application && html`, application <code>${s.application}</code>`
  }</dd>
<dt>Started</dt><dd>${formatDateTime(s.startTime)} UTC</dd>
<dt>Last event</dt><dd>${formatDateTime(s.endTime)} UTC · ${formatDuration(Date.parse(s.endTime) - Date.parse(s.startTime))}${livenessBadge(s, state)}</dd>
<dt>Statements</dt><dd>${c.statements}: ${c.allowed} allowed, ${c.denied} denied, ${c.approved} approved · ${plural(c.maskedValues, 'value')} masked</dd>
<dt>Events</dt><dd>${s.events}${s.missingEvents > 0 && html` · <span class="badge error">${plural(s.missingEvents, 'event')} missing</span>`}</dd>
</dl>`;
}

type Row = { stored: StoredEvent; event?: RecordingEvent; problem?: string };

/** Parsed and validated again: a row edited in the database must not break (or script) the page. */
function readRows(events: readonly StoredEvent[]): Row[] {
  return events.map((stored) => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(stored.canonical);
    } catch {
      return { stored, problem: 'the stored text is not JSON' };
    }
    const v = validateRecordingEvent(parsed);
    return v.ok ? { stored, event: v.event } : { stored, problem: v.errors.join('; ') };
  });
}

function timelineRows(rows: Row[], afterSeq: number, ctx: Parameters<typeof eventDetails>[1]): Html[] {
  const out: Html[] = [];
  let expected = afterSeq + 1;
  let day = '';
  for (const row of rows) {
    const seq = row.stored.seq;
    if (seq > expected)
      out.push(
        html`<tr class="gap"><td colspan="4">${seq - expected === 1 ? `seq ${expected} is missing` : `seq ${expected}–${seq - 1} are missing`}</td></tr>`,
      );
    expected = seq + 1;
    const e = row.event;
    if (!e) {
      out.push(html`<tr id="seq-${seq}"><td class="num">${seq}</td><td></td><td><span class="badge error">unreadable</span></td>
<td><div class="error-box">${row.problem}</div><pre class="statement">${row.stored.canonical}</pre></td></tr>`);
      continue;
    }
    const eventDay = e.time.slice(0, 10);
    if (eventDay !== day) {
      day = eventDay;
      out.push(html`<tr><td colspan="4" class="small muted">${day}</td></tr>`);
    }
    out.push(html`<tr id="seq-${seq}" class="event ${e.type.replace('.', '-')}">
<td class="num">${seq}</td><td class="mono" title="${e.time}">${formatTimeOfDay(e.time)}</td>
<td><span class="badge type">${e.type}</span></td><td>${eventDetails(e, ctx)}</td></tr>`);
  }
  return out;
}

export function renderTimelinePage(opts: TimelineOptions): string {
  const s = opts.session;
  const urls = replayUrls(s.sessionId);
  const rows = readRows(opts.events);
  const decisions = new Map<string, DecidedEvent>();
  for (const r of rows)
    if (r.event?.type === 'approval.decided') decisions.set(r.event.data.request, r.event);
  // Terminal sessions get the player and the asciicast export; the rule is the API's replay rule.
  const terminal =
    s.protocol === 'ssh' || (s.protocol !== 'postgres' && rows.some((r) => r.event?.type === 'output'));
  const ctx = { decisions, terminalUrl: terminal ? urls.terminal : undefined };
  const base = sessionUrl(s.sessionId);

  const body = html`<p class="small"><a href="/ui">« Sessions</a></p>
<h1>Session on ${s.connection}</h1>
${chainBadge(opts.verification, opts.state)}
${summary(s, opts.state)}
<p class="actions">Replay export:
<a href="${urls.transcript}">transcript (text)</a>
${terminal && html`<a href="${urls.terminal}">terminal replay</a> <a href="${urls.asciicast}">asciicast (.cast)</a>`}
</p>
${approvals(rows, decisions)}
<h2>Timeline <span class="small muted">(times UTC)</span></h2>
<table class="timeline">
<thead><tr><th class="num">Seq</th><th>Time</th><th>Type</th><th>Details</th></tr></thead>
<tbody>
${rows.length ? timelineRows(rows, opts.afterSeq, ctx) : html`<tr><td colspan="4" class="muted">No events on this page.</td></tr>`}
</tbody>
</table>
<nav class="pager">
${opts.afterSeq >= 0 && html`<a href="${base}">« First events</a>`}
${opts.nextAfterSeq !== null && html`<a rel="next" href="${base}?afterSeq=${opts.nextAfterSeq}">Later events »</a>`}
</nav>`;
  return renderPage({ title: `Session ${s.sessionId}`, assets: opts.assets, auditor: opts.auditor, body });
}
