import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RecordingEvent } from '@chaperone/api';
import {
  type ControlPlane,
  freePort,
  repoPath,
  run,
  startControlPlane,
  writeCredentiallessKubeconfig,
} from '@chaperone/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// The built sidecar CLI in standalone mode, its own process, in front of a real kube-apiserver;
// the agent is the real kubectl with a kubeconfig that holds no credential.
let cp: ControlPlane;
let proc: ChildProcess;
let dir: string;
let port: number;
let adminUrl: string;
let kubeconfig: string;
let log = '';
const SA_TOKEN_SECRET = 'cluster-gateway-token';

async function admin(args: string[]): Promise<string> {
  const r = await cp.kubectl(args);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

function configYaml(token: string, ca: string): string {
  return `
apiVersion: chaperone.dev/v1alpha1
kind: Connection
metadata: { name: cluster }
spec:
  type: kubernetes
  endpoint:
    url: ${cp.server}
    caBundle: ${Buffer.from(ca).toString('base64')}
  listen: { port: ${port} }
  credentials:
    kubernetes:
      serviceAccountRef: { name: gateway, namespace: default }
      tokenSecretRef: { name: ${SA_TOKEN_SECRET} }
---
apiVersion: v1
kind: Secret
metadata: { name: ${SA_TOKEN_SECRET} }
stringData: { token: ${token} }
---
apiVersion: chaperone.dev/v1alpha1
kind: AccessPolicy
metadata: { name: deploy-bot }
spec:
  subjects: [{ kind: ServiceAccount, namespace: agents, name: deploy-bot }]
  connections: { names: [cluster] }
  rules:
    - { name: no-deletes-in-prod, action: deny, reason: prod is managed by CD, kubernetes: { verbs: [delete], namespaces: [prod] } }
    - { name: restarts, action: approve, reason: deleting a pod needs an on-call human, kubernetes: { verbs: [delete], resources: [pods] } }
    - { name: reads, action: allow, kubernetes: { verbs: [get, list, watch] } }
  guardrails: []
  approval:
    approvers: { groups: [oncall] }
    timeout: 30s
`;
}

const kubectl = (args: string[]) =>
  run(cp.kubectlPath, ['--kubeconfig', kubeconfig, '--cache-dir', join(dir, 'cache'), ...args], {
    timeoutMs: 60_000,
  });
const approvals = (...args: string[]) =>
  run(process.execPath, [repoPath('sidecar', 'dist', 'cli.js'), 'approvals', ...args, '--admin', adminUrl]);

async function recorded(): Promise<RecordingEvent[]> {
  const recDir = join(dir, 'rec');
  const files = await readdir(recDir).catch(() => [] as string[]);
  const lines = await Promise.all(files.map((f) => readFile(join(recDir, f), 'utf8')));
  return lines
    .join('')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as RecordingEvent);
}

beforeAll(async () => {
  cp = await startControlPlane({ installCrds: false });
  await admin(['create', 'namespace', 'prod']);
  await admin(['create', 'serviceaccount', 'gateway', '-n', 'default']);
  await admin([
    'create',
    'clusterrolebinding',
    'gateway',
    '--clusterrole=cluster-admin',
    '--serviceaccount=default:gateway',
  ]);
  for (const ns of ['default', 'prod']) {
    await admin(['create', 'configmap', 'app-config', '-n', ns, '--from-literal=mode=blue']);
  }
  await admin([
    'create',
    'secret',
    'generic',
    'db-password',
    '-n',
    'default',
    '--from-literal=password=hunter2-do-not-leak',
  ]);
  const token = (await admin(['create', 'token', 'gateway', '-n', 'default', '--duration=2h'])).trim();
  dir = await mkdtemp(join(tmpdir(), 'chaperone-kube-'));
  port = await freePort();
  const adminPort = await freePort();
  adminUrl = `http://127.0.0.1:${adminPort}`;
  await writeFile(join(dir, 'cluster.yaml'), configYaml(token, await readFile(cp.caCertPath, 'utf8')));
  kubeconfig = await writeCredentiallessKubeconfig(join(dir, 'agent.kubeconfig'), `http://127.0.0.1:${port}`);
  proc = spawn(
    process.execPath,
    [
      repoPath('sidecar', 'dist', 'cli.js'),
      '--standalone',
      dir,
      '--service-account',
      'agents/deploy-bot',
      '--recordings',
      join(dir, 'rec'),
      '--admin-port',
      String(adminPort),
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  proc.stderr?.on('data', (d) => {
    log += d;
  });
  for (let i = 0; i < 200 && !log.includes('"ready"'); i++) await new Promise((r) => setTimeout(r, 50));
  expect(log).toContain('"ready"');
}, 120_000);

afterAll(async () => {
  proc?.kill('SIGTERM');
  await cp?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('kubectl through a standalone sidecar', () => {
  it('gets and lists through the sidecar, with the sidecar token', async () => {
    const one = await kubectl([
      'get',
      'configmap',
      'app-config',
      '-n',
      'default',
      '-o',
      'jsonpath={.data.mode}',
    ]);
    expect(one.stderr).toBe('');
    expect(one.stdout).toBe('blue');
    const all = await kubectl(['get', 'configmaps', '-A', '-o', 'name']);
    expect(all.code).toBe(0);
    expect(all.stdout.split('\n').filter((l) => l === 'configmap/app-config')).toHaveLength(2);
  });

  it('denies a delete with a 403 that names the rule, and the object stays', async () => {
    const r = await kubectl(['delete', 'configmap', 'app-config', '-n', 'prod']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('Forbidden');
    expect(r.stderr).toContain('deploy-bot/no-deletes-in-prod');
    expect(r.stderr).toContain('prod is managed by CD');
    expect(await admin(['get', 'configmap', 'app-config', '-n', 'prod', '-o', 'name'])).toContain(
      'app-config',
    );
  });

  it('denies what no rule allows (a write)', async () => {
    const r = await kubectl(['create', 'configmap', 'sneaky', '-n', 'default', '--from-literal=a=b']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('create configmaps in namespace "default" denied: no rule allows');
    expect((await cp.kubectl(['get', 'configmap', 'sneaky', '-n', 'default'])).code).not.toBe(0);
  });

  it('holds a pod delete until it is approved with the approvals CLI, then it proceeds', async () => {
    await admin(['run', 'web', '-n', 'default', '--image=nginx', '--restart=Never']);
    const pending = kubectl(['delete', 'pod', 'web', '-n', 'default', '--wait=false']);
    let listed = '';
    for (let i = 0; i < 100 && !listed.includes('ar-'); i++) {
      listed = (await approvals('list')).stdout;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(listed).toContain('delete pods "web" in namespace "default"');
    // Still waiting: kubectl has not returned and the pod is still there.
    expect(await admin(['get', 'pod', 'web', '-n', 'default', '-o', 'name'])).toContain('pod/web');
    const name = /(ar-cluster-[0-9a-z]+)/.exec(listed)?.[1] ?? '';
    expect(name).not.toBe('');
    const ok = await approvals('approve', name, '--reason', 'restart it');
    expect(ok.stdout).toContain(`accessrequest ${name} approved`);
    const r = await pending;
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('pod "web" deleted');
  });

  it('answers a denied approval with a 403 naming the rule and the AccessRequest', async () => {
    await admin(['run', 'api', '-n', 'default', '--image=nginx', '--restart=Never']);
    const pending = kubectl(['delete', 'pod', 'api', '-n', 'default', '--wait=false']);
    let listed = '';
    for (let i = 0; i < 100 && !listed.includes('"api"'); i++) {
      listed = (await approvals('list')).stdout;
      await new Promise((r) => setTimeout(r, 100));
    }
    const name =
      /(ar-cluster-[0-9a-z]+)\s[^\n]*"api"/.exec(listed)?.[1] ??
      /(ar-cluster-[0-9a-z]+)/.exec(listed)?.[1] ??
      '';
    await approvals('deny', name, '--reason', 'not now');
    const r = await pending;
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('Forbidden');
    expect(r.stderr).toContain('deploy-bot/restarts');
    expect(r.stderr).toContain(`AccessRequest ${name}`);
    expect(await admin(['get', 'pod', 'api', '-n', 'default', '-o', 'name'])).toContain('pod/api');
  });

  it('refuses impersonation and unverifiable tokens with a Status, and keeps serving', async () => {
    const url = `http://127.0.0.1:${port}/api/v1/namespaces/default/configmaps`;
    const imp = await fetch(url, { headers: { 'Impersonate-User': 'system:admin' } });
    expect(imp.status).toBe(403);
    expect(await imp.json()).toMatchObject({ kind: 'Status', code: 403 });
    // No TokenVerifier is configured here: a bearer token cannot be checked, so it is refused.
    const bearer = await fetch(url, { headers: { Authorization: 'Bearer forged' } });
    expect(bearer.status).toBe(401);
    const after = await kubectl(['get', 'configmaps', '-n', 'default', '-o', 'name']);
    expect(after.stdout).toContain('configmap/app-config');
  });

  it('redacts Secret values in kubectl get secret -o yaml', async () => {
    const r = await kubectl(['get', 'secret', 'db-password', '-n', 'default', '-o', 'yaml']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('password:');
    expect(r.stdout).not.toContain(Buffer.from('hunter2-do-not-leak').toString('base64'));
    expect(r.stdout).toContain(Buffer.from('[redacted by chaperone]').toString('base64'));
  });

  it('records one command event per API request, with attributes and status, to the recordings folder', async () => {
    let events: RecordingEvent[] = [];
    for (let i = 0; i < 50; i++) {
      events = await recorded();
      if (events.some((e) => e.type === 'command' && e.data.resource === 'secrets')) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const commands = events.filter((e) => e.type === 'command');
    const denied = commands.find(
      (e) => e.type === 'command' && e.data.verb === 'delete' && e.data.namespace === 'prod',
    );
    expect(denied?.data).toMatchObject({
      decision: 'denied',
      resource: 'configmaps',
      name: 'app-config',
      status: 403,
    });
    expect(denied?.rule).toBe('deploy-bot/no-deletes-in-prod');
    const approved = commands.find(
      (e) => e.type === 'command' && e.data.verb === 'delete' && e.data.name === 'web',
    );
    expect(approved?.data).toMatchObject({
      decision: 'approved',
      resource: 'pods',
      namespace: 'default',
      status: 200,
    });
    const secret = commands.find((e) => e.type === 'command' && e.data.resource === 'secrets');
    expect(secret?.data).toMatchObject({ verb: 'get', status: 200, decision: 'allowed' });
    expect(secret?.type === 'command' ? secret.data.redactedValues : 0).toBeGreaterThan(0);
    expect(events.some((e) => e.type === 'approval.decided' && e.data.verdict === 'approved')).toBe(true);
    expect(events.some((e) => e.type === 'credential.issued')).toBe(true);
    const all = JSON.stringify(events);
    expect(all).not.toContain('hunter2-do-not-leak');
    expect(all).not.toContain(Buffer.from('hunter2-do-not-leak').toString('base64'));
  });
});
