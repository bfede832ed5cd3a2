import { html } from './html.js';
import { renderPage } from './layout.js';
import type { UiAssets } from './ui-assets.js';

export interface LoginPageOptions {
  assets: UiAssets;
  /** Where to return after logging in (already checked to be a UI path). */
  next: string;
  error?: string;
  notice?: string;
}

export function renderLoginPage(opts: LoginPageOptions): string {
  return renderPage({
    title: 'Log in',
    assets: opts.assets,
    body: html`<section class="login">
<h1>Auditor login</h1>
<p class="muted">Paste an OIDC ID token of a member of an auditor group, or the collector's dev token.
It is kept in an HttpOnly cookie for this site and checked on every request.</p>
${opts.notice && html`<div class="notice">${opts.notice}</div>`}
${opts.error && html`<div class="error-box" role="alert">${opts.error}</div>`}
<form method="post" action="/ui/login">
<label for="token">Token</label>
<textarea id="token" name="token" required autocomplete="off" spellcheck="false" autofocus></textarea>
<input type="hidden" name="next" value="${opts.next}">
<div class="actions"><button class="primary" type="submit">Log in</button></div>
</form>
</section>`,
  });
}
