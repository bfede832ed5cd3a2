import { type ChildProcess, type SpawnOptions, spawn } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';

/** A server process started by the harness: output goes to a log file, stop() never leaves it running. */
export interface ManagedProcess {
  readonly name: string;
  readonly pid: number;
  readonly logPath: string;
  /** Resolves with the exit code (or signal name) once the process has ended. */
  readonly exited: Promise<number | string>;
  isRunning(): boolean;
  logTail(lines?: number): Promise<string>;
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<void>;
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

// If the test runner dies we must not leave etcd or postgres listening on the machine.
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const child of live) child.kill('SIGKILL');
  });
}

export interface StartOptions extends Pick<SpawnOptions, 'cwd' | 'env' | 'uid' | 'gid'> {
  name: string;
  command: string;
  args: string[];
  logPath: string;
}

export function startProcess(opts: StartOptions): ManagedProcess {
  installExitHook();
  const log: WriteStream = createWriteStream(opts.logPath, { flags: 'a' });
  const child = spawn(opts.command, opts.args, {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    uid: opts.uid,
    gid: opts.gid,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  child.stdout?.pipe(log, { end: false });
  child.stderr?.pipe(log, { end: false });
  const exited = new Promise<number | string>((resolve) => {
    child.once('error', (err) => {
      log.write(`\n[harness] failed to start ${opts.command}: ${err.message}\n`);
      live.delete(child);
      resolve(`spawn error: ${err.message}`);
    });
    child.once('exit', (code, signal) => {
      live.delete(child);
      resolve(code ?? signal ?? 'unknown');
    });
  });
  let running = true;
  void exited.then(() => {
    running = false;
  });

  return {
    name: opts.name,
    pid: child.pid ?? -1,
    logPath: opts.logPath,
    exited,
    isRunning: () => running,
    async logTail(lines = 40) {
      const text = await readFile(opts.logPath, 'utf8').catch(() => '');
      return text.split('\n').slice(-lines).join('\n');
    },
    async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = 10_000) {
      if (running) {
        child.kill(signal);
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
        await exited;
        clearTimeout(timer);
      }
      await new Promise<void>((resolve) => log.end(resolve));
    },
  };
}

/**
 * Polls `probe` until it returns true. Fails loudly — with the component's log tail — when the
 * process exits first or the deadline passes, so a broken harness never turns into a skipped test.
 */
export async function waitUntilReady(
  proc: ManagedProcess,
  probe: () => Promise<boolean>,
  { timeoutMs = 60_000, intervalMs = 100 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError = '';
  while (Date.now() < deadline) {
    if (!proc.isRunning()) {
      throw new Error(
        `${proc.name} exited (${await proc.exited}) before it was ready. Log ${proc.logPath}:\n${await proc.logTail()}`,
      );
    }
    try {
      if (await probe()) return;
    } catch (err) {
      lastError = err instanceof Error ? err.message : String(err);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  await proc.stop('SIGKILL');
  throw new Error(
    `${proc.name} was not ready within ${timeoutMs} ms (last probe error: ${lastError || 'none'}). Log ${proc.logPath}:\n${await proc.logTail()}`,
  );
}
