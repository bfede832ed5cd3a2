// Real kubectl through the gateway to a real API server: everyday verbs, decisions, approvals,
// refused upgrades, and hostile input that must not disturb other requests.

import { connect } from 'node:net';
import { run, startOidcIssuer } from '@chaperone/testkit';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KubeDecision } from './hooks.js';
import { GATEWAY_SA, type KubeFixture, startKubeFixture } from './test-fixture.js';

let fx: KubeFixture;
const NS = 'gw';

const allow = async (): Promise<KubeDecision> => ({ action: 'allow', rule: 'test-allow' });

/** Writes raw bytes to the gateway and returns everything it answers until it closes. */
function rawExchange(payload: string | ((s: import('node:net').Socket) => void), timeoutMs = 15_000) {
  return new Promise<{ text: string; ms: number }>((resolve, reject) => {
    const started = Date.now();
    const s = connect(fx.gateway.port, '127.0.0.1');
    let text = '';
    s.on('data', (d) => {
      text += d.toString();
    });
    s.on('error', () => {});
    s.on('close', () => resolve({ text, ms: Date.now() - started }));
    s.setTimeout(timeoutMs, () => {
      s.destroy();
      reject(new Error(`no close after ${timeoutMs} ms; got ${text}`));
    });
    s.on('connect', () => (typeof payload === 'string' ? s.write(payload) : payload(s)));
  });
}

function statusOf(raw: string): { code: number; message: string; kind: string } {
  return JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4)) as {
    code: number;
    message: string;
    kind: string;
  };
}

beforeAll(async () => {
  fx = await startKubeFixture({ headersTimeoutMs: 2_000 });
  const r = await fx.kubectl(['create', 'namespace', NS]);
  expect(r.code, r.stderr).toBe(0);
});
afterAll(async () => {
  await fx?.stop();
});

describe('kubectl through the gateway', () => {
  it('gets, lists, creates, applies (client and server side), patches and deletes', async () => {
    const k = (args: string[], input?: string) => fx.kubectl(['-n', NS, ...args], { input });
    expect((await k(['get', 'pods'])).stderr).toContain('No resources found');
    const cm = 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  a: "1"\n';
    expect((await k(['apply', '-f', '-'], cm)).stdout).toContain('configmap/app created');
    expect((await k(['apply', '-f', '-'], cm.replace('"1"', '"2"'))).stdout).toContain(
      'configmap/app configured',
    );
    const ssa = await k(['apply', '--server-side', '--force-conflicts', '-f', '-'], cm.replace('"1"', '"3"'));
    expect(ssa.code, ssa.stderr).toBe(0);
    expect(ssa.stdout).toContain('serverside-applied');
    const p = await k(['patch', 'configmap', 'app', '--type=merge', '-p', '{"data":{"b":"x"}}']);
    expect(p.code, p.stderr).toBe(0);
    const got = await k(['get', 'configmap', 'app', '-o', 'jsonpath={.data}']);
    expect(JSON.parse(got.stdout)).toEqual({ a: '3', b: 'x' });
    const dep = await k(['create', 'deployment', 'web', '--image=registry.invalid/web:1']);
    expect(dep.code, dep.stderr).toBe(0);
    expect((await k(['get', 'deployments'])).stdout).toMatch(/^web\s/m);
    expect((await k(['delete', 'configmap', 'app'])).stdout).toContain('deleted');
    expect((await fx.cp.kubectl(['-n', NS, 'get', 'configmap', 'app'])).code).not.toBe(0);
    const verbs = new Set(
      fx.records.filter((e) => e.attributes.namespace === NS).map((e) => e.attributes.verb),
    );
    for (const v of ['list', 'get', 'create', 'patch', 'delete']) expect(verbs).toContain(v);
    const del = fx.records.find((e) => e.attributes.verb === 'delete' && e.attributes.name === 'app');
    expect(del).toMatchObject({ status: 200, decision: 'allow', rule: 'test-allow' });
  });

  it('auth can-i answers policy ∧ RBAC (SelfSubjectAccessReview)', async () => {
    const reviewed: string[] = [];
    fx.evaluate = async (a) => {
      reviewed.push(`${a.verb} ${a.resource} ${a.namespace}`);
      return a.verb === 'delete' && a.resource === 'namespaces'
        ? { allowed: false, reason: 'namespaces are never deleted by agents', rule: 'guard-ns' }
        : { allowed: true };
    };
    try {
      const no = await fx.kubectl(['auth', 'can-i', 'delete', 'namespaces']);
      expect(no.stdout.trim()).toBe(
        'no - chaperone policy: namespaces are never deleted by agents (rule "guard-ns")',
      );
      expect(no.code).toBe(1);
      const yes = await fx.kubectl(['-n', NS, 'auth', 'can-i', 'list', 'pods']);
      expect(yes.stdout.trim()).toBe('yes');
      expect(reviewed).toEqual(['delete namespaces default', `list pods ${NS}`]);
      const raw = await fetch(`${fx.gateway.url}/apis/authorization.k8s.io/v1/selfsubjectaccessreviews`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          apiVersion: 'authorization.k8s.io/v1',
          kind: 'SelfSubjectAccessReview',
          spec: { resourceAttributes: { verb: 'delete', resource: 'namespaces', name: 'prod' } },
        }),
      });
      expect(((await raw.json()) as { status: object }).status).toEqual({
        allowed: false,
        denied: true,
        reason: 'chaperone policy: namespaces are never deleted by agents (rule "guard-ns")',
      });
    } finally {
      fx.evaluate = undefined;
    }
    // Without policy evaluation the API server answers for the gateway's identity alone.
    expect((await fx.kubectl(['auth', 'can-i', 'delete', 'namespaces'])).stdout.trim()).toBe('yes');
  });

  it('discovery, /version and OpenAPI pass through', async () => {
    const v = await fx.kubectl(['version', '-o', 'json']);
    expect(JSON.parse(v.stdout).serverVersion.gitVersion).toMatch(/^v1\./);
    const r = await fx.kubectl(['explain', 'configmap.data']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('FIELD: data');
    expect((await fx.kubectl(['api-resources'])).stdout).toContain('deployments');
  });

  it('streams a watch event by event (kubectl get -w)', async () => {
    await fx.cp.kubectl(['-n', NS, 'create', 'configmap', 'w0']);
    const w = fx.spawnKubectl(['-n', NS, 'get', 'configmaps', '-w']);
    await w.waitForStdout(/^w0\s/m);
    for (const name of ['w1', 'w2']) {
      await fx.cp.kubectl(['-n', NS, 'create', 'configmap', name]);
      await w.waitForStdout(new RegExp(`^${name}\\s`, 'm'));
    }
    await w.stop();
  });

  it('denies with a 403 Status naming the rule; nothing reaches the API server', async () => {
    await fx.cp.kubectl(['-n', NS, 'create', 'configmap', 'keep']);
    fx.decide = async (ctx) =>
      ctx.attributes.verb === 'delete'
        ? { action: 'deny', rule: 'no-deletes', reason: 'deletes need a change ticket' }
        : allow();
    try {
      const r = await fx.kubectl(['-n', NS, 'delete', 'configmap', 'keep']);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('Error from server (Forbidden)');
      expect(r.stderr).toContain('delete configmaps "keep" in namespace "gw" denied by rule "no-deletes"');
      expect(r.stderr).toContain('deletes need a change ticket');
      expect((await fx.cp.kubectl(['-n', NS, 'get', 'configmap', 'keep'])).code).toBe(0);
      const rec = fx.records.findLast((e) => e.attributes.name === 'keep');
      expect(rec).toMatchObject({ status: 403, decision: 'deny', rule: 'no-deletes' });
    } finally {
      fx.decide = allow;
    }
  });

  it('hands guardrail risks to decide: token minting and Secret-mounting pods read as read-secrets', async () => {
    fx.decide = async (ctx) => {
      const risk = ctx.risks.find((r) => r.detector === 'read-secrets');
      return risk ? { action: 'deny', rule: 'guardrail:read-secrets', reason: risk.reason } : allow();
    };
    try {
      const token = await fx.kubectl(['-n', 'default', 'create', 'token', GATEWAY_SA]);
      expect(token.code).toBe(1);
      expect(token.stderr).toContain(`mints a token for ServiceAccount ${GATEWAY_SA}`);
      const pod = JSON.stringify({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'leaky', namespace: NS },
        spec: {
          containers: [
            { name: 'c', image: 'registry.invalid/x:1', envFrom: [{ secretRef: { name: 'db-creds' } }] },
          ],
        },
      });
      const apply = await fx.kubectl(['apply', '-f', '-'], { input: pod });
      expect(apply.code).toBe(1);
      expect(apply.stderr).toContain('pods that mounts or injects Secret db-creds');
      const ssa = await fx.kubectl(['apply', '--server-side', '-f', '-'], { input: pod });
      expect(ssa.stderr).toContain('mounts or injects Secret db-creds');
      expect((await fx.cp.kubectl(['-n', NS, 'get', 'pod', 'leaky'])).code).not.toBe(0);
    } finally {
      fx.decide = allow;
    }
  });

  it('an approval holds the request, then it proceeds (or is denied naming the AccessRequest)', async () => {
    await fx.cp.kubectl(['-n', NS, 'create', 'configmap', 'gated']);
    let release!: (d: KubeDecision) => void;
    let waiting = false;
    fx.decide = (ctx) => {
      if (ctx.attributes.verb !== 'patch') return allow();
      waiting = true;
      return new Promise<KubeDecision>((r) => {
        release = r;
      });
    };
    try {
      const pending = fx.kubectl(['-n', NS, 'patch', 'configmap', 'gated', '-p', '{"data":{"x":"1"}}']);
      for (let i = 0; i < 100 && !waiting; i++) await new Promise((r) => setTimeout(r, 50));
      expect(waiting).toBe(true);
      await new Promise((r) => setTimeout(r, 1_000));
      const before = await fx.cp.kubectl(['-n', NS, 'get', 'configmap', 'gated', '-o', 'jsonpath={.data}']);
      expect(before.stdout).toBe('');
      release({ action: 'allow', rule: 'approved-by-alice' });
      const done = await pending;
      expect(done.code, done.stderr).toBe(0);
      const after = await fx.cp.kubectl(['-n', NS, 'get', 'configmap', 'gated', '-o', 'jsonpath={.data.x}']);
      expect(after.stdout).toBe('1');

      waiting = false;
      const denied = fx.kubectl(['-n', NS, 'patch', 'configmap', 'gated', '-p', '{"data":{"x":"2"}}']);
      for (let i = 0; i < 100 && !waiting; i++) await new Promise((r) => setTimeout(r, 50));
      release({ action: 'deny', rule: 'prod-writes', reason: 'approval denied', accessRequest: 'ar-123' });
      const d = await denied;
      expect(d.code).toBe(1);
      expect(d.stderr).toContain('(AccessRequest ar-123): approval denied');
    } finally {
      fx.decide = allow;
    }
  });

  it('exec over WebSocket: decided on its argv, re-originated to the API server with the gateway token', async () => {
    await fx.cp.kubectl(['-n', NS, 'run', 'shell', '--image=registry.invalid/sh:1']);
    const argv: string[][] = [];
    fx.decide = async (ctx) => {
      if (ctx.attributes.subresource === 'exec')
        argv.push(ctx.query.filter(([k]) => k === 'command').map(([, v]) => v));
      return allow();
    };
    try {
      const r = await fx.kubectl(['-n', NS, 'exec', 'shell', '--', 'cat', '/etc/hostname']);
      // No kubelet here: the API server itself answers that the pod has no node, which proves the
      // upgrade reached it (as the gateway) and its Status came back on kubectl's error channel.
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain('does not have a host assigned');
      expect(argv).toEqual([['cat', '/etc/hostname']]);
      const rec = fx.records.findLast((e) => e.attributes.subresource === 'exec');
      expect(rec).toMatchObject({
        decision: 'error',
        status: 400,
        exec: { command: ['cat', '/etc/hostname'] },
      });
      const audit = (await fx.audit.events()).filter(
        (e) => e.objectRef?.subresource === 'exec' && e.objectRef.name === 'shell',
      );
      expect(audit.length).toBeGreaterThanOrEqual(1);
      expect(audit.every((e) => e.user?.username === `system:serviceaccount:default:${GATEWAY_SA}`)).toBe(
        true,
      );
    } finally {
      fx.decide = allow;
    }
  });

  it('exec denied after an approval wait longer than the kubectl ping interval; SPDY refused', async () => {
    const auditBefore = (await fx.audit.events()).filter((e) => e.objectRef?.subresource === 'exec').length;
    fx.decide = async (ctx, notify) => {
      if (ctx.attributes.subresource !== 'exec') return allow();
      notify('chaperone: waiting for approval of AccessRequest ar-exec');
      await new Promise((r) => setTimeout(r, 7_000));
      return { action: 'deny', rule: 'no-shells', reason: 'approval denied', accessRequest: 'ar-exec' };
    };
    try {
      const r = await fx.kubectl(['-n', NS, 'exec', 'shell', '--', 'rm', '-rf', '/']);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain('chaperone: waiting for approval of AccessRequest ar-exec\n');
      expect(r.stderr).toContain('denied by rule "no-shells" (AccessRequest ar-exec): approval denied');
      const after = (await fx.audit.events()).filter((e) => e.objectRef?.subresource === 'exec').length;
      expect(after).toBe(auditBefore);
    } finally {
      fx.decide = allow;
    }
    const spdy = await run(
      fx.cp.kubectlPath,
      ['--kubeconfig', fx.kubeconfig, '-n', NS, 'exec', 'shell', '--', 'true'],
      {
        env: { ...process.env, KUBECTL_REMOTE_COMMAND_WEBSOCKETS: 'false' },
      },
    );
    expect(spdy.code).not.toBe(0);
    expect(spdy.stderr).toContain('SPDY and port-forward are not yet');
  });
});

describe('identity and credentials', () => {
  it('verifies an OIDC bearer token for on-behalf-of identity and never forwards it', async () => {
    const oidc = await startOidcIssuer();
    const jwks = createRemoteJWKSet(new URL(oidc.jwksUri));
    fx.verifyBearer = async (t) => {
      const { payload } = await jwtVerify(t, jwks, { issuer: oidc.issuer, audience: oidc.clientId });
      return { user: String(payload.sub), groups: (payload.groups as string[] | undefined) ?? [] };
    };
    const seen: string[] = [];
    fx.decide = async (ctx) => {
      if (ctx.identity) seen.push(`${ctx.identity.user}:${ctx.identity.groups.join(',')}`);
      return allow();
    };
    try {
      const token = await oidc.mint({ subject: 'alice', groups: ['deployers'] });
      const r = await fx.kubectl(['get', 'namespace', NS, '--token', token], { tls: true });
      expect(r.code, r.stderr).toBe(0);
      expect(seen).toContain('alice:deployers');
      const expired = await oidc.mint({ subject: 'alice', expiresIn: -60 });
      const bad = await fx.kubectl(['get', 'namespace', NS, '--token', expired], { tls: true });
      expect(bad.code).toBe(1);
      expect(bad.stderr).toContain('the bearer token was not accepted');
      const users = new Set(
        (await fx.audit.events())
          .filter((e) => e.userAgent?.startsWith('kubectl'))
          .map((e) => e.user?.username),
      );
      // Only the gateway's identity (and the test's direct admin) ever reach the API server.
      expect([...users].sort()).toEqual(['chaperone-admin', `system:serviceaccount:default:${GATEWAY_SA}`]);
    } finally {
      fx.verifyBearer = undefined;
      fx.decide = allow;
      await oidc.stop();
    }
  });

  it('uses the renewed upstream token for new requests; a running watch keeps its connection', async () => {
    const original = fx.token;
    const next = `${GATEWAY_SA}-next`;
    await fx.cp.kubectl(['-n', 'default', 'create', 'serviceaccount', next]);
    await fx.cp.kubectl([
      'create',
      'clusterrolebinding',
      next,
      `--clusterrole=${next}`,
      `--serviceaccount=default:${next}`,
    ]);
    // (no controller manager aggregates `view` here, so a role of our own)
    await fx.cp.kubectl(['create', 'clusterrole', next, '--verb=get,list,watch', '--resource=configmaps']);
    await fx.cp.kubectl(['-n', NS, 'create', 'configmap', 'before-rotation']);
    const watch = fx.spawnKubectl(['-n', NS, 'get', 'configmaps', '-w']);
    try {
      await watch.waitForStdout(/^before-rotation\s/m);
      fx.token = await fx.mintToken(next);
      const r = await fx.kubectl(['-n', NS, 'get', 'configmap', 'before-rotation', '-o', 'name']);
      expect(r.code, r.stderr).toBe(0);
      const users = (await fx.audit.events())
        .filter((e) => e.requestURI.startsWith(`/api/v1/namespaces/${NS}/configmaps/before-rotation`))
        .map((e) => e.user?.username);
      expect(users.at(-1)).toBe(`system:serviceaccount:default:${next}`);
      // The new identity is really in force: its role cannot read namespaces.
      expect((await fx.kubectl(['get', 'namespace', NS])).stderr).toContain(`default:${next}" cannot get`);
      await fx.cp.kubectl(['-n', NS, 'create', 'configmap', 'after-rotation']);
      await watch.waitForStdout(/^after-rotation\s/m);
    } finally {
      await watch.stop();
      fx.token = original;
    }
  });
});

describe('hostile input', () => {
  it('refuses impersonation and foreign credentials', async () => {
    const as = await fx.kubectl(['get', 'pods', '--as=system:admin']);
    expect(as.code).toBe(1);
    expect(as.stderr).toContain('impersonation is not allowed');
    const group = await fx.kubectl(['get', 'pods', '--as=x', '--as-group=system:masters']);
    expect(group.stderr).toContain('impersonation is not allowed');
    const token = await fx.kubectl(['get', 'pods', '--token=stolen'], { tls: true });
    expect(token.code).toBe(1);
    expect(token.stderr).toContain('the bearer token was not accepted');
    const basic = await fetch(`${fx.gateway.url}/api/v1/namespaces`, {
      headers: { authorization: `Basic ${Buffer.from('admin:admin').toString('base64')}` },
    });
    expect(basic.status).toBe(401);
    expect(await basic.json()).toMatchObject({ kind: 'Status', code: 401, reason: 'Unauthorized' });
  });

  it('answers malformed HTTP, huge headers, slowloris and bogus upgrades, and keeps serving', async () => {
    const watch = fx.spawnKubectl(['-n', NS, 'get', 'configmaps', '-w']);
    await watch.waitForStdout(/NAME/);

    const garbage = await rawExchange('GARBAGE\r\n\r\n');
    expect(garbage.text).toMatch(/^HTTP\/1\.1 400/);
    expect(statusOf(garbage.text)).toMatchObject({ kind: 'Status', code: 400 });

    const smuggle = await rawExchange(
      `POST /api/v1/namespaces/${NS}/configmaps HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
    );
    expect(smuggle.text).toMatch(/^HTTP\/1\.1 400/);

    const huge = await rawExchange(
      `GET /version HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(64 * 1024)}\r\n\r\n`,
    );
    expect(huge.text).toMatch(/^HTTP\/1\.1 431/);

    const slow = await rawExchange((s) => {
      s.write('GET /version HTTP/1.1\r\nHost: x\r\n');
      const t = setInterval(() => (s.writable ? s.write('X-Slow: 1\r\n') : clearInterval(t)), 300);
      s.on('close', () => clearInterval(t));
    });
    expect(slow.text).toMatch(/^HTTP\/1\.1 408/);
    expect(slow.ms).toBeLessThan(6_000);

    for (const upgrade of ['h2c', 'websocket', 'SPDY/3.1', '\u00ff\u00fe']) {
      const u = await rawExchange(
        `GET /api/v1/namespaces/${NS}/pods/x/exec?command=sh HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: ${upgrade}\r\n\r\n`,
      );
      expect(u.text, upgrade).toMatch(/^HTTP\/1\.1 (400|403)/);
    }
    const traversal = await rawExchange(
      `GET /api/v1/namespaces/${NS}/configmaps/a%2Fb HTTP/1.1\r\nHost: x\r\n\r\n`,
    );
    expect(statusOf(traversal.text)).toMatchObject({ code: 400, message: 'chaperone: encoded "/" in path' });
    const method = await rawExchange('TRACE /version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(statusOf(method.text)).toMatchObject({ code: 405 });

    await fx.cp.kubectl(['-n', NS, 'create', 'configmap', 'after-attacks']);
    await watch.waitForStdout(/^after-attacks\s/m);
    const ok = await fx.kubectl(['get', 'namespace', NS]);
    expect(ok.code, ok.stderr).toBe(0);
    await watch.stop();
  });

  it('refuses a request body over the limit with 413 before reading it', async () => {
    const r = await rawExchange(
      `POST /api/v1/namespaces/${NS}/configmaps HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${9 * 1024 * 1024}\r\nConnection: close\r\n\r\n{"a":`,
    );
    expect(statusOf(r.text)).toMatchObject({ kind: 'Status', code: 413 });
  });
});
