import { readFile, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { startProcess, waitUntilReady } from './managed-process.js';
import { freePort } from './net.js';
import { createTestCa, type TestCa } from './pki.js';
import { repoPath, requireControlPlaneBinary } from './repo.js';
import { type RunResult, run, runOk } from './run.js';
import { makeWorkDir } from './workdir.js';

export interface ControlPlaneOptions {
  /** Install crds/ and wait until they are Established (default true). */
  installCrds?: boolean;
  /** Extra kube-apiserver flags (`--name=value`). */
  apiserverFlags?: string[];
}

export interface TestUser {
  readonly name: string;
  readonly groups: readonly string[];
  readonly kubeconfigPath: string;
  kubeConfig(): k8s.KubeConfig;
}

export interface ControlPlane {
  /** https://127.0.0.1:PORT */
  readonly server: string;
  readonly caCertPath: string;
  /** ServiceAccount token issuer (`iss` of TokenRequest tokens). */
  readonly serviceAccountIssuer: string;
  /** Cluster admin (group system:masters). */
  readonly admin: TestUser;
  readonly ca: TestCa;
  readonly workDir: string;
  /** Mints a client-certificate user (CN=name, O=each group) with its own kubeconfig. */
  createUser(name: string, groups?: string[]): Promise<TestUser>;
  /** Path of the kubectl built with the control plane (same minor version as the server). */
  readonly kubectlPath: string;
  /** Runs that real kubectl; as admin unless another user is given. Never throws on exit code. */
  kubectl(args: string[], opts?: { user?: TestUser; input?: string }): Promise<RunResult>;
  installCrds(): Promise<string[]>;
  stop(): Promise<void>;
}

const SA_ISSUER = 'https://kubernetes.default.svc.cluster.local';

/** Field manager of the harness's server-side applies (`kubectl apply --server-side --field-manager=…` shares it). */
export const TESTKIT_FIELD_MANAGER = 'chaperone-testkit';

/**
 * Starts etcd and kube-apiserver (built by hack/build-control-plane.sh) envtest-style: RBAC,
 * client-certificate users, ServiceAccount token signing (TokenRequest/TokenReview work), no
 * controllers or kubelet (pods stay Pending). Everything on 127.0.0.1 in a temp dir.
 */
export async function startControlPlane(opts: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const etcdBin = requireControlPlaneBinary('etcd');
  const apiserverBin = requireControlPlaneBinary('kube-apiserver');
  const kubectlBin = requireControlPlaneBinary('kubectl');
  const work = await makeWorkDir('kube');
  const pki = work.file('pki');
  await runOk('mkdir', ['-p', pki, work.file('etcd')]);

  const ca = await createTestCa(pki, 'kube-ca');
  const serving = await ca.issue('apiserver', {
    commonName: 'kube-apiserver',
    altNames: [
      'IP:127.0.0.1',
      'IP:10.0.0.1',
      'DNS:localhost',
      'DNS:kubernetes',
      'DNS:kubernetes.default.svc',
    ],
    usage: 'server',
  });
  const saKey = join(pki, 'sa.key');
  const saPub = join(pki, 'sa.pub');
  await runOk('openssl', ['genrsa', '-out', saKey, '2048']);
  await runOk('openssl', ['rsa', '-in', saKey, '-pubout', '-out', saPub]);

  const [etcdClient, etcdPeer, apiPort] = [await freePort(), await freePort(), await freePort()];
  const etcdUrl = `http://127.0.0.1:${etcdClient}`;
  const etcd = startProcess({
    name: 'etcd',
    command: etcdBin,
    args: [
      '--name=default',
      `--data-dir=${work.file('etcd')}`,
      `--listen-client-urls=${etcdUrl}`,
      `--advertise-client-urls=${etcdUrl}`,
      `--listen-peer-urls=http://127.0.0.1:${etcdPeer}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeer}`,
      `--initial-cluster=default=http://127.0.0.1:${etcdPeer}`,
      '--unsafe-no-fsync',
      '--log-level=warn',
    ],
    logPath: work.file('etcd.log'),
  });
  await waitUntilReady(
    etcd,
    async () => {
      const res = await fetch(`${etcdUrl}/health`);
      return res.ok && ((await res.json()) as { health?: string }).health === 'true';
    },
    { timeoutMs: 30_000 },
  );

  const apiserver = startProcess({
    name: 'kube-apiserver',
    command: apiserverBin,
    args: [
      `--etcd-servers=${etcdUrl}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      `--secure-port=${apiPort}`,
      `--cert-dir=${pki}`,
      `--tls-cert-file=${serving.certPath}`,
      `--tls-private-key-file=${serving.keyPath}`,
      `--client-ca-file=${ca.certPath}`,
      '--authorization-mode=RBAC',
      `--service-account-issuer=${SA_ISSUER}`,
      `--service-account-key-file=${saPub}`,
      `--service-account-signing-key-file=${saKey}`,
      '--service-cluster-ip-range=10.0.0.0/24',
      // No controller manager runs, so nothing would create the `default` ServiceAccount that
      // this plugin insists on; envtest disables it for the same reason.
      '--disable-admission-plugins=ServiceAccount',
      '--allow-privileged=true',
      '--endpoint-reconciler-type=none',
      ...(opts.apiserverFlags ?? []),
    ],
    logPath: work.file('kube-apiserver.log'),
  });
  const server = `https://127.0.0.1:${apiPort}`;

  const writeKubeconfig = async (name: string, certPath: string, keyPath: string) => {
    const path = work.file(`${name}.kubeconfig`);
    await writeFile(
      path,
      [
        'apiVersion: v1',
        'kind: Config',
        'clusters:',
        `- name: chaperone-test`,
        '  cluster:',
        `    server: ${server}`,
        `    certificate-authority: ${ca.certPath}`,
        'users:',
        `- name: ${name}`,
        '  user:',
        `    client-certificate: ${certPath}`,
        `    client-key: ${keyPath}`,
        'contexts:',
        `- name: ${name}`,
        '  context:',
        '    cluster: chaperone-test',
        `    user: ${name}`,
        `current-context: ${name}`,
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
    return path;
  };
  const createUser = async (name: string, groups: string[] = []): Promise<TestUser> => {
    const cert = await ca.issue(`user-${name.replace(/[^a-zA-Z0-9_.-]/g, '_')}`, {
      commonName: name,
      organizations: groups,
      usage: 'client',
    });
    const kubeconfigPath = await writeKubeconfig(
      name.replace(/[^a-zA-Z0-9_.-]/g, '_'),
      cert.certPath,
      cert.keyPath,
    );
    return {
      name,
      groups,
      kubeconfigPath,
      kubeConfig() {
        const kc = new k8s.KubeConfig();
        kc.loadFromFile(kubeconfigPath);
        return kc;
      },
    };
  };
  const admin = await createUser('chaperone-admin', ['system:masters']);

  const adminCert = await readFile(join(pki, 'user-chaperone-admin.crt'));
  const adminKey = await readFile(join(pki, 'user-chaperone-admin.key'));
  const caPem = await readFile(ca.certPath);
  await waitUntilReady(
    apiserver,
    () =>
      new Promise<boolean>((resolve, reject) => {
        const req = request(
          `${server}/readyz`,
          { cert: adminCert, key: adminKey, ca: caPem, timeout: 2_000 },
          (res) => {
            res.resume();
            resolve(res.statusCode === 200);
          },
        );
        req.on('error', reject);
        req.end();
      }),
    { timeoutMs: 90_000, intervalMs: 250 },
  );

  const kubectl = (args: string[], o: { user?: TestUser; input?: string } = {}) =>
    run(kubectlBin, ['--kubeconfig', (o.user ?? admin).kubeconfigPath, ...args], { input: o.input });

  const cp: ControlPlane = {
    server,
    caCertPath: ca.certPath,
    kubectlPath: kubectlBin,
    serviceAccountIssuer: SA_ISSUER,
    admin,
    ca,
    workDir: work.path,
    createUser,
    kubectl,
    installCrds: () => installCrds(kubectlBin, admin.kubeconfigPath, admin.kubeConfig()),
    async stop() {
      await apiserver.stop('SIGTERM', 10_000);
      await etcd.stop('SIGTERM', 10_000);
      await work.remove();
    },
  };
  if (opts.installCrds ?? true) {
    try {
      await cp.installCrds();
    } catch (err) {
      await cp.stop();
      throw err;
    }
  }
  return cp;
}

/**
 * Server-side applies every CRD in crds/ with kubectl and waits until each is Established.
 * (Not through client-node's typed serializer: it silently drops `x-kubernetes-*` schema keys
 * such as the CEL validation rules.)
 */
export async function installCrds(
  kubectl: string,
  kubeconfig: string,
  kc: k8s.KubeConfig,
  dir = repoPath('crds'),
): Promise<string[]> {
  const applied = await run(kubectl, [
    '--kubeconfig',
    kubeconfig,
    'apply',
    '--server-side',
    `--field-manager=${TESTKIT_FIELD_MANAGER}`,
    '-f',
    dir,
    '-o',
    'name',
  ]);
  if (applied.code !== 0) throw new Error(`installing CRDs from ${dir} failed: ${applied.stderr}`);
  const names = applied.stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((n) => n.replace(/^customresourcedefinition\.apiextensions\.k8s\.io\//, ''));
  const api = kc.makeApiClient(k8s.ApiextensionsV1Api);
  const deadline = Date.now() + 30_000;
  for (const name of names) {
    for (;;) {
      const crd = await api.readCustomResourceDefinition({ name });
      if (crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True')) break;
      if (Date.now() > deadline)
        throw new Error(`CRD ${name} not Established after 30 s: ${JSON.stringify(crd.status)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return names;
}
