import { readFile, writeFile } from 'node:fs/promises';
import { makeWorkDir } from './workdir.js';

/** The fields of an audit.k8s.io/v1 Event that show how the API server attributed a request. */
export interface KubeAuditEvent {
  auditID: string;
  stage: string;
  verb: string;
  requestURI: string;
  userAgent?: string;
  user?: { username?: string; groups?: string[] };
  objectRef?: {
    resource?: string;
    namespace?: string;
    name?: string;
    apiGroup?: string;
    apiVersion?: string;
    subresource?: string;
  };
  responseStatus?: { code?: number };
}

export interface KubeAuditLog {
  /** kube-apiserver flags (pass as ControlPlaneOptions.apiserverFlags). */
  readonly flags: string[];
  readonly path: string;
  /** Every ResponseComplete (or Panic) event written so far. */
  events(): Promise<KubeAuditEvent[]>;
  remove(): Promise<void>;
}

/**
 * An audit policy at Metadata level for every request, written as JSON lines to a file with no
 * batching: the API server's own record of each request's verb and objectRef, which tests compare
 * with what a gateway derived for the same request.
 */
export async function kubeAuditLog(): Promise<KubeAuditLog> {
  const dir = await makeWorkDir('kube-audit');
  const policy = dir.file('audit-policy.yaml');
  const path = dir.file('audit.log');
  await writeFile(
    policy,
    [
      'apiVersion: audit.k8s.io/v1',
      'kind: Policy',
      'omitStages: ["RequestReceived", "ResponseStarted"]',
      'rules:',
      '- level: Metadata',
      '',
    ].join('\n'),
  );
  return {
    flags: [
      `--audit-policy-file=${policy}`,
      `--audit-log-path=${path}`,
      '--audit-log-format=json',
      '--audit-log-mode=blocking',
      '--audit-log-maxbackup=1',
    ],
    path,
    async events() {
      let text: string;
      try {
        text = await readFile(path, 'utf8');
      } catch {
        return [];
      }
      return text
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => JSON.parse(l) as KubeAuditEvent);
    },
    remove: () => dir.remove(),
  };
}

/**
 * A kubeconfig for a gateway on loopback with no credentials at all — what an agent container
 * gets when a gateway (not the agent) holds the credential. `caPath` for an https:// server.
 */
export async function writeCredentiallessKubeconfig(
  path: string,
  server: string,
  opts: { namespace?: string; caPath?: string } = {},
) {
  await writeFile(
    path,
    [
      'apiVersion: v1',
      'kind: Config',
      'clusters:',
      '- name: gateway',
      '  cluster:',
      `    server: ${server}`,
      ...(opts.caPath ? [`    certificate-authority: ${opts.caPath}`] : []),
      'users:',
      '- name: agent',
      '  user: {}',
      'contexts:',
      '- name: gateway',
      '  context:',
      '    cluster: gateway',
      '    user: agent',
      `    namespace: ${opts.namespace ?? 'default'}`,
      'current-context: gateway',
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  return path;
}
