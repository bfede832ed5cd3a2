// What a workspace process loads at run time, and nothing else: the compiled workspace modules
// its entry point imports (traced, so tests and build tools stay out), its production dependencies (dependencies, optionalDependencies and installed
// peerDependencies, followed transitively) and the native addons or WASM they ship, pruned of
// typings, source maps, docs and tests.
//
// The dependency walk uses Node's own resolution rule on the installed tree (look in
// DIR/node_modules, then in each parent up to the repository root), so nested versions and
// workspace symlinks come out exactly as `require`/`import` will find them in the image. The unit
// test compares it with `npm ls --omit=dev --all --parseable`.
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, realpathSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import path from 'node:path';

interface PackageJson {
  name?: string;
  version?: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
}

export function readPackageJson(dir: string): PackageJson {
  return JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as PackageJson;
}

/**
 * Dependencies declared for run time that Node never loads, each with the reason:
 * - better-sqlite3 runs prebuild-install only from its npm `install` script (to download a prebuilt
 *   binary; ours is built from source), and its lib/ never requires it;
 * - tar-fs and tar-stream (under @kubernetes/client-node) reach bare-fs/bare-path only through the
 *   `bare` condition of their package.json `imports` map (the Bare runtime); Node takes `default`.
 * If one of these ever became a real import, the image check that imports every module fails.
 */
export const NEVER_LOADED: Record<string, readonly string[]> = {
  'better-sqlite3': ['prebuild-install'],
  'tar-fs': ['bare-fs', 'bare-path'],
  'tar-stream': ['bare-fs'],
};

/** Typings only (e.g. @kubernetes/client-node lists @types/node as a dependency). */
function isTypingsOnly(name: string): boolean {
  return name.startsWith('@types/');
}

export interface Closure {
  /** Real directories of the packages, workspace ones included. */
  packages: Map<string, { name: string; version: string; workspace: boolean }>;
  /** Symlinks met on the way (workspace packages in node_modules), path → link text. */
  links: Map<string, string>;
  /** Every node_modules location a dependency was found at (what `npm ls --parseable` lists). */
  locations: Set<string>;
}

export interface ClosureOptions {
  /** Follow NEVER_LOADED and @types/* edges too (for comparing with npm ls). */
  everything?: boolean;
}

function isWorkspaceDir(root: string, realDir: string): boolean {
  const rel = path.relative(root, realDir);
  return !rel.split(path.sep).includes('node_modules');
}

/** Node's lookup of a bare package name from a package's real directory. */
function resolvePackage(root: string, fromDir: string, name: string): string | undefined {
  for (let dir = fromDir; ; dir = path.dirname(dir)) {
    if (path.basename(dir) !== 'node_modules') {
      const candidate = path.join(dir, 'node_modules', name);
      if (existsSync(path.join(candidate, 'package.json'))) return candidate;
    }
    if (dir === root || path.dirname(dir) === dir) return undefined;
  }
}

export function productionClosure(root: string, workspaceDir: string, options: ClosureOptions = {}): Closure {
  const closure: Closure = { packages: new Map(), links: new Map(), locations: new Set() };
  const queue = [realpathSync(workspaceDir)];
  while (queue.length > 0) {
    const dir = queue.shift()!;
    if (closure.packages.has(dir)) continue;
    const pkg = readPackageJson(dir);
    const name = pkg.name ?? path.basename(dir);
    closure.packages.set(dir, {
      name,
      version: pkg.version ?? '0.0.0',
      workspace: isWorkspaceDir(root, dir),
    });
    // name → whether it must be installed. Optional dependencies (other platforms' binaries) and
    // optional peers may be absent by design; a missing required peer is the consumer's choice too.
    const wanted = new Map<string, boolean>();
    for (const dep of Object.keys(pkg.peerDependencies ?? {})) wanted.set(dep, false);
    for (const dep of Object.keys(pkg.optionalDependencies ?? {})) wanted.set(dep, false);
    for (const dep of Object.keys(pkg.dependencies ?? {}))
      wanted.set(dep, !(dep in (pkg.optionalDependencies ?? {})));
    const skip = options.everything ? [] : (NEVER_LOADED[name] ?? []);
    for (const [dep, required] of [...wanted].sort(([a], [b]) => (a < b ? -1 : 1))) {
      if (skip.includes(dep) || (!options.everything && isTypingsOnly(dep))) continue;
      const location = resolvePackage(root, dir, dep);
      if (location === undefined) {
        if (required)
          throw new Error(`${name} (${dir}) depends on ${dep}, which is not installed: run make deps`);
        continue;
      }
      closure.locations.add(location);
      if (lstatSync(location).isSymbolicLink()) closure.links.set(location, readlinkSync(location));
      queue.push(realpathSync(location));
    }
  }
  return closure;
}

// ---- which files of a package go into the image ----

/** Never loaded at run time: typings, TypeScript sources (Node does not strip types under node_modules), maps, docs. */
const DROP_EXTENSIONS = ['.ts', '.mts', '.cts', '.map', '.md', '.markdown', '.tsbuildinfo', '.gyp', '.gypi'];
/** Folders at a package's root that hold tests, docs or examples. */
const DROP_ROOT_DIRS = new Set([
  'test',
  'tests',
  '__tests__',
  'docs',
  'doc',
  'example',
  'examples',
  'benchmark',
  'benchmarks',
  'coverage',
]);

export interface AppFile {
  /** Host path. */
  source: string;
  /** Path relative to the repository root (the image puts it under /app). */
  rel: string;
}

function walkFiles(dir: string, keep: (rel: string, isDir: boolean) => boolean, rel = ''): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(path.join(dir, rel), { withFileTypes: true })) {
    const childRel = rel ? `${rel}/${entry.name}` : entry.name;
    if (entry.isDirectory()) {
      if (keep(childRel, true)) out.push(...walkFiles(dir, keep, childRel));
    } else if (entry.isFile()) {
      if (keep(childRel, false)) out.push(childRel);
    } else if (entry.isSymbolicLink()) {
      // Symlinks inside published packages are rare and resolve outside the package: refuse them.
      throw new Error(
        `${path.join(dir, childRel)} is a symlink inside a package; the image builder does not copy those`,
      );
    }
  }
  return out;
}

/** Files of an installed (node_modules) package that its code may load. */
export function packageRuntimeFiles(dir: string): string[] {
  const native = existsSync(path.join(dir, 'binding.gyp'));
  return walkFiles(dir, (rel, isDir) => {
    const base = path.posix.basename(rel);
    const top = !rel.includes('/');
    if (base.startsWith('.')) return false;
    if (isDir) {
      if (base === 'node_modules') return false; // nested packages come from the dependency walk
      if (top && DROP_ROOT_DIRS.has(base)) return false;
      // A native addon needs only its compiled .node file: not its C sources or the build tree.
      if (native && top && (base === 'src' || base === 'deps')) return false;
      if (native && rel.startsWith('build/') && rel !== 'build/Release') return false;
      return true;
    }
    if (native && rel.startsWith('build/')) return /^build\/Release\/[^/]+\.node$/.test(rel);
    // node-gyp-build style prebuilt binaries: keep only this platform's.
    if (/(^|\/)prebuilds\/[^/]+\//.test(rel) && !/(^|\/)prebuilds\/linux-x64[^/]*\//.test(rel)) return false;
    if (/\.(test|spec)\.[cm]?js$/.test(base)) return false; // compiled tests some packages ship (pg-protocol)
    return !DROP_EXTENSIONS.some((ext) => base.endsWith(ext));
  }).sort();
}

/**
 * Static import specifiers of ES modules, read by V8's own parser (vm.SourceTextModule, which
 * needs --experimental-vm-modules, so it runs in a child process), plus literal dynamic
 * `import('…')` calls found by a regular expression. A dynamic import of a computed specifier
 * cannot be traced and is refused.
 */
export function moduleSpecifiers(files: string[]): Map<string, string[]> {
  const script = `
    const vm = require('node:vm');
    const fs = require('node:fs');
    const out = {};
    for (const file of JSON.parse(fs.readFileSync(0, 'utf8'))) {
      const code = fs.readFileSync(file, 'utf8').replace(/^#!.*/, '');
      const specs = new vm.SourceTextModule(code, { identifier: file }).dependencySpecifiers;
      out[file] = [...specs];
    }
    process.stdout.write(JSON.stringify(out));`;
  const json = execFileSync(process.execPath, ['--experimental-vm-modules', '--no-warnings', '-e', script], {
    input: JSON.stringify(files),
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  const result = new Map<string, string[]>(Object.entries(JSON.parse(json) as Record<string, string[]>));
  for (const file of files) {
    const code = readFileSync(file, 'utf8');
    const specs = result.get(file)!;
    for (const m of code.matchAll(/\bimport\(\s*(['"])([^'"]+)\1\s*\)/g)) specs.push(m[2]!);
    const computed = /\bimport\(\s*(?!['"])[^)\s]/.exec(code);
    if (computed) {
      throw new Error(
        `${file} has a dynamic import of a computed specifier (${computed[0]}…), which the image builder cannot follow`,
      );
    }
  }
  return result;
}

function packageNameOf(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

/** The module a workspace package exports as ".", for Node's `import` (the `source` condition is ours, for tests). */
function workspaceEntry(dir: string, specifier: string, name: string): string {
  if (specifier !== name)
    throw new Error(`${specifier}: only the root export of workspace packages is supported`);
  const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as {
    exports?: string | Record<string, string | Record<string, string>>;
    main?: string;
  };
  const root = typeof pkg.exports === 'object' ? pkg.exports['.'] : pkg.exports;
  const target = typeof root === 'object' ? (root.node ?? root.import ?? root.default) : (root ?? pkg.main);
  if (!target) throw new Error(`${dir}/package.json has no export for "."`);
  return path.join(dir, target);
}

function distFiles(dir: string): string[] {
  const dist = path.join(dir, 'dist');
  if (!existsSync(dist)) return [];
  return walkFiles(dist, (rel, isDir) => isDir || /\.(m|c)?js$/.test(rel)).map((rel) => path.join(dist, rel));
}

/**
 * The compiled modules of the workspace packages that the entry module reaches through imports,
 * so build tools and test helpers that sit in src/ (api's crd-codegen, test fixtures) stay out.
 * Every bare import must be a builtin or a package of the closure: that catches a module that
 * uses a devDependency before the image does.
 */
export function traceWorkspaceModules(root: string, closure: Closure, entry: string): string[] {
  if (!existsSync(entry))
    throw new Error(`${entry} is missing: run make build (npx tsc -b) before building images`);
  const workspaces = [...closure.packages].filter(([, info]) => info.workspace);
  const byName = new Map(workspaces.map(([dir, info]) => [info.name, dir]));
  const packageNames = new Set([...closure.packages.values()].map((info) => info.name));
  const specifiers = moduleSpecifiers(workspaces.flatMap(([dir]) => distFiles(dir)));
  const seen = new Set<string>();
  const queue = [entry];
  while (queue.length > 0) {
    const file = queue.shift()!;
    if (seen.has(file)) continue;
    seen.add(file);
    for (const spec of specifiers.get(file) ?? []) {
      let target: string;
      if (spec.startsWith('./') || spec.startsWith('../')) {
        target = path.resolve(path.dirname(file), spec);
      } else if (spec.startsWith('node:') || isBuiltin(spec)) {
        continue;
      } else {
        const name = packageNameOf(spec);
        const workspaceDir = byName.get(name);
        if (workspaceDir === undefined) {
          if (!packageNames.has(name)) {
            throw new Error(
              `${path.relative(root, file)} imports ${spec}, which is not a production dependency: ` +
                "move it from devDependencies to dependencies, or keep the importing module out of the entry point's reach",
            );
          }
          continue;
        }
        target = workspaceEntry(workspaceDir, spec, name);
      }
      if (!existsSync(target)) {
        throw new Error(
          `${path.relative(root, file)} imports ${spec}, but ${target} is missing: run make build`,
        );
      }
      queue.push(target);
    }
  }
  return [...seen].sort();
}

/** Files from the repository root that a workspace package reads at run time. */
export const WORKSPACE_EXTRA_FILES: Record<string, (root: string) => string[]> = {
  // api/src/crds.ts reads ../../crds/*.yaml relative to its own module (standalone sidecar defaults).
  '@chaperone/api': (root) =>
    readdirSync(path.join(root, 'crds'))
      .filter((f) => f.endsWith('.yaml'))
      .sort()
      .map((f) => `crds/${f}`),
};

export interface AppTree {
  files: AppFile[];
  /** Symlinks relative to the repository root, with their link text (relative, so valid under /app). */
  links: { rel: string; target: string }[];
  closure: Closure;
}

/**
 * Everything the workspace at `workspaceDir` needs to run `entry` (relative to it), as paths
 * relative to the repository root.
 */
export function appTree(root: string, workspaceDir: string, entry = 'dist/cli.js'): AppTree {
  const closure = productionClosure(root, workspaceDir);
  const files: AppFile[] = [];
  const add = (source: string) =>
    files.push({ source, rel: path.relative(root, source).split(path.sep).join('/') });
  for (const [dir, info] of closure.packages) {
    if (info.workspace) {
      // package.json carries "type": "module" and the exports map.
      add(path.join(dir, 'package.json'));
      for (const rel of WORKSPACE_EXTRA_FILES[info.name]?.(root) ?? []) add(path.join(root, rel));
    } else {
      for (const rel of packageRuntimeFiles(dir)) add(path.join(dir, rel));
    }
  }
  for (const file of traceWorkspaceModules(root, closure, path.join(workspaceDir, entry))) add(file);
  const links = [...closure.links].map(([location, target]) => {
    if (path.isAbsolute(target))
      throw new Error(`${location} links to an absolute path; expected npm's relative link`);
    return { rel: path.relative(root, location).split(path.sep).join('/'), target };
  });
  files.sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
  return { files, links, closure };
}
