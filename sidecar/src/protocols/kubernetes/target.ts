import type { Connection } from '@chaperone/api';

/** Where a Kubernetes gateway dials: the API server's URL and the CA that signs its certificate. */
export interface KubeTarget {
  url: string;
  ca: string;
}

/** Fails closed: an https URL and a CA are required (the gateway never skips verification). */
export function kubernetesTargetOf(connection: Connection, caPem: string | undefined): KubeTarget {
  const name = connection.metadata.name;
  const url = connection.spec.endpoint.url;
  if (!url) throw new Error(`connection ${name}: spec.endpoint.url is required for kubernetes`);
  if (new URL(url).protocol !== 'https:') {
    throw new Error(`connection ${name}: the API server must be reached over https (${url})`);
  }
  if (!caPem) {
    throw new Error(
      `connection ${name}: spec.endpoint.tls.caSecretRef must name the CA of the API server's certificate`,
    );
  }
  return { url, ca: caPem };
}
