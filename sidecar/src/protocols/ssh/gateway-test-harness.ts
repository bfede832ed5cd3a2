// Test support: a real sshd, the gateway in front of it with recording hooks whose decisions a test
// can change, and real OpenSSH clients pinned to the gateway's host key.
import { readFile } from 'node:fs/promises';
import { signSshUserCertificate } from '@chaperone/api';
import { type OpenSshClient, openSshClient, startSshd, type TestSshd } from '@chaperone/testkit';
import {
  generateGatewayHostKey,
  type SshGateway,
  type SshGatewayLimits,
  type SshGatewayOptions,
  startSshGateway,
} from './gateway-server.js';
import type { SshDecision, SshOperation, SshRecordEvent } from './hooks.js';
import { generateSessionKeyPair } from './ssh-keys.js';
import { connectUpstream } from './upstream-client.js';

export type DecideFn = (op: SshOperation, notify: (line: string) => void) => Promise<SshDecision>;

export interface GatewayHarness {
  readonly sshd: TestSshd;
  readonly gateway: SshGateway;
  readonly gatewayHostKey: string;
  readonly client: OpenSshClient;
  readonly events: SshRecordEvent[];
  readonly decisions: SshOperation[];
  /** Replace to change what the hooks decide; default allows everything. */
  decide: DecideFn;
  /** Upstream logins made so far. */
  upstreamLogins: number;
  stop(): Promise<void>;
}

export async function startGatewayHarness(
  opts: {
    limits?: SshGatewayLimits;
    hostKeys?: (sshd: TestSshd) => string[];
    /** ssh-keygen -V validity of the upstream certificates (default -1m:+5m). */
    certificateValidity?: string;
    gateway?: Pick<SshGatewayOptions, 'verifyPassword' | 'allowPodIdentity' | 'sftp'>;
  } = {},
): Promise<GatewayHarness> {
  const sshd = await startSshd();
  const hostKey = generateGatewayHostKey();
  const caKey = await readFile(sshd.userCaKeyPath, 'utf8');
  const events: SshRecordEvent[] = [];
  const decisions: SshOperation[] = [];
  const h = {
    decide: (async () => ({ verdict: 'allow' })) as DecideFn,
    upstreamLogins: 0,
  };
  const gateway = await startSshGateway({
    hostKey: hostKey.privateKey,
    limits: opts.limits,
    ...opts.gateway,
    sessionHooks: () => ({
      decide: (op, notify) => {
        decisions.push(op);
        return h.decide(op, notify);
      },
      record: (e) => events.push(e),
    }),
    connectUpstream: async () => {
      h.upstreamLogins++;
      const keyPair = generateSessionKeyPair();
      // The shared signer (what standalone mode uses with the CA Secret); ssh-keygen for odd validities.
      const certificate = opts.certificateValidity
        ? await sshd.signPublicKey(keyPair.publicKeyLine, {
            identity: 'gateway-test',
            validity: opts.certificateValidity,
          })
        : signSshUserCertificate({
            caPrivateKeyPem: caKey,
            publicKey: keyPair.publicKeyLine,
            principals: [sshd.loginUser],
            ttlMs: 5 * 60_000,
            keyId: 'chaperone:gateway-test',
            permitPortForwarding: true,
          }).certificate;
      return connectUpstream({
        host: sshd.host,
        port: sshd.port,
        username: sshd.loginUser,
        credential: { keyPair, certificate },
        hostKeys: opts.hostKeys ? opts.hostKeys(sshd) : [sshd.hostPublicKey],
      });
    },
  });
  const client = await openSshClient({
    host: gateway.host,
    port: gateway.port,
    hostPublicKey: hostKey.publicKeyLine,
  });
  return Object.assign(h, {
    sshd,
    gateway,
    gatewayHostKey: hostKey.publicKeyLine,
    client,
    events,
    decisions,
    async stop() {
      await client.remove();
      await gateway.close();
      await sshd.stop();
    },
  });
}
