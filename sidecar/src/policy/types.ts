import type { ConnectionSpec, GuardrailDetector, ObjectMeta } from '@chaperone/api';

export type { Identity } from '../identity/identity.js';

/** A risk the protocol's classifier found; `detector` names a guardrail detector (e.g. delete-without-where). */
export interface Risk {
  detector: GuardrailDetector | (string & {});
  /** What was found, as a phrase: "DELETE without WHERE on public.orders". Shown to agents and approvers. */
  reason: string;
}

/** Statement classes from the PostgreSQL classifier; 'session' covers BEGIN, COMMIT, SET, DISCARD … */
export type PostgresStatementClass = 'read' | 'write' | 'ddl' | 'admin' | 'copy' | 'session';

/** One classified SQL statement. */
export interface PostgresStatement {
  type: 'postgres';
  classes: PostgresStatementClass[];
  /** Every table the statement touches, schema-qualified ('schema.table'). */
  tables: string[];
  risks: Risk[];
}

/** One SSH channel request. */
export interface SshRequest {
  type: 'ssh';
  operation: 'shell' | 'exec' | 'port-forward' | 'sftp';
  /** exec: the full command line. */
  command?: string;
  /** port-forward: 'host:port'. */
  target?: string;
  risks: Risk[];
}

/** One Kubernetes API request, as RBAC sees it. */
export interface KubernetesRequest {
  type: 'kubernetes';
  verb: string;
  /** '' for the core group. */
  apiGroup: string;
  resource: string;
  subresource?: string;
  /** Absent for cluster-scoped requests. */
  namespace?: string;
  name?: string;
  risks: Risk[];
}

export type Operation = PostgresStatement | SshRequest | KubernetesRequest;
export type OperationType = Operation['type'];

export interface Approvers {
  groups: string[];
  users: string[];
}

export type PolicyDecision =
  | {
      action: 'allow';
      policy: string;
      /** The matching rule, or '(session)' for session statements. */
      rule: string;
      /** Never set on allow; declared so `decision.guardrail` reads without narrowing. */
      guardrail?: undefined;
    }
  | {
      action: 'deny';
      /** Absent when no policy decided (no policy applies, no rule matched, unclassifiable operation). */
      policy?: string;
      rule?: string;
      /** Set when a guardrail (not the rule) made it a deny. */
      guardrail?: string;
      reason: string;
    }
  | {
      action: 'approve';
      policy: string;
      /** The rule that matched; when `guardrail` is set, the guardrail escalated that rule's result. */
      rule: string;
      guardrail?: string;
      reason: string;
      approvers: Approvers;
      required: number;
      timeoutMs: number;
    };

export type PolicyAction = PolicyDecision['action'];

/** The parts of a Connection the engine looks at; a full Connection CR satisfies it. */
export interface ConnectionTarget {
  metadata: Pick<ObjectMeta, 'name' | 'namespace' | 'labels'>;
  spec: Pick<ConnectionSpec, 'type'>;
}

export interface PolicyEngineOptions {
  /**
   * Namespace of objects whose metadata.namespace is absent (standalone YAML), as `kubectl apply`
   * would place them. Default 'default'.
   */
  defaultNamespace?: string;
}
