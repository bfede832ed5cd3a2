// The protocol registry: one module per Connection type. Adding a protocol means adding its folder
// here and its entry below; nothing in runtime/, modes/ or pipeline/ changes (see ../README.md).
import { kubernetesProtocol } from './kubernetes/index.js';
import { postgresProtocol } from './postgres/index.js';
import { sshProtocol } from './ssh/module.js';
import type { ProtocolRegistry } from './types.js';

export const protocols: ProtocolRegistry = {
  postgres: postgresProtocol,
  ssh: sshProtocol,
  kubernetes: kubernetesProtocol,
};

export type {
  GatewayContext,
  ProtocolModule,
  ProtocolRegistry,
  RunningGateway,
  ServedConnection,
} from './types.js';
