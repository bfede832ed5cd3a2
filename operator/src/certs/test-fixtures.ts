// Certificate shapes the operator never issues (wrong EKU, intermediate CAs, RSA keys), made
// directly with @peculiar/x509 so the planner's refusals can be tested. Test-only.
import { generateKeyPairSync, webcrypto } from 'node:crypto';
import type { CertificateKeyPair } from './pki.js';
import { x509 } from './x509.js';

const EC_KEY: webcrypto.EcKeyGenParams = { name: 'ECDSA', namedCurve: 'P-256' };
const EC_SIGN: webcrypto.EcdsaParams = { name: 'ECDSA', hash: 'SHA-256' };

export interface CustomCertOptions {
  subject: string;
  /** Signer; self-signed when absent. */
  issuer?: CertificateKeyPair;
  notBefore: Date;
  notAfter: Date;
  ca: boolean;
  extendedKeyUsages?: string[];
  dnsNames?: string[];
}

export async function customCert(opts: CustomCertOptions): Promise<CertificateKeyPair> {
  const keys = (await webcrypto.subtle.generateKey(EC_KEY, true, [
    'sign',
    'verify',
  ])) as webcrypto.CryptoKeyPair;
  const signingKey = opts.issuer
    ? await webcrypto.subtle.importKey(
        'pkcs8',
        x509.PemConverter.decodeFirst(opts.issuer.keyPem),
        EC_KEY,
        false,
        ['sign'],
      )
    : keys.privateKey;
  const issuerName = opts.issuer ? new x509.X509Certificate(opts.issuer.certPem).subjectName : opts.subject;
  const extensions: x509.Extension[] = [new x509.BasicConstraintsExtension(opts.ca, undefined, true)];
  if (opts.extendedKeyUsages) extensions.push(new x509.ExtendedKeyUsageExtension(opts.extendedKeyUsages));
  if (opts.dnsNames) {
    extensions.push(
      new x509.SubjectAlternativeNameExtension(opts.dnsNames.map((value) => ({ type: 'dns', value }))),
    );
  }
  const cert = await x509.X509CertificateGenerator.create({
    subject: opts.subject,
    issuer: issuerName,
    notBefore: opts.notBefore,
    notAfter: opts.notAfter,
    publicKey: keys.publicKey,
    signingKey,
    signingAlgorithm: EC_SIGN,
    extensions,
  });
  const keyPem = x509.PemConverter.encode(
    await webcrypto.subtle.exportKey('pkcs8', keys.privateKey),
    'PRIVATE KEY',
  );
  return { certPem: cert.toString('pem'), keyPem };
}

export function rsaKeyPem(): string {
  return generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({
    type: 'pkcs8',
    format: 'pem',
  }) as string;
}
