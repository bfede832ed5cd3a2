// Collects the files of one image layer. Paths are image paths without the leading '/'. Modes are
// normalised (directories 0755, files 0644 or 0755 when the host file is executable) so that the
// host's umask and checkout modes never change a digest. Parent directories are added as needed.
import { execFileSync } from 'node:child_process';
import { lstatSync, readlinkSync, statSync } from 'node:fs';
import path from 'node:path';
import { normalizeTarPath, type TarEntry } from './tar.ts';

export class Layer {
  readonly entries = new Map<string, TarEntry>();
  readonly name: string;

  constructor(name: string) {
    this.name = name;
  }

  private set(entry: TarEntry): void {
    const p = normalizeTarPath(entry.path);
    const existing = this.entries.get(p);
    if (existing) {
      if (sameEntry(existing, entry)) return;
      throw new Error(`layer ${this.name}: ${p} is added twice with different content`);
    }
    const parent = path.posix.dirname(p);
    if (parent !== '.') this.ensureDir(parent);
    this.entries.set(p, { ...entry, path: p } as TarEntry);
  }

  private ensureDir(p: string): void {
    const existing = this.entries.get(p);
    if (existing) {
      if (existing.type !== 'file') return; // a dir, or a symlink that stands for one (lib -> usr/lib)
      throw new Error(`layer ${this.name}: ${p} is a file and a directory`);
    }
    this.set({ type: 'dir', path: p, mode: 0o755 });
  }

  dir(p: string, mode = 0o755, owner = 0): this {
    const clean = normalizeTarPath(p);
    const existing = this.entries.get(clean);
    if (existing?.type === 'dir' && existing.mode === 0o755 && (existing.uid ?? 0) === 0)
      this.entries.delete(clean);
    this.set({ type: 'dir', path: clean, mode, uid: owner, gid: owner });
    return this;
  }

  data(p: string, data: string | Buffer, mode = 0o644): this {
    this.set({ type: 'file', path: p, mode, data: Buffer.from(data) });
    return this;
  }

  /** A host file's content at image path `p`. */
  file(p: string, source: string, mode?: number): this {
    const st = statSync(source);
    if (!st.isFile()) throw new Error(`${source} is not a regular file`);
    this.set({
      type: 'file',
      path: p,
      mode: mode ?? (st.mode & 0o111 ? 0o755 : 0o644),
      source,
      size: st.size,
    });
    return this;
  }

  symlink(p: string, target: string): this {
    this.set({ type: 'symlink', path: p, target });
    return this;
  }

  /**
   * Copies a host path to the same image path, reproducing every symlink met on the way
   * (`/lib64` → `usr/lib64`, `libstdc++.so.6` → `libstdc++.so.6.0.30`), so that the dynamic
   * loader resolves the same names in the image as on the host.
   */
  hostPath(hostPath: string): this {
    let pending = path.resolve(hostPath);
    for (let hops = 0; hops < 40; hops++) {
      const parts = pending.split('/').filter(Boolean);
      let current = '/';
      let redirected = false;
      for (let i = 0; i < parts.length; i++) {
        const next = path.join(current, parts[i]!);
        const st = lstatSync(next);
        if (st.isSymbolicLink()) {
          const target = readlinkSync(next);
          this.symlink(next, target);
          pending = path.join(path.resolve(current, target), ...parts.slice(i + 1));
          redirected = true;
          break;
        }
        if (i === parts.length - 1) {
          this.file(next, next);
        } else if (!st.isDirectory()) {
          throw new Error(`${next} is not a directory`);
        }
        current = next;
      }
      if (!redirected) return this;
    }
    throw new Error(`too many symlinks resolving ${hostPath}`);
  }

  /** Whether the layer already provides image path `p` (as any type). */
  has(p: string): boolean {
    return this.entries.has(normalizeTarPath(p));
  }
}

function sameEntry(a: TarEntry, b: TarEntry): boolean {
  if (a.type !== b.type) return false;
  if (a.type === 'symlink' && b.type === 'symlink') return a.target === b.target;
  if (a.type === 'dir' && b.type === 'dir') return a.mode === b.mode && (a.uid ?? 0) === (b.uid ?? 0);
  if (a.type === 'file' && b.type === 'file') {
    if ('source' in a && 'source' in b) return a.source === b.source && a.mode === b.mode;
    if ('data' in a && 'data' in b) return a.data.equals(b.data) && a.mode === b.mode;
  }
  return false;
}

/**
 * The shared libraries a dynamically linked ELF binary loads, as `ldd` resolves them on this host
 * (the ELF interpreter included; the kernel's vDSO excluded). A static binary yields [].
 */
export function sharedLibraries(binary: string): string[] {
  let out: string;
  try {
    out = execFileSync('ldd', [binary], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string };
    const text = `${err.stdout ?? ''}${err.stderr ?? ''}`;
    if (/not a dynamic executable|statically linked/.test(text)) return [];
    throw new Error(`ldd ${binary} failed (is libc-bin installed?): ${text.trim()}`);
  }
  if (/statically linked/.test(out)) return [];
  const libs: string[] = [];
  for (const line of out.split('\n')) {
    if (/not found/.test(line)) throw new Error(`${binary} needs a library this host lacks: ${line.trim()}`);
    const m = /=>\s*(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(0x/.exec(line);
    if (m) libs.push(m[1]!);
  }
  return [...new Set(libs)].sort();
}
