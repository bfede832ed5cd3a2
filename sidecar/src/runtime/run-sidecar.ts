import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createSecureContext } from 'node:tls';
import { jsonLog, type Logger, type OidcIssuerConfig, OidcVerifier } from '@chaperone/api';
import { collectDefaultMetrics, Registry } from 'prom-client';
import type { ApprovalGate } from '../approvals/approval-gate.js';
import type { LocalApprovalGate } from '../approvals/local-approvals.js';
import type { CredentialSource } from '../credentials/credential-source.js';
import type { Identity } from '../identity/identity.js';
import type { ProtocolRegistry, RunningGateway, ServedConnection } from '../protocols/types.js';
import { closeInterruptedRecordings } from '../recording/jsonl-recovery.js';
import { JsonLinesSink } from '../recording/jsonl-sink.js';
import { SessionRecorder } from '../recording/session-recorder.js';
import { CollectorShipper } from '../recording/shipper.js';
import { Spool } from '../recording/spool.js';
import { closeInterruptedSessions } from '../recording/spool-recovery.js';
import { SpoolSink } from '../recording/spool-sink.js';
import { AdminServer } from './admin-server.js';

export { jsonLog };

/** What both modes share; the mode decides where connections, credentials and approvals come from. */
export interface SidecarOptions {
  /** The protocol modules; every Connection is served through the one of its type. */
  protocols: ProtocolRegistry;
  connections: ServedConnection[];
  podIdentity: Identity;
  credentials: CredentialSource;
  approvals: ApprovalGate;
  /** Standalone: the admin endpoint also serves the local approval queue. */
  localApprovals?: LocalApprovalGate;
  /** JSON-lines files per session, when no collector is configured. */
  recordingsDir: string;
  /** Ship recordings to a collector through an on-disk spool. */
  collector?: { url: string; tokenFile: string; spoolDir: string; spoolMaxBytes?: number };
  adminPort: number;
  /**
   * Default 127.0.0.1. In a pod the kubelet probes the pod IP, so in-cluster mode listens on all
   * addresses — it then serves health and metrics only (approvals are local to standalone mode).
   */
  adminHost?: string;
  oidc?: { issuers: OidcIssuerConfig[]; require: boolean; tokenUser: string };
  maxMessageBytes?: number;
  /** Benchmarks only: sessions are not recorded at all. Not reachable from the CLI. */
  benchmarkWithoutRecording?: boolean;
  /** PEM certificate and key: offer TLS to agents that ask for it (SSLRequest). */
  clientTls?: { cert: string; key: string };
  /** Extra readiness condition of the mode (e.g. the broker's configuration was fetched). */
  ready?: () => boolean;
  log?: Logger;
}

export interface RunningSidecar {
  gateways: Map<string, RunningGateway>;
  admin: AdminServer;
  shipper?: CollectorShipper;
  registry: Registry;
  stop(): Promise<void>;
}

export async function runSidecar(opts: SidecarOptions): Promise<RunningSidecar> {
  const log = opts.log ?? jsonLog;
  const modules = Object.values(opts.protocols).filter((m) => m.supported);
  const prepared = Promise.all(modules.map((m) => m.prepare()));
  const registry = new Registry();
  registry.setDefaultLabels({ component: 'sidecar' });
  collectDefaultMetrics({ register: registry, prefix: 'chaperone_sidecar_' });
  const verifier = opts.oidc?.issuers.length ? new OidcVerifier(opts.oidc.issuers) : undefined;
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
    // Before any new session and before shipping: end what a killed predecessor left open.
    const { closed, failed } = closeInterruptedSessions(spool);
    for (const c of closed) log('warn', 'closed a session left open by an earlier sidecar process', { ...c });
    for (const f of failed) log('error', 'could not close a session left open in the spool', f);
    shipper.start();
  } else if (!opts.benchmarkWithoutRecording) {
    const { closed, failed } = closeInterruptedRecordings(opts.recordingsDir);
    for (const c of closed) log('warn', 'closed a session left open by an earlier sidecar process', { ...c });
    for (const f of failed) log('error', 'could not close a session left open in the recordings', f);
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
  const clientTls = opts.clientTls ? createSecureContext(opts.clientTls) : undefined;
  await prepared;
  const gateways = new Map<string, RunningGateway>();
  for (const served of opts.connections) {
    const gw = await opts.protocols[served.type].startGateway(served, {
      podIdentity: opts.podIdentity,
      credentials: opts.credentials,
      approvals: opts.approvals,
      recorderFor: recorderFor(served.name),
      tokenVerifier: verifier,
      requireToken: opts.oidc?.require ?? false,
      tokenUser: opts.oidc?.tokenUser ?? 'oidc',
      maxMessageBytes: opts.maxMessageBytes ?? 16 * 1024 * 1024,
      clientTls,
      listenHost: '127.0.0.1',
      maxConnections: 256,
      hashKey,
      log,
    });
    gateways.set(served.name, gw);
    log('info', 'listening', { connection: served.name, address: `127.0.0.1:${gw.port}` });
  }
  let ready = false;
  if (opts.localApprovals && (opts.adminHost ?? '127.0.0.1') !== '127.0.0.1') {
    throw new Error('the local approval queue is served on loopback only');
  }
  const admin = new AdminServer({
    host: opts.adminHost ?? '127.0.0.1',
    port: opts.adminPort,
    registry,
    approvals: opts.localApprovals,
    // A fault inside the parser's WebAssembly marks it unusable: report not-ready so the pod restarts.
    ready: () => ready && modules.every((m) => m.ready()) && (opts.ready?.() ?? true),
  });
  await admin.listen();
  ready = true;
  return {
    gateways,
    admin,
    shipper,
    registry,
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
