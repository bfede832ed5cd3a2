import type { PeerCertificate } from 'node:tls';
import { describe, expect, it } from 'vitest';
import { CredentialError } from './credential-error.js';
import { pgSslOptions } from './postgres-admin.js';

const cert = (names: string) =>
  ({ subject: { CN: 'x' }, subjectaltname: names }) as unknown as PeerCertificate;

describe('pgSslOptions (libpq sslmode semantics)', () => {
  it('disable: plain TCP; require: TLS without checks', () => {
    expect(pgSslOptions({ mode: 'disable' })).toBe(false);
    expect(pgSslOptions({ mode: 'require', ca: 'CA' })).toEqual({ rejectUnauthorized: false });
  });

  it('verify-ca: the chain is checked, the name is not', () => {
    const o = pgSslOptions({ mode: 'verify-ca', ca: 'CA', serverName: 'db.example' });
    if (!o) throw new Error('expected TLS');
    expect(o.rejectUnauthorized).toBe(true);
    expect(o.ca).toBe('CA');
    expect(o.checkServerIdentity?.('db.example', cert('DNS:other.example'))).toBeUndefined();
  });

  it('verify-full: chain checked; an explicit serverName is what the certificate must name', () => {
    const plain = pgSslOptions({ mode: 'verify-full', ca: 'CA' });
    if (!plain) throw new Error('expected TLS');
    expect(plain.rejectUnauthorized).toBe(true);
    expect(plain.checkServerIdentity).toBeUndefined(); // Node's default check against the host

    const named = pgSslOptions({ mode: 'verify-full', ca: 'CA', serverName: 'db.example' });
    if (!named) throw new Error('expected TLS');
    expect(named.checkServerIdentity?.('10.0.0.1', cert('DNS:db.example'))).toBeUndefined();
    expect(named.checkServerIdentity?.('10.0.0.1', cert('DNS:other.example'))).toBeInstanceOf(Error);
  });

  it('refuses an unknown mode instead of falling back to plain TCP', () => {
    expect(() => pgSslOptions({ mode: 'prefer' as 'require' })).toThrow(CredentialError);
  });
});
