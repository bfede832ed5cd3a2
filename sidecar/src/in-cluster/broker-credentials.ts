import type { CredentialSource, UpstreamCredential } from '../credentials/credential-source.js';
import type { BrokerClient } from './broker-client.js';

/**
 * Just-in-time PostgreSQL roles from the broker. A role is reused by later sessions only while at
 * least two thirds of its lifetime remain, so every session gets most of a TTL before the operator
 * disables the role (and ends its backends) — a session never holds a credential past its TTL.
 */
export class BrokerCredentialSource implements CredentialSource {
  private readonly cache = new Map<string, { credential: UpstreamCredential; reuseUntil: number }>();
  private readonly inflight = new Map<string, Promise<UpstreamCredential>>();

  constructor(
    private readonly broker: BrokerClient,
    private readonly now: () => number = Date.now,
  ) {}

  async credentialFor(connection: string): Promise<UpstreamCredential> {
    const hit = this.cache.get(connection);
    if (hit && hit.reuseUntil > this.now()) return hit.credential;
    // Sessions that start together share one issuance instead of minting a role each.
    const pending = this.inflight.get(connection);
    if (pending) return pending;
    const issuing = this.issue(connection).finally(() => this.inflight.delete(connection));
    this.inflight.set(connection, issuing);
    return issuing;
  }

  private async issue(connection: string): Promise<UpstreamCredential> {
    const issuedAt = this.now();
    const c = await this.broker.credential({ connection, type: 'postgres' });
    if (c.type !== 'postgres')
      throw new Error(`the broker answered a ${c.type} credential for ${connection}`);
    const expiresAt = new Date(c.expiresAt);
    const credential: UpstreamCredential = {
      username: c.username,
      password: c.password,
      expiresAt,
      description: c.description,
    };
    const lifetime = expiresAt.getTime() - issuedAt;
    this.cache.set(connection, { credential, reuseUntil: issuedAt + lifetime / 3 });
    return credential;
  }
}
