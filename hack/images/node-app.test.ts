// What goes into /app: the production dependency walk (compared with npm's own view), the file
// pruning rules, and the module trace that keeps dev-only modules out.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { appTree, packageRuntimeFiles, productionClosure, traceWorkspaceModules } from './node-app.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const work = mkdtempSync(path.join(tmpdir(), 'chaperone-node-app-test-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function write(file: string, content = ''): void {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, content);
}

const built = ['sidecar', 'operator', 'collector'].every((w) =>
  existsSync(path.join(root, w, 'dist', 'cli.js')),
);
if (!built)
  console.warn('node-app.test: workspace not built (run make build); skipping the checks on the real tree');

describe.each(['sidecar', 'operator', 'collector'])('the production closure of %s', (workspace) => {
  it('is exactly what npm ls --omit=dev lists', () => {
    const npm = execFileSync('npm', ['ls', '--omit=dev', '--all', '--parseable', '--workspace', workspace], {
      cwd: root,
      encoding: 'utf8',
    })
      .trim()
      .split('\n')
      .filter(
        (p) => p !== root.replace(/\/$/, '') && p !== path.join(root, 'node_modules/@chaperone', workspace),
      );
    const closure = productionClosure(root, path.join(root, workspace), { everything: true });
    expect([...closure.locations].sort()).toEqual(npm.sort());
  }, 60_000);

  it.skipIf(!built)(
    'holds no devDependency, typings, maps or tests, and the runtime assets it needs',
    () => {
      const tree = appTree(root, path.join(root, workspace));
      const rels = tree.files.map((f) => f.rel);
      for (const dev of [
        'vitest',
        'typescript',
        '@biomejs',
        'fast-check',
        'playwright-core',
        '@types',
        'prebuild-install',
        'testkit',
      ]) {
        expect(rels.filter((r) => r.startsWith(`node_modules/${dev}`) || r.startsWith(`${dev}/`))).toEqual(
          [],
        );
      }
      expect(rels.filter((r) => /\.(map|d\.ts|tsbuildinfo)$/.test(r))).toEqual([]);
      expect(rels.filter((r) => /\.test\.js$|test-support|crd-codegen/.test(r))).toEqual([]);
      expect(rels).toContain(`${workspace}/dist/cli.js`);
      expect(rels).toContain('api/dist/index.js');
      expect(rels).toContain('crds/chaperone.dev_connections.yaml');
      expect(tree.links).toEqual([{ rel: 'node_modules/@chaperone/api', target: '../../api' }]);
      if (workspace === 'sidecar') expect(rels).toContain('node_modules/libpg-query/wasm/libpg-query.wasm');
      if (workspace === 'collector') {
        expect(rels).toContain('node_modules/better-sqlite3/build/Release/better_sqlite3.node');
        expect(
          rels.filter((r) => r.startsWith('node_modules/better-sqlite3/') && /\/(src|deps)\//.test(r)),
        ).toEqual([]);
        expect(rels).toContain('node_modules/asciinema-player/dist/bundle/asciinema-player.min.js');
      }
    },
    60_000,
  );
});

describe('packageRuntimeFiles', () => {
  it('drops docs, tests, typings, maps, dotfiles, other platforms and native build leftovers', () => {
    const pkg = path.join(work, 'pkg');
    for (const f of [
      'package.json',
      'LICENSE',
      'README.md',
      'index.js',
      'index.d.ts',
      'index.js.map',
      'lib/util.cjs',
      'lib/test/helper.js', // a nested test/ folder may be code: only the root one is dropped
      'test/index.test.js',
      'dist/parser.test.js',
      'docs/guide.html',
      '.eslintrc',
      'prebuilds/linux-x64/addon.node',
      'prebuilds/darwin-arm64/addon.node',
      'binding.gyp',
      'src/addon.cc',
      'deps/sqlite3.c',
      'build/Release/addon.node',
      'build/Release/obj.target/addon.o',
      'build/Makefile',
      'node_modules/nested/index.js',
    ]) {
      write(path.join(pkg, f));
    }
    expect(packageRuntimeFiles(pkg)).toEqual([
      'LICENSE',
      'build/Release/addon.node',
      'index.js',
      'lib/test/helper.js',
      'lib/util.cjs',
      'package.json',
      'prebuilds/linux-x64/addon.node',
    ]);
  });
});

describe('traceWorkspaceModules', () => {
  // A repository with one workspace: cli.js → a.js → dep and node:fs; dev.js imports a devDependency
  // but nothing imports dev.js.
  const repo = path.join(work, 'repo');
  write(path.join(repo, 'package.json'), JSON.stringify({ name: 'repo', workspaces: ['app'] }));
  write(
    path.join(repo, 'app/package.json'),
    JSON.stringify({
      name: 'app',
      type: 'module',
      dependencies: { dep: '1' },
      devDependencies: { devdep: '1' },
    }),
  );
  write(path.join(repo, 'node_modules/dep/package.json'), JSON.stringify({ name: 'dep', version: '1.0.0' }));
  write(
    path.join(repo, 'node_modules/devdep/package.json'),
    JSON.stringify({ name: 'devdep', version: '1.0.0' }),
  );
  write(
    path.join(repo, 'app/dist/cli.js'),
    "#!/usr/bin/env node\nimport './a.js';\nawait import('./lazy.js');\n",
  );
  write(path.join(repo, 'app/dist/a.js'), "import { readFileSync } from 'node:fs';\nexport * from 'dep';\n");
  write(path.join(repo, 'app/dist/lazy.js'), 'export const x = 1;\n');
  write(path.join(repo, 'app/dist/dev.js'), "import 'devdep';\n");

  it('keeps only the modules the entry point reaches, static and literal dynamic imports', () => {
    const closure = productionClosure(repo, path.join(repo, 'app'));
    const files = traceWorkspaceModules(repo, closure, path.join(repo, 'app/dist/cli.js'));
    expect(files.map((f) => path.relative(repo, f))).toEqual([
      'app/dist/a.js',
      'app/dist/cli.js',
      'app/dist/lazy.js',
    ]);
  });

  it('fails when a reachable module imports a package outside the production closure', () => {
    write(path.join(repo, 'app/dist/lazy.js'), "export * from 'devdep';\n");
    const closure = productionClosure(repo, path.join(repo, 'app'));
    expect(() => traceWorkspaceModules(repo, closure, path.join(repo, 'app/dist/cli.js'))).toThrow(
      /app\/dist\/lazy\.js imports devdep, which is not a production dependency/,
    );
  });
});
