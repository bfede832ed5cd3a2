// OCI image-layout and archive writing (image-spec v1.1: config, manifest, index, oci-layout,
// blobs/sha256/*). Layers are uncompressed tars (application/vnd.oci.image.layer.v1.tar), so a
// layer's digest equals its diffID and depends only on its files: gzip output varies with the zlib
// build (Node's bundled zlib has changed its output between releases), which would give the same
// sources a different image digest on another machine. The cost is transport size, which only
// matters for `kind load` (a local pipe) and the content store; see docs for measured sizes.
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import path from 'node:path';
import { type Digested, digestStream, type TarEntry, tarStream } from './tar.ts';

export const MEDIA = {
  index: 'application/vnd.oci.image.index.v1+json',
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layer: 'application/vnd.oci.image.layer.v1.tar',
} as const;

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: { architecture: string; os: string };
}

export interface RuntimeConfig {
  user: string;
  env: string[];
  entrypoint: string[];
  cmd?: string[];
  workingDir: string;
  labels: Record<string, string>;
}

/** A JSON blob with its digest; the bytes are exactly what gets written. */
export interface JsonBlob extends Digested {
  bytes: Buffer;
}

export function jsonBlob(value: unknown): JsonBlob {
  const bytes = Buffer.from(JSON.stringify(value));
  return { bytes, digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}`, size: bytes.length };
}

/** Image config. No `created` or `history`: they would only carry a build time. */
export function imageConfig(runtime: RuntimeConfig, diffIds: string[]): JsonBlob {
  const config: Record<string, unknown> = {
    User: runtime.user,
    Env: runtime.env,
    Entrypoint: runtime.entrypoint,
  };
  if (runtime.cmd) config.Cmd = runtime.cmd;
  config.WorkingDir = runtime.workingDir;
  config.Labels = runtime.labels;
  return jsonBlob({
    architecture: 'amd64',
    os: 'linux',
    config,
    rootfs: { type: 'layers', diff_ids: diffIds },
  });
}

export function imageManifest(config: JsonBlob, layers: Digested[]): JsonBlob {
  return jsonBlob({
    schemaVersion: 2,
    mediaType: MEDIA.manifest,
    config: { mediaType: MEDIA.config, digest: config.digest, size: config.size },
    layers: layers.map((l) => ({ mediaType: MEDIA.layer, digest: l.digest, size: l.size })),
  });
}

/**
 * The index entry that names an image. containerd (`ctr images import`, and so `kind load
 * image-archive`) takes the name from io.containerd.image.name; org.opencontainers.image.ref.name
 * carries the tag for other OCI tools (skopeo, umoci).
 */
export function namedManifest(manifest: JsonBlob, ref: string, tag: string): Descriptor {
  return {
    mediaType: MEDIA.manifest,
    digest: manifest.digest,
    size: manifest.size,
    annotations: { 'io.containerd.image.name': ref, 'org.opencontainers.image.ref.name': tag },
    platform: { architecture: 'amd64', os: 'linux' },
  };
}

export function imageIndex(manifests: Descriptor[]): JsonBlob {
  return jsonBlob({ schemaVersion: 2, mediaType: MEDIA.index, manifests });
}

export const OCI_LAYOUT = Buffer.from(JSON.stringify({ imageLayoutVersion: '1.0.0' }));

export function blobPath(layoutDir: string, digest: string): string {
  const [algorithm, hex] = digest.split(':');
  return path.join(layoutDir, 'blobs', algorithm!, hex!);
}

/** Writes a stream to `file` atomically (temp file + rename), returning its digest. */
export function writeStream(file: string, chunks: Iterable<Buffer>): Digested {
  mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.partial-${process.pid}`;
  const fd = openSync(tmp, 'w');
  try {
    const digested = digestStream(chunks, (chunk) => {
      for (let off = 0; off < chunk.length; ) off += writeSync(fd, chunk, off);
    });
    closeSync(fd);
    renameSync(tmp, file);
    return digested;
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
}

/** Puts a blob into the layout unless a file of that digest and size is already there. */
export function putBlob(layoutDir: string, expected: Digested, chunks: () => Iterable<Buffer>): boolean {
  const file = blobPath(layoutDir, expected.digest);
  if (existsSync(file) && statSync(file).size === expected.size) return false;
  const written = writeStream(file, chunks());
  if (written.digest !== expected.digest) {
    rmSync(file, { force: true });
    throw new Error(
      `blob ${expected.digest} came out as ${written.digest}: did files change during the build?`,
    );
  }
  return true;
}

/** A layer's digest without writing it (files are streamed through the hash). */
export function digestLayer(entries: TarEntry[]): Digested {
  return digestStream(tarStream(entries));
}

/**
 * An OCI archive of one or more images: a tar of an OCI layout whose index.json names them. This
 * is what `ctr images import` and `kind load image-archive` read.
 */
export function archiveEntries(layoutDir: string, index: JsonBlob, blobs: Digested[]): TarEntry[] {
  const entries: TarEntry[] = [
    { type: 'file', path: 'oci-layout', mode: 0o644, data: OCI_LAYOUT },
    { type: 'file', path: 'index.json', mode: 0o644, data: index.bytes },
    { type: 'dir', path: 'blobs', mode: 0o755 },
    { type: 'dir', path: 'blobs/sha256', mode: 0o755 },
  ];
  const seen = new Set<string>();
  for (const blob of blobs) {
    if (seen.has(blob.digest)) continue;
    seen.add(blob.digest);
    entries.push({
      type: 'file',
      path: path.relative(layoutDir, blobPath(layoutDir, blob.digest)),
      mode: 0o644,
      source: blobPath(layoutDir, blob.digest),
      size: blob.size,
    });
  }
  return entries;
}
