// Builders for the policy tests (not used by production code).
import type { AccessPolicy, AccessPolicySpec } from '@chaperone/api';
import type {
  ConnectionTarget,
  Identity,
  KubernetesRequest,
  PostgresStatement,
  Risk,
  SshRequest,
} from './types.js';

/** namespace null: a policy without metadata.namespace (standalone YAML). */
export function policy(
  name: string,
  spec: Partial<AccessPolicySpec>,
  namespace: string | null = 'shop',
): AccessPolicy {
  return {
    apiVersion: 'chaperone.dev/v1alpha1',
    kind: 'AccessPolicy',
    metadata: { name, ...(namespace !== null ? { namespace } : {}) },
    spec: {
      subjects: [{ kind: 'ServiceAccount', name: 'agent' }],
      connections: { names: ['orders-db'] },
      rules: [{ name: 'allow-all', action: 'allow' }],
      approval: { approvers: { groups: ['dba'] } },
      ...spec,
    },
  };
}

export function connection(
  name = 'orders-db',
  opts: {
    labels?: Record<string, string>;
    type?: 'postgres' | 'ssh' | 'kubernetes';
    namespace?: string | null;
  } = {},
): ConnectionTarget {
  const namespace = opts.namespace === undefined ? 'shop' : opts.namespace;
  return {
    metadata: {
      name,
      ...(namespace !== null ? { namespace } : {}),
      ...(opts.labels ? { labels: opts.labels } : {}),
    },
    spec: { type: opts.type ?? 'postgres' },
  };
}

/** The ServiceAccount shop/agent, optionally acting for an OIDC user with groups. */
export function agent(extra: Partial<Identity> = {}): Identity {
  return { serviceAccount: { namespace: 'shop', name: 'agent' }, groups: [], ...extra };
}

export function pg(
  classes: PostgresStatement['classes'],
  tables: string[] = [],
  risks: Risk[] = [],
): PostgresStatement {
  return { type: 'postgres', classes, tables, risks };
}

export function sshExec(command: string, risks: Risk[] = []): SshRequest {
  return { type: 'ssh', operation: 'exec', command, risks };
}

export function sshForward(target: string): SshRequest {
  return { type: 'ssh', operation: 'port-forward', target, risks: [] };
}

export function kube(
  verb: string,
  resource: string,
  extra: Partial<Omit<KubernetesRequest, 'type' | 'verb' | 'resource'>> = {},
): KubernetesRequest {
  return { type: 'kubernetes', verb, apiGroup: '', resource, risks: [], ...extra };
}

export function risk(detector: string, reason = `${detector} found`): Risk {
  return { detector, reason };
}
