import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { appendFile, chmod, chown, copyFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { asUser, hostUser } from './host-user.js';
import { type ManagedProcess, startProcess, waitUntilReady } from './managed-process.js';
import { freePort } from './net.js';
import { createTestCa, type TestCa } from './pki.js';
import { run, runOk } from './run.js';
import { makeWorkDir } from './workdir.js';

export interface PostgresOptions {
  /** Serve TLS with a certificate from a fresh test CA (the CA is exposed as `ca`). */
  tls?: boolean;
  /** Extra `-c name=value` server settings. */
  settings?: Record<string, string>;
  /** Authentication method for every connection (default scram-sha-256). */
  auth?: 'scram-sha-256' | 'md5' | 'password';
  /**
   * Also listen on this address and accept clients from `clients` (CIDR), e.g. the local cluster's
   * bridge gateway so that pods reach the server. Loopback stays.
   */
  alsoListen?: { address: string; clients: string };
}

export interface TestPostgres {
  readonly host: '127.0.0.1';
  readonly port: number;
  readonly superuser: 'postgres';
  /** The superuser's password (stored as SCRAM-SHA-256; every connection authenticates with `auth`). */
  readonly password: string;
  readonly dataDir: string;
  readonly binDir: string;
  readonly ca?: TestCa;
  /** A libpq URL, e.g. for psql or node-postgres. */
  url(opts?: { user?: string; password?: string; database?: string; sslmode?: string }): string;
  /** Runs psql against this server as the superuser; returns stdout, throws with stderr on failure. */
  psql(sql: string, opts?: { database?: string; args?: string[] }): Promise<string>;
  /** A node-postgres client connected as the superuser (caller ends it). */
  connect(database?: string): Promise<pg.Client>;
  stop(): Promise<void>;
}

/** The newest PostgreSQL >= 15 server binaries on this machine (Debian layout or PG_BINDIR). */
export function postgresBinDir(): string {
  const explicit = process.env.PG_BINDIR;
  if (explicit) return explicit;
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root)
    ? readdirSync(root)
        .map(Number)
        .filter((v) => v >= 15)
        .sort((a, b) => b - a)
    : [];
  const dir = versions.map((v) => join(root, String(v), 'bin')).find((d) => existsSync(join(d, 'initdb')));
  if (!dir) {
    throw new Error(
      'PostgreSQL >= 15 server binaries not found under /usr/lib/postgresql. Run `bash hack/setup-host.sh` (installs postgresql-15) or set PG_BINDIR.',
    );
  }
  return dir;
}

/**
 * Starts a real PostgreSQL: initdb into a temp dir as an unprivileged user, SCRAM-SHA-256 for every
 * connection, listening on 127.0.0.1 at a free port, fsync off (test data is disposable).
 */
export async function startPostgres(opts: PostgresOptions = {}): Promise<TestPostgres> {
  const binDir = postgresBinDir();
  const user = await hostUser();
  const work = await makeWorkDir('pg', user);
  const dataDir = work.file('data');
  const socketDir = work.file('socket');
  const password = randomBytes(18).toString('base64url');
  const own = async (path: string, mode: number) => {
    await chmod(path, mode);
    if (user.switchUser) await chown(path, user.uid, user.gid);
  };

  const pwfile = work.file('pwfile');
  await writeFile(pwfile, `${password}\n`);
  await own(pwfile, 0o600);
  await runOk(
    join(binDir, 'initdb'),
    [
      '-D',
      dataDir,
      '-U',
      'postgres',
      '--pwfile',
      pwfile,
      `--auth=${opts.auth ?? 'scram-sha-256'}`,
      '-E',
      'UTF8',
      '--no-sync',
      '--locale=C',
    ],
    { ...asUser(user), cwd: work.path, timeoutMs: 120_000 },
  );
  await runOk('mkdir', ['-p', socketDir]);
  await own(socketDir, 0o700);

  const port = await freePort();
  if (opts.alsoListen) {
    await appendFile(
      join(dataDir, 'pg_hba.conf'),
      `host all all ${opts.alsoListen.clients} ${opts.auth ?? 'scram-sha-256'}\n`,
    );
  }
  const settings: Record<string, string> = {
    listen_addresses: opts.alsoListen ? `127.0.0.1,${opts.alsoListen.address}` : '127.0.0.1',
    port: String(port),
    unix_socket_directories: socketDir,
    fsync: 'off',
    synchronous_commit: 'off',
    full_page_writes: 'off',
    max_connections: '200',
    password_encryption: opts.auth === 'md5' ? 'md5' : 'scram-sha-256',
    ...opts.settings,
  };

  let ca: TestCa | undefined;
  if (opts.tls) {
    const pki = work.file('pki');
    await runOk('mkdir', ['-p', pki]);
    ca = await createTestCa(pki);
    const server = await ca.issue('server', {
      commonName: 'localhost',
      altNames: ['IP:127.0.0.1', 'DNS:localhost'],
      usage: 'server',
    });
    // PostgreSQL insists that its key is private to the server's account.
    const cert = join(dataDir, 'server.crt');
    const key = join(dataDir, 'server.key');
    await copyFile(server.certPath, cert);
    await copyFile(server.keyPath, key);
    await own(cert, 0o644);
    await own(key, 0o600);
    Object.assign(settings, { ssl: 'on', ssl_cert_file: cert, ssl_key_file: key });
  }

  const args = ['-D', dataDir, ...Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`])];
  const proc: ManagedProcess = startProcess({
    name: 'postgres',
    command: join(binDir, 'postgres'),
    args,
    logPath: work.file('postgres.log'),
    cwd: work.path,
    ...asUser(user),
  });

  const url = (o: { user?: string; password?: string; database?: string; sslmode?: string } = {}) => {
    const u = encodeURIComponent(o.user ?? 'postgres');
    const p = encodeURIComponent(o.password ?? password);
    const q = o.sslmode ? `?sslmode=${o.sslmode}` : '';
    return `postgresql://${u}:${p}@127.0.0.1:${port}/${encodeURIComponent(o.database ?? 'postgres')}${q}`;
  };
  const connect = async (database = 'postgres') => {
    const client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', password, database });
    await client.connect();
    return client;
  };

  await waitUntilReady(
    proc,
    async () => {
      const c = await connect();
      await c.end();
      return true;
    },
    { timeoutMs: 60_000, intervalMs: 100 },
  );

  return {
    host: '127.0.0.1',
    port,
    superuser: 'postgres',
    password,
    dataDir,
    binDir,
    ca,
    url,
    connect,
    async psql(sql, o = {}) {
      // The password goes through the environment, never argv, so it stays out of `ps`.
      const res = await run(
        'psql',
        [
          '-X',
          '-v',
          'ON_ERROR_STOP=1',
          '-At',
          '-h',
          '127.0.0.1',
          '-p',
          String(port),
          '-U',
          'postgres',
          '-d',
          o.database ?? 'postgres',
          ...(o.args ?? []),
          '-c',
          sql,
        ],
        { env: { ...process.env, PGPASSWORD: password, PGSSLMODE: 'disable' } },
      );
      if (res.code !== 0) throw new Error(`psql failed (${res.code}): ${res.stderr}`);
      return res.stdout;
    },
    async stop() {
      // SIGINT is PostgreSQL's "fast shutdown": no waiting for clients.
      await proc.stop('SIGINT', 15_000);
      await work.remove();
    },
  };
}
