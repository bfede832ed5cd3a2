import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { hostUser } from './host-user.js';
import { startProcess, waitUntilReady } from './managed-process.js';
import { freePort, readBanner } from './net.js';
import { runOk } from './run.js';
import { makeWorkDir } from './workdir.js';

export interface TestSshd {
  readonly host: '127.0.0.1';
  readonly port: number;
  /** The account that certificate logins are accepted for (its name is the required principal). */
  readonly loginUser: string;
  /** OpenSSH user CA trusted by the server (`TrustedUserCAKeys`); private key path for signing. */
  readonly userCaKeyPath: string;
  readonly userCaPublicKey: string;
  /** The server's host public key (authorized_keys format) for known_hosts / Connection.hostKeys. */
  readonly hostPublicKey: string;
  /** A known_hosts file that pins this server's host key. */
  readonly knownHostsPath: string;
  readonly workDir: string;
  /** Makes a fresh ed25519 key pair in the work dir; returns the private key path. */
  newUserKey(name: string): Promise<string>;
  /** Signs `<key>.pub` with the user CA, writing `<key>-cert.pub`; returns the certificate path. */
  signUserKey(
    privateKeyPath: string,
    opts?: { principals?: string[]; validity?: string; identity?: string },
  ): Promise<string>;
  /** Signs an authorized_keys line (a key made in-process) with the user CA; returns the certificate line. */
  signPublicKey(
    publicKeyLine: string,
    opts?: { principals?: string[]; validity?: string; identity?: string },
  ): Promise<string>;
  stop(): Promise<void>;
}

const SSHD = process.env.SSHD_PATH ?? '/usr/sbin/sshd';

/**
 * Starts a real OpenSSH sshd on 127.0.0.1 with per-run host keys and a test user CA. Only
 * CA-signed certificates log in: there is no authorized_keys file and no password authentication,
 * so a plain key is refused.
 */
export async function startSshd(): Promise<TestSshd> {
  if (!existsSync(SSHD)) {
    throw new Error(`${SSHD} not found: install openssh-server (bash hack/setup-host.sh) or set SSHD_PATH`);
  }
  const user = await hostUser();
  const work = await makeWorkDir('sshd');
  const hostKey = work.file('ssh_host_ed25519_key');
  const userCa = work.file('user_ca');
  await runOk('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'chaperone-test-host', '-f', hostKey]);
  await runOk('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'chaperone-test-user-ca', '-f', userCa]);
  const port = await freePort();
  const config = work.file('sshd_config');
  await writeFile(
    config,
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${hostKey}`,
      `PidFile ${work.file('sshd.pid')}`,
      `TrustedUserCAKeys ${userCa}.pub`,
      'AuthorizedKeysFile none',
      'PubkeyAuthentication yes',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      // The work dir lives in /tmp; StrictModes would reject its ownership.
      'StrictModes no',
      'PermitRootLogin no',
      `AllowUsers ${user.name}`,
      'AllowTcpForwarding yes',
      'PermitTTY yes',
      'X11Forwarding no',
      'PrintMotd no',
      'Subsystem sftp internal-sftp',
      // Lets a gateway test see that only allow-listed variables are forwarded (SECRET_TOKEN would be
      // accepted here if a gateway passed it on).
      'AcceptEnv LANG LC_* TZ SECRET_TOKEN',
      'LogLevel VERBOSE',
      'MaxStartups 100:30:200',
      '',
    ].join('\n'),
  );
  // sshd re-executes itself and therefore demands an absolute path; -e logs to stderr (our log file).
  const proc = startProcess({
    name: 'sshd',
    command: SSHD,
    args: ['-D', '-e', '-f', config],
    logPath: work.file('sshd.log'),
  });
  await waitUntilReady(proc, async () => (await readBanner(port)).startsWith('SSH-2.0-'), {
    timeoutMs: 20_000,
  });

  const hostPublicKey = (await readFile(`${hostKey}.pub`, 'utf8')).trim();
  const knownHostsPath = work.file('known_hosts');
  await writeFile(knownHostsPath, `[127.0.0.1]:${port} ${hostPublicKey}\n`);

  const sshd: TestSshd = {
    host: '127.0.0.1',
    port,
    loginUser: user.name,
    userCaKeyPath: userCa,
    userCaPublicKey: (await readFile(`${userCa}.pub`, 'utf8')).trim(),
    hostPublicKey,
    knownHostsPath,
    workDir: work.path,
    async newUserKey(name) {
      const path = work.file(name);
      await runOk('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', name, '-f', path]);
      return path;
    },
    async signUserKey(privateKeyPath, o = {}) {
      await runOk('ssh-keygen', [
        '-q',
        '-s',
        userCa,
        '-I',
        o.identity ?? 'chaperone-test',
        '-n',
        (o.principals ?? [user.name]).join(','),
        '-V',
        o.validity ?? '-1m:+5m',
        `${privateKeyPath}.pub`,
      ]);
      return `${privateKeyPath}-cert.pub`;
    },
    async signPublicKey(line, o = {}) {
      const base = work.file(`pub-${randomUUID()}`);
      await writeFile(`${base}.pub`, `${line.trim()}\n`);
      const certPath = await sshd.signUserKey(base, o);
      return (await readFile(certPath, 'utf8')).trim();
    },
    async stop() {
      await proc.stop('SIGTERM', 5_000);
      await work.remove();
    },
  };
  return sshd;
}

/** ssh(1) options for a non-interactive, pinned-host-key login to a TestSshd. */
export function sshClientArgs(sshd: TestSshd, identityFile: string): string[] {
  return [
    '-F',
    '/dev/null',
    '-p',
    String(sshd.port),
    '-i',
    identityFile,
    '-o',
    'IdentitiesOnly=yes',
    '-o',
    `UserKnownHostsFile=${sshd.knownHostsPath}`,
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    'BatchMode=yes',
    '-o',
    'ConnectTimeout=10',
    '-o',
    'LogLevel=ERROR',
    `${sshd.loginUser}@127.0.0.1`,
  ];
}
