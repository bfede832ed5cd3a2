import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OidcVerifier } from '@chaperone/api';
import { startOidcIssuer, type TestOidcIssuer } from '@chaperone/testkit';
import Database from 'better-sqlite3';
import Fastify, { type FastifyInstance, type LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditorAuthenticator } from '../auth/auditor-auth.js';
import { TokenFile } from '../auth/token-file.js';
import { type CollectorMetrics, createCollectorMetrics } from '../metrics.js';
import { SqliteEventStore } from '../store/sqlite-store.js';
import { prepare } from '../test-support/recordings.js';
import { escapeHtml } from './html.js';
import { registerUi } from './index.js';
import { BULK_SESSIONS, HOSTILE, uiRecordings } from './ui-test-fixtures.js';

const AUDITOR_TOKEN = 'ui-auditor-token-0123456789';

let dir: string;
let dbPath: string;
let store: SqliteEventStore;
let app: FastifyInstance;
let oidc: TestOidcIssuer;
let metrics: CollectorMetrics;
let cookie: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'chaperone-ui-'));
  await writeFile(join(dir, 'auditor.token'), AUDITOR_TOKEN);
  dbPath = join(dir, 'collector.db');
  store = new SqliteEventStore({ path: dbPath, synchronous: 'normal' });
  await store.migrate();
  for (const events of uiRecordings()) await store.appendBatch(prepare(events));
  oidc = await startOidcIssuer({ clientId: 'chaperone-audit' });
  metrics = createCollectorMetrics();
  const auth = new AuditorAuthenticator({
    devTokenFile: new TokenFile(join(dir, 'auditor.token')),
    oidc: new OidcVerifier([{ issuer: oidc.issuer, audience: oidc.clientId }]),
    auditorGroups: ['auditors'],
  });
  app = Fastify();
  registerUi(app, { store, auth, metrics });
  await app.ready();
  cookie = cookieOf(await login(AUDITOR_TOKEN));
});
afterAll(async () => {
  await app?.close();
  await store?.close();
  await oidc?.stop();
  await rm(dir, { recursive: true, force: true });
});

const login = (token: string, next?: string, headers: Record<string, string> = {}) =>
  app.inject({
    method: 'POST',
    url: '/ui/login',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    payload: new URLSearchParams({ token, ...(next ? { next } : {}) }).toString(),
  });

/** The `name=value` part of the Set-Cookie header, ready to send back. */
function cookieOf(res: LightMyRequestResponse): string {
  const header = res.headers['set-cookie'];
  const line = Array.isArray(header) ? header[0] : header;
  expect(line, 'a Set-Cookie header').toBeTruthy();
  return line!.split(';')[0]!;
}

const get = (url: string, c: string | null = cookie) =>
  app.inject({ method: 'GET', url, headers: c ? { cookie: c } : {} });

/** Session ids linked from a list page, in page order. */
const listedIds = (body: string) => [...body.matchAll(/href="\/ui\/sessions\/([^"/?]+)"/g)].map((m) => m[1]!);
const nextLink = (body: string) => /<a rel="next" href="([^"]+)"/.exec(body)?.[1]?.replaceAll('&amp;', '&');

describe('authentication', () => {
  it('redirects to the login form, remembering where the auditor wanted to go', async () => {
    const list = await get('/ui', null);
    expect(list.statusCode).toBe(303);
    expect(list.headers.location).toBe('/ui/login');
    const deep = await get('/ui/sessions/sql-alice?afterSeq=3', null);
    expect(deep.statusCode).toBe(303);
    expect(deep.headers.location).toBe(
      `/ui/login?next=${encodeURIComponent('/ui/sessions/sql-alice?afterSeq=3')}`,
    );
    const form = await get(deep.headers.location as string, null);
    expect(form.statusCode).toBe(200);
    expect(form.body).toContain(
      '<input type="hidden" name="next" value="/ui/sessions/sql-alice?afterSeq=3">',
    );
  });

  it('shows the form again with the reason when the token is wrong, and sets no cookie', async () => {
    const bad = await login('not-the-auditor-token');
    expect(bad.statusCode).toBe(401);
    expect(bad.headers['set-cookie']).toBeUndefined();
    expect(bad.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(bad.body).toContain('<div class="error-box" role="alert">invalid ID token: not a JWT</div>');
    expect(bad.body).toContain('<form method="post" action="/ui/login">');
    expect((await login('   ')).statusCode).toBe(400);
    const failures = (await metrics.authFailures.get()).values.filter((v) => v.labels.api === 'ui');
    expect(failures.reduce((n, v) => n + v.value, 0)).toBeGreaterThanOrEqual(1);
  });

  it('logs in with the dev token: a strict HttpOnly cookie for /ui, then back to the page asked for', async () => {
    const res = await login(AUDITOR_TOKEN, '/ui/sessions/sql-alice');
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe('/ui/sessions/sql-alice');
    expect(res.headers['set-cookie']).toBe(
      `chaperone_auditor=${AUDITOR_TOKEN}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=28800`,
    );
    const page = await get('/ui/sessions/sql-alice', cookieOf(res));
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('<span class="who">dev-token (dev token)</span>');
  });

  it('never redirects off the UI after login, and refuses a login posted from another site', async () => {
    for (const next of [
      '//evil.example/x',
      'https://evil.example/',
      '/ui/../v1/sessions',
      '/uix',
      '/ui/login',
    ]) {
      expect((await login(AUDITOR_TOKEN, next)).headers.location, next).toBe('/ui');
    }
    const cross = await login(AUDITOR_TOKEN, undefined, {
      origin: 'https://evil.example',
      host: 'collector:8080',
    });
    expect(cross.statusCode).toBe(403);
    expect(cross.headers['set-cookie']).toBeUndefined();
    const same = await login(AUDITOR_TOKEN, undefined, {
      origin: 'http://collector:8080',
      host: 'collector:8080',
    });
    expect(same.statusCode).toBe(303);
    expect((await login(AUDITOR_TOKEN, undefined, { 'sec-fetch-site': 'cross-site' })).statusCode).toBe(403);
    expect((await login(AUDITOR_TOKEN, undefined, { 'sec-fetch-site': 'same-site' })).statusCode).toBe(403);
    expect((await login(AUDITOR_TOKEN, undefined, { origin: 'null' })).statusCode).toBe(403);
    // Sec-Fetch-Site is what current browsers send, and it wins over Origin.
    const browser = await login(AUDITOR_TOKEN, undefined, {
      'sec-fetch-site': 'same-origin',
      origin: 'null',
    });
    expect(browser.statusCode).toBe(303);
    const logout = await app.inject({
      method: 'POST',
      url: '/ui/logout',
      headers: { cookie, 'sec-fetch-site': 'cross-site' },
    });
    expect(logout.statusCode).toBe(403);
    expect(logout.headers['set-cookie']).toBeUndefined();
  });

  it('accepts a bearer header too', async () => {
    const res = await app.inject({ url: '/ui', headers: { authorization: `Bearer ${AUDITOR_TOKEN}` } });
    expect(res.statusCode).toBe(200);
  });

  it('drops a cookie that no longer authenticates and says why on the login form', async () => {
    const res = await get('/ui', 'chaperone_auditor=stale-token-0123456789');
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe('/ui/login?reason=expired');
    expect(res.headers['set-cookie']).toBe(
      'chaperone_auditor=; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=0',
    );
    expect((await get('/ui/login?reason=expired', null)).body).toContain('Your login is no longer valid');
    // The notice is chosen by a code; text in the URL is never shown.
    expect((await get('/ui/login?reason=%3Cb%3Ehi', null)).body).not.toContain('<b>hi');
  });

  it('OIDC: an auditor-group member gets in; anyone else is told which group is missing', async () => {
    const auditor = await oidc.mint({ subject: 'carol', email: 'carol@example.com', groups: ['auditors'] });
    const ok = await login(auditor);
    expect(ok.statusCode).toBe(303);
    expect((await get('/ui', cookieOf(ok))).body).toContain('<span class="who">carol@example.com</span>');
    const dev = await oidc.mint({ subject: 'dave', email: 'dave@example.com', groups: ['developers'] });
    const refused = await login(dev);
    expect(refused.statusCode).toBe(403);
    expect(refused.body).toContain(
      'dave@example.com is not an auditor: membership in one of the groups auditors is required',
    );
    // The same token used as a bearer header gets an explanation, not a login loop.
    const page = await app.inject({ url: '/ui', headers: { authorization: `Bearer ${dev}` } });
    expect(page.statusCode).toBe(403);
    expect(page.body).toContain('<h1>Not an auditor</h1>');
  });

  it('logs out: the cookie is cleared', async () => {
    const res = await app.inject({ method: 'POST', url: '/ui/logout', headers: { cookie } });
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe('/ui/login?reason=logged-out');
    expect(res.headers['set-cookie']).toContain('Max-Age=0');
  });
});

describe('session list', () => {
  it('lists sessions newest first with identity, connection and counts', async () => {
    const res = await get('/ui');
    expect(res.statusCode).toBe(200);
    expect(listedIds(res.body).slice(0, 3)).toEqual(['ssh-ops', 'sql-hostile', 'sql-alice']);
    const row = res.body.slice(res.body.indexOf('/ui/sessions/sql-alice'));
    const alice = row.slice(0, row.indexOf('</tr>'));
    expect(alice).toContain('2025-03-01 10:00:00');
    expect(alice).toContain('>agents/orders-agent</a>');
    expect(alice).toContain('on behalf of <a href="/ui?identity=alice%40example.com">alice@example.com</a>');
    expect(alice).toContain('orders-db');
    // statements, denied, approved, masked values, duration
    expect(alice).toMatch(
      /<td class="num">3<\/td>\s*<td class="num"><span class="badge denied">1<\/span><\/td>\s*<td class="num"><span class="badge approved">1<\/span><\/td>\s*<td class="num"><span class="badge masked">9<\/span><\/td>\s*<td class="num">5\.1 s/,
    );
  });

  it.each([
    ['identity=alice%40example.com', ['sql-alice']],
    ['identity=agents%2Fops-agent', ['ssh-ops']],
    ['group=billing', ['sql-hostile']],
    ['connection=bastion', ['ssh-ops']],
    ['decision=denied', ['sql-hostile', 'sql-alice']],
    ['decision=approved', ['sql-alice']],
    ['decision=masked', ['sql-alice']],
    ['text=DROP+TABLE', ['sql-alice']],
    [`text=${encodeURIComponent('<script>')}`, ['sql-hostile']],
    ['from=2025-03-02&to=2025-03-02T23:59:59Z', ['sql-hostile']],
    ['connection=orders-db&decision=denied&group=dba', ['sql-alice']],
    ['connection=nowhere', []],
  ])('filters by %s', async (qs, expected) => {
    const res = await get(`/ui?${qs}`);
    expect(res.statusCode).toBe(200);
    expect(listedIds(res.body)).toEqual(expected);
  });

  it('keeps the filters in the form, escaped', async () => {
    const res = await get(
      `/ui?connection=${encodeURIComponent('"><script>alert(5)</script>')}&decision=denied`,
    );
    expect(res.body).toContain(
      '<input name="connection" value="&quot;&gt;&lt;script&gt;alert(5)&lt;/script&gt;"',
    );
    expect(res.body).toContain('<option value="denied" selected>denied</option>');
    expect(res.body).not.toContain('<script>alert(5)');
  });

  it('pages with a cursor until every session was seen once', async () => {
    const seen: string[] = [];
    let url: string | undefined = '/ui?connection=bulk-db&limit=3';
    let pages = 0;
    while (url) {
      const res = await get(url);
      expect(res.statusCode).toBe(200);
      const ids = listedIds(res.body);
      expect(ids.length).toBeLessThanOrEqual(3);
      seen.push(...ids);
      url = nextLink(res.body);
      if (url) expect(url).toMatch(/^\/ui\?connection=bulk-db&limit=3&cursor=[A-Za-z0-9_-]+$/);
      pages++;
    }
    expect(pages).toBe(3);
    expect(seen).toEqual(Array.from({ length: BULK_SESSIONS }, (_, i) => `bulk-${BULK_SESSIONS - 1 - i}`));
  });

  it('explains a bad filter on the page instead of failing', async () => {
    const res = await get('/ui?from=yesterday&text=ab&decision=maybe&cursor=zzz');
    expect(res.statusCode).toBe(400);
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(res.body).toContain('from: expected YYYY-MM-DD or an ISO 8601 date-time');
    expect(res.body).toContain('statement text: at least 3 characters');
    expect(res.body).toContain('decision: one of allowed, denied, approved, masked');
    expect(res.body).toContain('cursor: not a page link of this UI');
    expect(res.body).not.toContain('<table class="sessions">');
  });
});

describe('session timeline', () => {
  it('shows every event: statements with decisions and rules, approvals with who and when, masks, credential, end', async () => {
    const res = await get('/ui/sessions/sql-alice');
    expect(res.statusCode).toBe(200);
    const b = res.body;
    expect(b).toContain('<span class="badge verified">✔ chain verified</span>');
    expect(b).toContain(
      'ServiceAccount <strong>agents/orders-agent</strong>, pod <code>orders-agent-0</code>, on behalf of <strong>alice@example.com</strong>',
    );
    expect(b).toContain(
      '<span>JIT role chaperone_x</span><span class="small muted">expires 2025-03-01T11:00:00.000Z</span>',
    );
    expect(b).toContain('<pre class="statement">SELECT id, email FROM orders WHERE id &lt; 10</pre>');
    expect(b).toContain(
      '<span class="badge allowed">allowed</span> <span class="small">rule <code>orders/readers</code></span>',
    );
    expect(b).toContain('<span class="badge masked">9 values masked</span>');
    expect(b).toContain(
      '<span class="badge pending">pending</span> <span class="small">rule <code>orders/writers</code></span>',
    );
    expect(b).toMatch(
      /approval <code>ar-1<\/code>: <span class="badge approved-verdict">approved<\/span> by <strong>bob@example\.com<\/strong>\s+at 10:00:05\.060 — “ticket 42”/,
    );
    expect(b).toContain('<pre class="statement">DROP TABLE orders</pre>');
    expect(b).toContain(
      '<span class="badge denied">denied</span> <span class="small">rule <code>orders/no-ddl</code></span> — DDL is not allowed',
    );
    expect(b).toContain('<span>ended: client closed</span><span class="small">3 statements, 6.0 s</span>');
    expect(b).toContain('href="/ui/sessions/sql-alice/transcript.txt"');
    expect(b).not.toContain('/terminal"');
    const seqs = [...b.matchAll(/<tr id="seq-(\d+)"/g)].map((m) => Number(m[1]));
    expect(seqs).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });

  it('escapes agent-controlled text everywhere it appears', async () => {
    const pages = [await get('/ui/sessions/sql-hostile'), await get('/ui?group=billing')];
    for (const res of pages) {
      expect(res.statusCode).toBe(200);
      for (const hostile of Object.values(HOSTILE)) expect(res.body).not.toContain(hostile);
      expect(res.body).not.toMatch(/<(script|img|iframe|b)[\s>]/i);
    }
    const b = pages[0]!.body;
    expect(b).toContain('<pre class="statement">&lt;script&gt;alert(1)&lt;/script&gt;</pre>');
    expect(b).toContain(escapeHtml(HOSTILE.application));
    expect(b).toContain(`— “${escapeHtml(HOSTILE.comment)}”`);
    expect(b).toContain(`on behalf of <strong>${escapeHtml(HOSTILE.user)}</strong>`);
    expect(b).toContain(`— ${escapeHtml(HOSTILE.reason)}`);
    expect(b).toContain('rule <code>billing/&lt;no-script&gt;</code>');
    expect(pages[1]!.body).toContain(escapeHtml(HOSTILE.user));
  });

  it('marks a tampered chain as broken at the edited event, and still escapes what the attacker wrote', async () => {
    await appendHostileCopy('tampered');
    editStored('tampered', 2, (c) => c.replace('SELECT id, email', '<script>alert(6)</script>'));
    editStored('tampered', 4, () => '{"not json');
    const res = await get('/ui/sessions/tampered');
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain('<span class="badge broken">✘ chain broken at seq 2</span>');
    expect(res.body).toContain('link 2 → 3 is broken');
    expect(res.body).toContain(
      '<pre class="statement">&lt;script&gt;alert(6)&lt;/script&gt; FROM orders WHERE id &lt; 10</pre>',
    );
    expect(res.body).toContain('<span class="badge error">unreadable</span>');
    expect(res.body).toContain('<pre class="statement">{&quot;not json</pre>');
    expect(res.body).not.toContain('<script>alert(6)');
  });

  it('pages long sessions with afterSeq', async () => {
    const first = await get('/ui/sessions/sql-alice?afterSeq=7');
    const seqs = [...first.body.matchAll(/<tr id="seq-(\d+)"/g)].map((m) => Number(m[1]));
    expect(seqs).toEqual([8, 9, 10]);
    expect(first.body).toContain('<a href="/ui/sessions/sql-alice">« First events</a>');
  });

  it('offers the terminal replay and asciicast for terminal sessions', async () => {
    const res = await get('/ui/sessions/ssh-ops');
    expect(res.body).toContain('<a href="/ui/sessions/ssh-ops/terminal">terminal replay</a>');
    expect(res.body).toContain('<a href="/ui/sessions/ssh-ops/replay.cast">asciicast (.cast)</a>');
    expect(res.body).toContain('terminal 3 frames, 22 bytes');
  });

  it('answers an unknown session with a 404 page', async () => {
    for (const id of ['nope', '..%2F..%2Fetc']) {
      const res = await get(`/ui/sessions/${id}`);
      expect(res.statusCode).toBe(404);
      expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
      expect(res.body).toContain('<h1>No such session</h1>');
    }
  });
});

describe('replay', () => {
  it('terminal page: the player, its assets, and a CSP that allows only them (and wasm)', async () => {
    const res = await get('/ui/sessions/ssh-ops/terminal');
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain(
      '<div id="player" class="player" data-cast="/ui/sessions/ssh-ops/replay.cast" data-poster="npt:1.200"></div>',
    );
    expect(res.body).toMatch(
      /<script defer src="\/ui\/assets\/asciinema-player\.min\.js\?v=[0-9a-f]{12}"><\/script>/,
    );
    expect(res.body).toMatch(
      /<link rel="stylesheet" href="\/ui\/assets\/asciinema-player\.css\?v=[0-9a-f]{12}">/,
    );
    expect(res.headers['content-security-policy']).toBe(
      "default-src 'none'; style-src 'self'; img-src 'self'; font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; script-src 'self' 'wasm-unsafe-eval'",
    );
  });

  it('exports asciicast and transcript behind the same login', async () => {
    const cast = await get('/ui/sessions/ssh-ops/replay.cast');
    expect(cast.headers['content-type']).toBe('application/x-asciicast');
    expect(cast.body.split('\n')[1]).toBe('[0.1,"o","$ "]');
    const text = await get('/ui/sessions/sql-alice/transcript.txt');
    expect(text.headers['content-type']).toBe('text/plain; charset=utf-8');
    expect(text.headers['x-content-type-options']).toBe('nosniff');
    expect(text.body).toContain('approval ar-1 APPROVED by bob@example.com: "ticket 42"');
    expect((await get('/ui/sessions/sql-alice/transcript.txt', null)).statusCode).toBe(303);
  });

  it('serves the player bundle from the installed package, without login', async () => {
    const js = await get('/ui/assets/asciinema-player.min.js', null);
    expect(js.statusCode).toBe(200);
    expect(js.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(js.body).toContain('AsciinemaPlayer');
    const css = await get('/ui/assets/asciinema-player.css', null);
    expect(css.headers['content-type']).toBe('text/css; charset=utf-8');
    expect(css.body).toContain('.ap-player');
    expect((await get('/ui/assets/..%2Fpackage.json', null)).statusCode).toBe(404);
  });
});

describe('headers', () => {
  it('every page has a strict CSP, is not cached and not framed', async () => {
    for (const url of ['/ui', '/ui/sessions/sql-alice', '/ui/login', '/ui/no-such-page']) {
      const res = await get(url);
      expect(res.headers['content-security-policy'], url).toContain("default-src 'none'");
      expect(res.headers['content-security-policy'], url).toContain("script-src 'self'");
      expect(res.headers['content-security-policy'], url).not.toContain('unsafe-inline');
      expect(res.headers['cache-control'], url).toBe('no-store');
      expect(res.headers['x-frame-options'], url).toBe('DENY');
    }
    // No inline script or style anywhere: the CSP could not allow it.
    const page = (await get('/ui/sessions/sql-alice')).body;
    expect(page).not.toMatch(/<script(?![^>]*\bsrc=)/);
    expect(page).not.toMatch(/<style|\sstyle=/);
  });
});

async function appendHostileCopy(sessionId: string): Promise<void> {
  const { sqlSession } = await import('../test-support/recordings.js');
  await store.appendBatch(prepare(sqlSession(sessionId, { startMs: Date.parse('2024-01-01T00:00:00Z') })));
}

/** Rewrites a stored event behind the store's back, as someone with access to the disk could. */
function editStored(sessionId: string, seq: number, edit: (canonical: string) => string): void {
  const db = new Database(dbPath);
  try {
    const row = db
      .prepare('SELECT canonical FROM events WHERE session_id = ? AND seq = ?')
      .get(sessionId, seq) as { canonical: string };
    db.prepare('UPDATE events SET canonical = ? WHERE session_id = ? AND seq = ?').run(
      edit(row.canonical),
      sessionId,
      seq,
    );
  } finally {
    db.close();
  }
}
