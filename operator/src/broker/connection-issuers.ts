// Turns a Connection's `spec.credentials` into calls of the JIT issuers. Admin material (database
// admin login, SSH CA key) is read here, from the operator's namespace, and never leaves this module
// except as the short-lived credential it mints.
import { adminSecretRefusal, type BrokerCredential, type Connection, parseDuration } from '@chaperone/api';
import type * as k8s from '@kubernetes/client-node';
import {
  CredentialError,
  issueKubernetesToken,
  type PostgresRoleIssuer,
  type PostgresTarget,
  signSshUserCertificate,
} from '../credentials/index.js';
import { BrokerRequestError, type BrokerStore, type CredentialIssuers } from './credential-broker.js';
import type { SidecarIdentity } from './sidecar-identity.js';

export interface ConnectionIssuersOptions {
  store: Pick<BrokerStore, 'readSecret'>;
  operatorNamespace: string;
  postgres: PostgresRoleIssuer;
  coreApi: Pick<k8s.CoreV1Api, 'createNamespacedServiceAccountToken'>;
}

type SecretReader = Pick<ConnectionIssuersOptions, 'store' | 'operatorNamespace'>;

/**
 * One key of a Secret in the operator namespace. `admin` Secrets (database admin, SSH CA key) must
 * also allow the Connection's namespace (ALLOWED_NAMESPACES_ANNOTATION); CA bundles are public, and
 * retiring roles already issued ('cleanup') must work even after that permission is withdrawn.
 */
async function secretKey(
  opts: SecretReader,
  connection: Connection,
  ref: { name: string },
  key: string,
  kind: 'admin' | 'ca-bundle' | 'cleanup',
): Promise<string> {
  const name = connection.metadata.name ?? '';
  const secret = await opts.store.readSecret(opts.operatorNamespace, ref.name);
  if (!secret) {
    throw new BrokerRequestError(
      502,
      `Connection ${name}: Secret ${opts.operatorNamespace}/${ref.name} not found`,
      'admin Secrets of Connections live in the operator namespace',
    );
  }
  if (kind === 'admin') {
    const refusal = adminSecretRefusal(
      { namespace: opts.operatorNamespace, name: ref.name, annotations: secret.annotations },
      connection.metadata.namespace ?? '',
    );
    if (refusal) throw new BrokerRequestError(502, `Connection ${name}: ${refusal}`);
  }
  const value = secret.data[key];
  if (value === undefined) {
    throw new BrokerRequestError(
      502,
      `Connection ${name}: Secret ${opts.operatorNamespace}/${ref.name} has no key "${key}"`,
    );
  }
  return value;
}

/** Where the operator logs in to make roles: the Connection's endpoint, same TLS rules as the sidecar. */
export async function postgresAdminTarget(
  opts: SecretReader,
  connection: Connection,
): Promise<PostgresTarget> {
  const ep = connection.spec.endpoint;
  const tls = ep.tls ?? {};
  const ca = tls.caSecretRef
    ? await secretKey(opts, connection, tls.caSecretRef, tls.caSecretRef.key ?? 'ca.crt', 'ca-bundle')
    : undefined;
  return {
    host: ep.host ?? '127.0.0.1',
    port: ep.port ?? 5432,
    database: connection.spec.credentials.postgres?.database ?? ep.database ?? 'postgres',
    tls: {
      mode: tls.mode ?? 'verify-full',
      ...(ca ? { ca } : {}),
      ...(tls.serverName ? { serverName: tls.serverName } : {}),
    },
  };
}

export async function postgresAdminLogin(
  opts: SecretReader,
  connection: Connection,
  purpose: 'admin' | 'cleanup' = 'admin',
): Promise<{ username: string; password: string }> {
  const pg = connection.spec.credentials.postgres;
  const name = connection.metadata.name ?? '';
  if (!pg) throw new BrokerRequestError(400, `Connection ${name} has no credentials.postgres block`);
  const ref = pg.adminSecretRef;
  return {
    username: await secretKey(opts, connection, ref, ref.usernameKey ?? 'username', purpose),
    password: await secretKey(opts, connection, ref, ref.passwordKey ?? 'password', purpose),
  };
}

export function connectionIssuers(opts: ConnectionIssuersOptions): CredentialIssuers {
  return {
    async postgres(
      connection: Connection,
      identity: SidecarIdentity,
      sessionId?: string,
    ): Promise<BrokerCredential> {
      const pg = connection.spec.credentials.postgres;
      const name = connection.metadata.name ?? '';
      if (!pg) throw new BrokerRequestError(400, `Connection ${name} has no credentials.postgres block`);
      const issued = await opts.postgres.issue({
        target: await postgresAdminTarget(opts, connection),
        admin: await postgresAdminLogin(opts, connection),
        connection: { namespace: identity.namespace, name },
        pod: { namespace: identity.namespace, name: identity.pod.name, uid: identity.pod.uid },
        ttlMs: parseDuration(pg.ttl ?? '15m'),
        grantRoles: pg.grantRoles ?? [],
        ...(pg.usernamePrefix ? { usernamePrefix: pg.usernamePrefix } : {}),
        ...(sessionId ? { sessionId } : {}),
      });
      return {
        type: 'postgres',
        username: issued.username,
        password: issued.password,
        expiresAt: issued.expiresAt.toISOString(),
        description: issued.description,
      };
    },

    async ssh(
      connection: Connection,
      identity: SidecarIdentity,
      publicKey: string,
    ): Promise<BrokerCredential> {
      const ssh = connection.spec.credentials.ssh;
      const name = connection.metadata.name ?? '';
      if (!ssh) throw new BrokerRequestError(400, `Connection ${name} has no credentials.ssh block`);
      const ca = await secretKey(opts, connection, ssh.caSecretRef, ssh.caSecretRef.key ?? 'ca', 'admin');
      const issued = signSshUserCertificate({
        caPrivateKeyPem: ca,
        publicKey,
        principals: ssh.principals ?? [],
        ttlMs: parseDuration(ssh.ttl ?? '5m'),
        keyId: `chaperone:${identity.namespace}/${identity.pod.name}:${name}`,
      });
      return {
        type: 'ssh',
        certificate: issued.certificate,
        principals: issued.principals,
        expiresAt: issued.expiresAt.toISOString(),
        description: issued.description,
      };
    },

    async kubernetes(connection: Connection, identity: SidecarIdentity): Promise<BrokerCredential> {
      const kube = connection.spec.credentials.kubernetes;
      const name = connection.metadata.name ?? '';
      if (!kube) throw new BrokerRequestError(400, `Connection ${name} has no credentials.kubernetes block`);
      const saNamespace = kube.serviceAccountRef.namespace ?? identity.namespace;
      // A Connection author must not mint tokens for ServiceAccounts of namespaces they do not control.
      if (saNamespace !== identity.namespace && saNamespace !== opts.operatorNamespace) {
        throw new BrokerRequestError(
          400,
          `Connection ${name}: serviceAccountRef must be in namespace ${identity.namespace} or ${opts.operatorNamespace}, not ${saNamespace}`,
        );
      }
      const issued = await issueKubernetesToken({
        coreApi: opts.coreApi,
        serviceAccount: { namespace: saNamespace, name: kube.serviceAccountRef.name },
        ttlSeconds: Math.round(parseDuration(kube.ttl ?? '10m') / 1000),
        // Bound to the agent pod when the API server allows it (the pod runs as that very
        // ServiceAccount): the token then dies with the pod. Otherwise only its TTL limits it.
        ...(saNamespace === identity.namespace && kube.serviceAccountRef.name === identity.serviceAccount
          ? { boundPod: { namespace: identity.namespace, name: identity.pod.name, uid: identity.pod.uid } }
          : {}),
      });
      return {
        type: 'kubernetes',
        token: issued.token,
        expiresAt: issued.expiresAt.toISOString(),
        description: issued.description,
      };
    },
  };
}

export { CredentialError };
