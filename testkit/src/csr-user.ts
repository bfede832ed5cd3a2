import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { newKeyAndCsr } from './pki.js';
import type { RunResult } from './run.js';
import { waitFor } from './wait-for.js';

type Kubectl = (args: string[], opts?: { input?: string; timeoutMs?: number }) => Promise<RunResult>;

/**
 * A real user of any cluster: a client certificate for CN=name, O=groups, issued by the cluster's
 * own signer through the CertificateSigningRequest API (kubernetes.io/kube-apiserver-client), the
 * way an administrator onboards a person without an IdP. Writes a kubeconfig for it (server and CA
 * from the admin kubeconfig) to `file`, mode 0600: it holds the private key.
 */
export async function csrUserKubeconfig(
  kubectl: Kubectl,
  user: { name: string; groups: string[] },
  file: string,
): Promise<string> {
  const ok = async (args: string[], input?: string) => {
    const r = await kubectl(args, { input, timeoutMs: 60_000 });
    if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  const dir = await mkdtemp(join(tmpdir(), 'chaperone-csr-'));
  try {
    await newKeyAndCsr(join(dir, 'key.pem'), join(dir, 'csr.pem'), user.name, user.groups);
    const csrName = `chaperone-e2e-${user.name}-${Date.now()}`;
    await ok(
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'certificates.k8s.io/v1',
        kind: 'CertificateSigningRequest',
        metadata: { name: csrName },
        spec: {
          request: Buffer.from(await readFile(join(dir, 'csr.pem'))).toString('base64'),
          signerName: 'kubernetes.io/kube-apiserver-client',
          expirationSeconds: 3600,
          usages: ['client auth'],
        },
      }),
    );
    await ok(['certificate', 'approve', csrName]);
    const cert = await waitFor(`the certificate of ${csrName}`, async () => {
      const c = await ok(['get', 'csr', csrName, '-o', 'jsonpath={.status.certificate}']);
      return c.trim() || undefined;
    });
    await ok(['delete', 'csr', csrName]);
    const admin = JSON.parse(await ok(['config', 'view', '--raw', '--minify', '-o', 'json'])) as {
      clusters: { cluster: { server: string; 'certificate-authority-data'?: string } }[];
    };
    const cluster = admin.clusters[0]?.cluster;
    if (!cluster) throw new Error('the admin kubeconfig has no cluster');
    await writeFile(
      file,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'cluster', cluster }],
        users: [
          {
            name: user.name,
            user: {
              'client-certificate-data': cert,
              'client-key-data': (await readFile(join(dir, 'key.pem'))).toString('base64'),
            },
          },
        ],
        contexts: [{ name: user.name, context: { cluster: 'cluster', user: user.name } }],
        'current-context': user.name,
      }),
      { mode: 0o600 },
    );
    await chmod(file, 0o600);
    return file;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
