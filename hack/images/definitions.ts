// The four images and their layers. Layers are shared where the content is the same, so containerd
// stores them once:
//
//   base   /etc/passwd, /etc/group (nonroot = 65532), /etc/nsswitch.conf, /tmp (1777),
//          /home/nonroot, and the glibc libraries that `ldd node` lists — all four images
//   node   /usr/local/bin/node (the Node 24 official binary the workspace's addons are built for)
//   app    /app/<workspace>/dist, /app/api/dist, /app/crds, /app/node_modules (production only)
//   agent  psql with the libraries it links, busybox sh, /usr/local/bin/chaperone-agent
//
// No CA certificates: Node uses its bundled Mozilla store and the in-cluster clients pass their CA
// explicitly (ServiceAccount ca.crt, CHAPERONE_BROKER_CA); psql verifies against ~/.postgresql or
// sslrootcert. No shell in the Node images.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Layer, sharedLibraries } from './layer.ts';
import { appTree } from './node-app.ts';
import type { RuntimeConfig } from './oci.ts';

export const NONROOT = 65532;
const PATH_ENV = 'PATH=/usr/local/bin:/usr/bin:/bin';
const NODE = '/usr/local/bin/node';

export type ImageDefinition = {
  /** Short name: sidecar, operator, collector, agent. */
  name: string;
  repository: string;
  layers: () => Layer[];
  runtime: (version: string) => RuntimeConfig;
} & (
  | {
      /** package.json whose version starts the tag and fills the version label. */
      versionFrom: string;
    }
  | {
      /** A fixed tag instead of `<version>-<manifest digest>` (the local cluster's own images). */
      tag: string;
    }
);

export interface DefinitionOptions {
  root: string;
  /** The Node binary for the images; default: the one running this script (the addons' ABI). */
  nodeBinary?: string;
  /** psql to copy; default: the newest /usr/lib/postgresql/N/bin/psql. */
  psql?: string;
  /** A static busybox; default /bin/busybox (Debian busybox-static). */
  busybox?: string;
}

function labels(title: string, version: string, description: string): Record<string, string> {
  return {
    'org.opencontainers.image.title': title,
    'org.opencontainers.image.description': description,
    'org.opencontainers.image.version': version,
    'org.opencontainers.image.licenses': 'Apache-2.0',
  };
}

function once<T>(make: () => T): () => T {
  let value: T | undefined;
  return () => {
    value ??= make();
    return value;
  };
}

/** Checks that the Node binary is an official Node 24 build and is the one the addons target. */
export function checkNodeBinary(binary: string): void {
  if (!existsSync(binary)) throw new Error(`Node binary ${binary} not found`);
  if (binary === process.execPath) {
    const major = Number(process.versions.node.split('.')[0]);
    if (major !== 24) {
      throw new Error(
        `the images carry Node 24, but this runs on Node ${process.version}; the native addons in ` +
          'node_modules are built for the Node that runs make: use hack/ensure-node.sh (make images does)',
      );
    }
  }
}

/** Adds to `layer` the shared libraries of `binary` (with their symlinks) that `base` lacks. */
function addMissingLibraries(layer: Layer, base: Layer, binary: string): void {
  for (const lib of sharedLibraries(binary)) {
    const probe = new Layer('probe').hostPath(lib);
    if ([...probe.entries].some(([p, e]) => e.type !== 'dir' && !base.has(p))) layer.hostPath(lib);
  }
}

export function findPsql(): string {
  const base = '/usr/lib/postgresql';
  const versions = existsSync(base)
    ? readdirSync(base)
        .filter((v) => /^\d+$/.test(v) && existsSync(path.join(base, v, 'bin', 'psql')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (versions.length === 0) {
    throw new Error(
      'no psql under /usr/lib/postgresql/*/bin for the agent image: apt-get install -y postgresql-client',
    );
  }
  return path.join(base, versions[0]!, 'bin', 'psql');
}

export function imageDefinitions(options: DefinitionOptions): ImageDefinition[] {
  const { root } = options;
  const nodeBinary = options.nodeBinary ?? process.execPath;

  const base = once(() => {
    checkNodeBinary(nodeBinary);
    const layer = new Layer('base');
    layer
      .data(
        'etc/passwd',
        `root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:${NONROOT}:${NONROOT}:nonroot:/home/nonroot:/sbin/nologin\n`,
      )
      .data('etc/group', `root:x:0:\nnonroot:x:${NONROOT}:\n`)
      // Kubelet-managed /etc/hosts first, then DNS (glibc's built-in default puts DNS first).
      .data('etc/nsswitch.conf', 'passwd: files\ngroup: files\nhosts: files dns\n')
      .dir('tmp', 0o1777)
      .dir('home/nonroot', 0o700, NONROOT);
    for (const lib of sharedLibraries(nodeBinary)) layer.hostPath(lib);
    return layer;
  });

  const node = once(() => new Layer('node').file(NODE.slice(1), nodeBinary, 0o755));

  /** /app: the workspace, its production dependencies, and any library its native addons need beyond base. */
  const app = (workspace: string) =>
    once(() => {
      const layer = new Layer(`app-${workspace}`);
      const tree = appTree(root, path.join(root, workspace));
      for (const file of tree.files) layer.file(`app/${file.rel}`, file.source);
      for (const link of tree.links) layer.symlink(`app/${link.rel}`, link.target);
      for (const file of tree.files.filter((f) => f.rel.endsWith('.node'))) {
        addMissingLibraries(layer, base(), file.source);
      }
      return layer;
    });

  const nodeImage = (workspace: string, description: string, nodeArgs: string[] = []): ImageDefinition => {
    const appLayer = app(workspace);
    return {
      name: workspace,
      repository: `localhost/chaperone-${workspace}`,
      versionFrom: path.join(root, workspace, 'package.json'),
      layers: () => [base(), node(), appLayer()],
      runtime: (version) => ({
        user: `${NONROOT}:${NONROOT}`,
        env: [PATH_ENV],
        entrypoint: [NODE, ...nodeArgs, `/app/${workspace}/dist/cli.js`],
        workingDir: '/app',
        labels: labels(`chaperone-${workspace}`, version, description),
      }),
    };
  };

  const agent = once(() => {
    const layer = new Layer('agent');
    const psql = options.psql ?? findPsql();
    const busybox = options.busybox ?? '/bin/busybox';
    if (!existsSync(busybox)) throw new Error(`${busybox} not found: apt-get install -y busybox-static`);
    if (sharedLibraries(busybox).length > 0)
      throw new Error(`${busybox} must be statically linked (busybox-static)`);
    layer.file('usr/local/bin/psql', psql, 0o755);
    addMissingLibraries(layer, base(), psql);
    layer.file('usr/bin/busybox', busybox, 0o755);
    for (const applet of ['sh', 'sleep', 'cat', 'env', 'ls']) layer.symlink(`usr/bin/${applet}`, 'busybox');
    layer.symlink('bin', 'usr/bin');
    layer.data('usr/local/bin/chaperone-agent', readFileSync(new URL('./agent.sh', import.meta.url)), 0o755);
    return layer;
  });

  return [
    nodeImage(
      'sidecar',
      'Chaperone sidecar: the per-pod gateway (PostgreSQL, SSH, Kubernetes API)',
      // V8's optimizing WASM tier costs the SQL parser memory for no gain (docs/performance.md).
      ['--liftoff-only'],
    ),
    nodeImage('operator', 'Chaperone operator: reconcilers, admission webhooks, credential broker'),
    nodeImage('collector', 'Chaperone collector: session recordings, auditor API and web UI'),
    {
      name: 'agent',
      repository: 'localhost/chaperone-agent',
      versionFrom: path.join(root, 'e2e', 'package.json'),
      layers: () => [base(), agent()],
      runtime: (version) => ({
        user: `${NONROOT}:${NONROOT}`,
        env: [PATH_ENV],
        entrypoint: ['/usr/local/bin/chaperone-agent'],
        workingDir: '/',
        labels: labels('chaperone-agent', version, 'Demo agent for the e2e suite: psql and a small script'),
      }),
    },
  ];
}
