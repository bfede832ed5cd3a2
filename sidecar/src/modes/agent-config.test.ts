import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { agentKubeconfig, writeAgentKubeconfig } from './agent-config.js';

describe('the agent kubeconfig', () => {
  it('has a context per Connection at the loopback listener, no credential, names kept as strings', () => {
    const cfg = parse(
      agentKubeconfig([
        { name: 'cluster-api', port: 16443 },
        { name: '123', port: 16444 },
      ]),
    );
    expect(cfg['current-context']).toBe('cluster-api');
    expect(cfg.clusters).toEqual([
      { name: 'cluster-api', cluster: { server: 'http://127.0.0.1:16443' } },
      { name: '123', cluster: { server: 'http://127.0.0.1:16444' } },
    ]);
    expect(cfg.users).toEqual([{ name: 'chaperone-agent', user: {} }]);
    expect(cfg.contexts[1]).toEqual({ name: '123', context: { cluster: '123', user: 'chaperone-agent' } });
  });

  it('is written whole, readable by an agent running as another user', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'agent-config-'));
    try {
      const path = await writeAgentKubeconfig(dir, [{ name: 'c', port: 1 }]);
      expect(path).toBe(join(dir, 'kubeconfig'));
      expect((await stat(path)).mode & 0o777).toBe(0o644);
      expect(await readFile(path, 'utf8')).toContain('server: http://127.0.0.1:1');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
