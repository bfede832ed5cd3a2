// The local cluster's own images (hack/cluster-up.sh imports them), written by the same OCI writer
// as the product images, under the fixed names hack/cluster/cluster.env and the tests use:
//
//   localhost/pause:chaperone-1    the pod sandbox: one static C program (hack/cluster/pause.c),
//                                  uid 65535 like the upstream image
//   localhost/toolbox:chaperone-1  static busybox (Debian's busybox-static) with a symlink per
//                                  applet, and kube-whoami (hack/cluster/kube-whoami, an in-cluster
//                                  API client), for the cluster's smoke tests; uid 65534
//
// Both hold only static binaries, so they need nothing from the host at run time.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { ImageDefinition } from './definitions.ts';
import { Layer, sharedLibraries } from './layer.ts';

export interface ClusterImageOptions {
  root: string;
  /** Where the pause and kube-whoami binaries are compiled. */
  workDir: string;
  /** A static busybox; default /bin/busybox (Debian busybox-static). */
  busybox?: string;
}

/** `localhost/NAME:TAG` from hack/cluster/cluster.env's PAUSE_IMAGE: the tag both images share. */
function clusterTag(root: string): string {
  const env = readFileSync(path.join(root, 'hack', 'cluster', 'cluster.env'), 'utf8');
  const ref = /^PAUSE_IMAGE=localhost\/pause:(\S+)$/m.exec(env)?.[1];
  if (!ref) throw new Error('hack/cluster/cluster.env has no PAUSE_IMAGE=localhost/pause:TAG');
  return ref;
}

function need(cmd: string, hint: string): void {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
  } catch {
    throw new Error(`${cmd} is required for the cluster images: ${hint}`);
  }
}

export function clusterImageDefinitions(options: ClusterImageOptions): ImageDefinition[] {
  const { root, workDir } = options;
  const busybox = options.busybox ?? '/bin/busybox';
  const tag = clusterTag(root);
  const runtime = (user: string, entrypoint: string[], env: string[]) => () => ({
    user,
    env,
    entrypoint,
    workingDir: '/',
    labels: { 'org.opencontainers.image.title': entrypoint[0] ?? '' },
  });

  const pause: ImageDefinition = {
    name: 'pause',
    repository: 'localhost/pause',
    tag,
    layers: () => {
      need('gcc', 'apt-get install -y gcc libc6-dev');
      const bin = path.join(workDir, 'pause');
      execFileSync('gcc', ['-static', '-Os', '-s', '-o', bin, path.join(root, 'hack', 'cluster', 'pause.c')]);
      return [new Layer('pause').file('pause', bin, 0o755)];
    },
    runtime: runtime('65535:65535', ['/pause'], ['PATH=/']),
  };

  const toolbox: ImageDefinition = {
    name: 'toolbox',
    repository: 'localhost/toolbox',
    tag,
    layers: () => {
      if (!existsSync(busybox) || sharedLibraries(busybox).length > 0) {
        throw new Error(
          `a static ${busybox} is required for the toolbox image: apt-get install -y busybox-static`,
        );
      }
      need('go', 'install Go (it builds kube-whoami)');
      const whoami = path.join(workDir, 'kube-whoami');
      execFileSync('go', ['build', '-trimpath', '-ldflags', '-s -w', '-o', whoami, '.'], {
        cwd: path.join(root, 'hack', 'cluster', 'kube-whoami'),
        env: { ...process.env, CGO_ENABLED: '0', GOTOOLCHAIN: 'local', GOFLAGS: '-mod=mod -buildvcs=false' },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      const layer = new Layer('toolbox')
        .file('bin/busybox', busybox, 0o755)
        .file('bin/kube-whoami', whoami, 0o755)
        .data('etc/passwd', 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/tmp:/bin/sh\n')
        .data('etc/group', 'root:x:0:\nnobody:x:65534:\n')
        .dir('tmp', 0o1777);
      const applets = execFileSync(busybox, ['--list'], { encoding: 'utf8' }).split('\n').filter(Boolean);
      for (const applet of applets) if (applet !== 'busybox') layer.symlink(`bin/${applet}`, 'busybox');
      return [layer];
    },
    runtime: runtime('65534:65534', ['/bin/sh'], ['PATH=/bin']),
  };

  return [pause, toolbox];
}
