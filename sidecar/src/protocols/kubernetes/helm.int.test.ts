// Helm through the gateway. Helm keeps each release in a Secret (type helm.sh/release.v1) and reads
// it back on upgrade, status and list: with every Secret redacted Helm cannot upgrade, so policy
// must reveal release Secrets explicitly (their values include the chart values, which may hold
// credentials: a policy decision, made visible here).

import { mkdir, writeFile } from 'node:fs/promises';
import { findHelm, makeWorkDir, run, type WorkDir } from '@chaperone/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type KubeFixture, startKubeFixture } from './test-fixture.js';

let fx: KubeFixture;
let work: WorkDir;
let chart: string;
const NS = 'helm-gw';

const helm = (args: string[]) =>
  run(findHelm(), [...args, '--kubeconfig', fx.kubeconfig, '-n', NS], {
    env: {
      ...process.env,
      HELM_CACHE_HOME: work.file('cache'),
      HELM_CONFIG_HOME: work.file('config'),
      HELM_DATA_HOME: work.file('data'),
    },
  });

beforeAll(async () => {
  fx = await startKubeFixture();
  work = await makeWorkDir('helm-gw');
  chart = work.file('demo');
  await mkdir(`${chart}/templates`, { recursive: true });
  await writeFile(`${chart}/Chart.yaml`, 'apiVersion: v2\nname: demo\nversion: 0.1.0\n');
  await writeFile(`${chart}/values.yaml`, 'greeting: hello\n');
  await writeFile(
    `${chart}/templates/configmap.yaml`,
    'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\ndata:\n  greeting: {{ .Values.greeting | quote }}\n',
  );
  expect((await fx.cp.kubectl(['create', 'namespace', NS])).code).toBe(0);
});
afterAll(async () => {
  await fx?.stop();
  await work?.remove();
});

describe('helm through the gateway', () => {
  it('installs; upgrades only once policy reveals Helm release Secrets', async () => {
    const install = await helm(['install', 'demo', chart]);
    expect(install.code, install.stderr).toBe(0);
    const cm = await fx.cp.kubectl(['-n', NS, 'get', 'configmap', 'demo', '-o', 'jsonpath={.data.greeting}']);
    expect(cm.stdout).toBe('hello');

    const blocked = await helm(['upgrade', 'demo', chart, '--set', 'greeting=hi']);
    expect(blocked.code).not.toBe(0);

    fx.revealSecret = (s) => s.type === 'helm.sh/release.v1' && s.labels.owner === 'helm';
    try {
      const upgrade = await helm(['upgrade', 'demo', chart, '--set', 'greeting=hi']);
      expect(upgrade.code, upgrade.stderr).toBe(0);
      const after = await fx.cp.kubectl([
        '-n',
        NS,
        'get',
        'configmap',
        'demo',
        '-o',
        'jsonpath={.data.greeting}',
      ]);
      expect(after.stdout).toBe('hi');
      const list = await helm(['list', '-o', 'json']);
      expect(JSON.parse(list.stdout)).toMatchObject([{ name: 'demo', revision: '2', status: 'deployed' }]);
    } finally {
      fx.revealSecret = undefined;
    }
  });
});
