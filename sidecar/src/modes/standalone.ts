import { type Connection, jsonLog, type Logger, type OidcIssuerConfig } from '@chaperone/api';
import { LocalApprovalGate } from '../approvals/local-approvals.js';
import { SecretCredentialSource } from '../credentials/secret-credentials.js';
import { protocols } from '../protocols/index.js';
import { type RunningSidecar, runSidecar } from '../runtime/run-sidecar.js';
import { servableConnections } from '../runtime/served-connections.js';
import { loadStandaloneConfig } from './standalone-config.js';

export { jsonLog };

export interface StandaloneOptions {
  configDir: string;
  /** The identity this sidecar's agent has (a pod's ServiceAccount in a cluster). */
  serviceAccount: { namespace: string; name: string };
  /** Serve only these Connections (default: every postgres Connection in the folder). */
  connections?: string[];
  /** JSON-lines files per session, when no collector is configured. */
  recordingsDir: string;
  /** Ship recordings to a collector through an on-disk spool. */
  collector?: { url: string; tokenFile: string; spoolDir: string; spoolMaxBytes?: number };
  adminPort: number;
  /** Override listen ports (connection name → port), e.g. 0 for tests. */
  listenPorts?: Record<string, number>;
  oidc?: { issuers: OidcIssuerConfig[]; require: boolean; tokenUser: string };
  maxMessageBytes?: number;
  /**
   * Benchmarks only (bench/pg-gateway.ts measures recording overhead as on vs off): sessions are
   * not recorded at all. Not reachable from the CLI — an unrecorded session is not a product mode.
   */
  benchmarkWithoutRecording?: boolean;
  /** PEM certificate and key: offer TLS to agents that ask for it (SSLRequest). */
  clientTls?: { cert: string; key: string };
  log?: Logger;
}

export interface RunningStandaloneSidecar extends RunningSidecar {
  approvals: LocalApprovalGate;
}

export async function runStandalone(opts: StandaloneOptions): Promise<RunningStandaloneSidecar> {
  const config = await loadStandaloneConfig(opts.configDir, opts.serviceAccount.namespace);
  const wanted = servableConnections(
    config.connections
      .filter((c) => !opts.connections || opts.connections.includes(c.metadata.name ?? ''))
      .map((connection) => ({ connection })),
    protocols,
    opts.log ?? jsonLog,
  );
  for (const name of opts.connections ?? []) {
    if (!config.connections.some((c) => c.metadata.name === name)) {
      throw new Error(`connection ${name} is not defined in ${opts.configDir}`);
    }
  }
  let adminPort = opts.adminPort;
  const approvals = new LocalApprovalGate(
    (name) =>
      `approve with: chaperone-sidecar approvals approve ${name} --admin http://127.0.0.1:${adminPort}`,
  );
  const sidecar = await runSidecar({
    ...opts,
    protocols,
    connections: wanted.map(({ connection: conn, module }) => {
      const name = conn.metadata.name ?? '';
      return {
        type: module.type,
        name,
        listenPort: opts.listenPorts?.[name] ?? conn.spec.listen.port,
        target: module.targetOf(conn, caPemOf(conn, config.secrets)),
        policyFor: module.policyView(conn, config.policies),
      };
    }),
    podIdentity: { serviceAccount: opts.serviceAccount, groups: [] },
    credentials: new SecretCredentialSource(config.connections, config.secrets),
    approvals,
    localApprovals: approvals,
  });
  adminPort = sidecar.admin.port;
  return { ...sidecar, approvals };
}

/** The CA a Connection's caSecretRef names, from the Secrets in the config folder. */
function caPemOf(conn: Connection, secrets: Map<string, Record<string, string>>): string | undefined {
  const caRef = conn.spec.endpoint.tls?.caSecretRef;
  const ca = caRef ? secrets.get(caRef.name)?.[caRef.key ?? 'ca.crt'] : undefined;
  if (caRef && !ca)
    throw new Error(`connection ${conn.metadata.name}: CA Secret ${caRef.name} is not in the config folder`);
  return ca;
}
