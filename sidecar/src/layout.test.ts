import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// The sidecar's import rules (see README.md). Circles are checked by `make lint` (dpdm); this checks
// the direction between folders, which a circle check cannot see. Test code (test-support/) is exempt.
const root = dirname(fileURLToPath(import.meta.url));

function sources(dir = ''): string[] {
  return readdirSync(join(root, dir), { withFileTypes: true }).flatMap((e) => {
    const p = dir ? `${dir}/${e.name}` : e.name;
    if (e.isDirectory()) return sources(p);
    return p.endsWith('.ts') && !p.endsWith('.test.ts') ? [p] : [];
  });
}

/** Every relative import of every non-test source, as [importer, imported] paths under src/. */
function edges(): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const file of sources()) {
    const text = readFileSync(join(root, file), 'utf8');
    for (const m of text.matchAll(/(?:from|import)\s*\(?\s*'(\.\.?\/[^']+)'/g)) {
      const target = normalize(join(dirname(file), m[1] ?? '')).replace(/\.js$/, '.ts');
      out.push([file, relative('.', target)]);
    }
  }
  return out;
}

const top = (p: string) => p.split('/')[0] ?? '';

describe('sidecar layout', () => {
  const all = edges();

  it('finds the sources it checks', () => {
    expect(all.length).toBeGreaterThan(100);
  });

  it('shared folders never import a protocol (only the protocols/types.ts contract)', () => {
    const bad = all.filter(
      ([from, to]) =>
        !['protocols', 'modes', 'cli.ts', 'index.ts'].includes(top(from)) &&
        top(to) === 'protocols' &&
        to !== 'protocols/types.ts',
    );
    expect(bad).toEqual([]);
  });

  it('a protocol never imports another protocol, the runtime or a mode', () => {
    // protocols/<name>/… → its own folder, protocols/*.ts (the contract) and the shared folders.
    const protocolOf = (p: string) =>
      top(p) === 'protocols' && p.split('/').length > 2 ? p.split('/')[1] : undefined;
    const bad = all.filter(([from, to]) => {
      const own = protocolOf(from);
      if (!own) return false;
      if (['runtime', 'modes'].includes(top(to))) return true;
      const other = protocolOf(to);
      return other !== undefined && other !== own;
    });
    expect(bad).toEqual([]);
  });

  it('only cli.ts and the public entry import the modes; the runtime never does', () => {
    const bad = all.filter(
      ([from, to]) =>
        top(to) === 'modes' &&
        !['modes', 'test-support'].includes(top(from)) &&
        !['cli.ts', 'index.ts'].includes(from),
    );
    expect(bad).toEqual([]);
  });
});
