import { readFileSync } from 'node:fs';
import type { V1Container, V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { SIDECAR_CONTAINER_NAME } from '../operator-constants.js';
import { INJECTED_VOLUMES, type InjectionConfig } from './build-patch.js';
import { injectedPodProblems } from './verify-injected-pod.js';

const testdata = (f: string) => JSON.parse(readFileSync(new URL(`./testdata/${f}`, import.meta.url), 'utf8'));
const config = testdata('config.json') as InjectionConfig;
const injected = () => testdata('already-injected.pod.json') as V1Pod;
const sidecar = (pod: V1Pod) =>
  pod.spec?.initContainers?.find((c) => c.name === SIDECAR_CONTAINER_NAME) as V1Container;

describe('injectedPodProblems (for the broker)', () => {
  it('accepts a pod as the webhook injected it', () => {
    expect(injectedPodProblems(injected(), config)).toEqual([]);
  });

  it('accepts a previous sidecar image only when it is allowed', () => {
    const pod = injected();
    sidecar(pod).image = 'registry.local/chaperone/sidecar:0.0.9';
    expect(injectedPodProblems(pod, config).join()).toMatch(/not the chaperone sidecar image/);
    expect(
      injectedPodProblems(pod, config, [config.sidecarImage, 'registry.local/chaperone/sidecar:0.0.9']),
    ).toEqual([]);
  });

  it('rejects every way a hand-written pod spec could hand the token to something else', () => {
    const cases: Array<[string, (pod: V1Pod) => void, RegExp]> = [
      ['no sidecar', (p) => p.spec?.initContainers?.splice(0), /has no chaperone sidecar/],
      [
        'another image',
        (p) => {
          sidecar(p).image = 'evil:1';
        },
        /not the chaperone sidecar image/,
      ],
      [
        'overridden command',
        (p) => {
          sidecar(p).command = ['sh'];
        },
        /command is overridden/,
      ],
      [
        'not a native sidecar',
        (p) => {
          sidecar(p).restartPolicy = undefined;
        },
        /not a native sidecar/,
      ],
      [
        'another broker',
        (p) => {
          sidecar(p).args = ['--broker', 'https://evil.example', '--token-file', 'x'];
        },
        /another broker/,
      ],
      [
        'another collector',
        (p) => void sidecar(p).args?.push('--collector', 'https://evil.example'),
        /another collector/,
      ],
      [
        'shared PID namespace',
        (p) => {
          p.spec!.shareProcessNamespace = true;
        },
        /process namespace/,
      ],
      [
        'agent mounts the token',
        (p) =>
          void p.spec?.containers[0]?.volumeMounts?.push({ name: INJECTED_VOLUMES.tokens, mountPath: '/t' }),
        /container "agent" mounts the chaperone token volume/,
      ],
      [
        'own projected token for the broker audience',
        (p) => {
          p.spec?.volumes?.push({
            name: 'mine',
            projected: { sources: [{ serviceAccountToken: { audience: 'chaperone', path: 't' } }] },
          });
          p.spec?.containers[0]?.volumeMounts?.push({ name: 'mine', mountPath: '/t' });
        },
        /container "agent" mounts the chaperone token volume "mine"/,
      ],
      [
        'debug container targeting the sidecar',
        (p) => {
          p.spec!.ephemeralContainers = [
            { name: 'dbg', image: 'busybox', targetContainerName: SIDECAR_CONTAINER_NAME },
          ];
        },
        /ephemeral container "dbg" shares the sidecar's process namespace/,
      ],
    ];
    for (const [what, tamper, pattern] of cases) {
      const pod = injected();
      tamper(pod);
      expect(injectedPodProblems(pod, config).join('\n'), what).toMatch(pattern);
    }
  });
});
