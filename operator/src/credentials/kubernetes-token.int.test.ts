// TokenRequest tokens against a REAL kube-apiserver: they authenticate as the ServiceAccount, honour
// audiences and pod binding, and bad input fails with errors that say what to fix.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type ControlPlane, run, startControlPlane } from '@chaperone/testkit';
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CredentialError } from './credential-error.js';
import { issueKubernetesToken } from './kubernetes-token.js';

const NS = 'agents';
const SA = 'kube-agent';
let cp: ControlPlane;
let core: k8s.CoreV1Api;

function tokenClient(token: string): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'test', server: cp.server, caFile: cp.caCertPath, skipTLSVerify: false }],
    users: [{ name: 'bearer', token }],
    contexts: [{ name: 'test', cluster: 'test', user: 'bearer' }],
    currentContext: 'test',
  });
  return kc;
}

/** Who the API server says the token is, or the HTTP status it refused it with. */
async function whoAmI(token: string): Promise<string | number> {
  try {
    const review = await tokenClient(token)
      .makeApiClient(k8s.AuthenticationV1Api)
      .createSelfSubjectReview({
        body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' },
      });
    return review.status?.userInfo?.username ?? 'no user';
  } catch (err) {
    if (err instanceof k8s.ApiException) return err.code;
    throw err;
  }
}

function jwtClaims(token: string): { exp: number; aud: string[]; sub: string } {
  return JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString());
}

async function expectCredentialError(p: Promise<unknown>, reason: string, message: RegExp) {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(CredentialError);
  expect((err as CredentialError).reason).toBe(reason);
  expect((err as Error).message).toMatch(message);
}

beforeAll(async () => {
  cp = await startControlPlane({ installCrds: false });
  core = cp.admin.kubeConfig().makeApiClient(k8s.CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: NS } } });
  await core.createNamespacedServiceAccount({ namespace: NS, body: { metadata: { name: SA } } });
});
afterAll(async () => {
  await cp?.stop();
});

describe('issueKubernetesToken', () => {
  it('mints a token that authenticates as the ServiceAccount (SelfSubjectReview and kubectl auth whoami)', async () => {
    const before = Date.now();
    const issued = await issueKubernetesToken({
      coreApi: core,
      serviceAccount: { namespace: NS, name: SA },
      ttlSeconds: 900,
    });
    expect(await whoAmI(issued.token)).toBe(`system:serviceaccount:${NS}:${SA}`);

    const kubeconfig = join(cp.workDir, 'sa-token.kubeconfig');
    await writeFile(
      kubeconfig,
      [
        'apiVersion: v1',
        'kind: Config',
        `clusters: [{name: t, cluster: {server: "${cp.server}", certificate-authority: "${cp.caCertPath}"}}]`,
        `users: [{name: t, user: {token: "${issued.token}"}}]`,
        'contexts: [{name: t, context: {cluster: t, user: t}}]',
        'current-context: t',
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
    const whoami = await run(cp.kubectlPath, [
      '--kubeconfig',
      kubeconfig,
      'auth',
      'whoami',
      '-o',
      'jsonpath={.status.userInfo.username}',
    ]);
    expect(whoami.stderr).toBe('');
    expect(whoami.stdout).toBe(`system:serviceaccount:${NS}:${SA}`);

    // The expiry is the API server's, and matches what we asked for.
    const claims = jwtClaims(issued.token);
    expect(claims.exp * 1000).toBe(issued.expiresAt.getTime());
    expect(issued.expiresAt.getTime()).toBeGreaterThanOrEqual(before + 900_000 - 1_000);
    expect(issued.expiresAt.getTime()).toBeLessThanOrEqual(Date.now() + 900_000 + 1_000);
    expect(issued.description).toContain(`ServiceAccount ${NS}/${SA}`);
    expect(issued.description).not.toContain(issued.token);
  });

  it('honours audiences: a token for another audience is not accepted by the API server itself', async () => {
    const issued = await issueKubernetesToken({
      coreApi: core,
      serviceAccount: { namespace: NS, name: SA },
      ttlSeconds: 600,
      audiences: ['chaperone-test'],
    });
    expect(jwtClaims(issued.token).aud).toEqual(['chaperone-test']);
    expect(await whoAmI(issued.token)).toBe(401);
    const review = await cp.admin
      .kubeConfig()
      .makeApiClient(k8s.AuthenticationV1Api)
      .createTokenReview({ body: { spec: { token: issued.token, audiences: ['chaperone-test'] } } });
    expect(review.status?.authenticated).toBe(true);
    expect(review.status?.user?.username).toBe(`system:serviceaccount:${NS}:${SA}`);
  });

  it('a token bound to the agent pod stops working when the pod is deleted', async () => {
    const pod = await core.createNamespacedPod({
      namespace: NS,
      body: {
        metadata: { name: 'agent-bound' },
        spec: { serviceAccountName: SA, containers: [{ name: 'agent', image: 'agent:dev' }] },
      },
    });
    const issued = await issueKubernetesToken({
      coreApi: core,
      serviceAccount: { namespace: NS, name: SA },
      ttlSeconds: 600,
      boundPod: { namespace: NS, name: 'agent-bound', uid: pod.metadata!.uid! },
    });
    expect(await whoAmI(issued.token)).toBe(`system:serviceaccount:${NS}:${SA}`);
    expect(issued.description).toContain(`bound to pod ${NS}/agent-bound`);

    await core.deleteNamespacedPod({ namespace: NS, name: 'agent-bound', gracePeriodSeconds: 0 });
    // The API server caches successful token authentications for about 10 s: poll.
    let answer: string | number = '';
    for (let i = 0; i < 60; i++) {
      answer = await whoAmI(issued.token);
      if (answer === 401) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    expect(answer).toBe(401);
  });

  it('refuses TTLs TokenRequest cannot honour, before calling the API server', async () => {
    const sa = { namespace: NS, name: SA };
    await expectCredentialError(
      issueKubernetesToken({ coreApi: core, serviceAccount: sa, ttlSeconds: 599 }),
      'InvalidInput',
      /token ttl 599s .* between 600 \(10m\) and 86400 \(24h\); fix credentials.kubernetes.ttl/,
    );
    await expectCredentialError(
      issueKubernetesToken({ coreApi: core, serviceAccount: sa, ttlSeconds: 86_401 }),
      'InvalidInput',
      /86401s .* 86400 \(24h\)/,
    );
    await expectCredentialError(
      issueKubernetesToken({ coreApi: core, serviceAccount: sa, ttlSeconds: 600.5 }),
      'InvalidInput',
      /whole seconds/,
    );
    // Our minimum is the API server's: it refuses 599 s itself.
    const direct = await core
      .createNamespacedServiceAccountToken({
        namespace: NS,
        name: SA,
        body: { spec: { audiences: [], expirationSeconds: 599 } },
      })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(direct).toBeInstanceOf(k8s.ApiException);
    expect(String((direct as k8s.ApiException<string>).body)).toMatch(/10 minutes/);
  });

  it('a missing ServiceAccount, a pod in another namespace and a forbidden operator give clear errors', async () => {
    await expectCredentialError(
      issueKubernetesToken({
        coreApi: core,
        serviceAccount: { namespace: NS, name: 'nobody' },
        ttlSeconds: 600,
      }),
      'ServiceAccountMissing',
      /ServiceAccount agents\/nobody does not exist: create it or fix credentials.kubernetes.serviceAccountRef/,
    );
    await expectCredentialError(
      issueKubernetesToken({
        coreApi: core,
        serviceAccount: { namespace: NS, name: SA },
        ttlSeconds: 600,
        boundPod: { namespace: 'elsewhere', name: 'p', uid: 'u' },
      }),
      'InvalidInput',
      /only to objects in the ServiceAccount's namespace/,
    );
    await expectCredentialError(
      issueKubernetesToken({
        coreApi: core,
        serviceAccount: { namespace: NS, name: SA },
        ttlSeconds: 600,
        boundPod: { namespace: NS, name: 'no-such-pod', uid: 'u' },
      }),
      'InvalidInput',
      /pod agents\/no-such-pod: the pod does not exist/,
    );
    const stranger = await cp.createUser('not-the-operator');
    await expectCredentialError(
      issueKubernetesToken({
        coreApi: stranger.kubeConfig().makeApiClient(k8s.CoreV1Api),
        serviceAccount: { namespace: NS, name: SA },
        ttlSeconds: 600,
      }),
      'TokenRequestForbidden',
      /grant it create on serviceaccounts\/token/,
    );
  });
});
