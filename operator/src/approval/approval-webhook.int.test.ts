// The approval webhook against a real kube-apiserver: real client-certificate users decide with
// `kubectl patch --subresource=status` and with the `kubectl chaperone` plugin (built to dist/ and
// found by kubectl on PATH), a ServiceAccount with a TokenRequest token, the CRD's CEL rules.

import { existsSync } from 'node:fs';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AccessPolicy, AccessRequest } from '@chaperone/api';
import {
  type ControlPlane,
  createTestCa,
  makeWorkDir,
  type RunResult,
  repoPath,
  run,
  startControlPlane,
  type TestUser,
  type WorkDir,
} from '@chaperone/testkit';
import * as k8s from '@kubernetes/client-node';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OperatorHttpsServer } from '../admission/https-server.js';
import { APPROVAL_WEBHOOK_PATH } from '../operator-constants.js';
import { createApprovalHandler } from './approval-webhook.js';

const NS = 'team-a';
const WEBHOOK = 'approval.chaperone.dev';
const REQUESTER_SA = `system:serviceaccount:${NS}:orders-agent`;
const PLUGIN_JS = repoPath('operator', 'dist', 'kubectl-plugin', 'kubectl-chaperone.js');

const denied = (text: string) => `admission webhook "${WEBHOOK}" denied the request: ${text}`;

describe('approval webhook on accessrequests/status (real kube-apiserver)', () => {
  let cp: ControlPlane;
  let work: WorkDir;
  let server: OperatorHttpsServer;
  let pluginPath: string;
  let objects: k8s.CustomObjectsApi;
  const users: Record<'alice' | 'dave' | 'carol' | 'mallory' | 'bob' | 'eve', TestUser> = {} as never;
  let saKubeconfig: string;

  beforeAll(async () => {
    // The plugin runs from dist/ exactly as installed; build it (incremental, quick when current).
    // tsc emits despite errors elsewhere in the tree; only errors in the plugin itself matter here.
    const build = await run(
      process.execPath,
      [repoPath('node_modules', 'typescript', 'bin', 'tsc'), '-b', repoPath('operator')],
      { timeoutMs: 300_000 },
    );
    const output = `${build.stdout}${build.stderr}`;
    if (output.includes('src/kubectl-plugin/') || !existsSync(PLUGIN_JS)) {
      throw new Error(`building the kubectl plugin (npx tsc -b operator) failed:\n${output}`);
    }

    [cp, work] = await Promise.all([startControlPlane({ installCrds: true }), makeWorkDir('approval')]);

    // kubectl finds plugins as executables named kubectl-<name> on PATH.
    pluginPath = work.file('bin');
    await run('mkdir', ['-p', pluginPath]);
    const wrapper = join(pluginPath, 'kubectl-chaperone');
    await writeFile(wrapper, `#!/bin/sh\nexec "${process.execPath}" "${PLUGIN_JS}" "$@"\n`);
    await chmod(wrapper, 0o755);

    // The webhook: the operator's HTTPS server with a serving cert for 127.0.0.1.
    const ca = await createTestCa(work.path, 'webhook-ca');
    const serving = await ca.issue('webhook', {
      commonName: 'chaperone-webhook',
      altNames: ['IP:127.0.0.1'],
      usage: 'server',
    });
    objects = cp.admin.kubeConfig().makeApiClient(k8s.CustomObjectsApi);
    server = new OperatorHttpsServer({
      host: '127.0.0.1',
      port: 0,
      certificate: {
        cert: await readFile(serving.certPath, 'utf8'),
        key: await readFile(serving.keyPath, 'utf8'),
      },
      registry: new Registry(),
    });
    server.admission(
      APPROVAL_WEBHOOK_PATH,
      'approval',
      createApprovalHandler({
        lookupPolicy: async (namespace, name) => {
          try {
            return (await objects.getNamespacedCustomObject({
              group: 'chaperone.dev',
              version: 'v1alpha1',
              namespace,
              plural: 'accesspolicies',
              name,
            })) as AccessPolicy;
          } catch (err) {
            if (err instanceof k8s.ApiException && err.code === 404) return undefined;
            throw err;
          }
        },
        // The test's admin plays the operator (it creates requests and may expire them).
        operatorUsernames: [cp.admin.name],
      }),
    );
    const port = await server.listen();

    await apply({
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'MutatingWebhookConfiguration',
      metadata: { name: 'chaperone-approval-test' },
      webhooks: [
        {
          name: WEBHOOK,
          admissionReviewVersions: ['v1'],
          clientConfig: {
            url: `https://127.0.0.1:${port}${APPROVAL_WEBHOOK_PATH}`,
            caBundle: (await readFile(ca.certPath)).toString('base64'),
          },
          rules: [
            {
              apiGroups: ['chaperone.dev'],
              apiVersions: ['v1alpha1'],
              operations: ['UPDATE'],
              resources: ['accessrequests/status'],
              scope: 'Namespaced',
            },
          ],
          failurePolicy: 'Fail',
          sideEffects: 'None',
          timeoutSeconds: 10,
        },
      ],
    });

    await apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });
    await apply({
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: 'orders-agent', namespace: NS },
    });
    await apply({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name: 'chaperone-approver' },
      rules: [
        { apiGroups: ['chaperone.dev'], resources: ['accessrequests'], verbs: ['get', 'list', 'watch'] },
        {
          apiGroups: ['chaperone.dev'],
          resources: ['accessrequests/status'],
          verbs: ['get', 'patch', 'update'],
        },
      ],
    });
    // RBAC lets everyone but eve try; whether they may decide is the webhook's call.
    await apply({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: 'chaperone-approvers' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'chaperone-approver' },
      subjects: [
        { apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'dba' },
        { apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'devs' },
        { apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'carol' },
        { kind: 'ServiceAccount', name: 'orders-agent', namespace: NS },
      ],
    });
    for (const [name, approvers, required] of [
      // The requesting ServiceAccount is listed as an approver: only the self-approval check stops it.
      ['orders-agents', { groups: ['dba'], users: ['carol', REQUESTER_SA] }, 1],
      ['two-person', { groups: ['dba'], users: ['carol'] }, 2],
    ] as const) {
      await apply({
        apiVersion: 'chaperone.dev/v1alpha1',
        kind: 'AccessPolicy',
        metadata: { name, namespace: NS },
        spec: {
          subjects: [{ kind: 'ServiceAccount', name: 'orders-agent' }],
          connections: { names: ['orders-db'] },
          rules: [{ name: 'write-needs-approval', action: 'approve', postgres: { operations: ['write'] } }],
          approval: { approvers, required },
        },
      });
    }

    users.alice = await cp.createUser('alice', ['dba']);
    users.dave = await cp.createUser('dave', ['dba']);
    users.carol = await cp.createUser('carol');
    users.mallory = await cp.createUser('mallory', ['devs']);
    // The person the agent acts for; a DBA, so only the self-approval check stops them.
    users.bob = await cp.createUser('bob@example.com', ['dba']);
    users.eve = await cp.createUser('eve');

    const token = await cp.kubectl(['create', 'token', 'orders-agent', '-n', NS, '--duration=10m']);
    expect(token.code, token.stderr).toBe(0);
    saKubeconfig = work.file('orders-agent.kubeconfig');
    await writeFile(
      saKubeconfig,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'test', cluster: { server: cp.server, 'certificate-authority': cp.caCertPath } }],
        users: [{ name: 'orders-agent', user: { token: token.stdout.trim() } }],
        contexts: [
          { name: 'orders-agent', context: { cluster: 'test', user: 'orders-agent', namespace: NS } },
        ],
        'current-context': 'orders-agent',
      }),
      { mode: 0o600 },
    );
  });

  afterAll(async () => {
    await server?.close();
    await cp?.stop();
    await work?.remove();
  });

  async function apply(obj: object): Promise<void> {
    const res = await cp.kubectl(['apply', '-f', '-'], { input: JSON.stringify(obj) });
    if (res.code !== 0) throw new Error(`kubectl apply failed: ${res.stderr}`);
  }

  let seq = 0;
  /** Creates a fresh AccessRequest (as the operator would) and returns its name. */
  async function createRequest(opts: { policy?: string; expiresInMs?: number } = {}): Promise<string> {
    const name = `orders-db-${++seq}`;
    await apply({
      apiVersion: 'chaperone.dev/v1alpha1',
      kind: 'AccessRequest',
      metadata: { name, namespace: NS, labels: { 'chaperone.dev/policy': opts.policy ?? 'orders-agents' } },
      spec: {
        requester: {
          serviceAccount: { namespace: NS, name: 'orders-agent' },
          pod: { name: 'orders-agent-5d9c7b6f4-x2x7k' },
          onBehalfOf: { user: 'bob@example.com', groups: ['orders-oncall'] },
        },
        connection: 'orders-db',
        policy: opts.policy ?? 'orders-agents',
        operation: {
          type: 'postgres',
          class: 'write',
          text: 'UPDATE public.orders SET status = $1 WHERE id = $2',
        },
        expiresAt: new Date(Date.now() + (opts.expiresInMs ?? 10 * 60_000)).toISOString(),
      },
    });
    return name;
  }

  async function get(name: string): Promise<AccessRequest> {
    return (await objects.getNamespacedCustomObject({
      group: 'chaperone.dev',
      version: 'v1alpha1',
      namespace: NS,
      plural: 'accessrequests',
      name,
    })) as AccessRequest;
  }

  function patchStatus(name: string, status: object, user?: TestUser): Promise<RunResult> {
    return cp.kubectl(
      [
        '-n',
        NS,
        'patch',
        'accessrequest',
        name,
        '--subresource=status',
        '--type=merge',
        '-p',
        JSON.stringify({ status }),
      ],
      user ? { user } : {},
    );
  }

  const approve = (name: string, user: TestUser, extra: object = {}) =>
    patchStatus(name, { decision: { verdict: 'Approved', ...extra } }, user);

  /** `kubectl chaperone ...` exactly as an approver runs it: kubectl finds the plugin on PATH. */
  function plugin(args: string[], kubeconfig: string): Promise<RunResult> {
    return run(cp.kubectlPath, ['chaperone', ...args], {
      env: { ...process.env, PATH: `${pluginPath}:${process.env.PATH}`, KUBECONFIG: kubeconfig },
    });
  }

  it('a new request is Pending, and an approver in an approver group approves: the webhook records who', async () => {
    const name = await createRequest();
    expect((await get(name)).status?.phase).toBe('Pending');
    const before = Date.now();
    const res = await approve(name, users.alice, { comment: 'ticket OPS-142' });
    expect(res.code, res.stderr).toBe(0);
    const { status } = await get(name);
    expect(status?.phase).toBe('Approved');
    expect(status?.decision).toMatchObject({ verdict: 'Approved', comment: 'ticket OPS-142', by: 'alice' });
    // Groups come from the client certificate's O= (plus what the API server adds).
    expect(status?.decision?.groups).toEqual(expect.arrayContaining(['dba', 'system:authenticated']));
    expect(Date.parse(status?.decision?.at ?? '')).toBeGreaterThanOrEqual(
      Math.floor(before / 1000) * 1000 - 1000,
    );
  });

  it('an approver approves with the kubectl plugin', async () => {
    const name = await createRequest();
    const res = await plugin(
      ['approve', name, '-n', NS, '--comment', 'looks fine'],
      users.carol.kubeconfigPath,
    );
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout.trim()).toBe(`accessrequest.chaperone.dev/${name} approved`);
    expect((await get(name)).status?.decision).toMatchObject({
      verdict: 'Approved',
      by: 'carol',
      comment: 'looks fine',
    });
  });

  it('a non-approver is forbidden with the webhook message, with kubectl and with the plugin', async () => {
    const name = await createRequest();
    const res = await approve(name, users.mallory);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain(
      denied(
        `mallory is not an approver for AccessRequest ${NS}/${name}: AccessPolicy ${NS}/orders-agents allows users carol, ${REQUESTER_SA} and members of groups dba`,
      ),
    );
    const viaPlugin = await plugin(['approve', name, '-n', NS], users.mallory.kubeconfigPath);
    expect(viaPlugin.code).toBe(1);
    expect(viaPlugin.stdout).toBe('');
    expect(viaPlugin.stderr).toContain(
      `Error from server (Forbidden): ${denied('mallory is not an approver')}`,
    );
    expect((await get(name)).status).toEqual({ phase: 'Pending' });
  });

  it('someone without the approver RBAC role is told which permissions are needed', async () => {
    const name = await createRequest();
    const res = await plugin(['approve', name, '-n', NS], users.eve.kubeconfigPath);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(
      /Error from server \(Forbidden\): .*eve.* cannot patch resource "accessrequests\/status"/,
    );
    expect(res.stderr).toContain('chaperone-approver ClusterRole');
  });

  it('the on-behalf-of user cannot approve its own request, though a member of an approver group', async () => {
    const name = await createRequest();
    const res = await approve(name, users.bob);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain(
      denied(
        `bob@example.com cannot approve AccessRequest ${NS}/${name}: the agent asked on behalf of bob@example.com`,
      ),
    );
    expect((await get(name)).status?.decision).toBeUndefined();
  });

  it('the requesting ServiceAccount (TokenRequest token) cannot approve, though listed as an approver', async () => {
    const name = await createRequest();
    const res = await run(cp.kubectlPath, [
      '--kubeconfig',
      saKubeconfig,
      'patch',
      'accessrequest',
      name,
      '--subresource=status',
      '--type=merge',
      '-p',
      '{"status":{"decision":{"verdict":"Approved"}}}',
    ]);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain(
      denied(
        `${REQUESTER_SA} cannot approve AccessRequest ${NS}/${name}: it is the ServiceAccount ${NS}/orders-agent`,
      ),
    );
    // The plugin as the same ServiceAccount, namespace from the kubeconfig context: same refusal.
    const viaPlugin = await plugin(['approve', name], saKubeconfig);
    expect(viaPlugin.code).toBe(1);
    expect(viaPlugin.stderr).toContain(denied(`${REQUESTER_SA} cannot approve`));
    expect((await get(name)).status?.decision).toBeUndefined();
  });

  it('a decided request cannot be changed: another approver gets the webhook message, the operator the CEL rule', async () => {
    const name = await createRequest();
    expect((await approve(name, users.alice)).code).toBe(0);
    const decided = (await get(name)).status?.decision;

    const byCarol = await patchStatus(
      name,
      { decision: { verdict: 'Denied', comment: 'changed my mind' } },
      users.carol,
    );
    expect(byCarol.code).not.toBe(0);
    expect(byCarol.stderr).toContain(
      denied(
        `AccessRequest ${NS}/${name} was already Approved by alice at ${decided?.at}; decisions cannot be changed`,
      ),
    );
    // Re-running the same approval is refused too, rather than looking like it worked.
    const again = await plugin(['approve', name, '-n', NS], users.dave.kubeconfigPath);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('was already Approved by alice');

    // The webhook lets the operator write status; the CRD's rules still keep the decision final.
    const byOperator = await patchStatus(name, {
      decision: { verdict: 'Denied', by: 'operator' },
      phase: 'Denied',
    });
    expect(byOperator.code).not.toBe(0);
    expect(byOperator.stderr).toContain('a decided AccessRequest cannot be changed; create a new request');
    expect((await get(name)).status?.decision).toEqual(decided);
  });

  it('a forged by, groups and at are overwritten with the authenticated caller', async () => {
    const name = await createRequest();
    const res = await approve(name, users.alice, {
      by: 'carol',
      groups: ['system:masters'],
      at: '2000-01-01T00:00:00Z',
    });
    expect(res.code, res.stderr).toBe(0);
    const decision = (await get(name)).status?.decision;
    expect(decision?.by).toBe('alice');
    expect(decision?.groups).toContain('dba');
    expect(decision?.groups).not.toContain('system:masters');
    expect(decision?.at).not.toBe('2000-01-01T00:00:00Z');
  });

  it('a two-approver policy needs two different people', async () => {
    const name = await createRequest({ policy: 'two-person' });
    const first = await plugin(['approve', name, '-n', NS, '--comment', 'first'], users.alice.kubeconfigPath);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout.trim()).toBe(
      `accessrequest.chaperone.dev/${name}: approval 1 of 2 recorded; waiting for more approvers`,
    );
    let status = (await get(name)).status;
    expect(status?.phase).toBe('Pending');
    expect(status?.decision).toBeUndefined();
    expect(status?.approvals).toEqual([expect.objectContaining({ by: 'alice', comment: 'first' })]);

    const twice = await approve(name, users.alice);
    expect(twice.code).not.toBe(0);
    expect(twice.stderr).toContain(
      denied(`alice already approved AccessRequest ${NS}/${name} (1 of 2 approvals)`),
    );

    const second = await plugin(['approve', name, '-n', NS], users.dave.kubeconfigPath);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout.trim()).toBe(`accessrequest.chaperone.dev/${name} approved`);
    status = (await get(name)).status;
    expect(status?.phase).toBe('Approved');
    expect(status?.decision).toMatchObject({ verdict: 'Approved', by: 'dave' });
    expect(status?.approvals?.map((a) => a.by)).toEqual(['alice', 'dave']);
  });

  it('kubectl patch shows the partial-approval warning', async () => {
    const name = await createRequest({ policy: 'two-person' });
    const res = await approve(name, users.carol);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stderr).toContain(`Warning: 1 of 2 approvals recorded for AccessRequest ${NS}/${name}`);
  });

  it('an expired request cannot be approved, whether past expiresAt or already marked Expired', async () => {
    const late = await createRequest({ expiresInMs: -60_000 });
    const res = await approve(late, users.alice);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain(denied(`AccessRequest ${NS}/${late} expired at `));
    expect(res.stderr).toContain('it can no longer be decided');

    const expired = await createRequest();
    expect((await patchStatus(expired, { phase: 'Expired' })).code).toBe(0);
    const res2 = await plugin(['approve', expired, '-n', NS], users.alice.kubeconfigPath);
    expect(res2.code).toBe(1);
    expect(res2.stderr).toContain(`expired at`);
    expect(res2.stderr).toContain('without a decision; it can no longer be decided');
    expect((await get(expired)).status).toEqual({ phase: 'Expired' });
  });

  it('deny needs a reason with the plugin; with one it denies and records it', async () => {
    const name = await createRequest();
    const noReason = await plugin(['deny', name, '-n', NS], users.alice.kubeconfigPath);
    expect(noReason.code).toBe(1);
    expect(noReason.stderr).toContain('deny needs --reason TEXT');
    expect((await get(name)).status?.phase).toBe('Pending');

    const res = await plugin(
      ['deny', name, '-n', NS, '--reason', 'not during the freeze'],
      users.alice.kubeconfigPath,
    );
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout.trim()).toBe(`accessrequest.chaperone.dev/${name} denied`);
    expect((await get(name)).status).toMatchObject({
      phase: 'Denied',
      decision: { verdict: 'Denied', comment: 'not during the freeze', by: 'alice' },
    });
  });

  it('the plugin lists pending requests (all of them with --all, across namespaces with -A)', async () => {
    const pending = await createRequest();
    const decided = await createRequest();
    expect((await approve(decided, users.alice)).code).toBe(0);

    const res = await plugin(['requests', '-n', NS], users.alice.kubeconfigPath);
    expect(res.code, res.stderr).toBe(0);
    const lines = res.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^NAME\s+PHASE\s+CONNECTION\s+REQUESTER\s+OPERATION\s+AGE\s+EXPIRES$/);
    const row = lines.find((l) => l.startsWith(`${pending} `));
    expect(row).toMatch(
      /Pending\s+orders-db\s+bob@example\.com via team-a\/orders-agent\s+UPDATE public\.orders/,
    );
    expect(row).toMatch(/in \d+m/);
    expect(lines.some((l) => l.startsWith(`${decided} `))).toBe(false);

    const all = await plugin(['requests', '-A', '--all'], users.alice.kubeconfigPath);
    expect(all.code, all.stderr).toBe(0);
    expect(all.stdout).toMatch(new RegExp(`^${NS}\\s+${decided}\\s+Approved`, 'm'));

    const empty = await plugin(['requests', '-n', 'default'], users.alice.kubeconfigPath);
    expect(empty.code).toBe(0);
    expect(empty.stdout).toBe('');
    expect(empty.stderr).toContain('No pending AccessRequests in namespace default.');
  });
});
