import type { Auditor } from '../auth/auditor-auth.js';
import { Html, type HtmlValue, html } from './html.js';
import { assetUrl, type UiAssets } from './ui-assets.js';

export interface PageOptions {
  title: string;
  assets: UiAssets;
  /** Shown in the header with a logout button; absent on the login page. */
  auditor?: Auditor;
  /** Extra stylesheets and scripts (asset names under /ui/assets/). */
  stylesheets?: string[];
  scripts?: string[];
  body: HtmlValue;
}

/** A whole HTML document. Scripts are external and deferred: the CSP allows no inline script. */
export function renderPage(opts: PageOptions): string {
  const { assets } = opts;
  const styles = ['ui.css', ...(opts.stylesheets ?? [])];
  const doc = html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${opts.title} · Chaperone audit</title>
${styles.map((name) => html`<link rel="stylesheet" href="${assetUrl(assets, name)}">\n`)}${(
  opts.scripts ?? []
).map((name) => html`<script defer src="${assetUrl(assets, name)}"></script>\n`)}</head>
<body>
<header class="top">
<a class="brand" href="/ui">Chaperone audit</a>
${opts.auditor && html`<a href="/ui" class="small">Sessions</a> <a href="/ui/approvals" class="small">Approvals</a>`}
${
  opts.auditor &&
  html`<span class="who">${opts.auditor.user}${opts.auditor.via === 'dev-token' ? ' (dev token)' : ''}</span>
<form method="post" action="/ui/logout"><button type="submit">Log out</button></form>`
}
</header>
<main>
${opts.body}
</main>
</body>
</html>
`;
  return doc.text;
}

/** A page that only explains something went wrong (not found, not an auditor, …). */
export function renderMessagePage(opts: {
  title: string;
  message: string;
  assets: UiAssets;
  auditor?: Auditor;
  link?: { href: string; text: string };
}): string {
  return renderPage({
    title: opts.title,
    assets: opts.assets,
    auditor: opts.auditor,
    body: html`<h1>${opts.title}</h1>
<div class="error-box">${opts.message}</div>
${opts.link ? html`<p><a href="${opts.link.href}">${opts.link.text}</a></p>` : new Html('')}`,
  });
}
