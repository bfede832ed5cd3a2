import { createServer, type Server } from 'node:http';
import { type AccessPolicy, API_GROUP, API_VERSION, jsonLog, type Logger, PLURALS } from '@chaperone/api';
import * as k8s from '@kubernetes/client-node';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { OperatorHttpsServer } from './admission/https-server.js';
import { createApprovalHandler } from './approval/approval-webhook.js';
import { serviceAccountUsername } from './approval/decide-status-update.js';
import { registerBrokerRoutes } from './broker/broker-routes.js';
import { connectionIssuers } from './broker/connection-issuers.js';
import { CredentialBroker } from './broker/credential-broker.js';
import { KubeBrokerStore } from './broker/kube-broker-store.js';
import { SidecarAuthenticator } from './broker/sidecar-authenticator.js';
import {
  type CertificateSource,
  FileCertificateSource,
  ServingCertificateManager,
  type ServingCertificateMaterial,
  startCertificateWatch,
} from './certs/index.js';
import {
  ControllerManager,
  coreV1EventSink,
  EventRecorder,
  type LeaderElectionSettings,
} from './controller/index.js';
import { PostgresRoleIssuer } from './credentials/index.js';
import type { InjectionConfig } from './injection/build-patch.js';
import { createInjectionHandler } from './injection/injection-webhook.js';
import { injectedPodProblems } from './injection/verify-injected-pod.js';
import { RoleJanitor } from './jit/role-janitor.js';
import type { NotificationConfig } from './notifications/notification-config.js';
import { requestedEvents } from './notifications/request-events.js';
import {
  APPROVAL_WEBHOOK_PATH,
  DEFAULT_HTTPS_PORT,
  DEFAULT_METRICS_PORT,
  INJECTION_WEBHOOK_PATH,
  MUTATING_WEBHOOK_CONFIGURATION,
  SERVING_TLS_SECRET,
} from './operator-constants.js';

export interface OperatorOptions {
  kubeConfig: k8s.KubeConfig;
  /** The operator's namespace (admin Secrets, the Lease, the TLS Secret). */
  namespace: string;
  /** This replica's identity in the Lease (the pod name). */
  podName: string;
  /** The operator's ServiceAccount: its writes to AccessRequest status are the operator's own. */
  serviceAccountName: string;
  /** The Service in front of the HTTPS port: certificate names and the broker URL sidecars use. */
  serviceName: string;
  httpsHost?: string;
  httpsPort?: number;
  metricsHost?: string;
  metricsPort?: number;
  webhookConfiguration?: string;
  tlsSecret?: string;
  /** cert-manager mode: tls.crt, tls.key and ca.crt are mounted here; the operator writes no certificate. */
  certDir?: string;
  /** Extra certificate names (tests: the API server calls https://127.0.0.1:PORT). */
  extraCertNames?: { dnsNames?: string[]; ipAddresses?: string[] };
  sidecarImage: string;
  /** Sidecar images still accepted at the broker (pods injected before an upgrade). */
  previousSidecarImages?: string[];
  /** How sidecars reach the broker; default https://SERVICE.NAMESPACE.svc:443. */
  brokerUrl?: string;
  collectorUrl?: string;
  injection?: Pick<InjectionConfig, 'resources' | 'tokenExpirationSeconds' | 'runAsUser' | 'imagePullPolicy'>;
  leaderElection?: LeaderElectionSettings | false;
  janitor?: { intervalMs?: number; dropAfterMs?: number; podGoneGraceMs?: number };
  connectionRecheckAfterMs?: number;
  /** Approver notifications (chaperone-operator run --notifications-config FILE). */
  notifications?: NotificationConfig;
  log?: Logger;
}

export interface RunningOperator {
  httpsPort: number;
  metricsPort: number;
  registry: Registry;
  manager: ControllerManager;
  readonly isLeader: boolean;
  stop(): Promise<void>;
}

export { jsonLog };

/**
 * One operator replica. Every replica serves the webhooks and the broker (stateless; behind the
 * Service); the Lease holder alone reconciles, rotates the certificate and retires JIT roles.
 */
export async function startOperator(opts: OperatorOptions): Promise<RunningOperator> {
  const log = opts.log ?? jsonLog;
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'chaperone_operator_' });
  const namespace = opts.namespace;
  const kc = opts.kubeConfig;
  const store = new KubeBrokerStore(kc);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);

  let ready = false;
  const metricsServer = await listenMetrics(
    opts.metricsHost ?? '0.0.0.0',
    opts.metricsPort ?? DEFAULT_METRICS_PORT,
    registry,
    () => ready,
  );

  const certManager = opts.certDir
    ? undefined
    : new ServingCertificateManager({
        kubeConfig: kc,
        namespace,
        serviceName: opts.serviceName,
        secretName: opts.tlsSecret ?? SERVING_TLS_SECRET,
        mutatingWebhookConfigurations: [opts.webhookConfiguration ?? MUTATING_WEBHOOK_CONFIGURATION],
        ...(opts.extraCertNames?.dnsNames ? { extraDnsNames: opts.extraCertNames.dnsNames } : {}),
        ...(opts.extraCertNames?.ipAddresses ? { ipAddresses: opts.extraCertNames.ipAddresses } : {}),
        registry,
        log,
      });
  const certSource: CertificateSource =
    certManager ?? new FileCertificateSource(opts.certDir as string, { registry, log });

  const janitor = new RoleJanitor({
    kubeConfig: kc,
    operatorNamespace: namespace,
    store,
    registry,
    ...(opts.janitor?.intervalMs !== undefined ? { intervalMs: opts.janitor.intervalMs } : {}),
    ...(opts.janitor?.dropAfterMs !== undefined ? { dropAfterMs: opts.janitor.dropAfterMs } : {}),
    ...(opts.janitor?.podGoneGraceMs !== undefined ? { podGoneGraceMs: opts.janitor.podGoneGraceMs } : {}),
    log,
  });
  let rotation: { stop(): void } | undefined;
  const manager = new ControllerManager({
    kubeConfig: kc,
    operatorNamespace: namespace,
    identity: opts.podName,
    registry,
    log,
    ...(opts.leaderElection !== undefined ? { leaderElection: opts.leaderElection } : {}),
    ...(opts.connectionRecheckAfterMs !== undefined
      ? { connectionRecheckAfterMs: opts.connectionRecheckAfterMs }
      : {}),
    ...(opts.notifications ? { notifications: opts.notifications } : {}),
    onLeadershipChange: async (leading: boolean) => {
      if (leading) {
        rotation = certManager?.startRotationLoop({
          onError: (err) => log('error', 'serving certificate rotation failed', { error: err.message }),
        });
        janitor.start();
      } else {
        rotation?.stop();
        rotation = undefined;
        await janitor.stop();
      }
    },
  });
  manager.start();

  // Replicas that do not lead wait here until the leader has written the certificate.
  let server: OperatorHttpsServer | undefined;
  let material: ServingCertificateMaterial;
  const { first, watch } = startCertificateWatch(certSource, (m) => {
    material = m;
    server?.setCertificate(m);
    log('info', 'serving certificate reloaded');
  });
  material = await first;

  const brokerUrl = opts.brokerUrl ?? `https://${opts.serviceName}.${namespace}.svc:443`;
  const injectionConfig = (): InjectionConfig => {
    if (!material.caPem) {
      throw new Error(
        `no CA bundle for the broker: ${opts.certDir}/ca.crt is missing (cert-manager must write ca.crt)`,
      );
    }
    return {
      ...opts.injection,
      sidecarImage: opts.sidecarImage,
      brokerUrl,
      brokerCaPem: material.caPem,
      ...(opts.collectorUrl ? { collectorUrl: opts.collectorUrl } : {}),
    };
  };

  server = new OperatorHttpsServer({
    host: opts.httpsHost ?? '0.0.0.0',
    port: opts.httpsPort ?? DEFAULT_HTTPS_PORT,
    certificate: material,
    registry,
    log,
  });
  server.admission(
    INJECTION_WEBHOOK_PATH,
    'injection',
    createInjectionHandler({
      config: injectionConfig,
      operatorNamespace: namespace,
      lookupNamespace: async (name) => {
        try {
          return (await core.readNamespace({ name })).metadata?.labels ?? {};
        } catch (err) {
          if ((err as { code?: number }).code === 404) return undefined;
          throw err;
        }
      },
      lookupConnection: (ns, name) => store.getConnection(ns, name),
      log,
    }),
  );
  server.admission(
    APPROVAL_WEBHOOK_PATH,
    'approval',
    createApprovalHandler({
      operatorUsernames: [serviceAccountUsername(namespace, opts.serviceAccountName)],
      lookupPolicy: async (ns, name) => {
        try {
          return (await custom.getNamespacedCustomObject({
            group: API_GROUP,
            version: API_VERSION,
            namespace: ns,
            plural: PLURALS.AccessPolicy,
            name,
          })) as AccessPolicy;
        } catch (err) {
          if ((err as { code?: number }).code === 404) return undefined;
          throw err;
        }
      },
    }),
  );
  // Every replica's broker creates requests, so every replica announces its own (Events; the
  // leader's notifier does the messages).
  const requestEvents = new EventRecorder({
    sink: coreV1EventSink(core),
    reportingInstance: opts.podName,
    log,
  });
  const broker = new CredentialBroker({
    store,
    operatorNamespace: namespace,
    issuers: connectionIssuers({
      store,
      operatorNamespace: namespace,
      postgres: new PostgresRoleIssuer(),
      coreApi: core,
    }),
    ...(opts.collectorUrl ? { collectorUrl: opts.collectorUrl } : {}),
    onIssued: (identity, c) =>
      log('info', 'credential issued', {
        pod: `${identity.namespace}/${identity.pod.name}`,
        connection: c.connection,
        type: c.type,
        description: c.description,
      }),
    onAccessRequest: (identity, ar) => {
      log('info', 'access request created', {
        pod: `${identity.namespace}/${identity.pod.name}`,
        accessRequest: `${ar.metadata.namespace}/${ar.metadata.name}`,
        rule: ar.spec.rule,
      });
      for (const { object, event } of requestedEvents(ar)) void requestEvents.record(object, event);
    },
  });
  registerBrokerRoutes(server.app, {
    broker,
    authenticator: new SidecarAuthenticator({
      kubeConfig: kc,
      podProblems: (pod) =>
        injectedPodProblems(pod, injectionConfig(), [
          opts.sidecarImage,
          ...(opts.previousSidecarImages ?? []),
        ]),
    }),
    registry,
    log,
  });
  const httpsPort = await server.listen();
  ready = true;
  log('info', 'operator serving', { https: httpsPort, replica: opts.podName });
  const metricsAddress = metricsServer.address();
  return {
    httpsPort,
    metricsPort: typeof metricsAddress === 'object' && metricsAddress ? metricsAddress.port : 0,
    registry,
    manager,
    get isLeader() {
      return manager.isLeader;
    },
    async stop() {
      ready = false;
      watch.stop();
      // Stop answering first (the Service moves webhook calls to the other replica), then hand the Lease over.
      broker.shutdown();
      await server?.close();
      await manager.stop();
      await requestEvents.close();
      rotation?.stop();
      await janitor.stop();
      await new Promise<void>((resolve) => metricsServer.close(() => resolve()));
    },
  };
}

async function listenMetrics(
  host: string,
  port: number,
  registry: Registry,
  ready: () => boolean,
): Promise<Server> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/healthz') return void res.writeHead(200).end('ok');
    if (path === '/readyz')
      return void res.writeHead(ready() ? 200 : 503).end(ready() ? 'ready' : 'starting');
    if (path === '/metrics') {
      registry.metrics().then(
        (body) => res.writeHead(200, { 'content-type': registry.contentType }).end(body),
        (err: Error) => res.writeHead(500).end(err.message),
      );
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  return server;
}
