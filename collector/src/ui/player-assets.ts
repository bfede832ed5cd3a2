// The asciinema-player bundle and stylesheet, served from the installed package. Resolved through
// the package's `exports` map (its public entry points) and read once at start-up, so that an
// upgrade that moves the files fails the start instead of serving a 404 to auditors.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

export interface StaticAsset {
  readonly contentType: string;
  readonly body: Buffer | string;
  /** Short content hash, appended to the asset's URL so that a new version busts caches. */
  readonly version: string;
}

export function staticAsset(body: Buffer | string, contentType: string): StaticAsset {
  const version = createHash('sha256').update(body).digest('hex').slice(0, 12);
  return { contentType, body, version };
}

const JS = 'text/javascript; charset=utf-8';
const CSS = 'text/css; charset=utf-8';

export interface PlayerAssets {
  readonly script: StaticAsset;
  readonly stylesheet: StaticAsset;
}

export function loadPlayerAssets(): PlayerAssets {
  const require = createRequire(import.meta.url);
  const read = (specifier: string) => readFileSync(require.resolve(specifier));
  return {
    script: staticAsset(read('asciinema-player/dist/bundle/asciinema-player.min.js'), JS),
    stylesheet: staticAsset(read('asciinema-player/dist/bundle/asciinema-player.css'), CSS),
  };
}
