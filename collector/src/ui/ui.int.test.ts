// The UI in a real browser: the collector listening on 127.0.0.1 with a SQLite store filled through
// its ingest API, Debian's Chromium driven by playwright-core. Nothing leaves 127.0.0.1: the
// browser is started without background services and every request to another host is aborted.
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, chromium, type Locator, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCollector, type Collector } from '../app.js';
import { RecordingBuilder } from '../test-support/recordings.js';
import { pngStats } from './test-png-reader.js';
import { HOSTILE, T0, uiRecordings } from './ui-test-fixtures.js';

const CHROMIUM = '/usr/bin/chromium';
const INGEST_TOKEN = 'ui-int-ingest-token-0123456789';
const AUDITOR_TOKEN = 'ui-int-auditor-token-0123456789';

let dir: string;
let collector: Collector;
let base: string;
let context: BrowserContext;
let page: Page;
const offHost: string[] = [];
const cspViolations: string[] = [];
const consoleErrors: string[] = [];
const pageErrors: string[] = [];
const dialogs: string[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'chaperone-ui-browser-'));
  await writeFile(join(dir, 'ingest.token'), INGEST_TOKEN);
  await writeFile(join(dir, 'auditor.token'), AUDITOR_TOKEN);
  collector = await buildCollector({
    db: `sqlite:${join(dir, 'collector.db')}`,
    ingestTokenFile: join(dir, 'ingest.token'),
    auditorTokenFile: join(dir, 'auditor.token'),
  });
  base = await collector.app.listen({ host: '127.0.0.1', port: 0 });
  expect(base).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  // Recorded the way sidecars deliver them: batches to the ingest endpoint.
  for (const events of uiRecordings()) {
    const res = await fetch(`${base}/v1/events`, {
      method: 'POST',
      headers: { authorization: `Bearer ${INGEST_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ events }),
    });
    expect(res.status, await res.clone().text()).toBe(200);
    expect(((await res.json()) as { stored: number }).stored).toBe(events.length);
  }

  context = await chromium.launchPersistentContext(join(dir, 'chromium-profile'), {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--no-first-run',
      '--disable-sync',
      '--disable-quic',
    ],
    viewport: { width: 1280, height: 900 },
  });
  await context.route('**/*', (route) => {
    const url = new URL(route.request().url());
    if (url.hostname === '127.0.0.1') return route.continue();
    offHost.push(url.href);
    return route.abort();
  });
  page = context.pages()[0] ?? (await context.newPage());
  // Violations are reported by the page itself (the console does not show all of them, e.g. a
  // refused WebAssembly compile); init scripts and bindings are not subject to the page's CSP.
  await context.exposeBinding('reportCspViolation', (_source, text: string) => {
    cspViolations.push(text);
  });
  // Browser-side code as text: this project compiles without the DOM types.
  await context.addInitScript(`document.addEventListener('securitypolicyviolation', (e) =>
    window.reportCspViolation(e.violatedDirective + ' blocked ' + e.blockedURI + ' on ' + e.documentURI));`);
  page.on('console', (msg) => {
    if (msg.type() === 'error') consoleErrors.push(msg.text());
  });
  page.on('pageerror', (err) => pageErrors.push(err.message));
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    void d.dismiss();
  });
});

afterAll(async () => {
  await context?.close();
  await collector?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** With CHAPERONE_UI_SCREENSHOT_DIR set, screenshots are kept there for a person to look at. */
async function keepScreenshot(name: string, png?: Buffer): Promise<void> {
  const keep = process.env.CHAPERONE_UI_SCREENSHOT_DIR;
  if (keep) await writeFile(join(keep, name), png ?? (await page.screenshot({ fullPage: true })));
}

/** The text of an element the auditor can see, with runs of whitespace collapsed. */
async function visibleText(locator: Locator): Promise<string> {
  expect(await locator.isVisible()).toBe(true);
  return ((await locator.textContent()) ?? '').replace(/\s+/g, ' ').trim();
}

describe('auditor UI in Chromium', () => {
  it('logs in through the form, then filters the session list', async () => {
    await page.goto(`${base}/ui`);
    expect(new URL(page.url()).pathname).toBe('/ui/login');
    await page.fill('#token', 'wrong-token-0123456789');
    await page.click('button[type=submit]');
    expect(await page.textContent('.error-box')).toContain('invalid auditor token');

    await page.fill('#token', AUDITOR_TOKEN);
    await Promise.all([page.waitForURL(`${base}/ui`), page.click('button[type=submit]')]);
    expect(await page.textContent('header .who')).toBe('dev-token (dev token)');
    const cookies = await context.cookies(`${base}/ui`);
    expect(cookies).toEqual([
      expect.objectContaining({ name: 'chaperone_auditor', path: '/ui', httpOnly: true, sameSite: 'Strict' }),
    ]);
    expect(await page.locator('table.sessions tbody tr').count()).toBe(10);
    await keepScreenshot('list.png');

    await page.fill('input[name=identity]', 'alice@example.com');
    await page.selectOption('select[name=decision]', 'denied');
    await Promise.all([page.waitForURL(/identity=alice/), page.click('form.filters button[type=submit]')]);
    const query = new URL(page.url()).searchParams;
    expect(query.get('identity')).toBe('alice@example.com');
    expect(query.get('decision')).toBe('denied');
    const rows = page.locator('table.sessions tbody tr');
    expect(await rows.count()).toBe(1);
    const row = await visibleText(rows.first());
    expect(row).toContain('agents/orders-agent');
    expect(row).toContain('on behalf of alice@example.com');
    expect(row).toContain('orders-db');
  });

  it('opens the timeline: real data from the store, a denied statement with its reason, the approver', async () => {
    await Promise.all([
      page.waitForURL(/\/ui\/sessions\/sql-alice$/),
      page.click('a[href="/ui/sessions/sql-alice"]'),
    ]);
    const text = await visibleText(page.locator('main'));
    expect(text).toContain('✔ chain verified');
    expect(text).toContain(
      'ServiceAccount agents/orders-agent, pod orders-agent-0, on behalf of alice@example.com',
    );
    const drop = await visibleText(page.locator('#seq-8'));
    expect(drop).toContain('DROP TABLE orders');
    expect(drop).toContain('denied rule orders/no-ddl — DDL is not allowed');
    const decided = await visibleText(page.locator('#seq-6'));
    expect(decided).toContain('approval ar-1: approved by bob@example.com at 10:00:05.060 — “ticket 42”');
    expect(await visibleText(page.locator('#seq-3'))).toContain('9 values masked');
    expect(await visibleText(page.locator('#seq-1'))).toContain('JIT role chaperone_x');

    const shot = join(dir, 'timeline.png');
    await page.screenshot({ path: shot, fullPage: true });
    const png = await readFile(shot);
    expect((await stat(shot)).size).toBeGreaterThan(20_000);
    const s = pngStats(png);
    expect(s.width).toBe(1280);
    expect(s.height).toBeGreaterThanOrEqual(900);
    expect(s.colours).toBeGreaterThan(50);
    expect(s.lumaVariance).toBeGreaterThan(100);
    await keepScreenshot('timeline.png', png);
  });

  it('shows hostile recorded text as text and runs none of it', async () => {
    await page.goto(`${base}/ui/sessions/sql-hostile`);
    expect(await visibleText(page.locator('#seq-2 pre.statement'))).toBe(HOSTILE.statement);
    expect(await visibleText(page.locator('main'))).toContain(HOSTILE.comment);
    expect(await page.locator('main script, main img, main iframe').count()).toBe(0);
    await page.goto(`${base}/ui?group=billing`);
    expect(await page.locator('table.sessions tbody tr').count()).toBe(1);
    expect(dialogs).toEqual([]);
  });

  it('replays the terminal session with asciinema-player', async () => {
    await page.goto(`${base}/ui/sessions/ssh-ops`);
    await Promise.all([
      page.waitForURL(/\/terminal$/),
      page.click('a[href="/ui/sessions/ssh-ops/terminal"]'),
    ]);
    const player = page.locator('#player .ap-player');
    await player.waitFor({ state: 'visible', timeout: 20_000 });
    // The poster is the last frame: the recorded `ls` output is on the player's terminal.
    await page.waitForFunction("document.querySelector('#player').textContent.includes('README.md')", null, {
      timeout: 20_000,
    });
    const box = await player.boundingBox();
    expect(box?.width).toBeGreaterThan(300);
    expect(box?.height).toBeGreaterThan(100);
    const shot = join(dir, 'terminal.png');
    await page.screenshot({ path: shot });
    const s = pngStats(await readFile(shot));
    expect(s.colours).toBeGreaterThan(20);
    expect(s.lumaVariance).toBeGreaterThan(100);
    await keepScreenshot('terminal.png', await readFile(shot));
  });

  it('charts sessions, denials and approvals, lists approvals, and shows a cut session as abandoned', async () => {
    // A session whose sidecar died while a statement waited for approval: no decision, no session.end.
    const cut = new RecordingBuilder('sql-cut', {
      connection: 'orders-db',
      identity: { serviceAccount: 'agents/orders-agent', groups: [] },
      startMs: T0 + 3 * 86_400_000,
    })
      .add('session.start', { protocol: 'postgres', client: '127.0.0.1:44000' })
      .add('query', {
        text: 'DELETE FROM orders WHERE id = $1',
        fingerprint: 'fp-d',
        classes: ['write'],
        tables: ['public.orders'],
        risks: [],
        decision: 'pending',
      })
      .add('approval.requested', {
        request: 'ar-cut',
        text: 'DELETE FROM orders WHERE id = $1',
        reasons: ['write'],
      }).events;
    const res = await fetch(`${base}/v1/events`, {
      method: 'POST',
      headers: { authorization: `Bearer ${INGEST_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ events: cut }),
    });
    expect(res.status).toBe(200);
    const api = (await (
      await fetch(`${base}/v1/sessions?limit=100`, { headers: { authorization: `Bearer ${AUDITOR_TOKEN}` } })
    ).json()) as {
      sessions: { sessionId: string; state: string; counts: { denied: number; approved: number } }[];
    };
    const expected = api.sessions.reduce(
      (t, x) => ({
        sessions: t.sessions + 1,
        denied: t.denied + x.counts.denied,
        approved: t.approved + x.counts.approved,
      }),
      { sessions: 0, denied: 0, approved: 0 },
    );
    expect(api.sessions.find((x) => x.sessionId === 'sql-cut')?.state).toBe('abandoned');

    // The chart: 19 daily buckets (the 15th up to the 6th at 00:00), one bar per non-empty series and day, counts equal to the store's.
    await page.goto(`${base}/ui?from=2025-02-15&to=2025-03-06`);
    const chart = page.locator('svg.activity-chart');
    expect(await chart.isVisible()).toBe(true);
    expect(await chart.getAttribute('data-buckets')).toBe('19');
    const counts = async (series: string) =>
      (await page
        .locator(`svg.activity-chart rect.bar.${series}`)
        .evaluateAll((els) => els.map((e) => Number(e.getAttribute('data-count'))))) as number[];
    const sessionsBars = await counts('sessions');
    const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
    // Days with sessions: the bulk day, then four consecutive days.
    expect(sessionsBars).toEqual([7, 1, 1, 1, 1]);
    expect(sum(sessionsBars)).toBe(expected.sessions);
    expect(sum(await counts('denied'))).toBe(expected.denied);
    expect(sum(await counts('approved'))).toBe(expected.approved);
    expect(await chart.getAttribute('aria-label')).toContain(`${expected.sessions} sessions`);
    const box = await chart.boundingBox();
    expect(box?.width).toBeGreaterThan(600);
    expect(box?.height).toBeGreaterThan(80);
    // Every bar is drawn inside the chart.
    // Browser-side code as text: this project compiles without the DOM types.
    const outside = await page.evaluate(`(() => {
      const c = document.querySelector('svg.activity-chart').getBoundingClientRect();
      return [...document.querySelectorAll('svg.activity-chart rect.bar')].filter((e) => {
        const r = e.getBoundingClientRect();
        return r.left < c.left || r.right > c.right + 0.5 || r.top < c.top || r.bottom > c.bottom + 0.5 || r.height <= 0;
      }).length;
    })()`);
    expect(outside).toBe(0);
    const row = await visibleText(page.locator('table.sessions tbody tr', { hasText: 'sql-cut' }));
    expect(row).toContain('abandoned');
    await keepScreenshot('list-chart.png');
    const chartShot = await chart.screenshot();
    const cs = pngStats(chartShot);
    expect(cs.colours).toBeGreaterThan(3);
    await keepScreenshot('chart.png', chartShot);

    // The approvals page: the pending one with the kubectl lines, the decided ones with who, when, comment.
    await page.goto(`${base}/ui/approvals?days=3650`);
    const pending = page.locator('table.pending-approvals tbody tr.approval');
    expect(await pending.count()).toBe(1);
    const p = await visibleText(pending.first());
    expect(p).toContain('ar-cut');
    expect(p).toContain('kubectl chaperone approve ar-cut -n agents --comment TEXT');
    const decided = page.locator('table.decided-approvals tbody tr.approval');
    expect(await decided.count()).toBe(2);
    const texts = await Promise.all([0, 1].map((i) => visibleText(decided.nth(i))));
    expect(texts.join('\n')).toContain('bob@example.com');
    expect(texts.join('\n')).toContain('ticket 42');
    expect(await page.locator('main script, main img, main iframe').count()).toBe(0);
    await keepScreenshot('approvals.png');

    // The session page: an Approvals table, and the liveness said plainly.
    await page.goto(`${base}/ui/sessions/sql-cut`);
    const text = await visibleText(page.locator('main'));
    expect(text).toContain('abandoned');
    expect(await page.locator('table.approvals tbody tr').count()).toBe(1);
    await page.goto(`${base}/ui/sessions/sql-alice`);
    const approval = await visibleText(page.locator('table.approvals tbody tr').first());
    expect(approval).toContain('approved');
    expect(approval).toContain('bob@example.com');
    expect(approval).toContain('ticket 42');
  });

  it('logs out, after which the UI asks for the token again', async () => {
    await page.goto(`${base}/ui`);
    await Promise.all([page.waitForURL(/\/ui\/login/), page.click('header button[type=submit]')]);
    expect(await page.textContent('.notice')).toContain('You are logged out.');
    await page.goto(`${base}/ui/sessions/sql-alice`);
    expect(new URL(page.url()).pathname).toBe('/ui/login');
  });

  it('kept to the policy: no CSP violations or script errors, no request to any host but 127.0.0.1', () => {
    expect(cspViolations).toEqual([]);
    expect(pageErrors).toEqual([]);
    // The wrong-token login answers 401, which Chromium logs as a failed resource load.
    expect(consoleErrors.filter((e) => !/status of 401/.test(e))).toEqual([]);
    expect(offHost).toEqual([]);
  });

  it('keeps the UI out of the API description', async () => {
    const spec = (await (await fetch(`${base}/openapi.json`)).json()) as { paths: Record<string, unknown> };
    expect(Object.keys(spec.paths)).toContain('/v1/sessions');
    expect(Object.keys(spec.paths).filter((p) => p.startsWith('/ui'))).toEqual([]);
  });
});
