import { chmod, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** File names in the agent-config folder; the operator's KUBECONFIG env points at this one. */
export const AGENT_KUBECONFIG = 'kubeconfig';

/**
 * The agent's kubeconfig: one cluster and context per Kubernetes Connection, each at the sidecar's
 * loopback listener, with no credential at all (the sidecar holds the token). The first Connection
 * (annotation order) is the current context. Nothing secret: written world-readable, because the
 * agent container may run as another user than the sidecar.
 */
export function agentKubeconfig(connections: ReadonlyArray<{ name: string; port: number }>): string {
  // Quoted (JSON strings are YAML): a name such as `123` or `true` must stay a string.
  const q = JSON.stringify;
  const lines = ['apiVersion: v1', 'kind: Config', 'clusters:'];
  for (const c of connections)
    lines.push(`- name: ${q(c.name)}`, '  cluster:', `    server: http://127.0.0.1:${c.port}`);
  lines.push('users:', '- name: chaperone-agent', '  user: {}', 'contexts:');
  for (const c of connections)
    lines.push(
      `- name: ${q(c.name)}`,
      '  context:',
      `    cluster: ${q(c.name)}`,
      '    user: chaperone-agent',
    );
  lines.push(`current-context: ${q(connections[0]?.name ?? '')}`, 'preferences: {}', '');
  return lines.join('\n');
}

/** Written whole or not at all: the agent may read it while the sidecar starts. */
export async function writeAgentKubeconfig(
  dir: string,
  connections: ReadonlyArray<{ name: string; port: number }>,
): Promise<string> {
  const path = join(dir, AGENT_KUBECONFIG);
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, agentKubeconfig(connections), { mode: 0o644 });
  // The process umask would otherwise decide whether the agent can read it.
  await chmod(tmp, 0o644);
  await rename(tmp, path);
  return path;
}
