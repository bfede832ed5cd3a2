// The OpenSSH client configuration an agent uses to reach its ssh Connections through the sidecar:
// one Host block per Connection (its name is the host alias) and a known_hosts file that pins the
// gateway's per-process host key, so the agent's ssh never trusts on first use. Pure.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { RunningGateway } from '../types.js';

export interface SshAgentEntry {
  /** The Connection's name: `ssh <name> <command>`. */
  readonly name: string;
  readonly port: number;
  /** The gateway's host public key (authorized_keys format). */
  readonly hostKeyLine: string;
  /** Remote user to ask for: one of the Connection's principals. */
  readonly user?: string;
}

export const SSH_CONFIG_FILE = 'ssh_config';
export const KNOWN_HOSTS_FILE = 'ssh_known_hosts';

/** The host key of a running ssh gateway (undefined for other protocols' gateways). */
export function gatewayHostKey(gw: RunningGateway): string | undefined {
  const line = (gw as { hostKeyLine?: unknown }).hostKeyLine;
  return typeof line === 'string' ? line : undefined;
}

const SAFE_NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

export function sshAgentConfig(
  entries: readonly SshAgentEntry[],
  dir: string,
): { sshConfig: string; knownHosts: string } {
  const knownHostsPath = join(dir, KNOWN_HOSTS_FILE);
  const blocks: string[] = [];
  const known: string[] = [];
  for (const e of entries) {
    // Connection names are DNS labels (the CRD says so); anything else would be ssh_config syntax.
    if (!SAFE_NAME.test(e.name)) continue;
    const alias = `chaperone-${e.name}`;
    blocks.push(
      [
        `Host ${e.name}`,
        '  HostName 127.0.0.1',
        `  Port ${e.port}`,
        ...(e.user && SAFE_NAME.test(e.user) ? [`  User ${e.user}`] : []),
        `  HostKeyAlias ${alias}`,
        `  UserKnownHostsFile ${knownHostsPath}`,
        '  GlobalKnownHostsFile /dev/null',
        '  StrictHostKeyChecking yes',
        // The gateway logs the pod in without a key; the agent's own keys are never offered.
        '  PreferredAuthentications none,password',
        '  IdentitiesOnly yes',
        '  IdentityFile none',
        '  ForwardAgent no',
        '  ForwardX11 no',
      ].join('\n'),
    );
    known.push(`${alias} ${e.hostKeyLine.trim().split(/\s+/).slice(0, 2).join(' ')}`);
  }
  return { sshConfig: `${blocks.join('\n\n')}\n`, knownHosts: `${known.join('\n')}\n` };
}

/** Writes ssh_config and the known_hosts it names into the folder shared with the agent. */
export async function writeSshAgentConfig(entries: readonly SshAgentEntry[], dir: string): Promise<void> {
  if (entries.length === 0) return;
  const { sshConfig, knownHosts } = sshAgentConfig(entries, dir);
  await writeFile(join(dir, KNOWN_HOSTS_FILE), knownHosts, { mode: 0o644 });
  await writeFile(join(dir, SSH_CONFIG_FILE), sshConfig, { mode: 0o644 });
}
