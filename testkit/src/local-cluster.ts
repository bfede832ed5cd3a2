import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { repoPath } from './repo.js';
import { type RunResult, run, runOk } from './run.js';

/**
 * The local single-node cluster started by `make cluster-up` (hack/cluster-up.sh): a real kubelet
 * with containerd, pods on a bridge. Tests use it for what only real pods show (injection, native
 * sidecars, pod networking); it is shared by every test run until `make cluster-down`.
 */
export interface LocalCluster {
  /** Admin kubeconfig (group system:masters). */
  readonly kubeconfigPath: string;
  /** https://GATEWAY:6443, the API server as the host sees it. */
  readonly server: string;
  readonly nodeName: string;
  /** The bridge's address on the host: pods reach host services (PostgreSQL, sshd, ...) here. */
  readonly gateway: string;
  readonly bridge: string;
  readonly podCidr: string;
  readonly serviceCidr: string;
  /** The `kubernetes` Service IP (KUBERNETES_SERVICE_HOST in pods), DNAT-ed to the API server. */
  readonly apiServiceIp: string;
  readonly containerdSocket: string;
  readonly kubernetesVersion: string;
  /** kubectl of the cluster's own version. */
  readonly kubectlPath: string;
  readonly stateDir: string;
  /** The cluster CA (signs the API server's certificate). */
  readonly caCertPath: string;
  /** Runs kubectl as the admin; never throws on exit code. */
  kubectl(args: string[], opts?: { input?: string; timeoutMs?: number }): Promise<RunResult>;
  kubeConfig(): k8s.KubeConfig;
  /** Imports an OCI/Docker image archive into the node's containerd (name it localhost/NAME:TAG). */
  importImage(archivePath: string): Promise<void>;
}

interface ClusterJson {
  kubeconfig: string;
  server: string;
  nodeName: string;
  gateway: string;
  bridge: string;
  podCidr: string;
  serviceCidr: string;
  apiServiceIp: string;
  containerdSocket: string;
  binDir: string;
  stateDir: string;
  kubernetesVersion: string;
}

/** STATE_DIR from hack/cluster/cluster.env, where cluster-up writes cluster.json. */
function clusterStateDir(): string {
  const env = readFileSync(repoPath('hack', 'cluster', 'cluster.env'), 'utf8');
  const m = /^STATE_DIR=(.+)$/m.exec(env);
  if (!m?.[1]) throw new Error('hack/cluster/cluster.env has no STATE_DIR');
  return m[1].trim();
}

/**
 * Describes the running local cluster. It does not start one unless `start` is true: then it runs
 * hack/cluster-up.sh (idempotent; needs root; a cold first run builds the node binaries, minutes)
 * and leaves the cluster running for later runs — stop it with `make cluster-down`.
 */
export async function localCluster(opts: { start?: boolean } = {}): Promise<LocalCluster> {
  const file = join(clusterStateDir(), 'cluster.json');
  if (opts.start) {
    await runOk('bash', [repoPath('hack', 'cluster-up.sh')], { timeoutMs: 60 * 60_000 });
  } else if (!existsSync(file)) {
    throw new Error(`no local cluster (${file} is missing): start one with \`make cluster-up\` (as root)`);
  }
  const info = JSON.parse(readFileSync(file, 'utf8')) as ClusterJson;
  const kubectlPath = join(info.binDir, 'kubectl');
  const kubectl = (args: string[], o: { input?: string; timeoutMs?: number } = {}) =>
    run(kubectlPath, ['--kubeconfig', info.kubeconfig, ...args], o);
  const ready = await kubectl(['get', '--raw', '/readyz']);
  if (ready.code !== 0) {
    throw new Error(
      `the local cluster's API server is not ready (${ready.stderr.trim()}); ` +
        'restart it with `make cluster-down cluster-up`',
    );
  }
  return {
    kubeconfigPath: info.kubeconfig,
    server: info.server,
    nodeName: info.nodeName,
    gateway: info.gateway,
    bridge: info.bridge,
    podCidr: info.podCidr,
    serviceCidr: info.serviceCidr,
    apiServiceIp: info.apiServiceIp,
    containerdSocket: info.containerdSocket,
    kubernetesVersion: info.kubernetesVersion,
    kubectlPath,
    stateDir: info.stateDir,
    caCertPath: join(info.stateDir, 'pki', 'ca.crt'),
    kubectl,
    kubeConfig() {
      const kc = new k8s.KubeConfig();
      kc.loadFromFile(info.kubeconfig);
      return kc;
    },
    async importImage(archivePath: string) {
      await runOk(
        'ctr',
        ['--address', info.containerdSocket, '-n', 'k8s.io', 'images', 'import', archivePath],
        {
          timeoutMs: 10 * 60_000,
        },
      );
    },
  };
}
