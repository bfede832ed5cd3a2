// Builds the images into OUT (default dist/images/):
//   OUT/oci/                 one OCI image layout holding all images (blobs shared)
//   OUT/<name>.tar           an OCI archive per image, for `ctr -n k8s.io images import` and
//                            `kind load image-archive`
//   OUT/images.json          name, reference, digests and sizes of each image
//   OUT/images.env           SIDECAR_IMAGE=localhost/chaperone-sidecar:0.1.0-… (for shell scripts)
//
// Tags are `<package version>-<first 12 hex digits of the manifest digest>`: a new tag exactly when
// the content changes, never `latest` (which the kubelet would try to pull). Rebuilding unchanged
// sources rewrites nothing: blobs are content-addressed and an archive is kept while its manifest
// digest is unchanged, so the warm build costs one hashing pass over the files.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { type ImageDefinition, imageDefinitions } from './definitions.ts';
import type { Layer } from './layer.ts';
import {
  archiveEntries,
  blobPath,
  type Descriptor,
  digestLayer,
  imageConfig,
  imageIndex,
  imageManifest,
  namedManifest,
  OCI_LAYOUT,
  putBlob,
  writeStream,
} from './oci.ts';
import { type Digested, type TarEntry, tarStream } from './tar.ts';

export interface BuiltImage {
  name: string;
  repository: string;
  tag: string;
  /** repository:tag, the name containerd and pod specs use. */
  ref: string;
  manifestDigest: string;
  configDigest: string;
  layers: { name: string; digest: string; size: number }[];
  /** Sum of the layer tars: about what the image takes unpacked. */
  layersBytes: number;
  /** File name of the OCI archive in the output directory. */
  archive: string;
  archiveBytes: number;
  archiveDigest: string;
}

export interface BuildResult {
  images: BuiltImage[];
  outDir: string;
  /** Blobs and archives written (0 on a warm build with nothing changed). */
  written: number;
  seconds: number;
}

export interface BuildOptions {
  root: string;
  outDir?: string;
  definitions?: ImageDefinition[];
  log?: (line: string) => void;
}

interface PreviousImage {
  name: string;
  manifestDigest: string;
  archive: string;
  archiveBytes: number;
  archiveDigest: string;
}

function readPrevious(outDir: string): Map<string, PreviousImage> {
  try {
    const json = JSON.parse(readFileSync(path.join(outDir, 'images.json'), 'utf8')) as {
      images: PreviousImage[];
    };
    return new Map(json.images.map((i) => [i.name, i]));
  } catch {
    return new Map();
  }
}

function packageVersion(file: string): string {
  const version = (JSON.parse(readFileSync(file, 'utf8')) as { version?: string }).version;
  if (!version || !/^[0-9A-Za-z.+-]+$/.test(version)) throw new Error(`${file} has no usable "version"`);
  return version.replace(/\+/g, '_'); // '+' is not allowed in an image tag
}

function envName(name: string): string {
  return `${name.toUpperCase().replace(/[^A-Z0-9]/g, '_')}_IMAGE`;
}

export function buildImages(options: BuildOptions): BuildResult {
  const started = process.hrtime.bigint();
  const { root } = options;
  const outDir = path.resolve(options.outDir ?? path.join(root, 'dist', 'images'));
  const layoutDir = path.join(outDir, 'oci');
  const log = options.log ?? ((line: string) => console.error(line));
  const definitions = options.definitions ?? imageDefinitions({ root });
  const previous = readPrevious(outDir);

  // A layer shared by several images is listed and hashed once.
  const layerDigests = new Map<Layer, { entries: TarEntry[]; digested: Digested }>();
  const digestOf = (layer: Layer) => {
    let known = layerDigests.get(layer);
    if (!known) {
      const entries = [...layer.entries.values()];
      known = { entries, digested: digestLayer(entries) };
      layerDigests.set(layer, known);
    }
    return known;
  };

  let written = 0;
  const images: BuiltImage[] = [];
  const named: Descriptor[] = [];
  const live = new Set<string>();
  for (const def of definitions) {
    const version = 'versionFrom' in def ? packageVersion(def.versionFrom) : def.tag;
    const layers = def.layers();
    const layerInfo = layers.map((layer) => ({ layer, ...digestOf(layer) }));
    for (const { entries, digested } of layerInfo) {
      if (putBlob(layoutDir, digested, () => tarStream(entries))) written++;
      live.add(digested.digest);
    }
    const config = imageConfig(
      def.runtime(version),
      layerInfo.map((l) => l.digested.digest),
    );
    const manifest = imageManifest(
      config,
      layerInfo.map((l) => l.digested),
    );
    for (const blob of [config, manifest]) {
      if (putBlob(layoutDir, blob, () => [blob.bytes])) written++;
      live.add(blob.digest);
    }
    const tag =
      'tag' in def ? def.tag : `${version}-${manifest.digest.slice('sha256:'.length, 'sha256:'.length + 12)}`;
    const ref = `${def.repository}:${tag}`;
    const descriptor = namedManifest(manifest, ref, tag);
    named.push(descriptor);

    // The per-image archive: the same layout restricted to this image.
    const archiveFile = path.join(outDir, `${def.name}.tar`);
    const blobs = [...layerInfo.map((l) => l.digested), config, manifest];
    const before = previous.get(def.name);
    let archive: Digested;
    if (
      before &&
      before.manifestDigest === manifest.digest &&
      existsSync(archiveFile) &&
      statSync(archiveFile).size === before.archiveBytes
    ) {
      archive = { digest: before.archiveDigest, size: before.archiveBytes };
    } else {
      archive = writeStream(
        archiveFile,
        tarStream(archiveEntries(layoutDir, imageIndex([descriptor]), blobs)),
      );
      written++;
    }
    images.push({
      name: def.name,
      repository: def.repository,
      tag,
      ref,
      manifestDigest: manifest.digest,
      configDigest: config.digest,
      layers: layerInfo.map((l) => ({
        name: l.layer.name,
        digest: l.digested.digest,
        size: l.digested.size,
      })),
      layersBytes: layerInfo.reduce((n, l) => n + l.digested.size, 0),
      archive: path.basename(archiveFile),
      archiveBytes: archive.size,
      archiveDigest: archive.digest,
    });
  }

  // The shared layout's index names every image; blobs of earlier builds are removed.
  const index = imageIndex(named);
  writeFileSync(path.join(layoutDir, 'oci-layout'), OCI_LAYOUT);
  writeFileSync(path.join(layoutDir, 'index.json'), index.bytes);
  const blobDir = path.dirname(blobPath(layoutDir, 'sha256:x'));
  for (const hex of readdirSync(blobDir)) {
    if (!live.has(`sha256:${hex}`)) rmSync(path.join(blobDir, hex), { force: true });
  }

  writeFileSync(path.join(outDir, 'images.json'), `${JSON.stringify({ images }, null, 2)}\n`);
  writeFileSync(path.join(outDir, 'images.env'), images.map((i) => `${envName(i.name)}=${i.ref}\n`).join(''));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  for (const i of images) {
    log(
      `${i.ref.padEnd(52)} ${mb(i.layersBytes).padStart(8)} in ${i.layers.length} layers (${i.layers
        .map((l) => `${l.name} ${mb(l.size)}`)
        .join(', ')})`,
    );
  }
  log(`images: ${images.length} in ${outDir} in ${seconds.toFixed(1)} s (${written} files written)`);
  return { images, outDir, written, seconds };
}

function mb(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

/**
 * Imports archives the way `kind load image-archive` does (ctr … images import --all-platforms
 * --digests), into the containerd at `address`.
 */
export function importImages(
  build: Pick<BuildResult, 'images' | 'outDir'>,
  options: { address: string; namespace?: string; snapshotter?: string },
): void {
  for (const image of build.images) {
    const args = [
      '--address',
      options.address,
      '--namespace',
      options.namespace ?? 'k8s.io',
      'images',
      'import',
    ];
    args.push('--all-platforms', '--digests');
    if (options.snapshotter) args.push(`--snapshotter=${options.snapshotter}`);
    args.push(path.join(build.outDir, image.archive));
    execFileSync('ctr', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  }
}
