import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { type ControlPlane, startControlPlane, TESTKIT_FIELD_MANAGER } from './control-plane.js';
import { pinnedVersions, repoPath } from './repo.js';

const examplesDir = repoPath('examples');

async function exampleDocs(): Promise<Array<{ kind: string; metadata: { name: string } }>> {
  const docs = [];
  for (const f of (await readdir(examplesDir)).filter((n) => n.endsWith('.yaml')).sort()) {
    for (const d of parseAllDocuments(await readFile(join(examplesDir, f), 'utf8'))) {
      const obj = d.toJS();
      if (obj) docs.push(obj);
    }
  }
  return docs;
}

describe('real control plane (etcd + kube-apiserver)', () => {
  let cp: ControlPlane;
  beforeAll(async () => {
    cp = await startControlPlane();
  });
  afterAll(async () => {
    await cp?.stop();
  });

  it('serves the pinned Kubernetes version and the CRDs with short names and the chaperone category', async () => {
    const version = await cp.kubectl(['version', '-o', 'json']);
    expect(JSON.parse(version.stdout).serverVersion.gitVersion).toBe(pinnedVersions().KUBE_VERSION);
    const res = await cp.kubectl([
      'api-resources',
      '--api-group=chaperone.dev',
      '-o',
      'wide',
      '--no-headers',
    ]);
    expect(res.code).toBe(0);
    const rows = res.stdout
      .trim()
      .split('\n')
      .map((l) => l.split(/\s+/));
    const byName = Object.fromEntries(rows.map((r) => [r[0], r]));
    expect(byName.connections).toEqual(
      expect.arrayContaining(['conn', 'chaperone.dev/v1alpha1', 'true', 'Connection']),
    );
    expect(byName.accesspolicies).toEqual(expect.arrayContaining(['ap', 'AccessPolicy']));
    expect(byName.accessrequests).toEqual(expect.arrayContaining(['ar', 'AccessRequest']));
    const cat = await cp.kubectl(['get', 'chaperone', '-A']);
    expect(cat.code).toBe(0);
  });

  it('installs the CRDs with their CEL rules intact (nothing dropped on the way)', async () => {
    const stored = await cp.kubectl(['get', 'crd', 'connections.chaperone.dev', '-o', 'json']);
    const schema = JSON.parse(stored.stdout).spec.versions[0].schema.openAPIV3Schema;
    const rules = (schema.properties.spec['x-kubernetes-validations'] ?? []) as Array<{ rule: string }>;
    expect(rules.map((r) => r.rule).join('\n')).toContain("self.type == 'postgres'");
    // And they are enforced right away, before anything else touched the CRDs.
    const dry = await cp.kubectl([
      'apply',
      '--dry-run=server',
      '-f',
      join(examplesDir, 'invalid', 'postgres-with-ssh-credentials.yaml'),
    ]);
    expect(dry.code).not.toBe(0);
  });

  it('kubectl applies the CRDs again (idempotent) and every example', async () => {
    const crds = await cp.kubectl([
      'apply',
      '--server-side',
      `--field-manager=${TESTKIT_FIELD_MANAGER}`,
      '-f',
      repoPath('crds'),
    ]);
    expect(crds.stderr).toBe('');
    expect(crds.stdout).toContain(
      'customresourcedefinition.apiextensions.k8s.io/connections.chaperone.dev serverside-applied',
    );
    expect(crds.code).toBe(0);
    const ns = await cp.kubectl(['create', 'namespace', 'examples']);
    expect(ns.code).toBe(0);
    const res = await cp.kubectl(['apply', '-n', 'examples', '-f', examplesDir]);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    for (const doc of await exampleDocs()) {
      const got = await cp.kubectl(['get', '-n', 'examples', doc.kind, doc.metadata.name, '-o', 'name']);
      expect(got.code, got.stderr).toBe(0);
    }
    // Defaults from the schema are applied by the server.
    const conn = (await exampleDocs()).find((d) => d.kind === 'Connection');
    const got = await cp.kubectl(['get', '-n', 'examples', 'conn', conn?.metadata.name ?? '', '-o', 'json']);
    expect(JSON.parse(got.stdout).spec.credentials).toBeDefined();
  });

  it('refuses invalid CRs with the error message of the schema rule', async () => {
    const dir = join(examplesDir, 'invalid');
    const files = (await readdir(dir)).filter((n) => n.endsWith('.yaml'));
    expect(files.length).toBeGreaterThan(0);
    await cp.kubectl(['create', 'namespace', 'invalid']);
    for (const f of files) {
      const text = await readFile(join(dir, f), 'utf8');
      const expected = [...text.matchAll(/^# expected-error: (.+)$/gm)].map((m) => m[1]?.trim() ?? '');
      expect(expected.length, `${f} has no # expected-error: line`).toBeGreaterThan(0);
      const res = await cp.kubectl(['apply', '-n', 'invalid', '-f', join(dir, f)]);
      expect(res.code, `${f} was accepted`).not.toBe(0);
      for (const e of expected) expect(res.stderr, f).toContain(e);
    }
    const left = await cp.kubectl(['get', 'chaperone', '-n', 'invalid', '-o', 'name']);
    expect(left.stdout.trim()).toBe('');
  });

  it('patches an AccessRequest decision through the status subresource, once', async () => {
    const ar = (await exampleDocs()).find((d) => d.kind === 'AccessRequest');
    expect(ar).toBeDefined();
    const name = ar?.metadata.name ?? '';
    await cp.kubectl(['create', 'namespace', 'approvals']);
    expect((await cp.kubectl(['apply', '-n', 'approvals', '-f', examplesDir])).code).toBe(0);
    const patch = (body: unknown) =>
      cp.kubectl([
        'patch',
        '-n',
        'approvals',
        'accessrequest',
        name,
        '--subresource=status',
        '--type=merge',
        '-p',
        JSON.stringify(body),
      ]);
    // A spec change through the status subresource is ignored: only status moves.
    const approved = await patch({
      status: {
        phase: 'Approved',
        decision: { verdict: 'Approved', comment: 'ok for today', by: 'alice', at: new Date().toISOString() },
      },
      spec: { connection: 'elsewhere' },
    });
    expect(approved.stderr).toBe('');
    const got = JSON.parse((await cp.kubectl(['get', '-n', 'approvals', 'ar', name, '-o', 'json'])).stdout);
    expect(got.status.decision.verdict).toBe('Approved');
    expect(got.status.phase).toBe('Approved');
    expect(got.spec.connection).not.toBe('elsewhere');

    const changed = await patch({ status: { decision: { verdict: 'Denied' } } });
    expect(changed.code).not.toBe(0);
    expect(changed.stderr).toMatch(/decided AccessRequest cannot be changed/);
  });

  it('forbids a user without RBAC and allows it once a role grants access', async () => {
    const user = await cp.createUser('jane', ['platform-viewers']);
    const denied = await cp.kubectl(['get', 'connections', '-n', 'examples'], { user });
    expect(denied.code).not.toBe(0);
    expect(denied.stderr).toContain(
      'User "jane" cannot list resource "connections" in API group "chaperone.dev"',
    );

    await cp.kubectl([
      'create',
      'clusterrole',
      'chaperone-viewer',
      '--verb=get,list',
      '--resource=connections.chaperone.dev',
    ]);
    await cp.kubectl([
      'create',
      'clusterrolebinding',
      'viewers',
      '--clusterrole=chaperone-viewer',
      '--group=platform-viewers',
    ]);
    const allowed = await cp.kubectl(['get', 'connections', '-n', 'examples', '-o', 'name'], { user });
    expect(allowed.code, allowed.stderr).toBe(0);
    expect(allowed.stdout).toContain('connection.chaperone.dev/');
    const stillDenied = await cp.kubectl(['delete', 'connections', '--all', '-n', 'examples'], { user });
    expect(stillDenied.stderr).toContain('cannot delete resource "connections"');
  });

  it('issues TokenRequest tokens that pass TokenReview for their audience only', async () => {
    await cp.kubectl(['create', 'namespace', 'agents']);
    expect((await cp.kubectl(['create', 'serviceaccount', 'orders-agent', '-n', 'agents'])).code).toBe(0);
    const created = await cp.kubectl([
      'create',
      'token',
      'orders-agent',
      '-n',
      'agents',
      '--audience=chaperone',
      '--duration=10m',
    ]);
    expect(created.code, created.stderr).toBe(0);
    const token = created.stdout.trim();
    const api = cp.admin.kubeConfig().makeApiClient(k8s.AuthenticationV1Api);
    const review = (t: string, audiences: string[]) =>
      api.createTokenReview({ body: { spec: { token: t, audiences } } });

    const ok = await review(token, ['chaperone']);
    expect(ok.status?.authenticated).toBe(true);
    expect(ok.status?.user?.username).toBe('system:serviceaccount:agents:orders-agent');
    expect(ok.status?.audiences).toEqual(['chaperone']);

    expect((await review(token, ['somebody-else'])).status?.authenticated).toBeFalsy();
    const [h, p, s] = token.split('.');
    const claims = JSON.parse(Buffer.from(p ?? '', 'base64url').toString());
    const forged = Buffer.from(
      JSON.stringify({ ...claims, sub: 'system:serviceaccount:kube-system:admin' }),
    ).toString('base64url');
    expect((await review(`${h}.${forged}.${s}`, ['chaperone'])).status?.authenticated).toBeFalsy();
  });
});
