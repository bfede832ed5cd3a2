import type { ConnectionType } from '@chaperone/api';
import type { ProtocolModule } from './types.js';

/** A protocol the CRDs know and this build does not serve yet: its Connections are skipped with a log line. */
export function unsupportedProtocol(type: ConnectionType): ProtocolModule {
  const refuse = (): never => {
    throw new Error(`the ${type} gateway is not implemented yet`);
  };
  return {
    type,
    supported: false,
    prepare: async () => {},
    ready: () => true,
    targetOf: refuse,
    policyView: refuse,
    startGateway: refuse,
  };
}
