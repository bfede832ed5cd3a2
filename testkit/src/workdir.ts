import { chmod, chown, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { HostUser } from './host-user.js';

/** A private temp directory for one harness component, removed again by remove(). */
export interface WorkDir {
  readonly path: string;
  file(name: string): string;
  remove(): Promise<void>;
}

export async function makeWorkDir(prefix: string, owner?: HostUser): Promise<WorkDir> {
  const base = process.env.CHAPERONE_TEST_TMPDIR ?? tmpdir();
  const path = await mkdtemp(join(base, `chaperone-${prefix}-`));
  await chmod(path, 0o700);
  if (owner) await chown(path, owner.uid, owner.gid);
  return {
    path,
    file: (name) => join(path, name),
    // KEEP_TEST_DIRS=1 leaves the logs and data behind for a post-mortem.
    remove: async () => {
      if (process.env.KEEP_TEST_DIRS !== '1') await rm(path, { recursive: true, force: true });
    },
  };
}
