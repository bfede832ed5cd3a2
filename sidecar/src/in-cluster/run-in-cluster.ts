import { mkdir } from 'node:fs/promises';
import type { AccessPolicy, BrokerConfig, OidcIssuerConfig } from '@chaperone/api';
import { postgresPolicyFactory } from '../postgres/postgres-policy.js';
import type { SessionPolicyFactory } from '../postgres/statement-guard.js';
import { jsonLog, type RunningSidecar, runSidecar, type SidecarLog } from '../runtime/run-sidecar.js';
import { postgresTargetOf } from '../runtime/upstream-target.js';
import { BrokerApprovalGate } from './broker-approvals.js';
import { BrokerCallError, BrokerClient } from './broker-client.js';
import { BrokerCredentialSource } from './broker-credentials.js';

export interface InClusterOptions {
  brokerUrl: string;
  brokerCaPem: string;
  /** Projected token for audience `chaperone`. */
  tokenFile: string;
  /** Collector and its token; defaults to the collector URL the broker announces. */
  collectorUrl?: string;
  collectorTokenFile?: string;
  spoolDir: string;
  recordingsDir: string;
  adminPort: number;
  /** Default 0.0.0.0: the kubelet's probes come to the pod IP. */
  adminHost?: string;
  /** Shared with the agent containers: where client configuration files would be written. */
  agentConfigDir?: string;
  /** Override listen ports (connection name → port), e.g. 0 for tests. */
  listenPorts?: Record<string, number>;
  oidc?: { issuers: OidcIssuerConfig[]; require: boolean; tokenUser: string };
  /** How often policies are re-fetched from the broker (default 30 s). */
  refreshMs?: number;
  /** How long to keep trying to fetch the first configuration (default 5 min). */
  startupTimeoutMs?: number;
  log?: SidecarLog;
}

export interface RunningInClusterSidecar extends RunningSidecar {
  /** Fetch policies now (tests; otherwise every refreshMs). */
  refresh(): Promise<void>;
}

/**
 * The injected sidecar: everything it serves comes from the operator's broker — Connections,
 * policies, just-in-time credentials and approvals. It never reads a Secret or the Kubernetes API.
 */
export async function runInCluster(opts: InClusterOptions): Promise<RunningInClusterSidecar> {
  const log = opts.log ?? jsonLog;
  const broker = new BrokerClient({
    url: opts.brokerUrl,
    caPem: opts.brokerCaPem,
    tokenFile: opts.tokenFile,
  });
  const config = await firstConfig(broker, opts.startupTimeoutMs ?? 300_000, log);
  if (opts.agentConfigDir) await mkdir(opts.agentConfigDir, { recursive: true });

  const factories = new Map<string, SessionPolicyFactory>();
  const compile = (cfg: BrokerConfig) => {
    for (const { connection } of cfg.connections) {
      if (connection.spec.type !== 'postgres') continue;
      factories.set(connection.metadata.name ?? '', postgresPolicyFactory(connection, cfg.policies));
    }
  };
  compile(config);
  for (const { connection } of config.connections) {
    if (connection.spec.type !== 'postgres') {
      log('warn', `the ${connection.spec.type} gateway is not implemented yet; connection not served`, {
        connection: connection.metadata.name,
      });
    }
  }

  const collectorUrl = opts.collectorUrl ?? config.collectorUrl;
  const sidecar = await runSidecar({
    postgres: config.connections
      .filter(({ connection }) => connection.spec.type === 'postgres')
      .map(({ connection, caPem }) => {
        const name = connection.metadata.name ?? '';
        return {
          name,
          listenPort: opts.listenPorts?.[name] ?? connection.spec.listen.port,
          target: postgresTargetOf(connection, caPem),
          // Sessions start with the policies of the latest successful refresh.
          policyFor: (identity) => {
            const factory = factories.get(name);
            if (!factory) return { refused: `no policy is loaded for connection ${name}` };
            return factory(identity);
          },
        };
      }),
    podIdentity: {
      serviceAccount: { namespace: config.pod.namespace, name: config.pod.serviceAccount },
      pod: { name: config.pod.name, namespace: config.pod.namespace, uid: config.pod.uid },
      groups: [],
    },
    credentials: new BrokerCredentialSource(broker),
    approvals: new BrokerApprovalGate(broker, log),
    recordingsDir: opts.recordingsDir,
    collector:
      collectorUrl && opts.collectorTokenFile
        ? { url: collectorUrl, tokenFile: opts.collectorTokenFile, spoolDir: opts.spoolDir }
        : undefined,
    adminPort: opts.adminPort,
    adminHost: opts.adminHost ?? '0.0.0.0',
    oidc: opts.oidc,
    log,
  });
  if (!collectorUrl || !opts.collectorTokenFile) {
    log('warn', 'no collector configured: recordings are written to local files only', {
      dir: opts.recordingsDir,
    });
  }

  let lastPolicies = fingerprint(config.policies);
  const refresh = async () => {
    const cfg = await broker.config();
    const next = fingerprint(cfg.policies);
    if (next !== lastPolicies) {
      compile(cfg);
      lastPolicies = next;
      log('info', 'policies updated', { policies: cfg.policies.map((p) => p.metadata.name) });
    }
  };
  // Keep the last known policies when the broker is briefly unavailable: they are still the
  // platform team's intent, and credentials (which do need the broker) fail closed on their own.
  const timer = setInterval(() => {
    refresh().catch((err: Error) =>
      log('warn', 'policy refresh failed; keeping the last policies', { error: err.message }),
    );
  }, opts.refreshMs ?? 30_000);
  timer.unref();
  return {
    ...sidecar,
    refresh,
    async stop() {
      clearInterval(timer);
      await sidecar.stop();
      await broker.close();
    },
  };
}

async function firstConfig(broker: BrokerClient, timeoutMs: number, log: SidecarLog): Promise<BrokerConfig> {
  const deadline = Date.now() + timeoutMs;
  let delay = 250;
  for (;;) {
    try {
      return await broker.config();
    } catch (err) {
      // A refusal (unknown pod, wrong audience) will not fix itself: fail at once with the reason.
      if (!(err instanceof BrokerCallError) || !err.transient || Date.now() > deadline) throw err;
      log('warn', 'broker not reachable yet; retrying', { error: err.message });
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 5_000);
    }
  }
}

function fingerprint(policies: AccessPolicy[]): string {
  return JSON.stringify(
    policies.map((p) => [p.metadata.name, p.metadata.resourceVersion, p.metadata.generation, p.spec]),
  );
}
