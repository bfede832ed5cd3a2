import { createPrivateKey, X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  canonicalIp,
  DAY_MS,
  generateCa,
  issueServingCert,
  NOT_BEFORE_BACKDATE_MS,
  serviceDnsNames,
  YEAR_MS,
} from './pki.js';
import { subjectAltNames } from './serving-certificate-plan.js';
import { rsaKeyPem } from './test-fixtures.js';
import { x509 } from './x509.js';

const T0 = new Date('2030-06-01T12:00:00Z');

describe('serviceDnsNames', () => {
  it('lists the four forms a Service is reached by', () => {
    expect(serviceDnsNames('op', 'ns')).toEqual(['op', 'op.ns', 'op.ns.svc', 'op.ns.svc.cluster.local']);
    expect(serviceDnsNames('op', 'ns', 'corp.internal')[3]).toBe('op.ns.svc.corp.internal');
  });
});

describe('canonicalIp', () => {
  it('keeps IPv4, compresses IPv6, rejects names', () => {
    expect(canonicalIp('10.1.2.3')).toBe('10.1.2.3');
    expect(canonicalIp('FD00:0:0:0:0:0:0:1')).toBe('fd00::1');
    expect(canonicalIp('localhost')).toBeUndefined();
    expect(canonicalIp('1.2.3')).toBeUndefined();
  });
});

describe('generateCa', () => {
  it('makes a self-signed ECDSA P-256 CA that signs only leaves, backdated a little', async () => {
    const ca = await generateCa(T0, 10 * YEAR_MS);
    const cert = new X509Certificate(ca.certPem);
    expect(cert.ca).toBe(true);
    expect(cert.verify(cert.publicKey)).toBe(true);
    expect(cert.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(cert.validFromDate.getTime()).toBe(T0.getTime() - NOT_BEFORE_BACKDATE_MS);
    expect(cert.validToDate.getTime()).toBe(T0.getTime() + 10 * YEAR_MS);
    expect(ca.keyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    const pkix = new x509.X509Certificate(ca.certPem);
    expect(pkix.getExtension(x509.BasicConstraintsExtension)?.pathLength).toBe(0);
    expect(pkix.getExtension(x509.KeyUsagesExtension)?.usages).toBe(
      x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
    );
  });

  it('gives each CA its own subject and key', async () => {
    const a = await generateCa(T0, YEAR_MS);
    const b = await generateCa(new Date(T0.getTime() + 1000), YEAR_MS);
    expect(new X509Certificate(a.certPem).subject).not.toBe(new X509Certificate(b.certPem).subject);
    expect(a.keyPem).not.toBe(b.keyPem);
  });

  it('refuses a non-positive validity', async () => {
    await expect(generateCa(T0, 0)).rejects.toThrow(/CA validity must be positive/);
  });
});

describe('issueServingCert', () => {
  it('issues a serverAuth leaf for the names and IPs, signed by the CA, with a PKCS#8 key, as PEM files', async () => {
    const ca = await generateCa(T0, 10 * YEAR_MS);
    const names = serviceDnsNames('op', 'ns');
    const leaf = await issueServingCert(
      ca,
      { dnsNames: [...names, 'OP.ns'], ipAddresses: ['127.0.0.1', '::1'] },
      T0,
      YEAR_MS,
    );
    const cert = new X509Certificate(leaf.certPem);
    const caCert = new X509Certificate(ca.certPem);
    expect(cert.checkIssued(caCert) && cert.verify(caCert.publicKey)).toBe(true);
    expect(cert.ca).toBe(false);
    expect(cert.validToDate.getTime()).toBe(T0.getTime() + YEAR_MS);
    const pkix = new x509.X509Certificate(leaf.certPem);
    expect(subjectAltNames(pkix)).toEqual({ dnsNames: names, ipAddresses: ['127.0.0.1', '::1'] });
    expect(pkix.getExtension(x509.ExtendedKeyUsageExtension)?.usages).toEqual([
      x509.ExtendedKeyUsage.serverAuth,
    ]);
    expect(pkix.getExtension(x509.KeyUsagesExtension)?.usages).toBe(x509.KeyUsageFlags.digitalSignature);
    // The AKI points at the CA's SKI, which is how verifiers pick the right CA from a bundle.
    expect(pkix.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId).toBe(
      new x509.X509Certificate(ca.certPem).getExtension(x509.SubjectKeyIdentifierExtension)?.keyId,
    );
    expect(leaf.keyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n[\s\S]*\n-----END PRIVATE KEY-----\n$/);
    expect(leaf.certPem).toMatch(/^-----BEGIN CERTIFICATE-----\n[\s\S]*\n-----END CERTIFICATE-----\n$/);
    expect(cert.checkPrivateKey(createPrivateKey(leaf.keyPem))).toBe(true);
  });

  it('never outlives its CA', async () => {
    const ca = await generateCa(T0, 30 * DAY_MS);
    const leaf = await issueServingCert(ca, { dnsNames: ['op'] }, T0, YEAR_MS);
    expect(new X509Certificate(leaf.certPem).validToDate.getTime()).toBe(
      new X509Certificate(ca.certPem).validToDate.getTime(),
    );
  });

  it('refuses bad input with a clear error', async () => {
    const ca = await generateCa(T0, YEAR_MS);
    await expect(issueServingCert(ca, { dnsNames: [] }, T0, YEAR_MS)).rejects.toThrow(
      /at least one DNS name or IP/,
    );
    await expect(
      issueServingCert(ca, { dnsNames: ['op'], ipAddresses: ['op.ns'] }, T0, YEAR_MS),
    ).rejects.toThrow(/"op\.ns" is not an IP address/);
    await expect(issueServingCert(ca, { dnsNames: ['op'] }, T0, -1)).rejects.toThrow(
      /validity must be positive/,
    );
    await expect(
      issueServingCert({ ...ca, keyPem: rsaKeyPem() }, { dnsNames: ['op'] }, T0, YEAR_MS),
    ).rejects.toThrow(/not a PKCS#8 ECDSA P-256 key.*delete the serving Secret/);
  });
});
