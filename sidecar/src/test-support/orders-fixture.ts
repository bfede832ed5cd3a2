import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, type TestPostgres } from '@chaperone/testkit';
import { type RunningStandaloneSidecar, runStandalone } from '../modes/standalone.js';

/**
 * A real PostgreSQL seeded with an `orders` database, and a standalone sidecar in front of it whose
 * config folder holds a Connection, its admin Secret and an AccessPolicy for ServiceAccount
 * agents/orders-agent: reads allowed, writes need approval, DDL denied, customers.ssn and
 * customers.email masked, credit-card numbers detected in values.
 */
export interface OrdersFixture {
  sidecar: RunningStandaloneSidecar;
  port: number;
  adminUrl: string;
  configDir: string;
  recordingsDir: string;
  /** libpq URL of the sidecar (the agent's view: no password). */
  url: string;
  /** Stops the sidecar and removes its config and recordings directories. */
  stop(): Promise<void>;
}

export const ADMIN_PASSWORD = 'admin-secret-do-not-leak';

export async function seedOrders(pg: TestPostgres): Promise<void> {
  await pg.psql(`CREATE ROLE chaperone_admin LOGIN CREATEROLE PASSWORD '${ADMIN_PASSWORD}'`);
  await pg.psql('CREATE DATABASE orders OWNER chaperone_admin');
  const sql = `
    CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, email text, ssn text, note text);
    CREATE TABLE orders (id int PRIMARY KEY, customer_id int REFERENCES customers(id), amount numeric(10,2), status text);
    INSERT INTO customers VALUES
      (1, 'Ada Lovelace', 'ada@example.com', '123-45-6789', 'card 4111 1111 1111 1111 on file'),
      (2, 'Alan Turing', 'alan@example.com', '987-65-4321', 'prefers invoices');
    INSERT INTO orders SELECT g, 1 + g % 2, g * 1.5, CASE WHEN g % 3 = 0 THEN 'shipped' ELSE 'open' END FROM generate_series(1, 100) g;
    -- Ways around column rules that only the catalog reveals, and harmless look-alikes.
    CREATE VIEW customer_contacts AS SELECT id, name, email FROM customers;
    CREATE VIEW order_totals AS SELECT customer_id, sum(amount) AS total FROM orders GROUP BY customer_id;
    CREATE FUNCTION lookup_ssn(int) RETURNS text LANGUAGE sql AS 'SELECT ssn FROM customers WHERE id = $1';
    CREATE FUNCTION double_it(int) RETURNS int LANGUAGE sql AS 'SELECT $1 * 2';
    CREATE TABLE vip_customers () INHERITS (customers);
    INSERT INTO vip_customers VALUES (3, 'Grace Hopper', 'grace@example.com', '555-12-3456', 'vip');
  `;
  await pg.psql(`SET ROLE chaperone_admin; ${sql}`, { database: 'orders' });
}

export function configYaml(pg: TestPostgres, extraPolicyYaml = ''): string {
  return `
apiVersion: chaperone.dev/v1alpha1
kind: Connection
metadata: { name: orders-db }
spec:
  type: postgres
  endpoint: { host: 127.0.0.1, port: ${pg.port}, database: orders, tls: { mode: disable } }
  listen: { port: 15432 }
  credentials:
    postgres: { adminSecretRef: { name: orders-db-admin }, grantRoles: [orders_reader] }
---
apiVersion: v1
kind: Secret
metadata: { name: orders-db-admin }
stringData: { username: chaperone_admin, password: ${ADMIN_PASSWORD} }
---
apiVersion: chaperone.dev/v1alpha1
kind: AccessPolicy
metadata: { name: orders-agents }
spec:
  subjects: [{ kind: ServiceAccount, namespace: agents, name: orders-agent }]
  connections: { names: [orders-db] }
  rules:
    - { name: reads, action: allow, postgres: { operations: [read] } }
    - { name: writes, action: approve, reason: writes need a DBA, postgres: { operations: [write], tables: [public.orders, public.customers] } }
    - { name: copy-in, action: allow, postgres: { operations: [copy, write], tables: [public.orders] } }
    - { name: copy-out, action: allow, postgres: { operations: [copy, read] } }
    - { name: no-ddl, action: deny, reason: schema changes go through migrations, postgres: { operations: [ddl] } }
  guardrails:
    - { detector: delete-without-where, action: deny }
    - { detector: drop, action: deny }
  masking:
    columns:
      - { column: public.customers.ssn, strategy: redact }
      - { column: public.customers.email, strategy: partial }
    detectors:
      - { type: credit-card, strategy: redact }
  approval:
    approvers: { groups: [dba] }
    timeout: 20s
${extraPolicyYaml}`;
}

export async function startOrdersSidecar(pg: TestPostgres, policyYaml?: string): Promise<OrdersFixture> {
  const configDir = await mkdtemp(join(tmpdir(), 'chaperone-config-'));
  const recordingsDir = await mkdtemp(join(tmpdir(), 'chaperone-rec-'));
  await writeFile(join(configDir, 'orders.yaml'), policyYaml ?? configYaml(pg));
  const sidecar = await runStandalone({
    configDir,
    serviceAccount: { namespace: 'agents', name: 'orders-agent' },
    recordingsDir,
    adminPort: 0,
    listenPorts: { 'orders-db': await freePort() },
    log: () => {},
  });
  const port = sidecar.gateways.get('orders-db')?.port ?? 0;
  return {
    sidecar,
    port,
    adminUrl: `http://127.0.0.1:${sidecar.admin.port}`,
    configDir,
    recordingsDir,
    url: `postgresql://agent@127.0.0.1:${port}/orders?sslmode=disable`,
    async stop() {
      await sidecar.stop();
      await rm(configDir, { recursive: true, force: true });
      await rm(recordingsDir, { recursive: true, force: true });
    },
  };
}
