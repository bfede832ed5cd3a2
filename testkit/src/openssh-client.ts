import { type ChildProcess, spawn } from 'node:child_process';
import { chown, writeFile } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { asUser, hostUser } from './host-user.js';
import { type RunResult, run } from './run.js';
import { makeWorkDir, type WorkDir } from './workdir.js';

/**
 * Real OpenSSH clients (ssh, scp, sftp) pointed at one SSH server on loopback, as an agent would run
 * them: no config file, the server's host key pinned in a known_hosts file, batch mode, no keys
 * (the `none` method first). They run as the unprivileged test account when the harness is root.
 */
export interface OpenSshClient {
  /** A directory the client's user owns, for files to copy. */
  readonly dir: WorkDir;
  readonly knownHostsPath: string;
  /** `-F /dev/null -o …` options (no port, no destination). */
  readonly options: readonly string[];
  /** `user@127.0.0.1` */
  readonly destination: string;
  readonly port: number;
  ssh(args: readonly string[], opts?: { input?: string; timeoutMs?: number }): Promise<RunResult>;
  scp(args: readonly string[], opts?: { timeoutMs?: number }): Promise<RunResult>;
  sftp(args: readonly string[], opts?: { input?: string; timeoutMs?: number }): Promise<RunResult>;
  /** Starts a client without waiting (pty sessions, forwards); stdio piped. */
  spawn(command: 'ssh' | 'scp' | 'sftp', args: readonly string[]): ChildProcess;
  /** Runs any command as the client's user (e.g. `sh -c 'head -c … | ssh …'`). */
  runAsClient(command: string, args: readonly string[], opts?: { timeoutMs?: number }): Promise<RunResult>;
  remove(): Promise<void>;
}

export async function openSshClient(server: {
  host: string;
  port: number;
  hostPublicKey: string;
  user?: string;
}): Promise<OpenSshClient> {
  const user = await hostUser();
  const dir = await makeWorkDir('ssh-client', user);
  const knownHostsPath = dir.file('known_hosts');
  await writeFile(knownHostsPath, `[${server.host}]:${server.port} ${server.hostPublicKey}\n`, {
    mode: 0o644,
  });
  if (user.switchUser) await chown(knownHostsPath, user.uid, user.gid);
  const options = [
    '-F',
    '/dev/null',
    '-o',
    `UserKnownHostsFile=${knownHostsPath}`,
    '-o',
    'GlobalKnownHostsFile=/dev/null',
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    'BatchMode=yes',
    '-o',
    'IdentitiesOnly=yes',
    '-o',
    'IdentityFile=/dev/null',
    '-o',
    'ConnectTimeout=10',
    '-o',
    'LogLevel=ERROR',
  ];
  const destination = `${server.user ?? 'agent'}@${server.host}`;
  const env = { ...process.env, HOME: dir.path, SSH_AUTH_SOCK: '' };
  const ids = asUser(user);
  const exec = (
    command: string,
    args: readonly string[],
    opts: { input?: string; timeoutMs?: number } = {},
  ) => run(command, [...args], { ...ids, env, cwd: dir.path, input: opts.input, timeoutMs: opts.timeoutMs });
  const port = String(server.port);
  return {
    dir,
    knownHostsPath,
    options,
    destination,
    port: server.port,
    ssh: (args, o) => exec('ssh', [...options, '-p', port, ...args], o),
    scp: (args, o) => exec('scp', [...options, '-P', port, ...args], o),
    sftp: (args, o) => exec('sftp', [...options, '-P', port, ...args], o),
    spawn: (command, args) =>
      spawn(command, [...options, command === 'ssh' ? '-p' : '-P', port, ...args], {
        ...ids,
        env,
        cwd: dir.path,
        stdio: 'pipe',
      }),
    runAsClient: (command, args, o) => exec(command, args, o),
    remove: () => dir.remove(),
  };
}

/** A TCP echo server on 127.0.0.1 (a target for `ssh -L` / `ssh -W`). */
export async function startEchoServer(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => sock.destroy());
    sock.pipe(sock);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  return {
    port: typeof addr === 'object' && addr ? addr.port : 0,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      }),
  };
}
