// Builds the real images (as make images does, into a temporary directory) and proves them:
// reproducible digests, non-root config, layer contents; then, as root, each image's layers are
// unpacked with GNU tar and run with chroot as uid 65532 (the collector serves /healthz from a
// SQLite file, the sidecar's WASM parser loads, every module imports, psql starts); and finally
// the archives are imported into a containerd started here with its own root, state and socket,
// the way `kind load image-archive` does it, and two images run under runc with `ctr run`.
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  writeFileSync,
} from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '@chaperone/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BuildResult, type BuiltImage, buildImages } from './build.ts';
import { imageDefinitions } from './definitions.ts';
import { blobPath } from './oci.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const built = ['sidecar', 'operator', 'collector'].every((w) =>
  existsSync(path.join(root, w, 'dist', 'cli.js')),
);
const isRoot = process.getuid?.() === 0;
const onPath = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const containerdTools = ['containerd', 'ctr', 'runc', 'containerd-shim-runc-v2'].filter((c) => !onPath(c));

if (!built) console.warn('images.test: skipped: the workspace is not built (run make build)');
else if (!isRoot) console.warn('images.test: chroot and containerd checks skipped: they need root');
else if (containerdTools.length) {
  console.warn(
    `images.test: containerd check skipped: ${containerdTools.join(', ')} not found (apt-get install -y containerd runc)`,
  );
}

const NAMES = ['sidecar', 'operator', 'collector', 'agent'];
// Absolute: spawn looks commands up in the child's PATH, which here is the image's.
const CHROOT = ['/usr/sbin/chroot', '/usr/bin/chroot'].find((p) => existsSync(p)) ?? 'chroot';

function manifestOf(result: BuildResult, image: BuiltImage) {
  const file = blobPath(path.join(result.outDir, 'oci'), image.manifestDigest);
  return JSON.parse(readFileSync(file, 'utf8')) as {
    config: { digest: string };
    layers: { digest: string }[];
  };
}

function configOf(result: BuildResult, image: BuiltImage) {
  const file = blobPath(path.join(result.outDir, 'oci'), image.configDigest);
  return JSON.parse(readFileSync(file, 'utf8')) as {
    config: { User: string; Entrypoint: string[]; Env: string[]; WorkingDir: string; Cmd?: string[] };
  };
}

function layerListing(result: BuildResult, digest: string): string[] {
  const file = blobPath(path.join(result.outDir, 'oci'), digest);
  return execFileSync('tar', ['-tf', file], { encoding: 'utf8', maxBuffer: 64 << 20 })
    .trim()
    .split('\n');
}

describe.skipIf(!built)('make images', () => {
  const work = mkdtempSync(path.join(tmpdir(), 'chaperone-images-test-'));
  let result: BuildResult;
  const image = (name: string) => result.images.find((i) => i.name === name)!;

  beforeAll(() => {
    result = buildImages({ root, outDir: path.join(work, 'out'), log: () => {} });
  }, 300_000);
  // The output is a few hundred MB in thousands of files: removing it can take a while on a busy machine.
  afterAll(() => rm(work, { recursive: true, force: true }), 120_000);

  it('names each image localhost/chaperone-NAME:<package version>-<12 hex of the manifest digest>', () => {
    expect(result.images.map((i) => i.name)).toEqual(NAMES);
    for (const i of result.images) {
      expect(i.ref).toMatch(new RegExp(`^localhost/chaperone-${i.name}:0\\.1\\.0-[0-9a-f]{12}$`));
      expect(i.tag).toBe(`0.1.0-${i.manifestDigest.slice(7, 19)}`);
    }
    const env = readFileSync(path.join(result.outDir, 'images.env'), 'utf8');
    expect(env).toContain(`SIDECAR_IMAGE=${image('sidecar').ref}\n`);
  });

  it('is reproducible: a warm rebuild writes nothing, a cold build elsewhere gives the same digest', () => {
    const warm = buildImages({ root, outDir: result.outDir, log: () => {} });
    expect(warm.written).toBe(0);
    expect(warm.images).toEqual(result.images);
    // Cold, into an empty directory: the agent (no Node layer, so it stays quick) and its archive.
    const agentOnly = imageDefinitions({ root }).filter((d) => d.name === 'agent');
    const cold = buildImages({
      root,
      outDir: path.join(work, 'cold'),
      definitions: agentOnly,
      log: () => {},
    });
    expect(cold.images[0]!.manifestDigest).toBe(image('agent').manifestDigest);
    expect(cold.images[0]!.archiveDigest).toBe(image('agent').archiveDigest);
  }, 120_000);

  it('runs as 65532 with the entrypoints the chart and the injection webhook expect', () => {
    const entry = (name: string) => configOf(result, image(name)).config;
    for (const name of NAMES) {
      expect(entry(name).User).toBe('65532:65532');
      expect(entry(name).Env).toContain('PATH=/usr/local/bin:/usr/bin:/bin');
      expect(entry(name).Cmd).toBeUndefined(); // the chart and the webhook pass args only
    }
    expect(entry('sidecar').Entrypoint).toEqual([
      '/usr/local/bin/node',
      '--liftoff-only',
      '/app/sidecar/dist/cli.js',
    ]);
    expect(entry('operator').Entrypoint).toEqual(['/usr/local/bin/node', '/app/operator/dist/cli.js']);
    expect(entry('collector').Entrypoint).toEqual(['/usr/local/bin/node', '/app/collector/dist/cli.js']);
    expect(entry('agent').Entrypoint).toEqual(['/usr/local/bin/chaperone-agent']);
  });

  it('shares the base and Node layers, and puts only production code in the app layer', () => {
    const layers = Object.fromEntries(
      NAMES.map((n) => [n, manifestOf(result, image(n)).layers.map((l) => l.digest)]),
    );
    expect(new Set(NAMES.map((n) => layers[n]![0])).size).toBe(1); // base
    expect(new Set(['sidecar', 'operator', 'collector'].map((n) => layers[n]![1])).size).toBe(1); // node
    const base = layerListing(result, layers.agent![0]!);
    expect(base).toEqual(expect.arrayContaining(['etc/passwd', 'tmp/', 'home/nonroot/', 'lib64']));
    const collectorApp = layerListing(result, layers.collector![2]!);
    expect(collectorApp).toContain('app/node_modules/better-sqlite3/build/Release/better_sqlite3.node');
    expect(
      collectorApp.filter((f) => /\.(map|d\.ts)$|\/(vitest|typescript|@types|prebuild-install)\//.test(f)),
    ).toEqual([]);
    const sidecarApp = layerListing(result, layers.sidecar![2]!);
    expect(sidecarApp).toContain('app/node_modules/libpg-query/wasm/libpg-query.wasm');
    expect(sidecarApp).not.toContain('app/node_modules/better-sqlite3/');
  });

  describe.skipIf(!isRoot)('unpacked with GNU tar and started with chroot as 65532', () => {
    const rootfs = (name: string) => path.join(work, 'rootfs', name);
    beforeAll(() => {
      for (const name of NAMES) {
        mkdirSync(rootfs(name), { recursive: true });
        for (const layer of manifestOf(result, image(name)).layers) {
          const blob = blobPath(path.join(result.outDir, 'oci'), layer.digest);
          execFileSync('tar', ['--numeric-owner', '-xpf', blob, '-C', rootfs(name)]);
        }
      }
    }, 120_000);

    const inImage = (name: string, args: string[], env: Record<string, string> = {}) =>
      spawnSync(CHROOT, ['--userspec=65532:65532', rootfs(name), ...args], {
        env: { PATH: '/usr/local/bin:/usr/bin:/bin', ...env },
        encoding: 'utf8',
        timeout: 120_000,
      });

    it('collector: serves /healthz and the player assets from a SQLite file in /tmp', async () => {
      writeFileSync(path.join(rootfs('collector'), 'tmp', 'token'), 'image-test-token-0123456789');
      const port = await freePort();
      const child: ChildProcess = spawn(
        CHROOT,
        [
          '--userspec=65532:65532',
          rootfs('collector'),
          ...configOf(result, image('collector')).config.Entrypoint,
          ...['serve', '--db', 'sqlite:/tmp/collector.db', '--host', '127.0.0.1', '--port', String(port)],
          ...['--ingest-token-file', '/tmp/token'],
        ],
        { env: { PATH: '/usr/local/bin:/usr/bin:/bin' }, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let output = '';
      child.stdout!.on('data', (d) => (output += d));
      child.stderr!.on('data', (d) => (output += d));
      const exited = new Promise((resolve) => {
        child.once('exit', resolve);
        child.once('error', resolve);
      });
      try {
        let health: Response | undefined;
        for (let i = 0; i < 300 && child.exitCode === null && child.pid !== undefined; i++) {
          health = await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => undefined);
          if (health?.ok) break;
          await new Promise((r) => setTimeout(r, 100));
        }
        expect(health?.status, output).toBe(200);
        const css = await fetch(`http://127.0.0.1:${port}/ui/assets/asciinema-player.css`);
        expect(css.status).toBe(200);
        expect(await css.text()).toContain('.ap-');
        expect(existsSync(path.join(rootfs('collector'), 'tmp', 'collector.db'))).toBe(true);
      } finally {
        child.kill('SIGTERM');
        await exited;
      }
    }, 120_000);

    it.each(['sidecar', 'operator', 'collector'])(
      '%s: every module under /app/*/dist imports',
      (name) => {
        writeFileSync(
          path.join(rootfs(name), 'tmp', 'check-imports.mjs'),
          readFileSync(new URL('./check-imports.mjs', import.meta.url)),
        );
        const run = inImage(name, ['/usr/local/bin/node', '/tmp/check-imports.mjs']);
        expect(run.stdout + run.stderr).toMatch(/imported [1-9]\d*, failed 0/);
        expect(run.status).toBe(0);
      },
      120_000,
    );

    it('sidecar: the libpg-query WASM parser loads and parses under --liftoff-only', () => {
      const script =
        "const p = await import('/app/sidecar/dist/protocols/postgres/sql/screen/sql-parser.js'); await p.initSqlParser();" +
        " const r = p.parseQuery('select a from t where b = 1'); console.log(r.ok && Object.keys(r.result.stmts[0].stmt)[0]);";
      const run = inImage('sidecar', [
        '/usr/local/bin/node',
        '--liftoff-only',
        '--input-type=module',
        '-e',
        script,
      ]);
      expect(run.stdout.trim(), run.stderr).toBe('SelectStmt');
    });

    it('operator and sidecar: the CLIs start and print their usage', () => {
      const operator = inImage('operator', [
        ...configOf(result, image('operator')).config.Entrypoint,
        '--help',
      ]);
      expect(operator.stdout + operator.stderr).toContain('usage: chaperone-operator run');
      const sidecar = inImage('sidecar', [...configOf(result, image('sidecar')).config.Entrypoint, '--help']);
      expect(sidecar.stdout + sidecar.stderr).toContain('chaperone-sidecar --broker URL');
    });

    it('agent: psql starts with its libraries, and the script asks for PGHOST', () => {
      const psql = inImage('agent', ['psql', '--version']);
      expect(psql.stdout).toMatch(/^psql \(PostgreSQL\) \d+/);
      const agent = inImage('agent', ['/usr/local/bin/chaperone-agent']);
      expect(agent.status).not.toBe(0);
      expect(agent.stderr).toContain('PGHOST is not set');
    });
  });

  describe.skipIf(!isRoot || containerdTools.length > 0)('in a containerd of its own', () => {
    const namespace = 'chaperone-images-test';
    const dir = path.join(work, 'containerd');
    const address = path.join(dir, 'containerd.sock');
    // Host paths containerd 1.6 and runc use whatever the config says; removed again if we made them.
    const hostDirs = [
      '/run/containerd',
      '/run/containerd/s',
      '/run/containerd/fifo',
      '/run/containerd/runc',
      `/run/containerd/runc/${namespace}`,
    ];
    const cgroupRoot = '/sys/fs/cgroup';
    const preexisting = new Set(hostDirs.filter((d) => existsSync(d)));
    let daemon: ChildProcess | undefined;
    let daemonLog = '';
    const ctr = (...args: string[]) =>
      spawnSync('ctr', ['--address', address, '--namespace', namespace, ...args], {
        encoding: 'utf8',
        timeout: 120_000,
      });

    beforeAll(async () => {
      mkdirSync(dir, { recursive: true });
      const config = [
        'version = 2',
        `root = "${dir}/root"`,
        `state = "${dir}/state"`,
        // No CRI (it would want CNI); the image service, snapshotters and runc v2 are all we need.
        'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
        `[grpc]\n  address = "${address}"`,
        `[ttrpc]\n  address = "${address}.ttrpc"`,
        `[plugins."io.containerd.internal.v1.opt"]\n  path = "${dir}/opt"`,
      ].join('\n');
      writeFileSync(path.join(dir, 'config.toml'), `${config}\n`);
      daemon = spawn('containerd', ['--config', path.join(dir, 'config.toml')], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      daemon.stderr!.on('data', (d) => (daemonLog += d));
      daemon.stdout!.on('data', (d) => (daemonLog += d));
      for (let i = 0; i < 200; i++) {
        if (ctr('version').status === 0) return;
        if (daemon.exitCode !== null) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`containerd did not start:\n${daemonLog.slice(-2000)}`);
    }, 60_000);

    afterAll(async () => {
      if (daemon && daemon.exitCode === null) {
        const exited = new Promise((resolve) => daemon!.once('exit', resolve));
        daemon.kill('SIGTERM');
        await exited;
      }
      // Empty leftovers only (rmdir): cgroups of our namespace, runc state dirs we created.
      for (const hierarchy of existsSync(cgroupRoot) ? readdirSync(cgroupRoot) : []) {
        const cg = path.join(cgroupRoot, hierarchy, namespace);
        if (existsSync(cg)) {
          for (const child of readdirSync(cg, { withFileTypes: true }).filter((e) => e.isDirectory())) {
            try {
              rmdirSync(path.join(cg, child.name));
            } catch {}
          }
          try {
            rmdirSync(cg);
          } catch {}
        }
      }
      for (const d of [...hostDirs].reverse()) {
        if (!preexisting.has(d) && existsSync(d)) {
          try {
            rmdirSync(d);
          } catch {}
        }
      }
    }, 60_000);

    it('imports every archive as kind does, lists the names, and runs two images under runc', () => {
      for (const i of result.images) {
        const imported = ctr(
          'images',
          'import',
          '--all-platforms',
          '--digests',
          '--snapshotter=overlayfs',
          path.join(result.outDir, i.archive),
        );
        expect(imported.status, imported.stderr).toBe(0);
      }
      const listed = ctr('images', 'ls', '-q').stdout.split('\n');
      for (const i of result.images) expect(listed).toContain(i.ref);

      const id = `chaperone-images-test-${process.pid}`;
      const collector = ctr(
        'run',
        '--rm',
        image('collector').ref,
        `${id}-collector`,
        ...configOf(result, image('collector')).config.Entrypoint,
        '--help',
      );
      expect(collector.stdout, collector.stderr).toContain('chaperone-collector serve');
      expect(collector.status).toBe(0);

      const uid = ctr(
        'run',
        '--rm',
        image('sidecar').ref,
        `${id}-uid`,
        '/usr/local/bin/node',
        '-p',
        'process.getuid()',
      );
      expect(uid.stdout.trim(), uid.stderr).toBe('65532');

      const agent = ctr('run', '--rm', image('agent').ref, `${id}-agent`, 'psql', '--version');
      expect(agent.stdout, agent.stderr).toMatch(/^psql \(PostgreSQL\)/);
    }, 180_000);
  });
});
