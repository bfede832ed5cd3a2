import type { Connection } from '@chaperone/api';

/** Where a Kubernetes gateway dials: the API server's URL and the CA that signs its certificate. */
export interface KubeTarget {
  url: string;
  /** PEM bundle from `endpoint.caBundle`; absent: the system trust store. */
  ca?: string;
}

/**
 * Fails closed: an https URL is required and the certificate is always verified
 * (`insecureSkipTLSVerify` is refused: the gateway's token would go to whoever answers).
 */
export function kubernetesTargetOf(connection: Connection, caPem: string | undefined): KubeTarget {
  const name = connection.metadata.name;
  const { url, caBundle, insecureSkipTLSVerify } = connection.spec.endpoint;
  if (!url) throw new Error(`connection ${name}: spec.endpoint.url is required for kubernetes`);
  if (new URL(url).protocol !== 'https:') {
    throw new Error(`connection ${name}: the API server must be reached over https (${url})`);
  }
  if (insecureSkipTLSVerify) {
    throw new Error(
      `connection ${name}: insecureSkipTLSVerify is not supported by the sidecar; set endpoint.caBundle`,
    );
  }
  const ca = caBundle ? Buffer.from(caBundle, 'base64').toString('utf8') : caPem;
  if (ca !== undefined && !ca.includes('-----BEGIN CERTIFICATE-----')) {
    throw new Error(`connection ${name}: endpoint.caBundle is not base64 of a PEM certificate bundle`);
  }
  return { url, ...(ca ? { ca } : {}) };
}
