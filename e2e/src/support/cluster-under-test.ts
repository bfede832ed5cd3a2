// The cluster the e2e suite runs against. By default the local cluster (make cluster-up): images are
// imported into its containerd and pods reach the host on the bridge gateway. Any other cluster
// (kind via `make e2e-kind`, or one you point it at) is described by environment variables, with the
// images already loaded onto its nodes:
//
//   CHAPERONE_E2E_KUBECONFIG    admin kubeconfig of the cluster
//   CHAPERONE_E2E_HOST_ADDRESS  an address of this machine that pods can reach (PostgreSQL listens
//                               there), e.g. the gateway of kind's Docker network
//   CHAPERONE_E2E_POD_CLIENTS   the source range PostgreSQL accepts pods from (CIDR), e.g. kind's
//                               Docker network (its nodes masquerade pod traffic)
//   CHAPERONE_KUBECTL           kubectl to use (default: the pinned one built by make control-plane)
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { controlPlaneBinDir, localCluster, type RunResult, run } from '@chaperone/testkit';

export interface ClusterUnderTest {
  readonly kind: 'local' | 'external';
  readonly kubeconfigPath: string;
  readonly kubectlPath: string;
  /** Where pods reach services of the machine running the suite. */
  readonly hostAddress: string;
  /** Source addresses of pod traffic as the host sees it (for pg_hba). */
  readonly podClients: string;
  /** Runs kubectl as the cluster admin; never throws on exit code. */
  kubectl(
    args: string[],
    opts?: { input?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv },
  ): Promise<RunResult>;
  /** Puts image archives on the node(s): imported into the local cluster; elsewhere already loaded. */
  loadImages(archives: string[]): Promise<void>;
  /** `kubectl port-forward RESOURCE :PORT` on 127.0.0.1 (e.g. svc/x, 8080); resolves with the local port. */
  portForward(namespace: string, resource: string, port: number): Promise<{ port: number; stop(): void }>;
}

export async function clusterUnderTest(): Promise<ClusterUnderTest> {
  const external = process.env.CHAPERONE_E2E_KUBECONFIG;
  if (!external) {
    const lc = await localCluster();
    return withPortForward({
      kind: 'local',
      kubeconfigPath: lc.kubeconfigPath,
      kubectlPath: lc.kubectlPath,
      hostAddress: lc.gateway,
      podClients: lc.podCidr,
      kubectl: (args, o = {}) => run(lc.kubectlPath, ['--kubeconfig', lc.kubeconfigPath, ...args], o),
      async loadImages(archives) {
        for (const a of archives) await lc.importImage(a);
      },
    });
  }
  const hostAddress = process.env.CHAPERONE_E2E_HOST_ADDRESS;
  const podClients = process.env.CHAPERONE_E2E_POD_CLIENTS;
  if (!hostAddress || !podClients) {
    throw new Error(
      'CHAPERONE_E2E_KUBECONFIG is set: also set CHAPERONE_E2E_HOST_ADDRESS (an address of this machine pods can reach) ' +
        'and CHAPERONE_E2E_POD_CLIENTS (the CIDR their traffic comes from); `make e2e-kind` sets all three',
    );
  }
  const kubectlPath = process.env.CHAPERONE_KUBECTL ?? join(controlPlaneBinDir(), 'kubectl');
  if (!existsSync(kubectlPath)) throw new Error(`${kubectlPath} is missing: run \`make control-plane\``);
  return withPortForward({
    kind: 'external',
    kubeconfigPath: external,
    kubectlPath,
    hostAddress,
    podClients,
    kubectl: (args, o = {}) => run(kubectlPath, ['--kubeconfig', external, ...args], o),
    async loadImages() {
      // `make e2e-kind` ran `kind load image-archive` for each before the suite started.
    },
  });
}

function withPortForward(c: Omit<ClusterUnderTest, 'portForward'>): ClusterUnderTest {
  return {
    ...c,
    portForward(namespace, resource, remotePort) {
      const target = `${resource}:${remotePort}`;
      const child = spawn(
        c.kubectlPath,
        [
          '--kubeconfig',
          c.kubeconfigPath,
          'port-forward',
          '-n',
          namespace,
          '--address',
          '127.0.0.1',
          resource,
          `:${remotePort}`,
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      return new Promise((resolve, reject) => {
        let out = '';
        let err = '';
        const timer = setTimeout(() => {
          child.kill();
          reject(new Error(`kubectl port-forward ${target}: no port after 30 s: ${err}`));
        }, 30_000);
        child.stderr.on('data', (d) => {
          err += d;
        });
        child.stdout.on('data', (d) => {
          out += d;
          const m = /Forwarding from 127\.0\.0\.1:(\d+)/.exec(out);
          if (m) {
            clearTimeout(timer);
            resolve({ port: Number(m[1]), stop: () => child.kill() });
          }
        });
        child.on('exit', (code) => {
          clearTimeout(timer);
          reject(new Error(`kubectl port-forward ${target} exited ${code}: ${err}`));
        });
      });
    },
  };
}
