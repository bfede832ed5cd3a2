// The SSH protocol module: wire layer only. Policy, approvals, credentials and the recorder plug in
// through SshSessionHooks and SshGatewayOptions (see docs/ssh-gateway.md).
export { type BridgeResult, bridgeChannels, type UpstreamWatch, watchUpstream } from './channel-bridge.js';
export {
  generateGatewayHostKey,
  type SshGateway,
  type SshGatewayLimits,
  type SshGatewayOptions,
  startSshGateway,
} from './gateway-server.js';
export type {
  AsciicastFrame,
  AsciicastHeader,
  SftpOperationKind,
  SshAgentIdentity,
  SshDecision,
  SshOperation,
  SshPtyInfo,
  SshRecordEvent,
  SshSessionHooks,
} from './hooks.js';
export { DENIED_EXIT_STATUS, UPSTREAM_FAILED_EXIT_STATUS } from './session-channel.js';
export { fingerprintOf, generateSessionKeyPair, parseCertificate, type SessionKeyPair } from './ssh-keys.js';
export {
  connectUpstream,
  type SshUpstreamCredential,
  SshUpstreamError,
  type SshUpstreamErrorCode,
  type SshUpstreamTarget,
} from './upstream-client.js';
