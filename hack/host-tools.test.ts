import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  readHostTools,
  type SpawnedCommand,
  shellCommands,
  shellFunctions,
  typescriptCommands,
} from './host-tools.ts';

const root = path.resolve(import.meta.dirname, '..');
const tools = readHostTools(path.join(root, 'hack', 'host-tools.txt'));

// Shell builtins and keywords, and commands of Debian's Essential packages (coreutils, grep, sed,
// findutils, tar, gzip, dash, bash, diffutils) and of apt/dpkg, which every Debian machine has.
const ALWAYS_THERE = new Set(
  `[ alias break builtin cd continue declare echo eval exec exit export false getopts hash kill local
   mapfile printf pwd read readarray readonly return set shift source test trap true type ulimit umask
   unset wait compgen
   basename cat chgrp chmod chown cp cut date dd df dirname du env head id install ln ls mkdir mktemp
   mv nice nohup nproc paste readlink realpath rm rmdir seq sha256sum sleep sort stat tail tee
   timeout touch tr uname uniq wc yes
   grep sed awk find xargs tar gzip sh bash diff apt-get dpkg dpkg-query`.split(/\s+/),
);

// Node and npx come from hack/ensure-node.sh (system Node >= 22.19, or Node 24 fetched with npm).
const PROVIDED_BY_MAKE = new Set(['node', 'npx']);

function repoFiles(): string[] {
  return execFileSync('git', ['ls-files', '-co', '--exclude-standard'], { cwd: root, encoding: 'utf8' })
    .split('\n')
    .filter(Boolean);
}

/** Makefile recipe lines, as shell (make's own `$(VAR)` reads as a variable, not a command). */
function makefileRecipes(source: string): string {
  return source
    .split('\n')
    .map((l) =>
      l.startsWith('\t')
        ? l
            .slice(1)
            .replace(/^[@-]+/, '')
            .replace(/\$\$/g, '$')
        : '',
    )
    .join('\n');
}

function spawnedByTheProject(): SpawnedCommand[] {
  const found: SpawnedCommand[] = [];
  const scripts = repoFiles().filter((f) => f.endsWith('.sh'));
  // Functions of sourced libraries (hack/host-tools.sh) are not commands either.
  const functions = new Set(
    scripts.flatMap((f) => [...shellFunctions(readFileSync(path.join(root, f), 'utf8'))]),
  );
  for (const f of repoFiles()) {
    const abs = path.join(root, f);
    if (f.endsWith('.sh') || f === '.ci/run') found.push(...shellCommands(readFileSync(abs, 'utf8'), f));
    else if (f === 'Makefile') found.push(...shellCommands(makefileRecipes(readFileSync(abs, 'utf8')), f));
    else if (/\.ts$/.test(f) && !f.includes('/generated/') && !f.startsWith('hack/host-tools')) {
      found.push(...typescriptCommands(readFileSync(abs, 'utf8'), f));
    }
  }
  return found.filter((c) => !functions.has(c.command));
}

function listed(command: string): boolean {
  if (ALWAYS_THERE.has(command) || PROVIDED_BY_MAKE.has(command)) return true;
  return tools.some(
    (t) => t.name === command || t.check === command || t.check.replace(/^static:/, '') === command,
  );
}

describe('hack/host-tools.txt', () => {
  it('names every external command that a script, the Makefile or the test harness runs', () => {
    const unlisted = spawnedByTheProject()
      .filter((c) => !listed(c.command))
      .map((c) => `${c.command} (${c.file}:${c.line})`);
    // A failure here: add the command to hack/host-tools.txt with the Debian package that brings
    // it, so setup-host.sh / cluster-up.sh install it and `make doctor` reports it.
    expect(unlisted).toEqual([]);
  });

  it('finds the commands the cluster depends on, so the check above has teeth', () => {
    const commands = new Set(spawnedByTheProject().map((c) => c.command));
    for (const c of [
      'ctr',
      'iptables',
      'ip',
      'openssl',
      'nft',
      'psql',
      'ssh-keygen',
      'getent',
      '/usr/sbin/sshd',
    ]) {
      expect(commands, c).toContain(c);
    }
  });

  it('gives every apt-installed entry a package and every scope an entry', () => {
    for (const t of tools) expect(t.pkg, t.name).toMatch(/^(-|[a-z0-9][a-z0-9.+-]+)$/);
    expect(new Set(tools.map((t) => t.scope))).toEqual(new Set(['build', 'host', 'cluster', 'optional']));
    // kube-proxy (nftables mode) runs nft: the indirect dependency that once went missing.
    expect(tools.find((t) => t.name === 'nft' && t.scope === 'cluster')?.pkg).toBe('nftables');
  });

  it('rejects a malformed line with its line number', async () => {
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const dir = mkdtempSync(path.join((await import('node:os')).tmpdir(), 'host-tools-'));
    const file = path.join(dir, 'list.txt');
    writeFileSync(file, '# c\nnft nftables cluster nft\njq jq everywhere jq\n');
    expect(() => readHostTools(file)).toThrow(/list\.txt:3: expected NAME PACKAGE SCOPE/);
  });
});

describe('shellCommands', () => {
  const names = (src: string) => shellCommands(src).map((c) => c.command);

  it('finds commands in pipelines, lists, conditions, substitutions and subshells', () => {
    const src = [
      'set -euo pipefail',
      'if ! jq . f | yq; then socat - x && curl -s || wget -q; fi',
      'v="$(ip route show)" w=`hostname`',
      '( cd /tmp; unzip a.zip ) &',
      'while read -r a; do nft list "$a"; done < <(lsof -i)',
      'echo "say $(tput cols) things (not these)"',
    ].join('\n');
    expect(names(src)).toEqual([
      'set',
      'jq',
      'yq',
      'socat',
      'curl',
      'wget',
      'ip',
      'hostname',
      'cd',
      'unzip',
      'read',
      'nft',
      'lsof',
      'echo',
      'tput',
    ]);
    expect(names(src)).not.toContain('things');
    expect(names(src)).not.toContain('not');
  });

  it('sees through wrappers, assignments and redirections', () => {
    expect(
      names('env -i A=1 B=2 socat x\nsetsid containerd --config c >>log 2>&1 &\nX=1 timeout 5 kubectl get'),
    ).toEqual(['env', 'socat', 'setsid', 'containerd', 'timeout', 'kubectl']);
    expect(names('command -v nft >/dev/null')).toEqual(['nft']);
  });

  it('skips quoted text, variables, for and case word lists, arrays, heredocs and own functions', () => {
    const src = [
      'die() { printf "%s\\n" "$*" >&2; exit 1; }',
      'for p in bridge host-local loopback; do [ -x "/usr/lib/cni/$p" ] || die "no (plugin) $p"; done',
      'case "$x" in foo | bar) ls ;; baz) stat x ;; esac',
      'pkgs+=(containernetworking-plugins) COMPONENTS=(etcd kubelet)',
      '"$BIN/kubectl" get pods; $cmd run',
      "echo 'single (quoted) text'",
      'cat <<EOF',
      'rsync is mentioned in a heredoc',
      'EOF',
    ].join('\n');
    expect(names(src)).toEqual(['printf', 'exit', '[', 'ls', 'stat', 'echo', 'cat']);
    for (const n of [
      'die',
      'bridge',
      'foo',
      'bar',
      'containernetworking-plugins',
      'etcd',
      'kubelet',
      'rsync',
      'text',
    ]) {
      expect(names(src), n).not.toContain(n);
    }
  });

  it('reports the line of each command', () => {
    expect(shellCommands('a=1\n\nif true; then\n  socat x\nfi', 'f.sh')).toContainEqual({
      command: 'socat',
      file: 'f.sh',
      line: 4,
    });
  });
});

describe('typescriptCommands', () => {
  it('finds spawn-style calls, testkit run calls and absolute host binaries', () => {
    const src = [
      "import { run, runOk } from './run.js';",
      "execFileSync('tar', ['-tf', f]);",
      "spawn(\"socat\", args); spawnSync('sh', ['-c', 'x'])",
      "await runOk('ssh-keygen', ['-q']);",
      "const SSHD = process.env.SSHD_PATH ?? '/usr/sbin/sshd';",
      "// spawn('commented-out')",
    ].join('\n');
    expect(typescriptCommands(src).map((c) => c.command)).toEqual([
      'tar',
      'socat',
      'sh',
      'ssh-keygen',
      '/usr/sbin/sshd',
    ]);
  });

  it('does not take a local run() or a SQL command tag for a process', () => {
    const src = "function run(a: string) {}\nrun('approve');\nconst r = { command: 'DELETE 1' };";
    expect(typescriptCommands(src)).toEqual([]);
  });
});

describe('scripts with pipefail', () => {
  it('never end a pipeline in grep -q (the writer dies of SIGPIPE and the test reads false)', () => {
    const offenders: string[] = [];
    for (const f of repoFiles().filter((f) => f.endsWith('.sh') || f === '.ci/run')) {
      const src = readFileSync(path.join(root, f), 'utf8');
      if (!/pipefail/.test(src)) continue;
      src.split('\n').forEach((l, i) => {
        if (/^\s*#/.test(l)) return;
        if (/\|\s*grep\s+(-\w*q\w*|--quiet)\b/.test(l)) offenders.push(`${f}:${i + 1}: ${l.trim()}`);
      });
    }
    // Capture the output first: grep -q PATTERN <<<"$(cmd)".
    expect(offenders).toEqual([]);
  });
});
