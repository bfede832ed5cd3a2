import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root, found from this module whether it runs from src/ or dist/. */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export function repoPath(...parts: string[]): string {
  return join(REPO_ROOT, ...parts);
}

/** Versions pinned in hack/versions.env (shared with hack/build-control-plane.sh). */
export function pinnedVersions(): Record<string, string> {
  const text = readFileSync(repoPath('hack', 'versions.env'), 'utf8');
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (m?.[1] && m[2] !== undefined) out[m[1]] = process.env[m[1]] ?? m[2];
  }
  return out;
}

/** Where hack/build-control-plane.sh caches kube-apiserver and etcd (must match the script). */
export function controlPlaneBinDir(): string {
  const v = pinnedVersions();
  const cache =
    process.env.CHAPERONE_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'chaperone');
  return join(cache, 'control-plane', `kube-${v.KUBE_VERSION}-etcd-${v.ETCD_VERSION}`, 'bin');
}

export function requireControlPlaneBinary(name: 'kube-apiserver' | 'etcd' | 'kubectl'): string {
  const path = join(controlPlaneBinDir(), name);
  if (!existsSync(path)) {
    throw new Error(
      `${path} is missing: build the test control plane with \`make control-plane\` (cold: ~20 min)`,
    );
  }
  return path;
}
