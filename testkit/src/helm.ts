import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { pinnedVersions } from './repo.js';

/**
 * The helm binary for tests: $CHAPERONE_HELM, else where hack/build-helm.sh caches it
 * (`make helm` builds it from the Go module proxy).
 */
export function findHelm(): string {
  const fromEnv = process.env.CHAPERONE_HELM;
  if (fromEnv) {
    if (!existsSync(fromEnv)) throw new Error(`CHAPERONE_HELM=${fromEnv} does not exist`);
    return fromEnv;
  }
  const cache =
    process.env.CHAPERONE_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'chaperone');
  const path = join(cache, `helm-${pinnedVersions().HELM_VERSION}`, 'bin', 'helm');
  if (!existsSync(path)) throw new Error(`${path} is missing: build it with \`make helm\` (cold: ~5 min)`);
  return path;
}
