import type { BrokerCredential } from '@chaperone/api';
import type { BrokerClient } from '../broker/broker-client.js';
import {
  type CredentialOf,
  type CredentialRequest,
  type CredentialSource,
  expectCredential,
  type UpstreamCredential,
} from './credential-source.js';

/**
 * Just-in-time credentials from the broker, for every protocol. A credential is reused by later
 * sessions only while at least two thirds of its lifetime remain, so every session gets most of a
 * TTL before the operator revokes it (a disabled role ends its backends) — a session never holds a
 * credential past its TTL.
 */
export class BrokerCredentialSource implements CredentialSource {
  private readonly cache = new Map<string, { credential: UpstreamCredential; reuseUntil: number }>();
  private readonly inflight = new Map<string, Promise<UpstreamCredential>>();

  constructor(
    private readonly broker: BrokerClient,
    private readonly now: () => number = Date.now,
  ) {}

  async credentialFor<R extends CredentialRequest>(
    connection: string,
    request: R,
  ): Promise<CredentialOf<R['type']>> {
    // An SSH certificate is for one public key: the key is part of what can be shared.
    const key = `${request.type}\0${connection}\0${request.type === 'ssh' ? request.publicKey : ''}`;
    const hit = this.cache.get(key);
    if (hit && hit.reuseUntil > this.now())
      return expectCredential<R['type']>(connection, request.type, hit.credential);
    // Sessions that start together share one issuance instead of minting a credential each.
    let pending = this.inflight.get(key);
    if (!pending) {
      pending = this.issue(key, connection, request).finally(() => this.inflight.delete(key));
      this.inflight.set(key, pending);
    }
    return expectCredential<R['type']>(connection, request.type, await pending);
  }

  private async issue(
    key: string,
    connection: string,
    request: CredentialRequest,
  ): Promise<UpstreamCredential> {
    const issuedAt = this.now();
    const answered = await this.broker.credential({ connection, ...request });
    if (answered.type !== request.type)
      throw new Error(`the broker answered a ${answered.type} credential for ${connection}`);
    const credential = fromBroker(answered);
    const lifetime = (credential.expiresAt?.getTime() ?? issuedAt) - issuedAt;
    this.cache.set(key, { credential, reuseUntil: issuedAt + lifetime / 3 });
    return credential;
  }
}

function fromBroker(c: BrokerCredential): UpstreamCredential {
  const common = { expiresAt: new Date(c.expiresAt), description: c.description };
  switch (c.type) {
    case 'postgres':
      return { type: 'postgres', username: c.username, password: c.password, ...common };
    case 'ssh':
      return { type: 'ssh', certificate: c.certificate, principals: c.principals, ...common };
    case 'kubernetes':
      return { type: 'kubernetes', token: c.token, ...common };
  }
}
