import { mkdir } from 'node:fs/promises';
import {
  type AccessPolicy,
  type BrokerConfig,
  jsonLog,
  type Logger,
  type OidcIssuerConfig,
} from '@chaperone/api';
import { BrokerApprovalGate } from '../approvals/broker-approvals.js';
import { BrokerCallError, BrokerClient } from '../broker/broker-client.js';
import { BrokerCredentialSource } from '../credentials/broker-credentials.js';
import type { Identity } from '../identity/identity.js';
import type { PolicyViewFactory } from '../pipeline/policy-view.js';
import { protocols } from '../protocols/index.js';
import { gatewayHostKey, writeSshAgentConfig } from '../protocols/ssh/agent-config.js';
import { type RunningSidecar, runSidecar } from '../runtime/run-sidecar.js';
import { servableConnections } from '../runtime/served-connections.js';
import { writeAgentKubeconfig } from './agent-config.js';

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
  log?: Logger;
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

  const factories = new Map<string, PolicyViewFactory<unknown>>();
  const compile = (cfg: BrokerConfig) => {
    for (const { connection } of cfg.connections) {
      const module = protocols[connection.spec.type];
      if (!module.supported) continue;
      factories.set(connection.metadata.name ?? '', module.policyView(connection, cfg.policies));
    }
  };
  compile(config);
  const served = servableConnections(config.connections, protocols, log);

  const collectorUrl = opts.collectorUrl ?? config.collectorUrl;
  const sidecar = await runSidecar({
    protocols,
    connections: served.map(({ connection, caPem, module }) => {
      const name = connection.metadata.name ?? '';
      return {
        type: module.type,
        name,
        listenPort: opts.listenPorts?.[name] ?? connection.spec.listen.port,
        target: module.targetOf(connection, caPem),
        // Sessions start with the policies of the latest successful refresh.
        policyFor: (identity: Identity) => {
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
  const kube = served
    .filter(({ connection }) => connection.spec.type === 'kubernetes')
    .map(({ connection }) => {
      const name = connection.metadata.name ?? '';
      return { name, port: sidecar.gateways.get(name)?.port ?? connection.spec.listen.port };
    });
  // Written once the listeners are up, so a kubectl that finds the file finds the sidecar.
  if (opts.agentConfigDir && kube.length) await writeAgentKubeconfig(opts.agentConfigDir, kube);
  if (opts.agentConfigDir) {
    // ssh_config + known_hosts for the agent (CHAPERONE_SSH_CONFIG): host keys exist only once the gateways run.
    const entries = served.flatMap(({ connection }) => {
      const name = connection.metadata.name ?? '';
      const gw = connection.spec.type === 'ssh' ? sidecar.gateways.get(name) : undefined;
      const hostKeyLine = gw && gatewayHostKey(gw);
      if (!gw || !hostKeyLine) return [];
      return [{ name, port: gw.port, hostKeyLine, user: connection.spec.credentials?.ssh?.principals[0] }];
    });
    await writeSshAgentConfig(entries, opts.agentConfigDir);
  }
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

async function firstConfig(broker: BrokerClient, timeoutMs: number, log: Logger): Promise<BrokerConfig> {
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
