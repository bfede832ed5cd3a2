#!/usr/bin/env node
// chaperone-operator run — one replica of the operator (reconcilers, webhooks, credential broker).
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import { parse as parseYaml } from 'yaml';
import { parseNotificationConfig } from './notifications/notification-config.js';
import { jsonLog, startOperator } from './operator-process.js';

const USAGE = `usage: chaperone-operator run --namespace NS --pod-name NAME --service-account SA
         --service-name SVC --sidecar-image IMAGE [--collector-url URL] [--broker-url URL]
         [--https-port 9443] [--metrics-port 8080] [--webhook-configuration chaperone]
         [--tls-secret chaperone-operator-tls | --cert-dir DIR] [--kubeconfig FILE]
         [--previous-sidecar-image IMAGE ...] [--no-leader-election] [--extra-cert-ip IP ...]
         [--notifications-config FILE]`;

async function main(argv: string[]): Promise<number> {
  if (argv[0] !== 'run') {
    console.error(USAGE);
    return argv[0] === '--help' || argv[0] === '-h' ? 0 : 2;
  }
  const { values } = parseArgs({
    args: argv.slice(1),
    options: {
      namespace: { type: 'string', default: process.env.POD_NAMESPACE },
      'pod-name': { type: 'string', default: process.env.POD_NAME },
      'service-account': { type: 'string', default: process.env.POD_SERVICE_ACCOUNT },
      'service-name': { type: 'string' },
      'sidecar-image': { type: 'string' },
      'previous-sidecar-image': { type: 'string', multiple: true },
      'collector-url': { type: 'string' },
      'broker-url': { type: 'string' },
      'https-port': { type: 'string', default: '9443' },
      'metrics-port': { type: 'string', default: '8080' },
      'webhook-configuration': { type: 'string' },
      'tls-secret': { type: 'string' },
      'cert-dir': { type: 'string' },
      kubeconfig: { type: 'string' },
      'no-leader-election': { type: 'boolean' },
      'extra-cert-ip': { type: 'string', multiple: true },
      'notifications-config': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const missing = (
    ['namespace', 'pod-name', 'service-account', 'service-name', 'sidecar-image'] as const
  ).filter((k) => !values[k]);
  if (missing.length) {
    console.error(`missing ${missing.map((m) => `--${m}`).join(', ')}\n${USAGE}`);
    return 2;
  }
  // Approver notifications: targets and retry settings (JSON or YAML, rendered by the chart).
  const notifications = values['notifications-config']
    ? parseNotificationConfig(parseYaml(readFileSync(values['notifications-config'], 'utf8')))
    : undefined;
  const kubeConfig = new k8s.KubeConfig();
  if (values.kubeconfig) kubeConfig.loadFromFile(values.kubeconfig);
  else kubeConfig.loadFromDefault();
  const operator = await startOperator({
    kubeConfig,
    namespace: values.namespace as string,
    podName: values['pod-name'] as string,
    serviceAccountName: values['service-account'] as string,
    serviceName: values['service-name'] as string,
    sidecarImage: values['sidecar-image'] as string,
    previousSidecarImages: values['previous-sidecar-image'] ?? [],
    httpsPort: Number(values['https-port']),
    metricsPort: Number(values['metrics-port']),
    ...(values['collector-url'] ? { collectorUrl: values['collector-url'] } : {}),
    ...(values['broker-url'] ? { brokerUrl: values['broker-url'] } : {}),
    ...(values['webhook-configuration'] ? { webhookConfiguration: values['webhook-configuration'] } : {}),
    ...(values['tls-secret'] ? { tlsSecret: values['tls-secret'] } : {}),
    ...(values['cert-dir'] ? { certDir: values['cert-dir'] } : {}),
    ...(values['no-leader-election'] ? { leaderElection: false as const } : {}),
    ...(notifications ? { notifications } : {}),
    // Outside a cluster (the demo), the API server calls the webhooks at https://127.0.0.1:PORT.
    ...(values['extra-cert-ip']?.length ? { extraCertNames: { ipAddresses: values['extra-cert-ip'] } } : {}),
  });
  const shutdown = async (signal: string) => {
    jsonLog('info', 'shutting down', { signal });
    await operator.stop();
    process.exit(0);
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));
  return -1;
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (err: Error) => {
    jsonLog('error', err.message);
    process.exit(1);
  },
);
