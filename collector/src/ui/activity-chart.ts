// Activity at a glance: sessions, denials and approvals over time as a small bar chart, rendered
// on the server as inline SVG (no script, no external asset, nothing the CSP has to allow). Each
// bar carries its count in a data attribute and a <title>, so the chart reads the same to a
// screen reader, a browser test and an auditor hovering over it.

import type { ActivityBucket } from '../store/event-store.js';
import { type Html, html } from './html.js';

export const HOUR = 3_600_000;
export const DAY = 24 * HOUR;
/** More buckets than this and the bars get too thin to read: the range is cut to its newest part. */
export const MAX_BUCKETS = 60;

export interface ActivityRange {
  from: Date;
  to: Date;
  bucketMs: number;
}

/**
 * The chart's range: the list's from/to when given, else the last 14 days; hourly up to two days,
 * daily beyond, at most MAX_BUCKETS buckets (the newest).
 */
export function activityRange(opts: { from?: Date; to?: Date; now: Date }): ActivityRange {
  const to = opts.to ?? opts.now;
  let from = opts.from ?? new Date(to.getTime() - 14 * DAY);
  if (from >= to) from = new Date(to.getTime() - DAY);
  const bucketMs = to.getTime() - from.getTime() <= 2 * DAY ? HOUR : DAY;
  // Whole buckets, aligned to UTC hours/days.
  const alignedFrom = Math.floor(from.getTime() / bucketMs) * bucketMs;
  const alignedTo = Math.ceil(to.getTime() / bucketMs) * bucketMs;
  const start = Math.max(alignedFrom, alignedTo - MAX_BUCKETS * bucketMs);
  return { from: new Date(start), to: new Date(alignedTo), bucketMs };
}

const SERIES = [
  { key: 'sessions', label: 'sessions', color: '#3b6ea5' },
  { key: 'denied', label: 'denials', color: '#b3261e' },
  { key: 'approved', label: 'approvals', color: '#2e7d32' },
] as const;

const W = 720;
const H = 140;
const PAD = { left: 32, right: 8, top: 8, bottom: 22 };

function bucketLabel(ms: number, bucketMs: number): string {
  const iso = new Date(ms).toISOString();
  return bucketMs < DAY ? `${iso.slice(0, 10)} ${iso.slice(11, 13)}:00` : iso.slice(0, 10);
}

export function renderActivityChart(range: ActivityRange, buckets: readonly ActivityBucket[]): Html {
  const n = Math.max(1, Math.round((range.to.getTime() - range.from.getTime()) / range.bucketMs));
  const byStart = new Map(buckets.map((b) => [b.startMs, b]));
  const max = Math.max(1, ...buckets.flatMap((b) => [b.sessions, b.denied, b.approved]));
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const slot = plotW / n;
  const barW = Math.max(1, (slot * 0.8) / SERIES.length);
  const totals = { sessions: 0, denied: 0, approved: 0 };
  const bars: Html[] = [];
  const ticks: Html[] = [];
  const tickEvery = Math.ceil(n / 6);
  for (let i = 0; i < n; i++) {
    const startMs = range.from.getTime() + i * range.bucketMs;
    const b = byStart.get(startMs);
    const label = bucketLabel(startMs, range.bucketMs);
    SERIES.forEach((s, j) => {
      const count = b?.[s.key] ?? 0;
      totals[s.key] += count;
      if (count === 0) return;
      const h = Math.max(1, (count / max) * plotH);
      const x = PAD.left + i * slot + slot * 0.1 + j * barW;
      bars.push(
        html`<rect class="bar ${s.key}" data-bucket="${new Date(startMs).toISOString()}" data-count="${String(count)}" x="${x.toFixed(1)}" y="${(PAD.top + plotH - h).toFixed(1)}" width="${barW.toFixed(1)}" height="${h.toFixed(1)}" fill="${s.color}"><title>${label}: ${String(count)} ${s.label}</title></rect>`,
      );
    });
    if (i % tickEvery === 0) {
      const text = range.bucketMs < DAY ? label.slice(5) : label.slice(5);
      ticks.push(
        html`<text class="tick" x="${(PAD.left + i * slot).toFixed(1)}" y="${String(H - 6)}" font-size="10" fill="#555">${text}</text>`,
      );
    }
  }
  const summary = `${totals.sessions} sessions, ${totals.denied} denials, ${totals.approved} approvals from ${bucketLabel(range.from.getTime(), range.bucketMs)} to ${bucketLabel(range.to.getTime(), range.bucketMs)} (UTC), per ${range.bucketMs < DAY ? 'hour' : 'day'}`;
  return html`<figure class="activity">
<svg class="activity-chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${String(W)} ${String(H)}" width="100%" role="img" aria-label="${summary}" data-buckets="${String(n)}" data-bucket-ms="${String(range.bucketMs)}">
<line x1="${String(PAD.left)}" y1="${String(PAD.top + plotH)}" x2="${String(W - PAD.right)}" y2="${String(PAD.top + plotH)}" stroke="#999" stroke-width="1"/>
<text class="max" x="2" y="${String(PAD.top + 8)}" font-size="10" fill="#555">${String(max)}</text>
${bars}
${ticks}
</svg>
<figcaption class="small">${SERIES.map(
    (s) =>
      html`<span class="legend ${s.key}"><svg width="10" height="10" aria-hidden="true"><rect width="10" height="10" fill="${s.color}"/></svg> ${s.label} <strong>${String(totals[s.key])}</strong></span> `,
  )}<span class="muted">${summary}</span></figcaption>
</figure>`;
}
