import type { Auditor } from '../auth/auditor-auth.js';
import {
  type ActivityBucket,
  DECISION_FILTERS,
  type SessionPage,
  type SessionSummary,
} from '../store/event-store.js';
import type { SessionState } from '../store/session-state.js';
import { type ActivityRange, renderActivityChart } from './activity-chart.js';
import { formatDateTime, formatDuration } from './format.js';
import { type Html, html } from './html.js';
import { renderPage } from './layout.js';
import { type ListForm, type ListRequest, listUrl } from './session-list-query.js';
import type { UiAssets } from './ui-assets.js';

export const sessionUrl = (sessionId: string) => `/ui/sessions/${encodeURIComponent(sessionId)}`;

function filterForm(form: ListForm): Html {
  const field = (name: keyof ListForm, label: string, placeholder: string) =>
    html`<label>${label}<input name="${name}" value="${form[name]}" placeholder="${placeholder}"></label>`;
  return html`<form class="filters" method="get" action="/ui">
${field('identity', 'Identity', 'namespace/serviceaccount or user')}
${field('group', 'Group', 'e.g. dba')}
${field('connection', 'Connection', 'e.g. orders-db')}
${field('from', 'From (UTC)', 'YYYY-MM-DD or ISO 8601')}
${field('to', 'To (UTC)', 'YYYY-MM-DD or ISO 8601')}
<label>Decision<select name="decision">
<option value="">any</option>
${DECISION_FILTERS.map(
  (d) => html`<option value="${d}"${form.decision === d ? html` selected` : ''}>${d}</option>`,
)}
</select></label>
<label>Statement text${html`<input name="text" value="${form.text}" placeholder="substring, 3+ characters">`}</label>
<div class="actions"><button class="primary" type="submit">Search</button><a href="/ui">Clear</a></div>
</form>`;
}

function identityCell(s: SessionSummary): Html {
  const { serviceAccount, user, pod } = s.identity;
  const link = (value: string) => html`<a href="${listUrl(emptyForm({ identity: value }))}">${value}</a>`;
  return html`${serviceAccount ? link(serviceAccount) : html`<span class="muted">no ServiceAccount</span>`}
${user && html`<div class="small">on behalf of ${link(user)}</div>`}
${pod && html`<div class="small muted">pod ${pod}</div>`}`;
}

export function emptyForm(over: Partial<ListForm> = {}): ListForm {
  return { identity: '', group: '', connection: '', from: '', to: '', decision: '', text: '', ...over };
}

function stateBadge(state: SessionState): Html | false {
  if (state === 'abandoned')
    return html`<div><span class="badge abandoned" title="no session.end and no event for a long time: its sidecar most likely died">abandoned</span></div>`;
  return state === 'running' && html`<div><span class="badge open">running</span></div>`;
}

function sessionRow(s: SessionSummary, state: SessionState): Html {
  const duration = Date.parse(s.endTime) - Date.parse(s.startTime);
  const c = s.counts;
  return html`<tr>
<td><a href="${sessionUrl(s.sessionId)}">${formatDateTime(s.startTime)}</a><div class="small muted mono">${s.sessionId}</div></td>
<td>${identityCell(s)}</td>
<td>${s.connection}${s.protocol && html`<div class="small muted">${s.protocol}</div>`}</td>
<td class="num">${c.statements}</td>
<td class="num">${c.denied ? html`<span class="badge denied">${c.denied}</span>` : '0'}</td>
<td class="num">${c.approved ? html`<span class="badge approved">${c.approved}</span>` : '0'}</td>
<td class="num">${c.maskedValues ? html`<span class="badge masked">${c.maskedValues}</span>` : '0'}</td>
<td class="num">${formatDuration(duration)}${stateBadge(state)}${
    s.missingEvents > 0 && html`<div><span class="badge error">${s.missingEvents} missing</span></div>`
  }</td>
</tr>`;
}

export function renderSessionListPage(opts: {
  assets: UiAssets;
  auditor: Auditor;
  request: ListRequest;
  /** Absent when the form had errors. */
  page?: SessionPage;
  activity?: { range: ActivityRange; buckets: readonly ActivityBucket[] };
  /** running, ended or abandoned, as of now. */
  stateOf: (s: SessionSummary) => SessionState;
}): string {
  const { request, page } = opts;
  const limit = request.query?.limit;
  const body = html`<h1>Recorded sessions</h1>
${opts.activity && renderActivityChart(opts.activity.range, opts.activity.buckets)}
${filterForm(request.form)}
${request.errors.length > 0 && html`<div class="error-box" role="alert">${request.errors.map((e) => html`<div>${e}</div>`)}</div>`}
${
  page &&
  html`<table class="sessions">
<thead><tr><th>Start (UTC)</th><th>Identity</th><th>Connection</th><th class="num">Statements</th>
<th class="num">Denied</th><th class="num">Approved</th><th class="num">Masked values</th><th class="num">Duration</th></tr></thead>
<tbody>
${page.sessions.length ? page.sessions.map((s) => sessionRow(s, opts.stateOf(s))) : html`<tr><td colspan="8" class="muted">No sessions match these filters.</td></tr>`}
</tbody>
</table>
<nav class="pager">
${request.query?.cursor && html`<a href="${listUrl(request.form, { limit })}">« First page</a>`}
${page.nextCursor && html`<a rel="next" href="${listUrl(request.form, { cursor: page.nextCursor, limit })}">Next page »</a>`}
</nav>`
}`;
  return renderPage({ title: 'Sessions', assets: opts.assets, auditor: opts.auditor, body });
}
