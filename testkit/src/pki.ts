import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runOk } from './run.js';

/**
 * A throw-away certificate authority made with the openssl CLI. Tests use it for PostgreSQL TLS,
 * the kube-apiserver serving certificate and client-certificate users.
 */
export interface TestCa {
  readonly certPath: string;
  readonly keyPath: string;
  issue(name: string, opts: IssueOptions): Promise<IssuedCert>;
}

export interface IssueOptions {
  commonName: string;
  organizations?: string[];
  /** Subject alternative names such as `IP:127.0.0.1` or `DNS:localhost`. */
  altNames?: string[];
  usage: 'server' | 'client' | 'both';
  days?: number;
}

export interface IssuedCert {
  readonly certPath: string;
  readonly keyPath: string;
}

// openssl -subj needs '/' and '=' escaped inside values; the names we use never contain them.
function subject(cn: string, orgs: string[] = []): string {
  return `${orgs.map((o) => `/O=${o}`).join('')}/CN=${cn}`;
}

export async function createTestCa(dir: string, name = 'chaperone-test-ca'): Promise<TestCa> {
  const certPath = join(dir, `${name}.crt`);
  const keyPath = join(dir, `${name}.key`);
  await runOk('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    keyPath,
    '-out',
    certPath,
    '-days',
    '2',
    '-subj',
    `/CN=${name}`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  let serial = 1;
  return {
    certPath,
    keyPath,
    async issue(fileBase, opts) {
      const cert = join(dir, `${fileBase}.crt`);
      const key = join(dir, `${fileBase}.key`);
      const csr = join(dir, `${fileBase}.csr`);
      const ext = join(dir, `${fileBase}.ext`);
      const eku = { server: 'serverAuth', client: 'clientAuth', both: 'serverAuth,clientAuth' }[opts.usage];
      const lines = [
        'basicConstraints=critical,CA:FALSE',
        'keyUsage=critical,digitalSignature,keyEncipherment',
        `extendedKeyUsage=${eku}`,
      ];
      if (opts.altNames?.length) lines.push(`subjectAltName=${opts.altNames.join(',')}`);
      await writeFile(ext, `${lines.join('\n')}\n`);
      await newKeyAndCsr(key, csr, opts.commonName, opts.organizations);
      await runOk('openssl', [
        'x509',
        '-req',
        '-in',
        csr,
        '-CA',
        certPath,
        '-CAkey',
        keyPath,
        '-set_serial',
        String(++serial),
        '-days',
        String(opts.days ?? 1),
        '-extfile',
        ext,
        '-out',
        cert,
      ]);
      return { certPath: cert, keyPath: key };
    },
  };
}

/** A new P-256 key (unencrypted, at keyPath) and a CSR for CN=commonName, O=each organization. */
export async function newKeyAndCsr(
  keyPath: string,
  csrPath: string,
  commonName: string,
  organizations?: string[],
): Promise<void> {
  await runOk('openssl', [
    'req',
    '-new',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    keyPath,
    '-out',
    csrPath,
    '-subj',
    subject(commonName, organizations),
  ]);
}
