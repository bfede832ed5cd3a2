// Builds the container images without Docker (make images): sidecar, operator, collector and the
// demo agent, as OCI archives in dist/images/ (see hack/images/build.ts for the layout and
// hack/images/definitions.ts for what each image holds). Needs a built workspace (make build).
//
//   node hack/build-images.ts [--out DIR] [--import [--address SOCK] [--namespace NS]]
//   node hack/build-images.ts --cluster --out DIR
//
// Prints NAME_IMAGE=ref lines on stdout (the same as DIR/images.env); progress goes to stderr.
// --import loads the archives into a running containerd the way `kind load image-archive` does
// (default socket /run/containerd/containerd.sock, namespace k8s.io, the one the kubelet uses).
// --cluster builds the local cluster's pause and toolbox images instead (hack/images/cluster-images.ts)
// and prints their archive paths, one per line, for hack/cluster-up.sh.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { buildImages, importImages } from './images/build.ts';
import { clusterImageDefinitions } from './images/cluster-images.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const { values } = parseArgs({
  options: {
    out: { type: 'string' },
    import: { type: 'boolean', default: false },
    address: { type: 'string', default: '/run/containerd/containerd.sock' },
    namespace: { type: 'string', default: 'k8s.io' },
    cluster: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (values.help) {
  console.log('usage: node hack/build-images.ts [--out DIR] [--import [--address SOCK] [--namespace NS]]');
  console.log('       node hack/build-images.ts --cluster --out DIR');
  process.exit(0);
}

if (values.cluster) {
  if (!values.out) {
    console.error('build-images: --cluster needs --out DIR');
    process.exit(2);
  }
  const workDir = mkdtempSync(path.join(tmpdir(), 'chaperone-cluster-images-'));
  try {
    const outDir = path.resolve(values.out);
    const result = buildImages({
      root,
      outDir,
      definitions: clusterImageDefinitions({ root, workDir }),
      log: () => {},
    });
    for (const image of result.images) console.log(path.join(outDir, image.archive));
  } catch (e) {
    const err = e as Error & { stderr?: Buffer };
    console.error(`build-images: ${err.message}${err.stderr ? `\n${err.stderr.toString().trim()}` : ''}`);
    process.exit(1);
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
  process.exit(0);
}

try {
  const result = buildImages({ root, outDir: values.out ? path.resolve(values.out) : undefined });
  if (values.import) {
    importImages(result, { address: values.address, namespace: values.namespace });
    console.error(
      `imported ${result.images.length} images into ${values.address} (namespace ${values.namespace})`,
    );
  }
  for (const image of result.images) console.log(`${image.name.toUpperCase()}_IMAGE=${image.ref}`);
} catch (e) {
  const err = e as Error & { stderr?: Buffer };
  console.error(`build-images: ${err.message}${err.stderr ? `\n${err.stderr.toString().trim()}` : ''}`);
  process.exit(1);
}
