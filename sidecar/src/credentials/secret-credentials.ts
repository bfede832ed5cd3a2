import type { Connection } from '@chaperone/api';
import type { CredentialOf, CredentialRequest, CredentialSource } from './credential-source.js';

/**
 * Standalone credentials: the Connection's admin Secret from the config folder, used as is. In a
 * cluster the operator's broker mints a short-lived role instead (see docs/operations.md).
 */
export class SecretCredentialSource implements CredentialSource {
  constructor(
    private readonly connections: Connection[],
    private readonly secrets: Map<string, Record<string, string>>,
  ) {}

  async credentialFor<R extends CredentialRequest>(
    name: string,
    request: R,
  ): Promise<CredentialOf<R['type']>> {
    if (request.type === 'kubernetes') return this.kubernetesToken(name) as CredentialOf<R['type']>;
    if (request.type !== 'postgres') {
      throw new Error(`standalone mode has no ${request.type} credentials for connection ${name} yet`);
    }
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
