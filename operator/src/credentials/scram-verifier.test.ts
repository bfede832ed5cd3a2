import { createHash, createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { scramSha256Verifier } from './scram-verifier.js';

// RFC 7677 section 3: the SCRAM-SHA-256 exchange for user "user", password "pencil".
const RFC = {
  salt: 'W22ZaJ0SNY7soEsUEjb6gQ==',
  clientFirstBare: 'n=user,r=rOprNGfwEbeRWgbNEkqO',
  serverFirst: 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096',
  clientFinalWithoutProof: 'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0',
  proof: 'dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
  serverSignature: '6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=',
};

function parse(verifier: string) {
  const m = /^SCRAM-SHA-256\$(\d+):([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+):([A-Za-z0-9+/=]+)$/.exec(verifier);
  if (!m) throw new Error(`not a verifier: ${verifier}`);
  return {
    iterations: Number(m[1]),
    salt: Buffer.from(m[2]!, 'base64'),
    storedKey: Buffer.from(m[3]!, 'base64'),
    serverKey: Buffer.from(m[4]!, 'base64'),
  };
}

describe('scramSha256Verifier', () => {
  it('yields keys that verify the RFC 7677 exchange for "pencil"', () => {
    const v = parse(scramSha256Verifier('pencil', { salt: Buffer.from(RFC.salt, 'base64') }));
    expect(v.iterations).toBe(4096);
    expect(v.salt.toString('base64')).toBe(RFC.salt);
    const authMessage = `${RFC.clientFirstBare},${RFC.serverFirst},${RFC.clientFinalWithoutProof}`;
    // The server proves itself with ServerKey …
    expect(createHmac('sha256', v.serverKey).update(authMessage).digest('base64')).toBe(RFC.serverSignature);
    // … and checks the client's proof against StoredKey: H(proof XOR HMAC(StoredKey, AuthMessage)).
    const clientSignature = createHmac('sha256', v.storedKey).update(authMessage).digest();
    const proof = Buffer.from(RFC.proof, 'base64');
    const clientKey = Buffer.from(proof.map((b, i) => b ^ clientSignature[i]!));
    expect(createHash('sha256').update(clientKey).digest().equals(v.storedKey)).toBe(true);
  });

  it('uses a fresh 16-byte salt each time, so equal passwords give different verifiers', () => {
    const a = scramSha256Verifier('same-password');
    const b = scramSha256Verifier('same-password');
    expect(a).not.toBe(b);
    expect(parse(a).salt).toHaveLength(16);
    expect(a).not.toContain('same-password');
  });

  it('refuses passwords that would need SASLprep', () => {
    expect(() => scramSha256Verifier('')).toThrow(/printable ASCII/);
    expect(() => scramSha256Verifier('pässword')).toThrow(/printable ASCII/);
    expect(() => scramSha256Verifier('with space')).toThrow(/printable ASCII/);
  });
});
