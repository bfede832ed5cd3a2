// Whether the upstream host key is the one the Connection pins. Pure; fail closed.
//
// endpoint.hostKeys: authorized_keys lines; the presented key must equal one of them.
// endpoint.hostCertificateAuthorities: ssh2's client does not negotiate host certificate algorithms
// (`*-cert-v01@openssh.com` are not in its server host key list), so sshd always presents its plain
// key and a CA can never vouch for it through ssh2. Such a Connection is refused with a message that
// says so and what to pin instead, rather than silently trusting anything.
import { fingerprintOf, parseAuthorizedKey, SshReader } from './ssh-keys.js';

export interface HostKeyTrust {
  readonly hostKeys?: readonly string[];
  readonly hostCertificateAuthorities?: readonly string[];
}

export type HostKeyVerdict = { ok: true } | { ok: false; message: string };

export function checkHostKey(
  presented: Buffer,
  trust: HostKeyTrust,
  target: { host: string; port: number },
): HostKeyVerdict {
  let type = 'unknown';
  try {
    type = new SshReader(presented).string().toString('latin1');
  } catch {
    return { ok: false, message: `the host key presented by ${target.host}:${target.port} is malformed` };
  }
  for (const line of trust.hostKeys ?? []) {
    let pinned: Buffer;
    try {
      pinned = parseAuthorizedKey(line).blob;
    } catch {
      continue; // validated by the CRD; an unreadable entry pins nothing
    }
    if (pinned.equals(presented)) return { ok: true };
  }
  const seen = `${type} ${fingerprintOf(presented)}`;
  const line = `${type} ${presented.toString('base64')}`;
  const caNote =
    (trust.hostCertificateAuthorities?.length ?? 0) > 0
      ? ' (hostCertificateAuthorities cannot vouch for it: the gateway does not negotiate host certificates, so pin the host key itself)'
      : '';
  return {
    ok: false,
    message:
      `host key verification failed for ${target.host}:${target.port}: it presented ${seen}, which is not in ` +
      `the Connection's spec.endpoint.hostKeys${caNote}. If this is the right host, add "${line}" to ` +
      'spec.endpoint.hostKeys (compare the fingerprint with `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` on the host).',
  };
}
