import type { Connection } from '@chaperone/api';
import type { UpstreamTarget } from './upstream.js';

/** Where a postgres Connection's gateway dials, with the CA its caSecretRef names already resolved. */
export function postgresTargetOf(conn: Connection, caPem: string | undefined): UpstreamTarget {
  const ep = conn.spec.endpoint;
  const tls = ep.tls ?? {};
  return {
    host: ep.host ?? '127.0.0.1',
    port: ep.port ?? 5432,
    database: ep.database ?? 'postgres',
    tls: { mode: tls.mode ?? 'verify-full', ca: caPem, serverName: tls.serverName },
  };
}
