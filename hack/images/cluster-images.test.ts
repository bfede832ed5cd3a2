// The local cluster's pause and toolbox images, written by the same OCI writer as the product
// images: fixed names (what the kubelet config and the e2e suite use), reproducible digests, the
// users and entrypoints the cluster relies on, and a toolbox whose applets all point at busybox.
// That they run is shown by every pod of the local cluster (e2e/src/local-cluster.e2e.test.ts).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { buildImages } from './build.ts';
import { clusterImageDefinitions } from './cluster-images.ts';
import { blobPath } from './oci.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const dirs: string[] = [];
const temp = () => {
  const d = mkdtempSync(path.join(tmpdir(), 'chaperone-cluster-images-test-'));
  dirs.push(d);
  return d;
};
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const build = () =>
  buildImages({
    root,
    outDir: temp(),
    definitions: clusterImageDefinitions({ root, workDir: temp() }),
    log: () => {},
  });

describe('cluster images', () => {
  const first = build();
  const second = build();

  it('are named as cluster.env says and rebuild to the same digests', () => {
    const pauseRef = /^PAUSE_IMAGE=(\S+)$/m.exec(
      readFileSync(path.join(root, 'hack/cluster/cluster.env'), 'utf8'),
    )?.[1];
    expect(first.images.map((i) => i.ref)).toEqual([pauseRef, 'localhost/toolbox:chaperone-1']);
    expect(second.images.map((i) => i.manifestDigest)).toEqual(first.images.map((i) => i.manifestDigest));
    expect(second.images.map((i) => i.archiveDigest)).toEqual(first.images.map((i) => i.archiveDigest));
  });

  it('run as the users and entrypoints the cluster expects, from one layer each', () => {
    const config = (name: string) => {
      const image = first.images.find((i) => i.name === name);
      if (!image) throw new Error(`no ${name} image`);
      expect(image.layers).toHaveLength(1);
      return JSON.parse(readFileSync(blobPath(path.join(first.outDir, 'oci'), image.configDigest), 'utf8'))
        .config;
    };
    expect(config('pause')).toMatchObject({ User: '65535:65535', Entrypoint: ['/pause'] });
    expect(config('toolbox')).toMatchObject({
      User: '65534:65534',
      Entrypoint: ['/bin/sh'],
      Env: ['PATH=/bin'],
    });
  });

  it('gives the toolbox busybox applets as symlinks and kube-whoami', () => {
    const image = first.images.find((i) => i.name === 'toolbox');
    const layer = blobPath(path.join(first.outDir, 'oci'), image?.layers[0]?.digest ?? '');
    // GNU tar's listing: "TYPE+MODE OWNER SIZE DATE TIME NAME[ -> TARGET]".
    const entries = new Map<string, { type: string; link: string }>();
    for (const line of execFileSync('tar', ['-tvf', layer], { encoding: 'utf8' }).trim().split('\n')) {
      const [, type = '', name = '', link = ''] =
        /^(\S)\S+\s+\S+\s+\d+\s+\S+\s+\S+\s+(.+?)(?: -> (.+))?$/.exec(line) ?? [];
      entries.set(name.replace(/\/$/, ''), { type, link });
    }
    for (const applet of ['bin/sh', 'bin/nc', 'bin/ip', 'bin/wget']) {
      expect(entries.get(applet)).toEqual({ type: 'l', link: 'busybox' });
    }
    expect(entries.get('bin/busybox')?.type).toBe('-');
    expect(entries.get('bin/kube-whoami')?.type).toBe('-');
    expect(entries.get('tmp')?.type).toBe('d');
  });
});
