import {
  type Connection,
  type IssuedSshCertificate,
  parseDuration,
  signSshUserCertificate,
} from '@chaperone/api';
import type { CredentialOf, CredentialRequest, CredentialSource } from './credential-source.js';

const DEFAULT_SSH_TTL = '5m';

/**
 * Standalone credentials from the Secrets in the config folder. postgres: the Connection's admin
 * Secret, used as is. ssh: a short-lived user certificate signed here with the CA key the
 * Connection's caSecretRef names. In a cluster the operator's broker mints both instead (see
 * docs/operations.md).
 */
export class SecretCredentialSource implements CredentialSource {
  /** Certificates by connection and public key: reused while more than half their lifetime is left. */
  private readonly certificates = new Map<string, IssuedSshCertificate>();

  constructor(
    private readonly connections: Connection[],
    private readonly secrets: Map<string, Record<string, string>>,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async credentialFor<R extends CredentialRequest>(
    name: string,
    request: R,
  ): Promise<CredentialOf<R['type']>> {
    if (request.type === 'ssh')
      return this.sshCertificate(name, request.publicKey) as CredentialOf<R['type']>;
    if (request.type === 'kubernetes') return this.kubernetesToken(name) as CredentialOf<R['type']>;
    const conn = this.connections.find((c) => c.metadata.name === name);
    const ref = conn?.spec.credentials?.postgres?.adminSecretRef;
    if (!conn || !ref) throw new Error(`connection ${name} has no postgres credentials block`);
    const secret = this.secrets.get(ref.name);
    if (!secret)
      throw new Error(`Secret ${ref.name} (referenced by connection ${name}) is not in the config folder`);
    const userKey = ref.usernameKey ?? 'username';
    const passKey = ref.passwordKey ?? 'password';
    const username = secret[userKey];
    const password = secret[passKey];
    if (!username || password === undefined) {
      throw new Error(`Secret ${ref.name} needs the keys "${userKey}" and "${passKey}"`);
    }
    const credential: CredentialOf<'postgres'> = {
      type: 'postgres',
      username,
      password,
      description: `static secret ${ref.name} (user ${username})`,
    };
    return credential as CredentialOf<R['type']>;
  }

  private sshCertificate(name: string, publicKey: string): CredentialOf<'ssh'> {
    const conn = this.connections.find((c) => c.metadata.name === name);
    const ssh = conn?.spec.credentials?.ssh;
    if (!conn || !ssh) throw new Error(`connection ${name} has no ssh credentials block`);
    const key = `${name}\0${publicKey}`;
    const now = this.now();
    const ttlMs = parseDuration(ssh.ttl ?? DEFAULT_SSH_TTL);
    let cert = this.certificates.get(key);
    if (!cert || cert.expiresAt.getTime() - now.getTime() < ttlMs / 2) {
      const ref = ssh.caSecretRef;
      const caKey = ref.key ?? 'ca';
      const secret = this.secrets.get(ref.name);
      if (!secret) {
        throw new Error(`the SSH CA Secret ${ref.name} (connection ${name}) is not in the config folder`);
      }
      const ca = secret[caKey];
      if (!ca) throw new Error(`the SSH CA Secret ${ref.name} has no key "${caKey}"`);
      cert = signSshUserCertificate({
        caPrivateKeyPem: ca,
        publicKey,
        principals: ssh.principals,
        ttlMs,
        keyId: `chaperone:${conn.metadata.namespace ?? 'default'}/${name}`,
        now,
        // Port-forwards are decided by policy per request; the certificate must not be what stops them.
        permitPortForwarding: true,
      });
      this.certificates.set(key, cert);
    }
    return {
      type: 'ssh',
      certificate: cert.certificate,
      principals: cert.principals,
      expiresAt: cert.expiresAt,
      description: cert.description,
    };
  }

  /** A bearer token from the Secret `tokenSecretRef` names (a ServiceAccount token, used as is). */
  private kubernetesToken(name: string): CredentialOf<'kubernetes'> {
    const conn = this.connections.find((c) => c.metadata.name === name);
    const ref = conn?.spec.credentials?.kubernetes?.tokenSecretRef;
    if (!conn || !ref) {
      throw new Error(`connection ${name} has no credentials.kubernetes.tokenSecretRef (needed standalone)`);
    }
    const secret = this.secrets.get(ref.name);
    if (!secret)
      throw new Error(`Secret ${ref.name} (referenced by connection ${name}) is not in the config folder`);
    const key = ref.key ?? 'token';
    const token = secret[key]?.trim();
    if (!token) throw new Error(`Secret ${ref.name} needs the key "${key}" with a bearer token`);
    const sa = conn.spec.credentials.kubernetes?.serviceAccountRef;
    return {
      type: 'kubernetes',
      token,
      description: `static token from secret ${ref.name}${sa ? ` (ServiceAccount ${sa.namespace ?? '-'}/${sa.name})` : ''}`,
    };
  }
}
