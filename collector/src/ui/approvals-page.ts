// The approvals page: what agents asked humans to approve, from the recording's approval.requested
// and approval.decided events. Read-only: the decision is made with kubectl (the API server
// authenticates the approver), so a pending request shows the command instead of a button.
import { type RecordingEvent, validateRecordingEvent } from '@chaperone/api';
import type { Auditor } from '../auth/auditor-auth.js';
import type { StoredEvent } from '../store/event-store.js';
import { formatDateTime } from './format.js';
import { type Html, html } from './html.js';
import { renderPage } from './layout.js';
import { sessionUrl } from './session-list-page.js';
import type { UiAssets } from './ui-assets.js';

type Requested = Extract<RecordingEvent, { type: 'approval.requested' }>;
type Decided = Extract<RecordingEvent, { type: 'approval.decided' }>;

export interface ApprovalRow {
  requested: Requested;
  decided?: Decided;
}

/** Pairs each request with its decision (same session and request name); unreadable rows are skipped. */
export function approvalRows(events: readonly StoredEvent[]): ApprovalRow[] {
  const requested: Requested[] = [];
  const decided = new Map<string, Decided>();
  for (const stored of events) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(stored.canonical);
    } catch {
      continue;
    }
    const v = validateRecordingEvent(parsed);
    if (!v.ok) continue;
    if (v.event.type === 'approval.requested') requested.push(v.event);
    else if (v.event.type === 'approval.decided')
      decided.set(`${v.event.sessionId}/${v.event.data.request}`, v.event);
  }
  return requested.map((r) => {
    const d = decided.get(`${r.sessionId}/${r.data.request}`);
    return d ? { requested: r, decided: d } : { requested: r };
  });
}

/** The AccessRequest lives in its policy's namespace, the agent's own in the usual layout. */
function namespaceOf(r: Requested): string {
  return r.identity.serviceAccount?.split('/')[0] ?? 'NAMESPACE';
}

function who(r: Requested): Html {
  return html`${r.identity.serviceAccount ?? 'unknown'}${r.identity.user && html`<div class="small">on behalf of ${r.identity.user}</div>`}`;
}

function pendingRow(row: ApprovalRow): Html {
  const r = row.requested;
  const target = `${r.data.request} -n ${namespaceOf(r)}`;
  return html`<tr class="approval pending-approval">
<td>${formatDateTime(r.time)}</td><td><code>${r.data.request}</code><div class="small"><a href="${sessionUrl(r.sessionId)}#seq-${r.seq}">session</a></div></td>
<td>${who(r)}</td><td>${r.connection}</td>
<td><pre class="statement">${r.data.text}</pre>${r.data.reasons.length > 0 && html`<div class="small muted">${r.data.reasons.join('; ')}</div>`}</td>
<td><pre class="statement command">kubectl chaperone describe ${target}
kubectl chaperone approve ${target} --comment TEXT
kubectl chaperone deny ${target} --reason TEXT</pre></td></tr>`;
}

function decidedRow(row: ApprovalRow): Html {
  const r = row.requested;
  const d = row.decided as Decided;
  const cls = d.data.verdict === 'approved' ? 'approved-verdict' : d.data.verdict;
  return html`<tr class="approval decided-approval">
<td>${formatDateTime(r.time)}</td><td><code>${r.data.request}</code><div class="small"><a href="${sessionUrl(r.sessionId)}#seq-${r.seq}">session</a></div></td>
<td>${who(r)}</td><td>${r.connection}</td><td><pre class="statement">${r.data.text}</pre></td>
<td><span class="badge ${cls}">${d.data.verdict}</span></td><td>${d.data.by ?? html`<span class="muted">—</span>`}</td>
<td>${formatDateTime(d.time)}</td><td>${d.data.comment ?? ''}</td></tr>`;
}

export function renderApprovalsPage(opts: {
  assets: UiAssets;
  auditor: Auditor;
  rows: readonly ApprovalRow[];
  sinceDays: number;
}): string {
  const pending = opts.rows.filter((r) => !r.decided);
  const decided = opts.rows.filter((r) => r.decided);
  const body = html`<h1>Approvals</h1>
<p class="small muted">Operations agents asked a human to approve in the last ${String(opts.sinceDays)} days, from the
recordings. This page is read-only: approvers decide with kubectl, as themselves.
A request without a recorded decision may also have been cut short with its session.</p>
<h2>Waiting <span class="badge pending">${String(pending.length)}</span></h2>
<table class="approvals pending-approvals">
<thead><tr><th>Requested (UTC)</th><th>AccessRequest</th><th>Agent</th><th>Connection</th><th>Operation</th><th>Decide with</th></tr></thead>
<tbody>${pending.length ? pending.map(pendingRow) : html`<tr><td colspan="6" class="muted">Nothing is waiting.</td></tr>`}</tbody>
</table>
<h2>Decided</h2>
<table class="approvals decided-approvals">
<thead><tr><th>Requested (UTC)</th><th>AccessRequest</th><th>Agent</th><th>Connection</th><th>Operation</th><th>Outcome</th><th>By</th><th>At (UTC)</th><th>Comment</th></tr></thead>
<tbody>${decided.length ? decided.map(decidedRow) : html`<tr><td colspan="9" class="muted">No decisions recorded.</td></tr>`}</tbody>
</table>`;
  return renderPage({ title: 'Approvals', assets: opts.assets, auditor: opts.auditor, body });
}
