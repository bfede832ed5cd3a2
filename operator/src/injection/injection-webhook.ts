// The AdmissionReview side of injection: looks up the namespace and the Connections, then hands
// the decisions to the pure shouldInject / injectionConflicts / buildPatch.
import {
  CONNECTIONS_ANNOTATION,
  type Connection,
  INJECT_LABEL,
  INJECT_LABEL_DISABLED,
  type Logger,
  NAMESPACE_INJECTION_LABEL,
  parseConnectionsAnnotation,
} from '@chaperone/api';
import type { V1Pod } from '@kubernetes/client-node';
import type { AdmissionHandler, AdmissionRequest, AdmissionVerdict } from '../admission/admission-review.js';
import { SIDECAR_CONTAINER_NAME } from '../operator-constants.js';
import {
  buildPatch,
  type InjectionConfig,
  injectionConflicts,
  resolveInjectionConfig,
  tokenVolumeNames,
} from './build-patch.js';
import { type OptInVia, shouldInject } from './should-inject.js';

export interface InjectionHandlerOptions {
  /** Read on every request, so a rotated broker CA or a new sidecar image applies to the next pod. */
  config: () => InjectionConfig;
  /** Labels of the namespace, undefined when it does not exist. Throwing refuses the pod (fail closed). */
  lookupNamespace(
    name: string,
  ): Promise<Record<string, string> | undefined> | Record<string, string> | undefined;
  /** The Connection, undefined when it does not exist. Throwing refuses the pod (fail closed). */
  lookupConnection(namespace: string, name: string): Promise<Connection | undefined> | Connection | undefined;
  operatorNamespace: string;
  log?: Logger;
}

function optOutHint(via: OptInVia, namespace: string): string {
  return via === 'pod-label'
    ? `remove the pod label ${INJECT_LABEL}=true`
    : `opt the pod out with the label ${INJECT_LABEL}=${INJECT_LABEL_DISABLED} (namespace "${namespace}" has ${NAMESPACE_INJECTION_LABEL}=enabled)`;
}

function refuse(message: string): AdmissionVerdict {
  return { allowed: false, code: 403, message: `chaperone: ${message}` };
}

/**
 * `pods` CREATE: injects the sidecar into opted-in pods. `pods/ephemeralcontainers` UPDATE: refuses
 * debug containers that would reach the sidecar's ServiceAccount token.
 */
export function createInjectionHandler(opts: InjectionHandlerOptions): AdmissionHandler {
  return async (request: AdmissionRequest): Promise<AdmissionVerdict> => {
    if (request.kind.kind !== 'Pod' || request.kind.group !== '') return { allowed: true };
    const pod = request.object as V1Pod | undefined;
    if (!pod || typeof pod !== 'object')
      return { allowed: false, code: 400, message: 'chaperone: the admission request carries no pod' };
    if (request.subResource === 'ephemeralcontainers' && request.operation === 'UPDATE')
      return checkEphemeralContainers(pod);
    if (request.operation !== 'CREATE' || request.subResource) return { allowed: true };

    // Pods created through a controller often have no metadata.namespace in the request object.
    const namespace = pod.metadata?.namespace || request.namespace;
    if (!namespace) return { allowed: false, code: 400, message: 'chaperone: the pod has no namespace' };
    const labels = await opts.lookupNamespace(namespace);
    const decision = shouldInject(
      pod,
      { name: namespace, labels },
      { operatorNamespace: opts.operatorNamespace },
    );
    if (!decision.inject && decision.reason !== 'already-injected') return { allowed: true };
    const via = decision.via;
    const podName = pod.metadata?.name || pod.metadata?.generateName || '(unnamed)';

    const names = parseConnectionsAnnotation(pod.metadata?.annotations?.[CONNECTIONS_ANNOTATION]);
    if (names.length === 0)
      return refuse(
        `pod ${podName} is opted in to Chaperone but has no ${CONNECTIONS_ANNOTATION} annotation; ` +
          `name the Connections its agent uses (e.g. ${CONNECTIONS_ANNOTATION}: orders-db,bastion), or ${optOutHint(via, namespace)}`,
      );
    const found = await Promise.all(names.map((name) => opts.lookupConnection(namespace, name)));
    const missing = names.filter((_, i) => !found[i]);
    if (missing.length)
      return refuse(
        `${missing.length === 1 ? 'Connection' : 'Connections'} ${missing.map((n) => `"${n}"`).join(', ')} named in ` +
          `${CONNECTIONS_ANNOTATION} ${missing.length === 1 ? 'does' : 'do'} not exist in namespace "${namespace}"; ` +
          `create ${missing.length === 1 ? 'it' : 'them'} or fix the annotation (kubectl get connections -n ${namespace} lists what exists)`,
      );
    const connections = found as Connection[];
    const config = opts.config();
    // The operator's own misconfiguration is a webhook failure (500), not the user's problem.
    resolveInjectionConfig(config);
    const problems = injectionConflicts(pod, connections, config);
    if (problems.length)
      return refuse(
        `cannot inject the sidecar into pod ${podName}: ${problems.join('; ')}. To run the pod without a chaperone, ${optOutHint(via, namespace)}`,
      );
    const patch = buildPatch(pod, connections, config);
    const warnings = connections.flatMap((c) => {
      const ready = c.status?.conditions?.find((cond) => cond.type === 'Ready');
      return ready && ready.status !== 'True'
        ? [
            `Connection ${c.metadata.name} is not Ready (${ready.reason}): the agent's sessions through it will fail until it is`,
          ]
        : [];
    });
    opts.log?.('info', decision.inject ? 'injected chaperone sidecar' : 'checked injected pod', {
      namespace,
      pod: podName,
      connections: names,
      operations: patch.length,
    });
    return warnings.length ? { allowed: true, patch, warnings } : { allowed: true, patch };
  };
}

/**
 * `kubectl debug` adds ephemeral containers to a running pod. One that mounts the token volume, or
 * targets the sidecar (sharing its process namespace, so /proc/<pid>/root reaches its files), would
 * hand the broker token to whoever runs it.
 */
function checkEphemeralContainers(pod: V1Pod): AdmissionVerdict {
  const injected = (pod.spec?.initContainers ?? []).some((c) => c.name === SIDECAR_CONTAINER_NAME);
  if (!injected) return { allowed: true };
  const problems: string[] = [];
  const tokenVolumes = tokenVolumeNames(pod);
  for (const c of pod.spec?.ephemeralContainers ?? []) {
    if (c.targetContainerName === SIDECAR_CONTAINER_NAME)
      problems.push(
        `ephemeral container "${c.name}" targets the chaperone sidecar; debug the agent container instead (kubectl debug --target=<agent container>)`,
      );
    for (const m of c.volumeMounts ?? [])
      if (tokenVolumes.has(m.name))
        problems.push(
          `ephemeral container "${c.name}" mounts volume "${m.name}", which holds the sidecar's ServiceAccount token; remove that mount`,
        );
  }
  return problems.length ? refuse(problems.join('; ')) : { allowed: true };
}
