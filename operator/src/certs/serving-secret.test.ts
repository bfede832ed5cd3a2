import { beforeAll, describe, expect, it } from 'vitest';
import { servingPairProblem } from './certificate-source.js';
import { type CertificateKeyPair, generateCa, issueServingCert, YEAR_MS } from './pki.js';
import type { StoredServingCertificates } from './serving-certificate-plan.js';
import {
  decodeServingSecret,
  encodeServingSecret,
  materialFromSecret,
  PREVIOUS_CA_CERT_KEY,
  PREVIOUS_CA_RETIRE_ANNOTATION,
} from './serving-secret.js';

const T0 = new Date('2030-01-01T00:00:00Z');
let ca: CertificateKeyPair;
let oldCa: CertificateKeyPair;
let leaf: CertificateKeyPair;
let stored: StoredServingCertificates;

beforeAll(async () => {
  ca = await generateCa(T0, 10 * YEAR_MS);
  oldCa = await generateCa(T0, 10 * YEAR_MS);
  leaf = await issueServingCert(ca, { dnsNames: ['op'] }, T0, YEAR_MS);
  stored = { caCert: ca.certPem, caKey: ca.keyPem, tlsCert: leaf.certPem, tlsKey: leaf.keyPem };
});

describe('serving Secret encoding', () => {
  it('round-trips the CA, the leaf and the previous CA with its retire time', () => {
    const previous = { certPem: oldCa.certPem, retireAfter: new Date('2030-06-01T00:00:00.000Z') };
    const secret = encodeServingSecret('tls', 'ns', { stored, previous });
    expect(secret.type).toBe('kubernetes.io/tls');
    expect(Object.keys(secret.data ?? {}).sort()).toEqual([
      'ca-previous.crt',
      'ca.crt',
      'ca.key',
      'tls.crt',
      'tls.key',
    ]);
    expect(secret.metadata?.annotations?.[PREVIOUS_CA_RETIRE_ANNOTATION]).toBe('2030-06-01T00:00:00.000Z');
    expect(decodeServingSecret(secret)).toEqual({ stored, previous });
  });

  it('keeps labels, foreign annotations and the resourceVersion of the base, drops a stale retire time', () => {
    const base = {
      metadata: {
        name: 'tls',
        resourceVersion: '42',
        labels: { 'app.kubernetes.io/part-of': 'chaperone' },
        annotations: { keep: 'me', [PREVIOUS_CA_RETIRE_ANNOTATION]: '2020-01-01T00:00:00Z' },
      },
      data: { [PREVIOUS_CA_CERT_KEY]: 'eA==', other: 'eA==' },
    };
    const secret = encodeServingSecret('tls', 'ns', { stored }, base);
    expect(secret.metadata).toEqual({
      name: 'tls',
      namespace: 'ns',
      resourceVersion: '42',
      labels: { 'app.kubernetes.io/part-of': 'chaperone' },
      annotations: { keep: 'me' },
    });
    expect(secret.data?.[PREVIOUS_CA_CERT_KEY]).toBeUndefined();
  });

  it('reads missing keys as empty text and a previous CA without a retire time as already retired', () => {
    const decoded = decodeServingSecret({
      data: { [PREVIOUS_CA_CERT_KEY]: Buffer.from(oldCa.certPem).toString('base64') },
    });
    expect(decoded.stored).toEqual({ caCert: '', caKey: '', tlsCert: '', tlsKey: '' });
    expect(Number.isNaN(decoded.previous?.retireAfter.getTime())).toBe(true);
    expect(decodeServingSecret({}).previous).toBeUndefined();
  });

  it('gives replicas the leaf, its key and the CA bundle (current, then previous)', () => {
    const secret = encodeServingSecret('tls', 'ns', {
      stored,
      previous: { certPem: oldCa.certPem, retireAfter: T0 },
    });
    expect(materialFromSecret(secret)).toEqual({
      cert: leaf.certPem,
      key: leaf.keyPem,
      caPem: `${ca.certPem}${oldCa.certPem}`,
    });
    expect(materialFromSecret(encodeServingSecret('tls', 'ns', { stored })).caPem).toBe(ca.certPem);
    expect(materialFromSecret({}).caPem).toBeUndefined();
  });
});

describe('servingPairProblem', () => {
  it('accepts a matching pair', () => {
    expect(servingPairProblem(leaf.certPem, leaf.keyPem)).toBeUndefined();
  });
  it.each([
    ['garbage certificate', () => ['nope', leaf.keyPem], /not a PEM X\.509 certificate/],
    ['garbage key', () => [leaf.certPem, 'nope'], /not a PEM private key/],
    ['mismatched key', () => [leaf.certPem, ca.keyPem], /does not belong to the certificate/],
  ] as [string, () => [string, string], RegExp][])('refuses a %s', (_name, pair, message) => {
    const [cert, key] = pair();
    expect(servingPairProblem(cert, key)).toMatch(message);
  });
});
