import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createSecureContext } from 'node:tls';
import { type Connection, type OidcIssuerConfig, OidcVerifier } from '@chaperone/api';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { AdminServer } from '../admin/admin-server.js';
import type { Identity } from '../identity/identity.js';
import { LocalCancelRegistry, PostgresGateway } from '../postgres/gateway.js';
import { postgresPolicyFactory } from '../postgres/postgres-policy.js';
import { initSqlParser, sqlParserHealth } from '../postgres/sql/index.js';
import type { UpstreamTarget } from '../postgres/upstream.js';
import { SessionRecorder } from '../recording/session-recorder.js';
import { CollectorShipper } from '../recording/shipper.js';
import { Spool } from '../recording/spool.js';
import { SpoolSink } from '../recording/spool-sink.js';
import { JsonLinesSink } from './jsonl-sink.js';
import { loadStandaloneConfig } from './load-config.js';
import { LocalApprovalGate } from './local-approvals.js';
import { SecretCredentialSource } from './secret-credentials.js';

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
  log?: (level: 'info' | 'warn' | 'error', message: string, fields?: Record<string, unknown>) => void;
}

export interface RunningSidecar {
  gateways: Map<string, PostgresGateway>;
  admin: AdminServer;
  shipper?: CollectorShipper;
  approvals: LocalApprovalGate;
  stop(): Promise<void>;
}

export function jsonLog(
  level: 'info' | 'warn' | 'error',
  message: string,
  fields: Record<string, unknown> = {},
): void {
  process.stderr.write(
    `${JSON.stringify({ time: new Date().toISOString(), level, msg: message, ...fields })}\n`,
  );
}

export async function runStandalone(opts: StandaloneOptions): Promise<RunningSidecar> {
  const log = opts.log ?? jsonLog;
  // The SQL parser is WebAssembly: load it before the first agent connects.
  const parserReady = initSqlParser();
  const config = await loadStandaloneConfig(opts.configDir, opts.serviceAccount.namespace);
  const wanted = config.connections.filter(
    (c) =>
      c.spec.type === 'postgres' && (!opts.connections || opts.connections.includes(c.metadata.name ?? '')),
  );
  for (const name of opts.connections ?? []) {
    if (!config.connections.some((c) => c.metadata.name ?? '' === name)) {
      throw new Error(`connection ${name} is not defined in ${opts.configDir}`);
    }
  }
  const registry = new Registry();
  registry.setDefaultLabels({ component: 'sidecar' });
  collectDefaultMetrics({ register: registry, prefix: 'chaperone_sidecar_' });
  let adminPort = opts.adminPort;
  const approvals = new LocalApprovalGate(
    (name) =>
      `approve with: chaperone-sidecar approvals approve ${name} --admin http://127.0.0.1:${adminPort}`,
  );
  const credentials = new SecretCredentialSource(config.connections, config.secrets);
  const podIdentity: Identity = { serviceAccount: opts.serviceAccount, groups: [] };
  const verifier = opts.oidc?.issuers.length ? new OidcVerifier(opts.oidc.issuers) : undefined;
  const cancels = new LocalCancelRegistry();
  let spool: Spool | undefined;
  let shipper: CollectorShipper | undefined;
  if (opts.collector) {
    const c = opts.collector;
    spool = new Spool({ dir: c.spoolDir, maxBytes: c.spoolMaxBytes ?? 256 * 1024 * 1024 });
    shipper = new CollectorShipper({
      spool,
      spoolDir: c.spoolDir,
      url: c.url,
      // Re-read every time: a projected ServiceAccount token is rotated on disk by the kubelet.
      token: async () => (await readFile(c.tokenFile, 'utf8')).trim(),
      registry,
      log,
    });
    shipper.start();
  }
  const recorderFor = (connection: string) => (sessionId: string, identity: Identity) => {
    if (opts.benchmarkWithoutRecording) return new UnrecordedSession(sessionId, connection, identity);
    if (!spool)
      return new SessionRecorder(
        new JsonLinesSink(opts.recordingsDir, sessionId),
        sessionId,
        connection,
        identity,
      );
    // Policy when the spool is full: refuse new sessions, let running ones finish (never unbounded memory).
    if (spool.isFull())
      throw new Error(
        'the recording spool is full (is the collector reachable?); new sessions are refused until recordings are shipped',
      );
    const s = spool;
    return new SessionRecorder(new SpoolSink(s, () => shipper?.notify()), sessionId, connection, identity);
  };
  const hashKey = randomBytes(32);
  await parserReady;
  const gateways = new Map<string, PostgresGateway>();
  for (const conn of wanted) {
    const name = conn.metadata.name ?? '';
    const gw = new PostgresGateway({
      connection: name,
      target: targetOf(conn, config.secrets),
      listenHost: '127.0.0.1',
      listenPort: opts.listenPorts?.[name] ?? conn.spec.listen.port,
      podIdentity,
      credentials,
      policyFor: postgresPolicyFactory(conn, config.policies),
      approvals,
      recorderFor: recorderFor(name),
      cancels,
      tokenVerifier: verifier,
      requireToken: opts.oidc?.require ?? false,
      tokenUser: opts.oidc?.tokenUser ?? 'oidc',
      maxMessageBytes: opts.maxMessageBytes ?? 16 * 1024 * 1024,
      clientTls: opts.clientTls ? createSecureContext(opts.clientTls) : undefined,
      maxConnections: 256,
      hashKey,
      log,
    });
    await gw.listen();
    gateways.set(name, gw);
    log('info', 'listening', { connection: name, address: `127.0.0.1:${gw.port}` });
  }
  let ready = false;
  const admin = new AdminServer({
    host: '127.0.0.1',
    port: opts.adminPort,
    registry,
    approvals,
    // A fault inside the parser's WebAssembly marks it unusable: report not-ready so the pod restarts.
    ready: () => ready && sqlParserHealth().ok,
  });
  await admin.listen();
  adminPort = admin.port;
  ready = true;
  return {
    gateways,
    admin,
    approvals,
    shipper,
    async stop() {
      ready = false;
      await Promise.all([...gateways.values()].map((g) => g.close()));
      // Give the shipper a moment to deliver the last events; the spool keeps the rest for next start.
      await shipper?.stop(2_000);
      spool?.close();
      await admin.close();
    },
  };
}

/** For benchmarks: the recorder's interface, recording nothing. */
class UnrecordedSession extends SessionRecorder {
  constructor(sessionId: string, connection: string, identity: Identity) {
    super({ write() {}, flush: async () => {} }, sessionId, connection, identity);
  }
  override record(): void {}
}

function targetOf(conn: Connection, secrets: Map<string, Record<string, string>>): UpstreamTarget {
  const name = conn.metadata.name ?? '';
  const ep = conn.spec.endpoint;
  const tls = ep.tls ?? {};
  const caRef = tls.caSecretRef;
  const ca = caRef ? secrets.get(caRef.name)?.[caRef.key ?? 'ca.crt'] : undefined;
  if (caRef && !ca)
    throw new Error(`connection ${name}: CA Secret ${caRef.name} is not in the config folder`);
  return {
    host: ep.host ?? '127.0.0.1',
    port: ep.port ?? 5432,
    database: ep.database ?? 'postgres',
    tls: { mode: tls.mode ?? 'verify-full', ca, serverName: tls.serverName },
  };
}
