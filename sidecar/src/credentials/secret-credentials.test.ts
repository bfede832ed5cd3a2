import { generateKeyPairSync } from 'node:crypto';
import type { Connection } from '@chaperone/api';
import { describe, expect, it } from 'vitest';
import { generateSessionKeyPair } from '../protocols/ssh/ssh-keys.js';
import { SecretCredentialSource } from './secret-credentials.js';

const ca = generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
const conn = (ttl?: string, secret = 'user-ca') =>
  ({
    apiVersion: 'chaperone.dev/v1alpha1',
    kind: 'Connection',
    metadata: { name: 'web', namespace: 'ops' },
    spec: {
      type: 'ssh',
      endpoint: { host: '127.0.0.1', port: 22, hostKeys: [] },
      listen: { port: 2222 },
      credentials: { ssh: { caSecretRef: { name: secret }, principals: ['deploy'], ttl } },
    },
  }) as unknown as Connection;

describe('SecretCredentialSource (ssh)', () => {
  const key = generateSessionKeyPair().publicKeyLine;

  it('signs a certificate for the key and principals, reused until half its TTL, then renewed', async () => {
    let now = new Date('2026-12-01T10:00:00Z');
    const src = new SecretCredentialSource([conn('10m')], new Map([['user-ca', { ca }]]), () => now);
    const first = await src.credentialFor('web', { type: 'ssh', publicKey: key });
    expect(first.certificate).toMatch(/^ssh-ed25519-cert-v01@openssh\.com AAAA/);
    expect(first.principals).toEqual(['deploy']);
    expect(first.expiresAt?.toISOString()).toBe('2026-12-01T10:10:00.000Z');
    expect(first.description).not.toContain(first.certificate);
    now = new Date('2026-12-01T10:04:00Z');
    expect((await src.credentialFor('web', { type: 'ssh', publicKey: key })).certificate).toBe(
      first.certificate,
    );
    now = new Date('2026-12-01T10:06:00Z');
    const renewed = await src.credentialFor('web', { type: 'ssh', publicKey: key });
    expect(renewed.certificate).not.toBe(first.certificate);
    expect(renewed.expiresAt?.toISOString()).toBe('2026-12-01T10:16:00.000Z');
  });

  it('fails closed with a clear message when the CA Secret or its key is missing', async () => {
    const none = new SecretCredentialSource([conn(undefined, 'gone')], new Map());
    await expect(none.credentialFor('web', { type: 'ssh', publicKey: key })).rejects.toThrow(
      /SSH CA Secret gone \(connection web\) is not in the config folder/,
    );
    const wrongKey = new SecretCredentialSource([conn()], new Map([['user-ca', { other: ca }]]));
    await expect(wrongKey.credentialFor('web', { type: 'ssh', publicKey: key })).rejects.toThrow(
      /has no key "ca"/,
    );
    const garbage = new SecretCredentialSource([conn()], new Map([['user-ca', { ca: 'not a key' }]]));
    await expect(garbage.credentialFor('web', { type: 'ssh', publicKey: key })).rejects.toThrow();
  });
});
