import {
  type AccessPolicy,
  type AccessRequest,
  type BrokerAccessRequestCreate,
  type BrokerAccessRequestCreated,
  type BrokerAccessRequestDecision,
  type BrokerConfig,
  type BrokerCredential,
  type BrokerCredentialRequest,
  type Connection,
  connectionsSelect,
} from '@chaperone/api';
import { accessRequestFor, howToApprove } from './access-request-for.js';
import { type RateLimit, RateLimiter } from './rate-limiter.js';
import { BrokerAuthError, requireConnection, type SidecarIdentity } from './sidecar-identity.js';

/** Reads the broker needs from the API server. */
export interface BrokerStore {
  getConnection(namespace: string, name: string): Promise<Connection | undefined>;
  listPolicies(namespace: string): Promise<AccessPolicy[]>;
  /** A Secret's decoded data and its annotations, or undefined when it does not exist. */
  readSecret(namespace: string, name: string): Promise<StoredSecret | undefined>;
  createAccessRequest(request: AccessRequest): Promise<AccessRequest>;
  getAccessRequest(namespace: string, name: string): Promise<AccessRequest | undefined>;
  deleteAccessRequest(namespace: string, name: string): Promise<void>;
}

export interface StoredSecret {
  data: Record<string, string>;
  annotations: Record<string, string>;
}

/** Mints credentials; each implementation reads its admin material from the operator's namespace. */
export interface CredentialIssuers {
  postgres(connection: Connection, identity: SidecarIdentity, sessionId?: string): Promise<BrokerCredential>;
  ssh(connection: Connection, identity: SidecarIdentity, publicKey: string): Promise<BrokerCredential>;
  kubernetes(connection: Connection, identity: SidecarIdentity): Promise<BrokerCredential>;
}

export class BrokerRequestError extends Error {
  constructor(
    readonly status: 400 | 404 | 409 | 429 | 502,
    message: string,
    readonly hint?: string,
    /** With 429: when to ask again (the Retry-After header). */
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
  }
}

/**
 * Per pod and Connection, per replica. A sidecar reuses a PostgreSQL role for a third of its TTL and
 * asks for one AccessRequest per guarded statement, so these leave room for restarts and busy
 * agents while bounding what a runaway sidecar or a stolen token can mint.
 */
export const DEFAULT_BROKER_LIMITS: BrokerLimits = {
  credentials: { burst: 10, perMinute: 20 },
  accessRequests: { burst: 20, perMinute: 30 },
};

export interface BrokerLimits {
  credentials: RateLimit;
  accessRequests: RateLimit;
}

export interface CredentialBrokerOptions {
  store: BrokerStore;
  /** Where Secrets named by Connections live (admin credentials, CA bundles): only the operator reads them. */
  operatorNamespace: string;
  issuers: CredentialIssuers;
  collectorUrl?: string;
  /** Told about every issuance (no secret in it): Events, metrics, logs. */
  onIssued?: (
    identity: SidecarIdentity,
    credential: { type: string; connection: string; description: string },
  ) => void;
  onAccessRequest?: (identity: SidecarIdentity, request: AccessRequest) => void;
  now?: () => Date;
  /** Long-poll interval while an AccessRequest is pending. */
  pollIntervalMs?: number;
  /** Issuance limits (default DEFAULT_BROKER_LIMITS). */
  limits?: BrokerLimits;
}

/**
 * The credential broker, minus HTTP: every method takes the identity the authenticator verified,
 * serves only the Connections the pod's annotation lists, and never returns an admin secret.
 */
export class CredentialBroker {
  private readonly now: () => Date;
  /** Aborted on shutdown: long polls answer at once so sidecars re-poll another replica. */
  private readonly closing = new AbortController();
  private readonly credentialLimiter: RateLimiter;
  private readonly accessRequestLimiter: RateLimiter;

  constructor(private readonly opts: CredentialBrokerOptions) {
    this.now = opts.now ?? (() => new Date());
    const limits = opts.limits ?? DEFAULT_BROKER_LIMITS;
    this.credentialLimiter = new RateLimiter(limits.credentials);
    this.accessRequestLimiter = new RateLimiter(limits.accessRequests);
  }

  /** Refuses with 429 once the pod has used up its budget for `what` on this Connection. */
  private limit(limiter: RateLimiter, identity: SidecarIdentity, connection: string, what: string): void {
    const decision = limiter.take(`${identity.pod.uid}/${connection}`, this.now().getTime());
    if (decision.allowed) return;
    const { burst, perMinute } = limiter.limit;
    throw new BrokerRequestError(
      429,
      `pod ${identity.namespace}/${identity.pod.name} asked for too many ${what} for ${connection} (limit: ${burst} at once, ${perMinute} a minute); retry in ${decision.retryAfterSeconds} s`,
      'a sidecar normally reuses what it got; check the agent for a reconnect loop',
      decision.retryAfterSeconds,
    );
  }

  async config(identity: SidecarIdentity): Promise<BrokerConfig> {
    const connections: BrokerConfig['connections'] = [];
    for (const name of identity.connections) {
      const connection = await this.connection(identity, name);
      const caRef = connection.spec.endpoint.tls?.caSecretRef;
      let caPem: string | undefined;
      if (caRef) {
        const ns = this.opts.operatorNamespace;
        caPem = (await this.opts.store.readSecret(ns, caRef.name))?.data[caRef.key ?? 'ca.crt'];
        if (!caPem) {
          throw new BrokerRequestError(
            404,
            `Connection ${name}: CA Secret ${ns}/${caRef.name} (key ${caRef.key ?? 'ca.crt'}) not found`,
            'CA bundles of Connections live in the operator namespace',
          );
        }
      }
      connections.push({ connection: stripStatus(connection), ...(caPem ? { caPem } : {}) });
    }
    const policies = (await this.opts.store.listPolicies(identity.namespace)).filter((p) =>
      connections.some(({ connection }) =>
        connectionsSelect(p.spec.connections, connection.metadata.name, connection.metadata.labels),
      ),
    );
    return {
      pod: {
        namespace: identity.namespace,
        name: identity.pod.name,
        uid: identity.pod.uid,
        serviceAccount: identity.serviceAccount,
      },
      connections,
      policies: policies.map(stripStatus),
      ...(this.opts.collectorUrl ? { collectorUrl: this.opts.collectorUrl } : {}),
    };
  }

  async credential(identity: SidecarIdentity, request: BrokerCredentialRequest): Promise<BrokerCredential> {
    const connection = await this.connection(identity, request.connection);
    if (connection.spec.type !== request.type) {
      throw new BrokerRequestError(
        400,
        `Connection ${request.connection} is of type ${connection.spec.type}, not ${request.type}`,
      );
    }
    this.limit(this.credentialLimiter, identity, request.connection, 'credentials');
    let credential: BrokerCredential;
    switch (request.type) {
      case 'postgres':
        credential = await this.opts.issuers.postgres(connection, identity, request.sessionId);
        break;
      case 'ssh':
        credential = await this.opts.issuers.ssh(connection, identity, request.publicKey);
        break;
      case 'kubernetes':
        credential = await this.opts.issuers.kubernetes(connection, identity);
        break;
    }
    this.opts.onIssued?.(identity, {
      type: credential.type,
      connection: request.connection,
      description: credential.description,
    });
    return credential;
  }

  async createAccessRequest(
    identity: SidecarIdentity,
    body: BrokerAccessRequestCreate,
  ): Promise<BrokerAccessRequestCreated> {
    requireConnection(identity, body.connection);
    this.limit(this.accessRequestLimiter, identity, body.connection, 'AccessRequests');
    const policies = await this.opts.store.listPolicies(identity.namespace);
    if (!policies.some((p) => p.metadata.name === body.policy)) {
      throw new BrokerRequestError(404, `AccessPolicy ${identity.namespace}/${body.policy} not found`);
    }
    const created = await this.opts.store.createAccessRequest(accessRequestFor(identity, body, this.now()));
    const name = created.metadata.name ?? '';
    this.opts.onAccessRequest?.(identity, created);
    return {
      name,
      namespace: identity.namespace,
      expiresAt: created.spec.expiresAt,
      howToApprove: howToApprove(identity.namespace, name),
    };
  }

  /** Long poll: answers as soon as the request is decided, or after waitSeconds with phase Pending. */
  async decision(
    identity: SidecarIdentity,
    name: string,
    waitSeconds: number,
    signal?: AbortSignal,
  ): Promise<BrokerAccessRequestDecision> {
    const deadline = Date.now() + waitSeconds * 1000;
    for (;;) {
      const request = await this.ownRequest(identity, name);
      const phase = request.status?.phase ?? 'Pending';
      if (phase !== 'Pending' || Date.now() >= deadline || signal?.aborted || this.closing.signal.aborted) {
        const decision = request.status?.decision;
        return {
          name,
          phase,
          ...(decision?.by ? { by: decision.by } : {}),
          ...(decision?.comment ? { comment: decision.comment } : {}),
        };
      }
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          this.closing.signal.removeEventListener('abort', done);
          resolve();
        };
        const timer = setTimeout(done, Math.min(this.opts.pollIntervalMs ?? 500, deadline - Date.now()));
        this.closing.signal.addEventListener('abort', done);
      });
    }
  }

  /** Ends every long poll now (graceful shutdown of this replica). */
  shutdown(): void {
    this.closing.abort();
  }

  /** The agent went away: a still pending request is withdrawn (deleted); a decided one is kept. */
  async withdraw(identity: SidecarIdentity, name: string): Promise<void> {
    const request = await this.ownRequest(identity, name);
    if ((request.status?.phase ?? 'Pending') === 'Pending') {
      await this.opts.store.deleteAccessRequest(identity.namespace, name);
    }
  }

  private async ownRequest(identity: SidecarIdentity, name: string): Promise<AccessRequest> {
    const request = await this.opts.store.getAccessRequest(identity.namespace, name);
    // Another pod's request answers as if it did not exist: no probing of names across pods.
    if (!request || request.spec.requester.pod?.uid !== identity.pod.uid) {
      throw new BrokerRequestError(404, `AccessRequest ${identity.namespace}/${name} not found for this pod`);
    }
    return request;
  }

  private async connection(identity: SidecarIdentity, name: string): Promise<Connection> {
    requireConnection(identity, name);
    const connection = await this.opts.store.getConnection(identity.namespace, name);
    if (!connection) {
      throw new BrokerRequestError(
        404,
        `Connection ${identity.namespace}/${name} not found`,
        'create it, or fix the pod annotation chaperone.dev/connections',
      );
    }
    return connection;
  }
}

function stripStatus<T extends { metadata: object }>(object: T): T {
  const { status: _status, ...rest } = object as T & { status?: unknown };
  const { managedFields: _managed, ...metadata } = rest.metadata as Record<string, unknown>;
  return { ...rest, metadata } as T;
}

export { BrokerAuthError };
