// For the credential broker: does this pod hold its chaperone token the way the webhook set it up?
// The status annotation alone proves nothing: the webhook only sees opted-in pods, so a pod in any
// other namespace can carry the annotation, project a token for audience `chaperone` into its own
// container and show it to the broker. These checks catch the ways a pod spec can hand the token to
// something other than the real sidecar.
import type { V1Container, V1Pod } from '@kubernetes/client-node';
import { SIDECAR_CONTAINER_NAME } from '../operator-constants.js';
import { type InjectionConfig, resolveInjectionConfig, tokenVolumeNames } from './build-patch.js';

function flagValue(args: readonly string[], flag: string): string | undefined {
  const i = args.indexOf(flag);
  return i >= 0 ? args[i + 1] : undefined;
}

/**
 * Problems with an (apparently) injected pod; empty when its token can only be read by a sidecar
 * running an allowed image that sends it to the configured broker and collector.
 * `allowedImages` defaults to the configured image; during an upgrade, list the previous one too,
 * or pods injected before it cannot get credentials until they are recreated.
 */
export function injectedPodProblems(
  pod: V1Pod,
  config: InjectionConfig,
  allowedImages: readonly string[] = [config.sidecarImage],
): string[] {
  const c = resolveInjectionConfig(config);
  const spec = pod.spec;
  const sidecar = spec?.initContainers?.find((x) => x.name === SIDECAR_CONTAINER_NAME);
  if (!spec || !sidecar) return ['the pod has no chaperone sidecar'];
  const problems: string[] = [];
  // Any image could read the token it is given and use it; only ours enforces policy.
  if (!allowedImages.includes(sidecar.image ?? ''))
    problems.push(`the sidecar runs image "${sidecar.image}", which is not the chaperone sidecar image`);
  if (sidecar.restartPolicy !== 'Always')
    problems.push('the sidecar is not a native sidecar (restartPolicy Always)');
  if (sidecar.command?.length) problems.push("the sidecar's command is overridden");
  const args = sidecar.args ?? [];
  if (flagValue(args, '--broker') !== c.brokerUrl) problems.push('the sidecar is pointed at another broker');
  const collector = flagValue(args, '--collector');
  if (collector !== undefined && collector !== c.collectorUrl)
    problems.push('the sidecar is pointed at another collector');
  if (spec.hostPID || spec.shareProcessNamespace)
    problems.push("the pod shares its process namespace, exposing the sidecar's token through /proc");
  const tokenVolumes = tokenVolumeNames(pod);
  const others: Array<Pick<V1Container, 'name' | 'volumeMounts'>> = [
    ...(spec.initContainers ?? []).filter((x) => x !== sidecar),
    ...(spec.containers ?? []),
    ...(spec.ephemeralContainers ?? []),
  ];
  for (const other of others)
    for (const m of other.volumeMounts ?? [])
      if (tokenVolumes.has(m.name))
        problems.push(`container "${other.name}" mounts the chaperone token volume "${m.name}"`);
  for (const e of spec.ephemeralContainers ?? [])
    if (e.targetContainerName === SIDECAR_CONTAINER_NAME)
      problems.push(`ephemeral container "${e.name}" shares the sidecar's process namespace`);
  return problems;
}
