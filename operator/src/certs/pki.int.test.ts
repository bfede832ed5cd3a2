import { createServer, get, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CertificateKeyPair, generateCa, issueServingCert, serviceDnsNames, YEAR_MS } from './pki.js';

// Node's TLS (the same OpenSSL the operator serves with and that verifies like the API server's
// Go client: chain to the caBundle + SAN match) accepts what pki.ts issues.
describe('serving certificates in a real TLS handshake', () => {
  let ca: CertificateKeyPair;
  let otherCa: CertificateKeyPair;
  let server: Server;
  let port: number;

  beforeAll(async () => {
    const now = new Date();
    ca = await generateCa(now, 10 * YEAR_MS);
    otherCa = await generateCa(now, 10 * YEAR_MS);
    const leaf = await issueServingCert(
      ca,
      { dnsNames: serviceDnsNames('chaperone-operator', 'chaperone-system'), ipAddresses: ['127.0.0.1'] },
      now,
      YEAR_MS,
    );
    server = createServer({ cert: leaf.certPem, key: leaf.keyPem }, (_req, res) => res.end('ok'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await new Promise((resolve) => server?.close(resolve));
  });

  const call = (opts: { servername?: string; ca: string }) =>
    new Promise<string>((resolve, reject) => {
      const req = get(
        { host: '127.0.0.1', port, path: '/', ca: opts.ca, servername: opts.servername, agent: false },
        (res) => {
          let body = '';
          res.on('data', (c) => {
            body += c;
          });
          res.on('end', () => resolve(body));
        },
      );
      req.on('error', reject);
    });

  it.each(serviceDnsNames('chaperone-operator', 'chaperone-system'))(
    'a client trusting only the CA connects as %s',
    async (name) => {
      await expect(call({ servername: name, ca: ca.certPem })).resolves.toBe('ok');
    },
  );

  it('a client connects by the IP SAN', async () => {
    await expect(call({ ca: ca.certPem })).resolves.toBe('ok');
  });

  it('a name not in the certificate fails', async () => {
    await expect(
      call({ servername: 'chaperone-operator.other-ns.svc', ca: ca.certPem }),
    ).rejects.toMatchObject({
      code: 'ERR_TLS_CERT_ALTNAME_INVALID',
    });
  });

  it('a client trusting another CA fails', async () => {
    await expect(
      call({ servername: 'chaperone-operator.chaperone-system.svc', ca: otherCa.certPem }),
    ).rejects.toMatchObject({ code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' });
  });

  it('a client trusting a bundle of another CA and this one connects (the rotation bundle)', async () => {
    await expect(
      call({ servername: 'chaperone-operator.chaperone-system.svc', ca: `${otherCa.certPem}${ca.certPem}` }),
    ).resolves.toBe('ok');
  });
});
