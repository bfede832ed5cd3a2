import { randomBytes, webcrypto } from 'node:crypto';
import { isIP } from 'node:net';
import { x509 } from './x509.js';

const EC_KEY: webcrypto.EcKeyGenParams = { name: 'ECDSA', namedCurve: 'P-256' };
const EC_SIGN: webcrypto.EcdsaParams = { name: 'ECDSA', hash: 'SHA-256' };

/**
 * Certificates are valid from a few minutes before they are made, so a replica or an API server
 * whose clock is slightly behind the issuer's does not reject a certificate that was just issued.
 */
export const NOT_BEFORE_BACKDATE_MS = 5 * 60_000;

export const DAY_MS = 24 * 60 * 60_000;
export const YEAR_MS = 365 * DAY_MS;

/** A CA or leaf as PEM: certificate and its PKCS#8 private key. */
export interface CertificateKeyPair {
  certPem: string;
  keyPem: string;
}

export interface ServingCertificateNames {
  dnsNames: readonly string[];
  /** IP SANs (IPv4 or IPv6); tests use 127.0.0.1, clusters normally need none. */
  ipAddresses?: readonly string[];
}

/**
 * The names a Service is reached by from inside the cluster. The API server calls a webhook
 * Service as `<svc>.<ns>.svc`; the other forms are what clients in the cluster commonly use.
 */
export function serviceDnsNames(
  service: string,
  namespace: string,
  clusterDomain = 'cluster.local',
): string[] {
  return [
    service,
    `${service}.${namespace}`,
    `${service}.${namespace}.svc`,
    `${service}.${namespace}.svc.${clusterDomain}`,
  ];
}

/** Canonical text of an IP address (IPv6 compressed, lower case), or undefined if it is not one. */
export function canonicalIp(ip: string): string | undefined {
  const kind = isIP(ip);
  if (kind === 4) return ip;
  if (kind === 6) return new URL(`http://[${ip}]`).hostname.slice(1, -1);
  return undefined;
}

function randomSerial(): string {
  const bytes = randomBytes(16);
  // A positive, non-zero-led INTEGER: RFC 5280 serials must be positive.
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x01;
  return bytes.toString('hex');
}

// PEM files end with a newline; without one, concatenating them into a bundle glues an END line
// to the next BEGIN line and the second certificate silently disappears.
function pemText(pem: string): string {
  return `${pem.trim()}\n`;
}

async function exportKeyPem(key: webcrypto.CryptoKey): Promise<string> {
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', key);
  return pemText(x509.PemConverter.encode(pkcs8, 'PRIVATE KEY'));
}

/**
 * Generates the self-managed CA: ECDSA P-256, CA:true with path length 0 (it signs only leaves),
 * keyCertSign + cRLSign. The subject carries the issue time so two CAs (the old and the new one
 * during a rotation) never share a subject name, which keeps chain building unambiguous for the
 * API server while both are in the caBundle.
 */
export async function generateCa(now: Date, validityMs: number): Promise<CertificateKeyPair> {
  if (!(validityMs > 0)) throw new Error(`CA validity must be positive, got ${validityMs} ms`);
  const keys = (await webcrypto.subtle.generateKey(EC_KEY, true, [
    'sign',
    'verify',
  ])) as webcrypto.CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: `CN=chaperone-operator-ca@${Math.floor(now.getTime() / 1000)}`,
    notBefore: new Date(now.getTime() - NOT_BEFORE_BACKDATE_MS),
    notAfter: new Date(now.getTime() + validityMs),
    keys,
    signingAlgorithm: EC_SIGN,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: pemText(cert.toString('pem')), keyPem: await exportKeyPem(keys.privateKey) };
}

async function importCaSigningKey(keyPem: string): Promise<webcrypto.CryptoKey> {
  try {
    return await webcrypto.subtle.importKey('pkcs8', x509.PemConverter.decodeFirst(keyPem), EC_KEY, false, [
      'sign',
    ]);
  } catch (err) {
    throw new Error(
      `the CA private key is not a PKCS#8 ECDSA P-256 key (${(err as Error).message}); ` +
        'delete the serving Secret so the operator generates a new CA, or use cert-manager mode for a CA of your own',
    );
  }
}

// The AKI must equal the CA's SKI byte for byte (chain builders match on it), so copy it.
async function authorityKeyIdentifier(
  caCert: x509.X509Certificate,
): Promise<x509.AuthorityKeyIdentifierExtension> {
  const ski = caCert.getExtension(x509.SubjectKeyIdentifierExtension);
  return ski
    ? new x509.AuthorityKeyIdentifierExtension(ski.keyId)
    : x509.AuthorityKeyIdentifierExtension.create(caCert.publicKey);
}

/**
 * Issues the webhook/broker serving certificate signed by `ca`: ECDSA P-256, serverAuth only,
 * SANs = the given DNS names and IPs. It never outlives the CA (a leaf valid past its issuer
 * would just fail verification at the end).
 */
export async function issueServingCert(
  ca: CertificateKeyPair,
  names: ServingCertificateNames,
  now: Date,
  validityMs: number,
): Promise<CertificateKeyPair> {
  if (!(validityMs > 0))
    throw new Error(`serving certificate validity must be positive, got ${validityMs} ms`);
  const dnsNames = [...new Set(names.dnsNames.map((n) => n.toLowerCase()))];
  const ips: string[] = [];
  for (const ip of names.ipAddresses ?? []) {
    const canonical = canonicalIp(ip);
    if (!canonical) throw new Error(`"${ip}" is not an IP address; pass host names as DNS names`);
    if (!ips.includes(canonical)) ips.push(canonical);
  }
  if (dnsNames.length === 0 && ips.length === 0) {
    throw new Error('a serving certificate needs at least one DNS name or IP address');
  }
  const caCert = new x509.X509Certificate(ca.certPem);
  const signingKey = await importCaSigningKey(ca.keyPem);
  const keys = (await webcrypto.subtle.generateKey(EC_KEY, true, [
    'sign',
    'verify',
  ])) as webcrypto.CryptoKeyPair;
  const notAfter = Math.min(now.getTime() + validityMs, caCert.notAfter.getTime());
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: `CN=${dnsNames[0] ?? ips[0]}`,
    issuer: caCert.subjectName,
    notBefore: new Date(now.getTime() - NOT_BEFORE_BACKDATE_MS),
    notAfter: new Date(notAfter),
    publicKey: keys.publicKey,
    signingKey,
    signingAlgorithm: EC_SIGN,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension([
        ...dnsNames.map((value) => ({ type: 'dns' as const, value })),
        ...ips.map((value) => ({ type: 'ip' as const, value })),
      ]),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await authorityKeyIdentifier(caCert),
    ],
  });
  return { certPem: pemText(cert.toString('pem')), keyPem: await exportKeyPem(keys.privateKey) };
}
