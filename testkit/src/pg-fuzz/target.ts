// The system under fuzz: a real PostgreSQL with a table of masked columns, and the built sidecar
// as its own process (standalone, from a folder of the same YAML a cluster would get), so that a
// crash shows as an exit and its file descriptors and memory can be read from /proc.
import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../net.js';
import type { TestPostgres } from '../postgres.js';
import { repoPath } from '../repo.js';

/** The built sidecar running as its own process. */
export interface SidecarProcess {
  port: number;
  pid: number;
  alive(): boolean;
  /** Open file descriptors of the sidecar process. */
  fds(): number;
  rssMb(): number;
  stderr(): string;
  /** Log lines at level error (at most 100): exceptions the sidecar did not expect. */
  errors(): string[];
  stop(): Promise<void>;
}

const ADMIN_PASSWORD = 'fuzz-admin-password';

/** Roles, a database `orders` and a `customers` table whose email and ssn columns are masked. */
export async function seedFuzzDatabase(pg: TestPostgres): Promise<void> {
  await pg.psql(`CREATE ROLE chaperone_admin LOGIN CREATEROLE PASSWORD '${ADMIN_PASSWORD}'`);
  await pg.psql('CREATE ROLE fuzz_agent NOLOGIN');
  await pg.psql('GRANT fuzz_agent TO chaperone_admin WITH ADMIN OPTION');
  await pg.psql('CREATE DATABASE orders OWNER chaperone_admin');
  await pg.psql(
    `SET ROLE chaperone_admin;
     CREATE TABLE customers (id int PRIMARY KEY, name text, email text, ssn text, note text);
     CREATE TABLE orders (id int PRIMARY KEY, customer_id int, amount numeric(10,2), status text);
     INSERT INTO customers VALUES (1, 'Ada', 'ada@example.com', '123-45-6789', 'card 4111 1111 1111 1111'),
                                  (2, 'Alan', 'alan@example.com', '987-65-4321', 'invoices');
     INSERT INTO orders SELECT g, 1 + g % 2, g * 1.5, 'open' FROM generate_series(1, 50) g;
     GRANT SELECT, INSERT, UPDATE, DELETE ON customers, orders TO fuzz_agent;`,
    { database: 'orders' },
  );
}

function configYaml(pg: TestPostgres, listenPort: number): string {
  return `apiVersion: chaperone.dev/v1alpha1
kind: Connection
metadata: { name: orders-db }
spec:
  type: postgres
  endpoint: { host: 127.0.0.1, port: ${pg.port}, database: orders, tls: { mode: disable } }
  listen: { port: ${listenPort} }
  credentials:
    postgres: { adminSecretRef: { name: orders-db-admin }, grantRoles: [fuzz_agent] }
---
apiVersion: v1
kind: Secret
metadata: { name: orders-db-admin }
stringData: { username: chaperone_admin, password: ${ADMIN_PASSWORD} }
---
apiVersion: chaperone.dev/v1alpha1
kind: AccessPolicy
metadata: { name: fuzz }
spec:
  subjects: [{ kind: ServiceAccount, namespace: agents, name: fuzz-agent }]
  connections: { names: [orders-db] }
  rules:
    - { name: reads, action: allow, postgres: { operations: [read, copy] } }
    - { name: writes, action: allow, postgres: { operations: [write] } }
    - { name: no-ddl, action: deny, reason: no schema changes, postgres: { operations: [ddl, admin] } }
  masking:
    columns:
      - { column: public.customers.ssn, strategy: redact }
      - { column: public.customers.email, strategy: partial }
    detectors:
      - { type: credit-card, strategy: redact }
  approval:
    approvers: { groups: [dba] }
    timeout: 10s
`;
}

export type FuzzTarget = SidecarProcess;

export async function startFuzzTarget(pg: TestPostgres): Promise<FuzzTarget> {
  return startSidecarProcess((port) => configYaml(pg, port), 'agents/fuzz-agent');
}

/**
 * Starts `sidecar/dist/cli.js --standalone` on a folder holding the YAML that `config(port)`
 * returns (Connections, Secrets, AccessPolicies; the one listener on `port`), as ServiceAccount
 * `serviceAccount` ("namespace/name"), and waits until it is ready.
 */
export async function startSidecarProcess(
  config: (listenPort: number) => string,
  serviceAccount: string,
): Promise<SidecarProcess> {
  const dir = await mkdtemp(join(tmpdir(), 'chaperone-sidecar-'));
  const port = await freePort();
  const adminPort = await freePort();
  await writeFile(join(dir, 'config.yaml'), config(port));
  const child: ChildProcess = spawn(
    process.execPath,
    [
      '--liftoff-only', // as the sidecar image runs it
      repoPath('sidecar', 'dist', 'cli.js'),
      '--standalone',
      dir,
      '--service-account',
      serviceAccount,
      '--recordings',
      join(dir, 'rec'),
      '--admin-port',
      String(adminPort),
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let log = '';
  const errors: string[] = [];
  child.stderr?.on('data', (d: Buffer) => {
    log = (log + d.toString()).slice(-200_000);
    for (const line of d.toString().split('\n')) {
      if (line.includes('"level":"error"') && errors.length < 100) errors.push(line);
    }
  });
  for (let i = 0; i < 400 && !log.includes('"ready"') && child.exitCode === null; i++) {
    await new Promise((r) => setTimeout(r, 50));
  }
  if (!log.includes('"ready"')) {
    child.kill('SIGKILL');
    throw new Error(`the sidecar did not start:\n${log}`);
  }
  const pid = child.pid ?? 0;
  return {
    port,
    pid,
    alive: () => child.exitCode === null && child.signalCode === null,
    fds: () => readdirSync(`/proc/${pid}/fd`).length,
    rssMb: () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024,
    stderr: () => log,
    errors: () => errors,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000))]);
        child.kill('SIGKILL');
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
