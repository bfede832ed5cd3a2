import { createPrivateKey, type KeyObject, X509Certificate as NodeX509Certificate } from 'node:crypto';
import { canonicalIp, DAY_MS, YEAR_MS } from './pki.js';
import { x509 } from './x509.js';

/** What the serving Secret holds, as PEM text (already base64-decoded). */
export interface StoredServingCertificates {
  caCert: string;
  caKey: string;
  tlsCert: string;
  tlsKey: string;
}

/** How long certificates live, when they are renewed and which names the leaf carries. */
export interface CertificatePolicy {
  dnsNames: readonly string[];
  ipAddresses?: readonly string[];
  /** Default 10 years. */
  caValidityMs: number;
  /** Default 1 year. */
  leafValidityMs: number;
  /** Reissue the leaf when less than this fraction of its own lifetime is left. Default 1/3. */
  leafRenewFraction: number;
  /** Replace the CA when less than this is left. Default 1 year. */
  caRenewBeforeMs: number;
}

export const DEFAULT_CERTIFICATE_POLICY: Omit<CertificatePolicy, 'dnsNames' | 'ipAddresses'> = {
  caValidityMs: 10 * YEAR_MS,
  leafValidityMs: YEAR_MS,
  leafRenewFraction: 1 / 3,
  caRenewBeforeMs: YEAR_MS,
};

export type CertificateAction = 'keep' | 'issue-leaf' | 'issue-all';

export interface ServingCertificatePlan {
  action: CertificateAction;
  /** Why, in words an operator can act on (goes to logs and Events; never contains key material). */
  reason: string;
}

export interface PlanOptions extends CertificatePolicy {
  now: Date;
}

/** Throws a clear error for a policy that would never converge (e.g. a CA renewed as soon as it is made). */
export function validateCertificatePolicy(policy: CertificatePolicy): void {
  const problems: string[] = [];
  if (policy.dnsNames.length === 0 && (policy.ipAddresses ?? []).length === 0) {
    problems.push('give at least one DNS name or IP address for the serving certificate');
  }
  for (const ip of policy.ipAddresses ?? []) {
    if (!canonicalIp(ip)) problems.push(`"${ip}" is not an IP address`);
  }
  if (!(policy.leafValidityMs > 0)) problems.push('leaf validity must be positive');
  if (!(policy.leafRenewFraction > 0 && policy.leafRenewFraction < 1)) {
    problems.push('leaf renew fraction must be between 0 and 1 (exclusive)');
  }
  if (!(policy.caRenewBeforeMs >= 0)) problems.push('CA renew-before must not be negative');
  if (!(policy.caValidityMs > policy.caRenewBeforeMs)) {
    problems.push(
      'CA validity must be longer than the CA renew-before window, or every new CA would be replaced at once',
    );
  }
  if (problems.length > 0) throw new Error(`invalid certificate settings: ${problems.join('; ')}`);
}

interface ParsedCertificate {
  pkix: x509.X509Certificate;
  node: NodeX509Certificate;
}

function parseCertificate(pem: string): ParsedCertificate | undefined {
  try {
    if (!pem.includes('-----BEGIN CERTIFICATE-----')) return undefined;
    return { pkix: new x509.X509Certificate(pem), node: new NodeX509Certificate(pem) };
  } catch {
    return undefined;
  }
}

function parsePrivateKey(pem: string): KeyObject | undefined {
  try {
    if (!pem.includes('PRIVATE KEY-----')) return undefined;
    return createPrivateKey(pem);
  } catch {
    return undefined;
  }
}

function days(ms: number): string {
  const d = ms / DAY_MS;
  return d >= 1 ? `${Math.floor(d)} days` : `${Math.max(0, Math.round(ms / 3_600_000))} hours`;
}

/** DNS and IP SANs of a certificate, canonicalised for comparison. */
export function subjectAltNames(cert: x509.X509Certificate): { dnsNames: string[]; ipAddresses: string[] } {
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  const dnsNames: string[] = [];
  const ipAddresses: string[] = [];
  for (const name of san?.names.items ?? []) {
    if (name.type === 'dns') dnsNames.push(name.value.toLowerCase());
    if (name.type === 'ip') ipAddresses.push(canonicalIp(name.value) ?? name.value);
  }
  return { dnsNames, ipAddresses };
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  const sa = new Set(a);
  const sb = new Set(b);
  return sa.size === sb.size && [...sa].every((v) => sb.has(v));
}

function describeNames(names: readonly string[]): string {
  return names.length ? [...names].sort().join(', ') : '(none)';
}

/**
 * Decides what the serving Secret needs. Pure: no clock, no I/O, so every branch is unit-tested.
 *
 * - `issue-all`: nothing usable to sign with — no Secret, CA missing/garbage/not a CA/not
 *   self-signed, CA key missing/garbage/not ECDSA P-256/not the CA's, CA not yet valid, expired or
 *   inside its renew-before window. A new CA means a trust change, so this is the rare path.
 * - `issue-leaf`: the CA is fine but the leaf is garbage, not the key's certificate, not signed by
 *   the CA, not a serverAuth end-entity certificate, not yet valid, expired, inside the last
 *   fraction of its lifetime, or carries different names. Same CA: nobody's trust changes.
 * - `keep`: otherwise.
 */
export function planServingCertificates(
  existing: StoredServingCertificates | undefined,
  options: PlanOptions,
): ServingCertificatePlan {
  validateCertificatePolicy(options);
  const now = options.now.getTime();
  if (!existing) return { action: 'issue-all', reason: 'no serving certificate yet' };

  const ca = parseCertificate(existing.caCert);
  if (!ca) return { action: 'issue-all', reason: 'ca.crt is missing or not a PEM certificate' };
  if (!ca.node.ca)
    return { action: 'issue-all', reason: 'ca.crt is not a CA certificate (basicConstraints CA:false)' };
  if (!ca.node.checkIssued(ca.node) || !ca.node.verify(ca.node.publicKey)) {
    return { action: 'issue-all', reason: 'ca.crt is not self-signed' };
  }
  const caKey = parsePrivateKey(existing.caKey);
  if (!caKey) return { action: 'issue-all', reason: 'ca.key is missing or not a PEM private key' };
  if (caKey.asymmetricKeyType !== 'ec' || caKey.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    return { action: 'issue-all', reason: 'ca.key is not an ECDSA P-256 key' };
  }
  if (!ca.node.checkPrivateKey(caKey))
    return { action: 'issue-all', reason: 'ca.key does not belong to ca.crt' };
  const caNotBefore = ca.pkix.notBefore.getTime();
  const caNotAfter = ca.pkix.notAfter.getTime();
  if (now < caNotBefore) {
    return { action: 'issue-all', reason: `the CA is not valid before ${ca.pkix.notBefore.toISOString()}` };
  }
  if (now >= caNotAfter) {
    return { action: 'issue-all', reason: `the CA expired at ${ca.pkix.notAfter.toISOString()}` };
  }
  if (caNotAfter - now < options.caRenewBeforeMs) {
    return {
      action: 'issue-all',
      reason: `the CA expires in ${days(caNotAfter - now)} (renewed when less than ${days(options.caRenewBeforeMs)} are left)`,
    };
  }

  const leaf = parseCertificate(existing.tlsCert);
  if (!leaf) return { action: 'issue-leaf', reason: 'tls.crt is missing or not a PEM certificate' };
  const leafKey = parsePrivateKey(existing.tlsKey);
  if (!leafKey) return { action: 'issue-leaf', reason: 'tls.key is missing or not a PEM private key' };
  if (!leaf.node.checkPrivateKey(leafKey))
    return { action: 'issue-leaf', reason: 'tls.key does not belong to tls.crt' };
  if (!leaf.node.checkIssued(ca.node) || !leaf.node.verify(ca.node.publicKey)) {
    return { action: 'issue-leaf', reason: 'tls.crt is not signed by the CA in ca.crt' };
  }
  if (leaf.node.ca)
    return { action: 'issue-leaf', reason: 'tls.crt is a CA certificate, not a serving certificate' };
  const eku = leaf.pkix.getExtension(x509.ExtendedKeyUsageExtension);
  if (eku && !eku.usages.includes(x509.ExtendedKeyUsage.serverAuth)) {
    return { action: 'issue-leaf', reason: 'tls.crt is not valid for serverAuth' };
  }
  const leafNotBefore = leaf.pkix.notBefore.getTime();
  const leafNotAfter = leaf.pkix.notAfter.getTime();
  if (now < leafNotBefore) {
    return {
      action: 'issue-leaf',
      reason: `tls.crt is not valid before ${leaf.pkix.notBefore.toISOString()}`,
    };
  }
  if (now >= leafNotAfter) {
    return { action: 'issue-leaf', reason: `tls.crt expired at ${leaf.pkix.notAfter.toISOString()}` };
  }
  const lifetime = leafNotAfter - leafNotBefore;
  if (leafNotAfter - now < lifetime * options.leafRenewFraction) {
    return {
      action: 'issue-leaf',
      reason: `tls.crt expires in ${days(leafNotAfter - now)}, within the last ${options.leafRenewFraction.toFixed(2)} of its lifetime`,
    };
  }
  const have = subjectAltNames(leaf.pkix);
  const wantDns = options.dnsNames.map((n) => n.toLowerCase());
  const wantIps = (options.ipAddresses ?? []).map((ip) => canonicalIp(ip) ?? ip);
  if (!sameSet(have.dnsNames, wantDns)) {
    return {
      action: 'issue-leaf',
      reason: `tls.crt names ${describeNames(have.dnsNames)}, want ${describeNames(wantDns)}`,
    };
  }
  if (!sameSet(have.ipAddresses, wantIps)) {
    return {
      action: 'issue-leaf',
      reason: `tls.crt IP addresses ${describeNames(have.ipAddresses)}, want ${describeNames(wantIps)}`,
    };
  }
  return { action: 'keep', reason: `valid until ${leaf.pkix.notAfter.toISOString()}` };
}

/**
 * The CA that was replaced by a rotation, kept in the caBundle so that replicas still serving a
 * leaf of the old CA (they reload within a poll interval, but one may be slow or partitioned)
 * are still trusted by the API server.
 */
export interface PreviousCa {
  certPem: string;
  /** When it may leave the bundle: when the old leaf (the last thing it vouched for) expires. */
  retireAfter: Date;
}

/**
 * What to keep trusting when `existing` is replaced by a new CA: the old CA until the old leaf
 * expires. Without a usable old leaf, until the old CA itself expires (any leaf a replica might
 * still serve is capped at that). An unusable or expired old CA is not worth keeping.
 */
export function previousCaForRotation(
  existing: StoredServingCertificates | undefined,
  now: Date,
): PreviousCa | undefined {
  if (!existing) return undefined;
  const ca = parseCertificate(existing.caCert);
  if (!ca?.node.ca) return undefined;
  const caNotAfter = ca.pkix.notAfter.getTime();
  if (caNotAfter <= now.getTime()) return undefined;
  const leaf = parseCertificate(existing.tlsCert);
  const leafNotAfter =
    leaf?.node.checkIssued(ca.node) && leaf.node.verify(ca.node.publicKey)
      ? leaf.pkix.notAfter.getTime()
      : caNotAfter;
  const retireAfter = Math.min(leafNotAfter, caNotAfter);
  if (retireAfter <= now.getTime()) return undefined;
  return { certPem: `${ca.pkix.toString('pem').trim()}\n`, retireAfter: new Date(retireAfter) };
}

/** Whether a previous CA must stay in the bundle at `now` (unparseable ones never do). */
export function isPreviousCaActive(previous: PreviousCa | undefined, now: Date): previous is PreviousCa {
  return (
    previous !== undefined &&
    !Number.isNaN(previous.retireAfter.getTime()) &&
    previous.retireAfter.getTime() > now.getTime() &&
    parseCertificate(previous.certPem) !== undefined
  );
}

/** The caBundle for the webhook configurations: current CA first, then the previous one if still needed. */
export function buildCaBundle(caPem: string, previous?: PreviousCa): string {
  const parts = [caPem, previous?.certPem].filter((p): p is string => !!p).map((p) => `${p.trim()}\n`);
  return [...new Set(parts)].join('');
}

function pemBlocks(bundle: string): string[] {
  return (bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? []).map(
    (b) => `${b.trim()}\n`,
  );
}

/**
 * `wanted` followed by every certificate of `existing` that it lacks. Used to add a new CA to a
 * webhook before anything is signed by it without removing what is trusted now: if two replicas
 * race, or one dies half-way, the CA that ends up in the Secret is still trusted. The exact bundle
 * is written once the Secret is settled.
 */
export function mergeCaBundles(wanted: string, existing: string): string {
  const blocks = pemBlocks(wanted);
  for (const block of pemBlocks(existing)) if (!blocks.includes(block)) blocks.push(block);
  return blocks.join('');
}
