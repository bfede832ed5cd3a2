// The plugin as approvers run it, against a real kube-apiserver: `requests --watch` prints a new
// request within a second of its creation (a watch, not polling) and then its decision; `describe`
// shows the request even when the collector cannot be reached, and says why.
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { AccessRequest } from '@chaperone/api';
import { type ControlPlane, freePort, startControlPlane, waitFor } from '@chaperone/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const PLUGIN = fileURLToPath(new URL('../../dist/kubectl-plugin/kubectl-chaperone.js', import.meta.url));
const NS = 'team-a';
let cp: ControlPlane;
const children: ChildProcess[] = [];

beforeAll(async () => {
  cp = await startControlPlane({ installCrds: true });
  const r = await cp.kubectl(['create', 'namespace', NS]);
  expect(r.code).toBe(0);
}, 120_000);

afterAll(async () => {
  for (const c of children) c.kill('SIGTERM');
  await cp?.stop();
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
    await waitFor('the watch to start', async () => w.out.stderr.includes('waiting for new ones'), 20_000);
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
});
