import type { Auditor } from '../auth/auditor-auth.js';
import type { SessionSummary } from '../store/event-store.js';
import { formatDateTime } from './format.js';
import { html } from './html.js';
import { renderPage } from './layout.js';
import { sessionUrl } from './session-list-page.js';
import { replayUrls } from './session-timeline-page.js';
import type { UiAssets } from './ui-assets.js';

export function renderTerminalPage(opts: {
  assets: UiAssets;
  auditor: Auditor;
  session: SessionSummary;
  /** Seconds of the last recorded frame (0 when nothing was recorded). */
  lastFrameSeconds: number;
  frames: number;
}): string {
  const s = opts.session;
  const urls = replayUrls(s.sessionId);
  const who = s.identity.user ?? s.identity.serviceAccount ?? 'unknown';
  const body = html`<p class="small"><a href="${sessionUrl(s.sessionId)}">« Session timeline</a></p>
<h1>Terminal replay</h1>
<p>${who} on <strong>${s.connection}</strong>, started ${formatDateTime(s.startTime)} UTC ·
<a href="${urls.asciicast}">download asciicast</a></p>
${opts.frames === 0 && html`<div class="notice">This session recorded no terminal output.</div>`}
<div id="player" class="player" data-cast="${urls.asciicast}" data-poster="npt:${opts.lastFrameSeconds.toFixed(3)}"></div>`;
  return renderPage({
    title: `Terminal replay ${s.sessionId}`,
    assets: opts.assets,
    auditor: opts.auditor,
    stylesheets: ['asciinema-player.css'],
    scripts: ['asciinema-player.min.js', 'terminal.js'],
    body,
  });
}
