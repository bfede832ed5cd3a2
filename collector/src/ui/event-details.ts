// How each recorded event reads in the timeline. Every value comes from the recording (and so,
// often, from the agent) and goes through `html`, which escapes it.
import type { Decision, RecordingEvent } from '@chaperone/api';
import { formatBytes, formatDuration, formatTimeOfDay, plural } from './format.js';
import { type Html, html, joinHtml } from './html.js';

type DecidedEvent = Extract<RecordingEvent, { type: 'approval.decided' }>;

export interface EventContext {
  /** approval.decided events on the same page, by request id: shown next to their request. */
  decisions: ReadonlyMap<string, DecidedEvent>;
  terminalUrl?: string;
}

export function decisionBadge(decision: Decision | 'expired'): Html {
  return html`<span class="badge ${decision}">${decision}</span>`;
}

const rule = (e: RecordingEvent) => e.rule && html`<span class="small">rule <code>${e.rule}</code></span>`;

function tags(label: string, values: readonly string[]): Html | false {
  return values.length > 0 && html`<span class="small muted">${label}: ${values.join(', ')}</span>`;
}

function verdict(d: DecidedEvent): Html {
  const badge = html`<span class="badge ${d.data.verdict === 'approved' ? 'approved-verdict' : d.data.verdict}">${d.data.verdict}</span>`;
  return html`${badge} ${d.data.by ? html`by <strong>${d.data.by}</strong>` : html`<span class="muted">(no approver recorded)</span>`}
at ${formatTimeOfDay(d.time)}${d.data.comment && html` — “${d.data.comment}”`}`;
}

export function eventDetails(e: RecordingEvent, ctx: EventContext): Html {
  switch (e.type) {
    case 'session.start':
      return html`<div class="details"><span>${e.data.protocol} session from <code>${e.data.client}</code>${
        e.data.application && html`, application <code>${e.data.application}</code>`
      }</span>${rule(e)}</div>`;
    case 'credential.issued':
      return html`<div class="details"><span>${e.data.description}</span>${
        e.data.expiresAt && html`<span class="small muted">expires ${e.data.expiresAt}</span>`
      }</div>`;
    case 'query':
      return html`<div class="details"><pre class="statement">${e.data.text}</pre>
<span>${decisionBadge(e.data.decision)} ${rule(e)}${e.data.reason && html` — ${e.data.reason}`}</span>
${joinHtml([tags('classes', e.data.classes), tags('tables', e.data.tables), tags('risks', e.data.risks)], ' ')}</div>`;
    case 'command':
      return html`<div class="details"><pre class="statement">${e.data.text}</pre>
<span>${decisionBadge(e.data.decision)} ${rule(e)}${e.data.reason && html` — ${e.data.reason}`}</span></div>`;
    case 'result': {
      const d = e.data;
      return html`<div class="details"><span>${d.error ? html`<span class="badge error">error</span> ${d.error}` : (d.command ?? 'result')}</span>
<span class="small">${plural(d.rows, 'row')}, ${formatBytes(d.bytes)}${
        d.maskedValues > 0 &&
        html` · <span class="badge masked">${plural(d.maskedValues, 'value')} masked</span>`
      }</span></div>`;
    }
    case 'approval.requested': {
      const decided = ctx.decisions.get(e.data.request);
      return html`<div class="details"><span>approval <code>${e.data.request}</code> requested${
        e.data.reasons.length > 0 && html` (${e.data.reasons.join('; ')})`
      }</span><pre class="statement">${e.data.text}</pre>
<span class="small">${decided ? html`outcome: ${verdict(decided)}` : html`<span class="badge pending">no decision recorded</span>`}</span></div>`;
    }
    case 'approval.decided':
      return html`<div class="details"><span>approval <code>${e.data.request}</code>: ${verdict(e)}</span>${rule(e)}</div>`;
    case 'denied':
      return html`<div class="details"><span>${decisionBadge('denied')} <code>${e.data.operation}</code> — ${e.data.reason}</span>${rule(e)}</div>`;
    case 'output': {
      const bytes = e.data.asciicast.reduce((n, [, , d]) => n + Buffer.byteLength(d), 0);
      return html`<div class="details"><span>terminal ${plural(e.data.asciicast.length, 'frame')}, ${formatBytes(bytes)}${
        ctx.terminalUrl && html` · <a href="${ctx.terminalUrl}">replay</a>`
      }</span></div>`;
    }
    case 'session.end':
      return html`<div class="details"><span>ended: ${e.data.reason}</span><span class="small">${plural(e.data.statements, 'statement')}, ${formatDuration(e.data.durationMs)}</span></div>`;
  }
}
