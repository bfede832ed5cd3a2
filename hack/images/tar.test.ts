// The deterministic tar writer, the layer collector and the OCI documents, checked against GNU tar
// (an independent reader) rather than against our own parser.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Layer, sharedLibraries } from './layer.ts';
import { imageConfig, imageIndex, imageManifest, MEDIA, namedManifest } from './oci.ts';
import { digestStream, type TarEntry, tarStream } from './tar.ts';

const work = mkdtempSync(path.join(tmpdir(), 'chaperone-tar-test-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function writeTar(name: string, entries: TarEntry[]): string {
  const file = path.join(work, name);
  writeFileSync(file, Buffer.concat([...tarStream(entries)]));
  return file;
}

const longDir = `${'a'.repeat(60)}/${'b'.repeat(60)}/${'c'.repeat(60)}`; // > 100 bytes: ustar prefix
const veryLong = `${'d'.repeat(120)}/${'e'.repeat(120)}/${'f'.repeat(120)}.js`; // > 255 bytes: PAX
const source = path.join(work, 'source.bin');
writeFileSync(source, Buffer.alloc(70_000, 7));

const entries: TarEntry[] = [
  { type: 'file', path: 'usr/local/bin/tool', mode: 0o755, data: Buffer.from('#!/bin/sh\n') },
  { type: 'dir', path: 'tmp', mode: 0o1777 },
  { type: 'dir', path: 'home/nonroot', mode: 0o700, uid: 65532, gid: 65532 },
  { type: 'symlink', path: 'lib', target: 'usr/lib' },
  { type: 'file', path: `${longDir}/file.txt`, mode: 0o644, data: Buffer.from('long\n') },
  { type: 'file', path: veryLong, mode: 0o644, data: Buffer.from('very long\n') },
  { type: 'symlink', path: 'link-long', target: `/${veryLong}` },
  { type: 'file', path: 'big.bin', mode: 0o644, source, size: 70_000 },
];

describe('tarStream', () => {
  it('writes what GNU tar reads back: names, modes, numeric owners, mtime 0, symlinks, long paths', () => {
    const file = writeTar('a.tar', entries);
    const listing = execFileSync('tar', ['--numeric-owner', '--full-time', '-tvf', file], {
      encoding: 'utf8',
    });
    const lines = listing.trim().split('\n');
    expect(lines).toHaveLength(entries.length);
    expect(listing).toContain('drwxrwxrwt 0/0');
    expect(listing).toMatch(/drwx------ 65532\/65532 .* home\/nonroot\//);
    expect(listing).toMatch(/lrwxrwxrwx 0\/0 .* lib -> usr\/lib/);
    expect(listing).toContain(`link-long -> /${veryLong}`);
    expect(listing).toContain(`${longDir}/file.txt`);
    expect(listing).toContain(veryLong);
    for (const line of lines) expect(line).toContain('1970-01-01 00:00:00');

    const out = path.join(work, 'a');
    mkdirSync(out);
    execFileSync('tar', ['-xf', file, '-C', out]);
    expect(readFileSync(path.join(out, veryLong), 'utf8')).toBe('very long\n');
    expect(readFileSync(path.join(out, 'big.bin')).equals(readFileSync(source))).toBe(true);
  });

  it('is independent of the order entries are given in', () => {
    const a = digestStream(tarStream(entries));
    const b = digestStream(tarStream([...entries].reverse()));
    expect(b).toEqual(a);
  });

  it('sorts bytewise and refuses duplicates and escaping paths', () => {
    const names = [
      ...tarStream([
        { type: 'file', path: 'a/b', mode: 0o644, data: Buffer.alloc(0) },
        { type: 'file', path: 'a-b', mode: 0o644, data: Buffer.alloc(0) },
        { type: 'file', path: 'B', mode: 0o644, data: Buffer.alloc(0) },
      ]),
    ]
      .filter((b) => b.length === 512 && b.subarray(257, 262).toString() === 'ustar')
      .map((b) => b.subarray(0, 100).toString().replace(/\0+$/, ''));
    expect(names).toEqual(['B', 'a-b', 'a/b']);
    const dup: TarEntry[] = [
      { type: 'dir', path: 'x', mode: 0o755 },
      { type: 'dir', path: '/x/', mode: 0o755 },
    ];
    expect(() => [...tarStream(dup)]).toThrow(/duplicate path/);
    expect(() => [...tarStream([{ type: 'dir', path: 'a/../b', mode: 0o755 }])]).toThrow(/invalid path/);
  });
});

describe('Layer', () => {
  it('mirrors host symlinks on the way to a file, so the image resolves the same names', () => {
    const host = path.join(work, 'host');
    mkdirSync(path.join(host, 'usr/lib/x86_64-linux-gnu'), { recursive: true });
    writeFileSync(path.join(host, 'usr/lib/x86_64-linux-gnu/libfoo.so.1.2.3'), 'ELF');
    symlinkSync('libfoo.so.1.2.3', path.join(host, 'usr/lib/x86_64-linux-gnu/libfoo.so.1'));
    symlinkSync('usr/lib', path.join(host, 'lib'));
    const layer = new Layer('t').hostPath(path.join(host, 'lib/x86_64-linux-gnu/libfoo.so.1'));
    const rel = (p: string) => path.join(host, p).slice(1);
    expect(layer.entries.get(rel('lib'))).toMatchObject({ type: 'symlink', target: 'usr/lib' });
    expect(layer.entries.get(rel('usr/lib/x86_64-linux-gnu/libfoo.so.1'))).toMatchObject({
      type: 'symlink',
      target: 'libfoo.so.1.2.3',
    });
    expect(layer.entries.get(rel('usr/lib/x86_64-linux-gnu/libfoo.so.1.2.3'))).toMatchObject({
      type: 'file',
      mode: 0o644,
    });
  });

  it('normalises modes and refuses the same path with different content', () => {
    const exe = path.join(work, 'exe');
    writeFileSync(exe, 'x', { mode: 0o700 });
    const layer = new Layer('t').file('bin/exe', exe).data('etc/a', 'one');
    expect(layer.entries.get('bin/exe')).toMatchObject({ mode: 0o755 });
    expect(layer.entries.get('bin')).toMatchObject({ type: 'dir', mode: 0o755 });
    expect(() => layer.data('etc/a', 'two')).toThrow(/added twice/);
    layer.data('etc/a', 'one'); // the same content again is fine
  });

  it('lists the libraries of a dynamic binary with ldd, and none for a static one', () => {
    const libs = sharedLibraries(process.execPath);
    expect(libs.some((l) => /\/libc\.so\.6$/.test(l))).toBe(true);
    expect(libs.some((l) => /ld-linux-x86-64\.so\.2$/.test(l))).toBe(true);
    const script = path.join(work, 'script.sh');
    writeFileSync(script, '#!/bin/sh\n', { mode: 0o755 });
    expect(sharedLibraries(script)).toEqual([]);
  });
});

describe('OCI documents', () => {
  it('names the image for containerd and never carries a build time', () => {
    const config = imageConfig(
      { user: '65532:65532', env: ['PATH=/bin'], entrypoint: ['/x'], workingDir: '/', labels: {} },
      ['sha256:aa'],
    );
    const parsed = JSON.parse(config.bytes.toString());
    expect(parsed).toMatchObject({ architecture: 'amd64', os: 'linux', rootfs: { diff_ids: ['sha256:aa'] } });
    expect(parsed.created).toBeUndefined();
    const manifest = imageManifest(config, [{ digest: 'sha256:aa', size: 1024 }]);
    expect(JSON.parse(manifest.bytes.toString()).layers[0]).toEqual({
      mediaType: MEDIA.layer,
      digest: 'sha256:aa',
      size: 1024,
    });
    const index = JSON.parse(
      imageIndex([namedManifest(manifest, 'localhost/x:1.0.0-abc', '1.0.0-abc')]).bytes.toString(),
    );
    expect(index.manifests[0].annotations['io.containerd.image.name']).toBe('localhost/x:1.0.0-abc');
    expect(index.manifests[0].digest).toBe(manifest.digest);
  });
});
