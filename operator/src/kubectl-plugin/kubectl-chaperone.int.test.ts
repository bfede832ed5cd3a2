// The plugin as approvers run it, against a real kube-apiserver: `requests --watch` prints a new
// request within a second of its creation (a watch, not polling) and then its decision; `describe`
// shows the session's recent statements from a real collector (its CLI, run as a process), and the
// request alone, with the reason, when the collector cannot be reached.
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type AccessRequest, canonicalJson, RECORDING_SCHEMA_VERSION } from '@chaperone/api';
import { type ControlPlane, freePort, startControlPlane, waitFor } from '@chaperone/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const PLUGIN = fileURLToPath(new URL('../../dist/kubectl-plugin/kubectl-chaperone.js', import.meta.url));
const COLLECTOR = fileURLToPath(new URL('../../../collector/dist/cli.js', import.meta.url));
const AUDITOR_TOKEN = 'describe-auditor-token-0123456789';
const INGEST_TOKEN = 'describe-ingest-token-0123456789';
let dir: string;
const NS = 'team-a';
let cp: ControlPlane;
const children: ChildProcess[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'chaperone-plugin-'));
  cp = await startControlPlane({ installCrds: true });
  const r = await cp.kubectl(['create', 'namespace', NS]);
  expect(r.code).toBe(0);
  // A new CRD's storage may still be initializing (429) for a moment after it is Established.
  await waitFor(
    'AccessRequests to be listable',
    async () => (await cp.kubectl(['get', 'accessrequests', '-A'])).code === 0,
  );
}, 120_000);

afterAll(async () => {
  for (const c of children) c.kill('SIGTERM');
  await cp?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function request(name: string): AccessRequest {
  return {
    apiVersion: 'chaperone.dev/v1alpha1',
    kind: 'AccessRequest',
    metadata: { name, namespace: NS },
    spec: {
      requester: { serviceAccount: { namespace: NS, name: 'orders-agent' } },
      connection: 'orders-db',
      policy: 'orders-agents',
      sessionId: 'S-watch',
      operation: {
        type: 'postgres',
        class: 'write',
        text: 'DELETE FROM orders WHERE id = $1',
        riskReasons: ['rule write'],
      },
      expiresAt: new Date(Date.now() + 600_000).toISOString(),
    },
  } as AccessRequest;
}

function plugin(args: string[], env: NodeJS.ProcessEnv = {}) {
  const child = spawn(process.execPath, [PLUGIN, ...args, '--kubeconfig', cp.admin.kubeconfigPath], {
    env: { ...process.env, CHAPERONE_COLLECTOR_URL: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  const out = { stdout: '', stderr: '' };
  child.stdout?.on('data', (d: Buffer) => {
    out.stdout += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    out.stderr += d.toString();
  });
  const done = new Promise<number>((resolve) => child.on('exit', (code) => resolve(code ?? -1)));
  return { child, out, done };
}

describe('kubectl chaperone against a real API server', () => {
  it('requests --watch shows a new request within a second, then its decision', async () => {
    const w = plugin(['requests', '-w', '-n', NS]);
    await waitFor(
      'the watch to start',
      async () => w.out.stderr.includes('waiting for new ones'),
      20_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}; stdout ${w.out.stdout}; stderr ${w.out.stderr}`);
    });
    // Give the watch request a moment to be established after the list.
    await new Promise((r) => setTimeout(r, 500));
    const r = await cp.kubectl(['create', '-f', '-'], { input: JSON.stringify(request('watched-1')) });
    expect(r.code).toBe(0);
    const created = Date.now();
    let seenAt = 0;
    await waitFor(
      'the new request in the watch output',
      async () => {
        if (w.out.stdout.includes('watched-1')) seenAt ||= Date.now();
        return seenAt > 0;
      },
      5_000,
      10,
    );
    // kubectl create returns once the object is stored; the watch line follows within a second.
    expect(seenAt - created).toBeLessThan(1_000);
    expect(w.out.stdout).toMatch(/watched-1 +Pending +orders-db +team-a\/orders-agent +DELETE FROM orders/);
    const deny = await cp.kubectl([
      'patch',
      'accessrequest',
      'watched-1',
      '-n',
      NS,
      '--subresource=status',
      '--type=merge',
      '-p',
      '{"status":{"phase":"Denied","decision":{"verdict":"Denied","comment":"no"}}}',
    ]);
    expect(deny.code).toBe(0);
    await waitFor(
      'the decision in the watch output',
      async () => /watched-1 +Denied/.test(w.out.stdout),
      5_000,
      10,
    );
    w.child.kill('SIGTERM');
  }, 60_000);

  it('describe shows the request and says why the statements are missing', async () => {
    await cp.kubectl(['create', '-f', '-'], { input: JSON.stringify(request('described-1')) });
    const none = plugin(['describe', 'described-1', '-n', NS]);
    expect(await none.done).toBe(0);
    expect(none.out.stdout).toContain('Name:             described-1');
    expect(none.out.stdout).toContain('kubectl chaperone approve described-1 -n team-a');
    expect(none.out.stdout).toContain('Recent Statements: not shown: no collector configured');
    // A collector nobody listens on: still the request, and the reason.
    const down = plugin([
      'describe',
      'described-1',
      '-n',
      NS,
      '--collector',
      `http://127.0.0.1:${await freePort()}`,
    ]);
    expect(await down.done).toBe(0);
    expect(down.out.stdout).toMatch(
      /Recent Statements: not shown: cannot reach the collector \(ECONNREFUSED\)/,
    );
    const missing = plugin(['describe', 'nope', '-n', NS]);
    expect(await missing.done).toBe(1);
    expect(missing.out.stderr).toMatch(/not ?found/i);
  }, 60_000);

  it('describe shows the recent statements of the session from the collector, escaped', async () => {
    await writeFile(join(dir, 'auditor.token'), AUDITOR_TOKEN);
    await writeFile(join(dir, 'ingest.token'), INGEST_TOKEN);
    const port = await freePort();
    const collector = spawn(
      process.execPath,
      [
        COLLECTOR,
        'serve',
        '--db',
        `sqlite:${join(dir, 'collector.db')}`,
        '--host',
        '127.0.0.1',
        '--port',
        String(port),
        '--ingest-token-file',
        join(dir, 'ingest.token'),
        '--auditor-token-file',
        join(dir, 'auditor.token'),
        '--log-level',
        'warn',
      ],
      { stdio: 'ignore' },
    );
    children.push(collector);
    const base = `http://127.0.0.1:${port}`;
    await waitFor(
      'the collector',
      async () => (await fetch(`${base}/readyz`).catch(() => undefined))?.ok,
      20_000,
    );
    // The session the request names, recorded as a sidecar records it (hash chain included).
    let prevHash = '';
    const events = [
      { type: 'session.start', data: { protocol: 'postgres', client: '127.0.0.1:40000' } },
      {
        type: 'query',
        data: {
          text: 'SELECT count(*) FROM orders',
          fingerprint: 'a',
          classes: ['read'],
          tables: [],
          risks: [],
          decision: 'allowed',
        },
      },
      {
        type: 'query',
        data: {
          text: 'SELECT "\u001b[2J" FROM x',
          fingerprint: 'b',
          classes: ['read'],
          tables: [],
          risks: [],
          decision: 'allowed',
        },
      },
      {
        type: 'approval.requested',
        data: { request: 'with-session', text: 'DELETE FROM orders WHERE id = $1', reasons: ['write'] },
      },
    ].map((e, seq) => {
      const event = JSON.parse(
        canonicalJson({
          v: RECORDING_SCHEMA_VERSION,
          ...e,
          sessionId: 'S-describe',
          seq,
          time: new Date(Date.now() - 60_000 + seq * 1_000).toISOString(),
          identity: { serviceAccount: `${NS}/orders-agent`, groups: [] },
          connection: 'orders-db',
          prevHash,
        }),
      ) as unknown;
      prevHash = createHash('sha256').update(canonicalJson(event)).digest('hex');
      return event;
    });
    const ingest = await fetch(`${base}/v1/events`, {
      method: 'POST',
      headers: { authorization: `Bearer ${INGEST_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ events }),
    });
    expect(ingest.status, await ingest.clone().text()).toBe(200);
    const ar = request('with-session');
    ar.spec.sessionId = 'S-describe';
    expect((await cp.kubectl(['create', '-f', '-'], { input: JSON.stringify(ar) })).code).toBe(0);

    const d = plugin(['describe', 'with-session', '-n', NS, '--collector', base], {
      CHAPERONE_COLLECTOR_TOKEN: AUDITOR_TOKEN,
    });
    expect(await d.done).toBe(0);
    expect(d.out.stdout).toContain(`Recent Statements (3, from ${base}/ui/sessions/S-describe):`);
    expect(d.out.stdout).toMatch(/allowed +SELECT count\(\*\) FROM orders/);
    expect(d.out.stdout).toMatch(/paused +DELETE FROM orders WHERE id = \$1/);
    expect(d.out.stdout).toContain('\\x1b[2J');
    expect(d.out.stdout).not.toContain('\u001b');
    // A wrong token: the request, and why the statements are missing.
    const refused = plugin(['describe', 'with-session', '-n', NS], {
      CHAPERONE_COLLECTOR_URL: base,
      CHAPERONE_COLLECTOR_TOKEN: 'wrong-token-0123456789',
    });
    expect(await refused.done).toBe(0);
    expect(refused.out.stdout).toContain(
      'Recent Statements: not shown: the collector refused the token (HTTP 401)',
    );
  }, 60_000);
});
