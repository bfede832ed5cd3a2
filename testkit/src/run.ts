import { execFile } from 'node:child_process';

export interface RunResult {
  stdout: string;
  stderr: string;
  code: number;
}

/** Runs a short command to completion; never throws for a non-zero exit (callers assert on it). */
export function run(
  command: string,
  args: string[],
  opts: {
    cwd?: string;
    env?: NodeJS.ProcessEnv;
    input?: string;
    uid?: number;
    gid?: number;
    timeoutMs?: number;
  } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      command,
      args,
      {
        cwd: opts.cwd,
        env: opts.env ?? process.env,
        uid: opts.uid,
        gid: opts.gid,
        timeout: opts.timeoutMs ?? 60_000,
        maxBuffer: 64 * 1024 * 1024,
      },
      (err, stdout, stderr) => {
        if (err && typeof err.code !== 'number') {
          reject(new Error(`${command} ${args.join(' ')} failed to run: ${err.message}\n${stderr}`));
          return;
        }
        resolve({ stdout, stderr, code: err ? Number(err.code) : 0 });
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/** Like run(), but a non-zero exit is an error that carries the command's stderr. */
export async function runOk(
  command: string,
  args: string[],
  opts: Parameters<typeof run>[2] = {},
): Promise<string> {
  const res = await run(command, args, opts);
  if (res.code !== 0) {
    throw new Error(`${command} ${args.join(' ')} exited ${res.code}:\n${res.stderr || res.stdout}`);
  }
  return res.stdout;
}
