import type { Connection, Logger } from '@chaperone/api';
import type { ProtocolModule, ProtocolRegistry } from '../protocols/types.js';

/**
 * The Connections this build can serve, each with its protocol module. The others (a protocol
 * whose gateway is not built yet) get one log line each and are not served.
 */
export function servableConnections<C extends { connection: Connection }>(
  entries: readonly C[],
  protocols: ProtocolRegistry,
  log: Logger,
): Array<C & { module: ProtocolModule }> {
  const out: Array<C & { module: ProtocolModule }> = [];
  for (const entry of entries) {
    const module = protocols[entry.connection.spec.type];
    if (module.supported) {
      out.push({ ...entry, module });
      continue;
    }
    log('warn', `the ${module.type} gateway is not implemented yet; connection not served`, {
      connection: entry.connection.metadata.name,
    });
  }
  return out;
}
