// The collector as its own process (the built CLI), for tests that kill it.
import { type ChildProcess, spawn } from 'node:child_process';
import { repoPath, runOk } from '@chaperone/testkit';

export const CLI = repoPath('collector', 'dist', 'cli.js');

/** Brings collector/dist up to date (incremental, about a second when nothing changed). */
export async function buildCli(): Promise<void> {
  await runOk(
    process.execPath,
    [repoPath('node_modules', 'typescript', 'bin', 'tsc'), '-b', repoPath('collector')],
    {
      timeoutMs: 300_000,
    },
  );
}

export interface CollectorProcess {
  readonly proc: ChildProcess;
  readonly url: string;
  log(): string;
  /** Resolves with the exit code (or signal). */
  readonly exited: Promise<number | string>;
}

export async function startCollectorProcess(args: string[], port: number): Promise<CollectorProcess> {
  const proc = spawn(
    process.execPath,
    [CLI, 'serve', '--port', String(port), '--log-level', 'warn', ...args],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let log = '';
  proc.stdout?.on('data', (d) => {
    log += d;
  });
  proc.stderr?.on('data', (d) => {
    log += d;
  });
  const exited = new Promise<number | string>((resolve) =>
    proc.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')),
  );
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (proc.exitCode !== null)
      throw new Error(`collector exited (${proc.exitCode}) before it was ready:\n${log}`);
    try {
      const res = await fetch(`${url}/readyz`);
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`collector not ready within 20 s:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { proc, url, log: () => log, exited };
}

/** Runs `chaperone-collector verify …` to completion. */
export function runVerify(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, 'verify', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.once('exit', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}
