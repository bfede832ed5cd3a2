import { X509Certificate } from 'node:crypto';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  type CertificateKeyPair,
  DAY_MS,
  generateCa,
  issueServingCert,
  serviceDnsNames,
  YEAR_MS,
} from './pki.js';
import {
  buildCaBundle,
  type CertificatePolicy,
  DEFAULT_CERTIFICATE_POLICY,
  isPreviousCaActive,
  mergeCaBundles,
  planServingCertificates,
  previousCaForRotation,
  type StoredServingCertificates,
  validateCertificatePolicy,
} from './serving-certificate-plan.js';
import { customCert, rsaKeyPem } from './test-fixtures.js';

const T0 = new Date('2030-01-01T00:00:00Z');
const at = (ms: number) => new Date(T0.getTime() + ms);
const NAMES = serviceDnsNames('chaperone-operator', 'chaperone-system');
const POLICY: CertificatePolicy = {
  ...DEFAULT_CERTIFICATE_POLICY,
  dnsNames: NAMES,
  ipAddresses: ['127.0.0.1'],
};
const plan = (
  existing: StoredServingCertificates | undefined,
  now: Date,
  policy: Partial<CertificatePolicy> = {},
) => planServingCertificates(existing, { ...POLICY, ...policy, now });

let ca: CertificateKeyPair;
let leaf: CertificateKeyPair;
let otherCa: CertificateKeyPair;
let otherLeaf: CertificateKeyPair;
let good: StoredServingCertificates;
const notAfter = (pem: string) => new X509Certificate(pem).validToDate.getTime();
const notBefore = (pem: string) => new X509Certificate(pem).validFromDate.getTime();

beforeAll(async () => {
  ca = await generateCa(T0, POLICY.caValidityMs);
  leaf = await issueServingCert(ca, POLICY, T0, POLICY.leafValidityMs);
  otherCa = await generateCa(T0, POLICY.caValidityMs);
  otherLeaf = await issueServingCert(otherCa, POLICY, T0, POLICY.leafValidityMs);
  good = { caCert: ca.certPem, caKey: ca.keyPem, tlsCert: leaf.certPem, tlsKey: leaf.keyPem };
});

describe('planServingCertificates', () => {
  it('keeps a fresh CA and leaf, and says until when', () => {
    const result = plan(good, at(DAY_MS));
    expect(result.action).toBe('keep');
    expect(result.reason).toContain(new Date(notAfter(leaf.certPem)).toISOString());
  });

  describe('issue-all: nothing usable to sign with', () => {
    const cases: [string, () => StoredServingCertificates | undefined, RegExp][] = [
      ['no Secret', () => undefined, /no serving certificate yet/],
      ['empty ca.crt', () => ({ ...good, caCert: '' }), /ca\.crt is missing/],
      ['garbage ca.crt', () => ({ ...good, caCert: 'hello world' }), /ca\.crt is missing or not a PEM/],
      [
        'ca.crt with a PEM header around garbage',
        () => ({ ...good, caCert: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n' }),
        /not a PEM certificate/,
      ],
      [
        'a truncated ca.crt',
        () => ({ ...good, caCert: `${ca.certPem.slice(0, 200)}\n-----END CERTIFICATE-----\n` }),
        /not a PEM certificate/,
      ],
      [
        'a leaf as ca.crt',
        () => ({ ...good, caCert: leaf.certPem, caKey: leaf.keyPem }),
        /not a CA certificate/,
      ],
      ['empty ca.key', () => ({ ...good, caKey: '' }), /ca\.key is missing/],
      [
        'garbage ca.key',
        () => ({ ...good, caKey: '-----BEGIN PRIVATE KEY-----\nzz\n-----END PRIVATE KEY-----' }),
        /ca\.key/,
      ],
      ['an RSA ca.key', () => ({ ...good, caKey: rsaKeyPem() }), /not an ECDSA P-256 key/],
      [
        'the key of another CA',
        () => ({ ...good, caKey: otherCa.keyPem }),
        /ca\.key does not belong to ca\.crt/,
      ],
    ];
    for (const [name, existing, reason] of cases) {
      it(name, () => {
        const result = plan(existing(), at(DAY_MS));
        expect(result).toEqual({ action: 'issue-all', reason: expect.stringMatching(reason) });
      });
    }

    it('a CA that is not self-signed (an intermediate)', async () => {
      const intermediate = await customCert({
        subject: 'CN=intermediate',
        issuer: ca,
        notBefore: T0,
        notAfter: at(5 * YEAR_MS),
        ca: true,
      });
      const servedByIt = await issueServingCert(intermediate, POLICY, T0, YEAR_MS);
      const result = plan(
        {
          caCert: intermediate.certPem,
          caKey: intermediate.keyPem,
          tlsCert: servedByIt.certPem,
          tlsKey: servedByIt.keyPem,
        },
        at(DAY_MS),
      );
      expect(result).toEqual({ action: 'issue-all', reason: 'ca.crt is not self-signed' });
    });

    it('a CA that is not valid yet', () => {
      expect(plan(good, at(-DAY_MS))).toEqual({
        action: 'issue-all',
        reason: expect.stringMatching(/CA is not valid before/),
      });
    });

    it('an expired CA', () => {
      expect(plan(good, new Date(notAfter(ca.certPem) + 1))).toEqual({
        action: 'issue-all',
        reason: expect.stringMatching(/CA expired at/),
      });
    });

    it('a CA inside its renew-before window, and not one day earlier', () => {
      const windowStart = notAfter(ca.certPem) - POLICY.caRenewBeforeMs;
      expect(plan(good, new Date(windowStart + 1))).toEqual({
        action: 'issue-all',
        reason: expect.stringMatching(/CA expires in 364 days \(renewed when less than 365 days are left\)/),
      });
      // The leaf is long expired by then: what remains is a leaf problem, not a CA one.
      expect(plan(good, new Date(windowStart - DAY_MS)).action).toBe('issue-leaf');
    });

    it('a custom renew-before window', () => {
      const now = at(5 * YEAR_MS);
      expect(plan(good, now, { caRenewBeforeMs: 6 * YEAR_MS }).action).toBe('issue-all');
      expect(plan(good, now, { caRenewBeforeMs: 4 * YEAR_MS }).action).toBe('issue-leaf');
    });
  });

  describe('issue-leaf: the CA is fine, the leaf is not', () => {
    const cases: [string, () => StoredServingCertificates, RegExp][] = [
      ['empty tls.crt', () => ({ ...good, tlsCert: '' }), /tls\.crt is missing/],
      ['garbage tls.crt', () => ({ ...good, tlsCert: 'garbage' }), /tls\.crt is missing or not a PEM/],
      ['empty tls.key', () => ({ ...good, tlsKey: '' }), /tls\.key is missing/],
      ['garbage tls.key', () => ({ ...good, tlsKey: 'garbage' }), /tls\.key is missing or not a PEM/],
      [
        'the key of another leaf',
        () => ({ ...good, tlsKey: otherLeaf.keyPem }),
        /tls\.key does not belong to tls\.crt/,
      ],
      [
        'a leaf of another CA',
        () => ({ ...good, tlsCert: otherLeaf.certPem, tlsKey: otherLeaf.keyPem }),
        /not signed by the CA/,
      ],
      [
        'the CA itself as tls.crt',
        () => ({ ...good, tlsCert: ca.certPem, tlsKey: ca.keyPem }),
        /is a CA certificate/,
      ],
    ];
    for (const [name, existing, reason] of cases) {
      it(name, () => {
        expect(plan(existing(), at(DAY_MS))).toEqual({
          action: 'issue-leaf',
          reason: expect.stringMatching(reason),
        });
      });
    }

    it('a leaf of another CA with the same subject name', async () => {
      // Same issuer DN, different key: only the signature tells them apart.
      const impostorCa = await customCert({
        subject: new X509Certificate(ca.certPem).subject,
        notBefore: T0,
        notAfter: at(10 * YEAR_MS),
        ca: true,
      });
      const impostorLeaf = await issueServingCert(impostorCa, POLICY, T0, YEAR_MS);
      expect(new X509Certificate(impostorLeaf.certPem).issuer).toBe(new X509Certificate(leaf.certPem).issuer);
      expect(
        plan({ ...good, tlsCert: impostorLeaf.certPem, tlsKey: impostorLeaf.keyPem }, at(DAY_MS)),
      ).toEqual({
        action: 'issue-leaf',
        reason: 'tls.crt is not signed by the CA in ca.crt',
      });
    });

    it('a leaf that is not for serverAuth', async () => {
      const clientCert = await customCert({
        subject: 'CN=client',
        issuer: ca,
        notBefore: T0,
        notAfter: at(YEAR_MS),
        ca: false,
        extendedKeyUsages: ['1.3.6.1.5.5.7.3.2'],
        dnsNames: POLICY.dnsNames as string[],
      });
      expect(plan({ ...good, tlsCert: clientCert.certPem, tlsKey: clientCert.keyPem }, at(DAY_MS))).toEqual({
        action: 'issue-leaf',
        reason: 'tls.crt is not valid for serverAuth',
      });
    });

    it('a leaf that is not valid yet', async () => {
      const future = await issueServingCert(ca, POLICY, at(30 * DAY_MS), YEAR_MS);
      expect(plan({ ...good, tlsCert: future.certPem, tlsKey: future.keyPem }, at(DAY_MS))).toEqual({
        action: 'issue-leaf',
        reason: expect.stringMatching(/tls\.crt is not valid before/),
      });
    });

    it('an expired leaf', () => {
      expect(plan(good, new Date(notAfter(leaf.certPem)))).toEqual({
        action: 'issue-leaf',
        reason: expect.stringMatching(/tls\.crt expired at/),
      });
    });

    it('a leaf with less than a third of its lifetime left, and not before', () => {
      const lifetime = notAfter(leaf.certPem) - notBefore(leaf.certPem);
      const threshold = notAfter(leaf.certPem) - lifetime / 3;
      expect(plan(good, new Date(threshold + 1000))).toEqual({
        action: 'issue-leaf',
        reason: expect.stringMatching(/tls\.crt expires in 121 days, within the last 0\.33 of its lifetime/),
      });
      expect(plan(good, new Date(threshold - 1000)).action).toBe('keep');
    });

    it('a custom renew fraction', () => {
      const now = new Date(notAfter(leaf.certPem) - 0.4 * YEAR_MS);
      expect(plan(good, now, { leafRenewFraction: 0.5 }).action).toBe('issue-leaf');
      expect(plan(good, now, { leafRenewFraction: 0.25 }).action).toBe('keep');
    });

    it('a name added, removed or replaced', () => {
      expect(plan(good, at(DAY_MS), { dnsNames: [...NAMES, 'extra.example'] })).toEqual({
        action: 'issue-leaf',
        reason: expect.stringMatching(/tls\.crt names .* want .*extra\.example/),
      });
      expect(plan(good, at(DAY_MS), { dnsNames: NAMES.slice(1) }).action).toBe('issue-leaf');
      expect(
        plan(good, at(DAY_MS), { dnsNames: serviceDnsNames('chaperone-operator', 'other-ns') }).action,
      ).toBe('issue-leaf');
    });

    it('names compare without case or order', () => {
      expect(
        plan(good, at(DAY_MS), { dnsNames: [...NAMES].reverse().map((n) => n.toUpperCase()) }).action,
      ).toBe('keep');
    });

    it('an IP address added, removed or changed; IPv6 spellings compare equal', async () => {
      expect(plan(good, at(DAY_MS), { ipAddresses: [] })).toEqual({
        action: 'issue-leaf',
        reason: 'tls.crt IP addresses 127.0.0.1, want (none)',
      });
      expect(plan(good, at(DAY_MS), { ipAddresses: ['127.0.0.2'] }).action).toBe('issue-leaf');
      expect(plan(good, at(DAY_MS), { ipAddresses: ['127.0.0.1', '::1'] }).action).toBe('issue-leaf');
      const v6 = await issueServingCert(ca, { dnsNames: NAMES, ipAddresses: ['fd00:0:0::1'] }, T0, YEAR_MS);
      const withV6 = { ...good, tlsCert: v6.certPem, tlsKey: v6.keyPem };
      expect(plan(withV6, at(DAY_MS), { ipAddresses: ['fd00::0001'] }).action).toBe('keep');
    });
  });

  it('over the whole timeline: CA problems win over leaf problems, keep only while both are fresh', () => {
    const caEnd = notAfter(ca.certPem);
    const leafStart = notBefore(leaf.certPem);
    const leafEnd = notAfter(leaf.certPem);
    const leafRenewAt = leafEnd - (leafEnd - leafStart) / 3;
    fc.assert(
      fc.property(fc.integer({ min: -2 * DAY_MS, max: 11 * YEAR_MS }), (offset) => {
        const now = T0.getTime() + offset;
        const expected =
          now < notBefore(ca.certPem) || now >= caEnd - POLICY.caRenewBeforeMs
            ? 'issue-all'
            : now < leafStart || now >= leafRenewAt
              ? 'issue-leaf'
              : 'keep';
        expect(plan(good, new Date(now)).action).toBe(expected);
      }),
      { numRuns: 200 },
    );
  });

  it('refuses settings that could never converge', () => {
    expect(() => plan(good, T0, { caValidityMs: YEAR_MS, caRenewBeforeMs: YEAR_MS })).toThrow(
      /CA validity must be longer than the CA renew-before window/,
    );
  });
});

describe('validateCertificatePolicy', () => {
  it('accepts the defaults', () => {
    expect(() => validateCertificatePolicy(POLICY)).not.toThrow();
  });
  it.each([
    [{ dnsNames: [], ipAddresses: [] }, /at least one DNS name or IP address/],
    [{ ipAddresses: ['300.1.1.1'] }, /"300\.1\.1\.1" is not an IP address/],
    [{ leafValidityMs: 0 }, /leaf validity must be positive/],
    [{ leafRenewFraction: 0 }, /leaf renew fraction/],
    [{ leafRenewFraction: 1 }, /leaf renew fraction/],
    [{ caRenewBeforeMs: -1 }, /must not be negative/],
    [{ caValidityMs: 2 * YEAR_MS, caRenewBeforeMs: 3 * YEAR_MS }, /CA validity must be longer/],
  ] as [Partial<CertificatePolicy>, RegExp][])('rejects %j', (override, message) => {
    expect(() => validateCertificatePolicy({ ...POLICY, ...override })).toThrow(message);
  });
  it('lists every problem at once', () => {
    expect(() => validateCertificatePolicy({ ...POLICY, leafValidityMs: -1, leafRenewFraction: 2 })).toThrow(
      /leaf validity must be positive; leaf renew fraction/,
    );
  });
});

describe('previous CA during a rotation', () => {
  it('keeps the old CA until the old leaf expires', () => {
    const previous = previousCaForRotation(good, at(9 * YEAR_MS));
    // The leaf expired long ago in that case, so nothing needs the old CA.
    expect(previous).toBeUndefined();
    const soon = previousCaForRotation(good, at(DAY_MS));
    expect(soon?.retireAfter.getTime()).toBe(notAfter(leaf.certPem));
    expect(soon?.certPem.trim()).toBe(ca.certPem.trim());
  });

  it('without a usable old leaf, keeps the old CA until it expires', () => {
    const previous = previousCaForRotation({ ...good, tlsCert: 'garbage' }, at(DAY_MS));
    expect(previous?.retireAfter.getTime()).toBe(notAfter(ca.certPem));
    const foreignLeaf = previousCaForRotation({ ...good, tlsCert: otherLeaf.certPem }, at(DAY_MS));
    expect(foreignLeaf?.retireAfter.getTime()).toBe(notAfter(ca.certPem));
  });

  it('keeps nothing when there was no usable old CA', () => {
    expect(previousCaForRotation(undefined, T0)).toBeUndefined();
    expect(previousCaForRotation({ ...good, caCert: 'garbage' }, T0)).toBeUndefined();
    expect(previousCaForRotation({ ...good, caCert: leaf.certPem }, T0)).toBeUndefined();
    expect(previousCaForRotation(good, new Date(notAfter(ca.certPem)))).toBeUndefined();
  });

  it('is active only before its retire time and while it parses', () => {
    const previous = { certPem: ca.certPem, retireAfter: at(DAY_MS) };
    expect(isPreviousCaActive(previous, T0)).toBe(true);
    expect(isPreviousCaActive(previous, at(DAY_MS))).toBe(false);
    expect(isPreviousCaActive({ ...previous, retireAfter: new Date(Number.NaN) }, T0)).toBe(false);
    expect(isPreviousCaActive({ ...previous, certPem: 'garbage' }, T0)).toBe(false);
    expect(isPreviousCaActive(undefined, T0)).toBe(false);
  });
});

describe('buildCaBundle', () => {
  it('puts the current CA first, then the previous one', () => {
    const bundle = buildCaBundle(otherCa.certPem, { certPem: ca.certPem, retireAfter: T0 });
    expect(bundle).toBe(`${otherCa.certPem.trim()}\n${ca.certPem.trim()}\n`);
  });
  it('is just the current CA without a previous one, and never lists a CA twice', () => {
    expect(buildCaBundle(ca.certPem)).toBe(`${ca.certPem.trim()}\n`);
    expect(buildCaBundle(ca.certPem, { certPem: `${ca.certPem}\n\n`, retireAfter: T0 })).toBe(
      `${ca.certPem.trim()}\n`,
    );
  });
});

describe('mergeCaBundles', () => {
  it('puts the wanted CAs first and keeps every other CA already trusted, once', () => {
    const existing = `${ca.certPem}\n${otherCa.certPem}`;
    const wanted = buildCaBundle(otherCa.certPem);
    expect(mergeCaBundles(wanted, existing)).toBe(`${otherCa.certPem.trim()}\n${ca.certPem.trim()}\n`);
  });
  it('is the wanted bundle when nothing is trusted yet or the existing bundle is garbage', () => {
    expect(mergeCaBundles(ca.certPem, '')).toBe(`${ca.certPem.trim()}\n`);
    expect(mergeCaBundles(ca.certPem, 'not pem')).toBe(`${ca.certPem.trim()}\n`);
  });
});
