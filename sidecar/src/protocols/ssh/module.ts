// The SSH gateway as the registry sees it: the Connection's endpoint and pinned host keys as the
// target, the wire layer (gateway-server.ts) listening on loopback, and each agent connection run
// through the shared SessionPipeline by SshAgentSession.
import type { Connection } from '@chaperone/api';
import type { ProtocolModule, RunningGateway } from '../types.js';
import { SshAgentSession, type SshTarget } from './agent-session.js';
import { generateGatewayHostKey, startSshGateway } from './gateway-server.js';
import type { SshAgentIdentity } from './hooks.js';
import { generateSessionKeyPair } from './ssh-keys.js';
import { type SshPolicyView, sshPolicyFactory } from './ssh-policy.js';

/** Where an ssh Connection's gateway dials. `caPem` (a TLS CA) has no meaning for SSH. */
export function sshTargetOf(conn: Connection, _caPem: string | undefined): SshTarget {
  const ep = conn.spec.endpoint;
  const principals = conn.spec.credentials?.ssh?.principals ?? [];
  if (principals.length === 0) {
    throw new Error(`ssh connection ${conn.metadata.name} has no spec.credentials.ssh.principals`);
  }
  return {
    host: ep.host ?? '127.0.0.1',
    port: ep.port ?? 22,
    hostKeys: ep.hostKeys,
    hostCertificateAuthorities: ep.hostCertificateAuthorities,
    principals,
  };
}

export const sshProtocol: ProtocolModule<SshTarget, SshPolicyView> = {
  type: 'ssh',
  supported: true,
  prepare: async () => {},
  ready: () => true,
  targetOf: sshTargetOf,
  policyView: sshPolicyFactory,
  async startGateway(served, ctx) {
    // Made in this process and never written anywhere: the host key agents pin (through the
    // known_hosts the sidecar hands them) and the key pair the upstream certificates certify.
    const hostKey = generateGatewayHostKey(`chaperone-${served.name}`);
    const keyPair = generateSessionKeyPair(`chaperone-${served.name}`);
    const sessions = new WeakMap<SshAgentIdentity, SshAgentSession>();
    const pipeline = {
      connection: served.name,
      protocol: 'ssh' as const,
      policyFor: served.policyFor,
      recorderFor: ctx.recorderFor,
      credentials: ctx.credentials,
      approvals: ctx.approvals,
    };
    const verifier = ctx.tokenVerifier;
    const gw = await startSshGateway({
      hostKey: hostKey.privateKey,
      host: ctx.listenHost,
      port: served.listenPort,
      allowPodIdentity: !ctx.requireToken,
      passwordUser: ctx.tokenUser,
      limits: { maxConnections: ctx.maxConnections },
      verifyPassword: verifier
        ? async (_user, password) => {
            const v = await verifier.verify(password);
            return { user: v.user, groups: [...v.groups], issuer: v.issuer };
          }
        : undefined,
      sessionHooks(identity) {
        const session = new SshAgentSession({ pipeline, target: served.target, keyPair, ctx }, identity);
        sessions.set(identity, session);
        return session;
      },
      connectUpstream(identity) {
        const session = sessions.get(identity);
        if (!session) return Promise.reject(new Error('no session for this connection'));
        return session.connect();
      },
      log: (message, fields) => ctx.log('info', message, { connection: served.name, ...fields }),
    });
    const running: RunningGateway & { readonly hostKeyLine: string } = {
      port: gw.port,
      get activeSessions() {
        return gw.connectionCount();
      },
      close: () => gw.close(),
      // The public half agents pin in known_hosts.
      hostKeyLine: hostKey.publicKeyLine,
    };
    return running;
  },
};
