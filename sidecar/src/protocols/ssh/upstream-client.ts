// The sidecar's SSH client toward the target: logs in with a short-lived OpenSSH user certificate
// for a key pair made in this process, and trusts only the host keys the Connection pins.
import ssh2, { type Client } from 'ssh2';
import { CertificateAgent, enableCertificateLogin } from './certificate-login.js';
import { checkHostKey, type HostKeyTrust } from './host-key-trust.js';
import { parseCertificate, type SessionKeyPair } from './ssh-keys.js';

export interface SshUpstreamCredential {
  readonly keyPair: SessionKeyPair;
  /** `ssh-ed25519-cert-v01@openssh.com AAAA… id`, signed by the user CA the target trusts. */
  readonly certificate: string;
}

export interface SshUpstreamTarget extends HostKeyTrust {
  readonly host: string;
  readonly port: number;
  /** Remote user: one of the certificate's principals. */
  readonly username: string;
  readonly credential: SshUpstreamCredential;
  readonly readyTimeoutMs?: number;
  /** Keepalive toward the target (ms; 0 disables). Default 15 s, 4 missed ones end the connection. */
  readonly keepaliveIntervalMs?: number;
  readonly now?: () => Date;
}

export type SshUpstreamErrorCode =
  | 'HostKeyRejected'
  | 'CertificateExpired'
  | 'CertificateInvalid'
  | 'AuthenticationFailed'
  | 'Unreachable';

export class SshUpstreamError extends Error {
  constructor(
    readonly code: SshUpstreamErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'SshUpstreamError';
  }
}

/** Connects and authenticates; resolves with a ready client, rejects with an SshUpstreamError. */
export async function connectUpstream(target: SshUpstreamTarget): Promise<Client> {
  const where = `${target.host}:${target.port}`;
  const cert = checkCertificate(target);
  const agent = new CertificateAgent(target.credential.certificate, target.credential.keyPair);
  const client = new ssh2.Client();
  let hostKeyFailure: string | undefined;
  return new Promise<Client>((resolve, reject) => {
    const fail = (err: SshUpstreamError) => {
      client.removeAllListeners('ready');
      client.end();
      reject(err);
    };
    client.once('ready', () => {
      client.removeAllListeners('error');
      // After login, errors surface as 'close' on the channels; keep a listener so none is thrown.
      client.on('error', () => {});
      resolve(client);
    });
    client.on('error', (err: Error & { level?: string }) => {
      if (hostKeyFailure) return fail(new SshUpstreamError('HostKeyRejected', hostKeyFailure));
      if (err.level === 'client-authentication') {
        return fail(
          new SshUpstreamError(
            'AuthenticationFailed',
            `${where} refused the certificate login as ${target.username} (${cert}): check that its sshd trusts ` +
              "the Connection's user CA (TrustedUserCAKeys) and accepts this principal",
          ),
        );
      }
      fail(new SshUpstreamError('Unreachable', `cannot reach ${where}: ${err.message}`));
    });
    client.connect({
      host: target.host,
      port: target.port,
      username: target.username,
      agent,
      tryKeyboard: false,
      readyTimeout: target.readyTimeoutMs ?? 20_000,
      keepaliveInterval: target.keepaliveIntervalMs ?? 15_000,
      keepaliveCountMax: 4,
      algorithms: { compress: ['none'] },
      hostVerifier: (key: Buffer) => {
        const verdict = checkHostKey(key, target, target);
        if (!verdict.ok) hostKeyFailure = verdict.message;
        return verdict.ok;
      },
    });
    enableCertificateLogin(client, agent);
  });
}

/** Refuses a certificate that cannot work before any packet is sent; returns a description. */
function checkCertificate(target: SshUpstreamTarget): string {
  const line = target.credential.certificate.trim();
  let info: ReturnType<typeof parseCertificate>;
  try {
    info = parseCertificate(Buffer.from(line.split(/\s+/)[1] ?? '', 'base64'));
  } catch (err) {
    throw new SshUpstreamError(
      'CertificateInvalid',
      `the SSH certificate cannot be read: ${(err as Error).message}`,
    );
  }
  if (!info.publicKeyBlob.equals(target.credential.keyPair.publicKeyBlob)) {
    throw new SshUpstreamError(
      'CertificateInvalid',
      "the SSH certificate is for another key than this session's",
    );
  }
  const now = (target.now ?? (() => new Date()))();
  const desc = `certificate "${info.keyId}" valid ${info.validAfter.toISOString()} to ${info.validBefore.toISOString()}`;
  if (now >= info.validBefore) {
    throw new SshUpstreamError(
      'CertificateExpired',
      `the SSH certificate expired at ${info.validBefore.toISOString()} (${desc}); a new one is needed`,
    );
  }
  if (now < info.validAfter) {
    throw new SshUpstreamError(
      'CertificateInvalid',
      `the SSH certificate is not valid before ${info.validAfter.toISOString()}: check the clocks`,
    );
  }
  if (info.kind !== 1)
    throw new SshUpstreamError('CertificateInvalid', 'the SSH certificate is not a user certificate');
  if (info.principals.length > 0 && !info.principals.includes(target.username)) {
    throw new SshUpstreamError(
      'CertificateInvalid',
      `the SSH certificate does not name ${target.username} among its principals (${info.principals.join(', ')})`,
    );
  }
  return desc;
}
