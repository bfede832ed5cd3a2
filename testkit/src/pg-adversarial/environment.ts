// The adversarial suite's world: a real PostgreSQL with a customers table whose ssn column is
// masked, an agent role that is a member of the tables' owner (so the server would execute
// anything the gateway lets through), and two sidecar processes with the two policies the suite
// attacks: `reads` (read + copy allowed, everything else denied, leakage: deny) and `permissive`
// (every statement class allowed, no guardrails: masking and its analysis are the only defence).
import { type SidecarProcess, startSidecarProcess } from '../pg-fuzz/target.js';
import { startPostgres, type TestPostgres } from '../postgres.js';
import { SECRETS } from './corpus.js';
import type { Endpoint } from './session.js';

export type PolicyName = 'reads' | 'permissive';

export interface AdversarialEnvironment {
  pg: TestPostgres;
  direct: Endpoint;
  sidecars: Record<PolicyName, Endpoint>;
  processes: Record<PolicyName, SidecarProcess>;
  /** Puts the database back as it was (attacks rename, move and add objects). */
  reset(): Promise<void>;
  /** Runs SQL directly as the tables' owner. */
  asOwner(sql: string): Promise<void>;
  stop(): Promise<void>;
}

const AGENT_PASSWORD = 'adversarial-agent-password';

const SCHEMA = `
  DROP SCHEMA IF EXISTS public CASCADE;
  CREATE SCHEMA public AUTHORIZATION adv_owner;
  SET ROLE adv_owner;
  CREATE TABLE customers (id int PRIMARY KEY, name text, email text, ssn text, note text);
  CREATE TABLE orders (id int PRIMARY KEY, customer_id int, status text);
  INSERT INTO customers VALUES
    (1, 'Ada Lovelace', 'ada@example.com', '${SECRETS[0]}', 'first'),
    (2, 'Alan Turing', 'alan@example.com', '${SECRETS[1]}', 'second');
  INSERT INTO orders VALUES (1, 1, 'open'), (2, 2, 'open');
  RESET ROLE;`;

function policyYaml(name: PolicyName): string {
  const rules =
    name === 'reads'
      ? `
    - { name: reads, action: allow, postgres: { operations: [read, copy] } }
    - { name: nothing-else, action: deny, reason: read-only agent, postgres: { operations: [write, ddl, admin] } }`
      : `
    - { name: everything, action: allow, postgres: { operations: [read, write, ddl, admin, copy] } }`;
  return `apiVersion: chaperone.dev/v1alpha1
kind: AccessPolicy
metadata: { name: adversarial-${name} }
spec:
  subjects: [{ kind: ServiceAccount, namespace: agents, name: adversary }]
  connections: { names: [shop] }
  rules:${rules}
  masking:
    leakage: deny
    columns:
      - { column: public.customers.ssn, strategy: redact }
  approval:
    approvers: { groups: [dba] }
    timeout: 10s
`;
}

function configYaml(pg: TestPostgres, policy: PolicyName, port: number): string {
  return `apiVersion: chaperone.dev/v1alpha1
kind: Connection
metadata: { name: shop }
spec:
  type: postgres
  endpoint: { host: 127.0.0.1, port: ${pg.port}, database: shop, tls: { mode: disable } }
  listen: { port: ${port} }
  credentials:
    postgres: { adminSecretRef: { name: shop-login }, grantRoles: [adv_owner] }
---
apiVersion: v1
kind: Secret
metadata: { name: shop-login }
stringData: { username: adv_agent, password: ${AGENT_PASSWORD} }
---
${policyYaml(policy)}`;
}

export async function startAdversarialEnvironment(): Promise<AdversarialEnvironment> {
  const pg = await startPostgres();
  await pg.psql(
    `CREATE ROLE adv_owner NOLOGIN; CREATE ROLE adv_agent LOGIN PASSWORD '${AGENT_PASSWORD}' IN ROLE adv_owner`,
  );
  await pg.psql('CREATE DATABASE shop OWNER adv_owner');
  const reset = async () => {
    await pg.psql(
      `SELECT lo_unlink(oid) FROM pg_largeobject_metadata;
       DO $$ DECLARE s text; BEGIN
         FOR s IN SELECT nspname FROM pg_namespace WHERE nspname LIKE 'adv\\_%' LOOP
           EXECUTE format('DROP SCHEMA %I CASCADE', s);
         END LOOP; END $$;
       ${SCHEMA}`,
      { database: 'shop' },
    );
  };
  await reset();
  const reads = await startSidecarProcess((port) => configYaml(pg, 'reads', port), 'agents/adversary');
  const permissive = await startSidecarProcess(
    (port) => configYaml(pg, 'permissive', port),
    'agents/adversary',
  );
  const at = (port: number): Endpoint => ({ host: '127.0.0.1', port, user: 'agent', database: 'shop' });
  return {
    pg,
    direct: {
      host: '127.0.0.1',
      port: pg.port,
      user: 'adv_agent',
      password: AGENT_PASSWORD,
      database: 'shop',
    },
    sidecars: { reads: at(reads.port), permissive: at(permissive.port) },
    processes: { reads, permissive },
    reset,
    asOwner: (sql) => pg.psql(`SET ROLE adv_owner; ${sql}`, { database: 'shop' }).then(() => undefined),
    async stop() {
      await reads.stop();
      await permissive.stop();
      await pg.stop();
    },
  };
}
