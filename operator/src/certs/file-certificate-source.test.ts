import { mkdir, mkdtemp, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  type CertificateWatch,
  type ServingCertificateMaterial,
  startCertificateWatch,
} from './certificate-source.js';
import { FileCertificateSource } from './file-certificate-source.js';
import { type CertificateKeyPair, generateCa, issueServingCert, YEAR_MS } from './pki.js';

// Lays files out the way the kubelet's AtomicWriter does for a mounted Secret: the data lives in a
// timestamped hidden directory, `..data` points at it, and each key is a symlink through `..data`.
// An update writes a new hidden directory and renames a fresh `..data_tmp` symlink over `..data`.
class MountedSecretDir {
  private generation = 0;
  constructor(readonly dir: string) {}

  async write(files: Record<string, string>): Promise<void> {
    const previous = this.generation > 0 ? `..gen_${this.generation}` : undefined;
    this.generation++;
    const gen = `..gen_${this.generation}`;
    await mkdir(join(this.dir, gen));
    for (const [name, content] of Object.entries(files)) await writeFile(join(this.dir, gen, name), content);
    await symlink(gen, join(this.dir, '..data_tmp'));
    await rename(join(this.dir, '..data_tmp'), join(this.dir, '..data'));
    for (const name of Object.keys(files)) {
      await symlink(join('..data', name), join(this.dir, name)).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'EEXIST') throw err;
      });
    }
    if (previous) await rm(join(this.dir, previous), { recursive: true });
  }
}

const files = (pair: CertificateKeyPair, ca: CertificateKeyPair) => ({
  'tls.crt': pair.certPem,
  'tls.key': pair.keyPem,
  'ca.crt': ca.certPem,
});

describe('FileCertificateSource (cert-manager mode)', () => {
  let ca: CertificateKeyPair;
  let first: CertificateKeyPair;
  let second: CertificateKeyPair;
  const cleanups: (() => unknown)[] = [];

  beforeAll(async () => {
    const now = new Date();
    ca = await generateCa(now, 10 * YEAR_MS);
    first = await issueServingCert(ca, { dnsNames: ['op'] }, now, YEAR_MS);
    second = await issueServingCert(ca, { dnsNames: ['op'] }, now, YEAR_MS);
  });
  afterEach(async () => {
    for (const c of cleanups.splice(0)) await c();
  });

  async function mounted(): Promise<MountedSecretDir> {
    const dir = await mkdtemp(join(tmpdir(), 'chaperone-certs-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    return new MountedSecretDir(dir);
  }
  function watchInto(source: FileCertificateSource, seen: ServingCertificateMaterial[]): CertificateWatch {
    const w = source.watch((m) => {
      seen.push(m);
    });
    cleanups.push(() => w.stop());
    return w;
  }

  it('reads the mounted pair and its CA', async () => {
    const m = await mounted();
    await m.write(files(first, ca));
    await expect(new FileCertificateSource(m.dir).current()).resolves.toEqual({
      cert: first.certPem,
      key: first.keyPem,
      caPem: ca.certPem,
    });
  });

  it('has no certificate while the directory is empty, the pair does not match, or ca.crt is absent', async () => {
    const m = await mounted();
    const source = new FileCertificateSource(m.dir);
    await expect(source.current()).resolves.toBeUndefined();
    await m.write({ 'tls.crt': first.certPem, 'tls.key': second.keyPem });
    await expect(source.current()).resolves.toBeUndefined();
    await m.write({ 'tls.crt': first.certPem, 'tls.key': first.keyPem });
    await expect(source.current()).resolves.toMatchObject({ cert: first.certPem, caPem: undefined });
  });

  it('delivers the first pair, then the renewed one after a symlink swap, and nothing for a broken pair', async () => {
    const m = await mounted();
    await m.write(files(first, ca));
    const seen: ServingCertificateMaterial[] = [];
    // A long poll interval: only the directory watch can deliver the change within the wait.
    watchInto(new FileCertificateSource(m.dir, { pollIntervalMs: 3_600_000, debounceMs: 20 }), seen);
    await vi.waitFor(() => expect(seen.map((s) => s.cert)).toEqual([first.certPem]), { timeout: 5_000 });

    await m.write({ 'tls.crt': second.certPem, 'tls.key': first.keyPem, 'ca.crt': ca.certPem });
    await m.write(files(second, ca));
    await vi.waitFor(() => expect(seen.map((s) => s.cert)).toEqual([first.certPem, second.certPem]), {
      timeout: 5_000,
    });
    expect(seen[1]?.key).toBe(second.keyPem);
  });

  it('picks up a change by periodic re-read alone', async () => {
    const m = await mounted();
    await m.write(files(first, ca));
    const seen: ServingCertificateMaterial[] = [];
    // A debounce longer than the test: only the periodic re-read can deliver the change.
    watchInto(new FileCertificateSource(m.dir, { pollIntervalMs: 50, debounceMs: 3_600_000 }), seen);
    await vi.waitFor(() => expect(seen).toHaveLength(1), { timeout: 5_000 });
    await m.write(files(second, ca));
    await vi.waitFor(() => expect(seen.map((s) => s.cert)).toEqual([first.certPem, second.certPem]), {
      timeout: 5_000,
    });
  });

  it('offers a certificate again when applying it failed', async () => {
    const m = await mounted();
    await m.write(files(first, ca));
    let calls = 0;
    const w = new FileCertificateSource(m.dir, { pollIntervalMs: 50 }).watch(() => {
      calls++;
      if (calls === 1) throw new Error('server refused it');
    });
    cleanups.push(() => w.stop());
    await vi.waitFor(() => expect(calls).toBe(2), { timeout: 5_000 });
    // Applied on the second offer: not offered again while it does not change.
    await new Promise((r) => setTimeout(r, 300));
    expect(calls).toBe(2);
  });

  it('stops calling after stop()', async () => {
    const m = await mounted();
    const seen: ServingCertificateMaterial[] = [];
    const w = watchInto(new FileCertificateSource(m.dir, { pollIntervalMs: 20, debounceMs: 10 }), seen);
    w.stop();
    await m.write(files(first, ca));
    await new Promise((r) => setTimeout(r, 200));
    expect(seen).toEqual([]);
  });

  it('startCertificateWatch: the first certificate resolves `first`, later ones go to apply', async () => {
    const m = await mounted();
    const source = new FileCertificateSource(m.dir, { pollIntervalMs: 50, debounceMs: 10 });
    const applied: string[] = [];
    const firstPair = first;
    const { first: firstDelivered, watch } = startCertificateWatch(source, (material) => {
      applied.push(material.cert);
    });
    cleanups.push(() => watch.stop());
    await m.write(files(firstPair, ca));
    expect((await firstDelivered).cert).toBe(firstPair.certPem);
    expect(applied).toEqual([]);
    await m.write(files(second, ca));
    await vi.waitFor(() => expect(applied).toEqual([second.certPem]), { timeout: 5_000 });
  });
});
