// The JSON patch that gives a pod its chaperone. Pure and deterministic: same pod, Connections and
// config → same patch (golden fixtures in testdata/ pin it).
//
// The patch *converges*: it adds what is missing and replaces what differs, so computing it again
// for a pod that is already fully injected yields no operations. That makes injection idempotent
// (re-submitted pod specs, webhook reinvocation after another webhook added a container) without
// trusting the status annotation, which anyone writing a pod spec can set.
import { posix } from 'node:path';
import {
  type Connection,
  type ConnectionType,
  SIDECAR_TOKEN_AUDIENCE,
  STATUS_ANNOTATION,
  STATUS_INJECTED,
} from '@chaperone/api';
import type { V1Container, V1EnvVar, V1Pod, V1Volume, V1VolumeMount } from '@kubernetes/client-node';
import { type JsonPatchOperation, pointerSegment } from '../admission/admission-review.js';
import {
  COLLECTOR_TOKEN_AUDIENCE,
  SIDECAR_ADMIN_PORT,
  SIDECAR_CONTAINER_NAME,
  SIDECAR_PATHS,
} from '../operator-constants.js';

export interface InjectionConfig {
  /** Image of the sidecar, e.g. `ghcr.io/chaperone/sidecar:0.1.0` (a digest is better). */
  sidecarImage: string;
  /** Default: what the API server would pick (`Always` for `:latest` or no tag, else `IfNotPresent`). */
  imagePullPolicy?: 'Always' | 'IfNotPresent' | 'Never';
  /** https URL of the operator's credential broker, as the sidecar reaches it. */
  brokerUrl: string;
  /** PEM CA bundle of the broker's serving certificate. Public: passed in env CHAPERONE_BROKER_CA. */
  brokerCaPem: string;
  /** URL of the collector. Unset: no collector flags and no collector token. */
  collectorUrl?: string;
  /** Sidecar resources; replaces the defaults as a whole when given. */
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  /** Lifetime of the projected tokens (kubelet refreshes them at 80%). Default 3600, minimum 600. */
  tokenExpirationSeconds?: number;
  /** Default 65532 (distroless `nonroot`). */
  runAsUser?: number;
  /** Default: runAsUser. */
  runAsGroup?: number;
}

export const INJECTION_DEFAULTS = {
  resources: { requests: { cpu: '50m', memory: '128Mi' }, limits: { memory: '384Mi' } },
  tokenExpirationSeconds: 3600,
  runAsUser: 65532,
  spoolSizeLimit: '256Mi',
  agentConfigSizeLimit: '1Mi',
} as const;

/** Names of the volumes the webhook adds. Reserved: a pod's own volume of the same name is replaced. */
export const INJECTED_VOLUMES = {
  tokens: 'chaperone-tokens',
  spool: 'chaperone-spool',
  tmp: 'chaperone-tmp',
  agentConfig: 'chaperone-agent-config',
} as const;

/** Files the sidecar writes into SIDECAR_PATHS.agentConfig for the agent's standard clients. */
export const AGENT_CONFIG_FILES = { kubeconfig: 'kubeconfig', sshConfig: 'ssh_config' } as const;

/** What buildPatch needs of a Connection CR: its name, type and listen port. */
export interface InjectedConnection {
  metadata: Pick<Connection['metadata'], 'name'>;
  spec: { type: ConnectionType; listen: { port: number } };
}

/** The pod cannot be injected safely; `problems` are complete sentences saying what to change. */
export class InjectionConflictError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('; '));
    this.name = 'InjectionConflictError';
  }
}

interface ResolvedConfig {
  sidecarImage: string;
  imagePullPolicy: string;
  brokerUrl: string;
  brokerCaPem: string;
  collectorUrl: string | undefined;
  resources: { requests?: Record<string, string>; limits?: Record<string, string> };
  tokenExpirationSeconds: number;
  runAsUser: number;
  runAsGroup: number;
}

/** Applies defaults and checks the operator's own configuration; throws with what to fix. */
export function resolveInjectionConfig(config: InjectionConfig): ResolvedConfig {
  const problems: string[] = [];
  const image = config.sidecarImage?.trim() ?? '';
  if (!image || /\s/.test(image)) problems.push('sidecarImage must be an image reference without spaces');
  if (!isUrl(config.brokerUrl, ['https:'])) problems.push('brokerUrl must be an https:// URL');
  if (!config.brokerCaPem?.includes('-----BEGIN CERTIFICATE-----'))
    problems.push("brokerCaPem must hold the PEM CA bundle of the broker's serving certificate");
  if (config.collectorUrl !== undefined && !isUrl(config.collectorUrl, ['https:', 'http:']))
    problems.push('collectorUrl must be an http(s):// URL');
  const expiration = config.tokenExpirationSeconds ?? INJECTION_DEFAULTS.tokenExpirationSeconds;
  // TokenRequest refuses less than 10 minutes; more than a day defeats short-lived tokens.
  if (!Number.isInteger(expiration) || expiration < 600 || expiration > 86_400)
    problems.push('tokenExpirationSeconds must be an integer between 600 and 86400');
  const runAsUser = config.runAsUser ?? INJECTION_DEFAULTS.runAsUser;
  const runAsGroup = config.runAsGroup ?? runAsUser;
  if (!Number.isInteger(runAsUser) || runAsUser < 1 || !Number.isInteger(runAsGroup) || runAsGroup < 1)
    problems.push('runAsUser and runAsGroup must be positive integers (the sidecar never runs as root)');
  if (problems.length) throw new Error(`invalid sidecar injection configuration: ${problems.join('; ')}`);
  return {
    sidecarImage: image,
    imagePullPolicy: config.imagePullPolicy ?? defaultPullPolicy(image),
    brokerUrl: config.brokerUrl,
    brokerCaPem: config.brokerCaPem,
    collectorUrl: config.collectorUrl,
    resources: config.resources ?? structuredClone(INJECTION_DEFAULTS.resources),
    tokenExpirationSeconds: expiration,
    runAsUser,
    runAsGroup,
  };
}

function isUrl(value: string | undefined, protocols: string[]): boolean {
  try {
    const url = new URL(value ?? '');
    return protocols.includes(url.protocol) && url.hostname !== '';
  } catch {
    return false;
  }
}

/** The API server's rule, made explicit so the injected container compares equal after defaulting. */
function defaultPullPolicy(image: string): string {
  if (image.includes('@')) return 'IfNotPresent';
  const last = image.slice(image.lastIndexOf('/') + 1);
  const colon = last.lastIndexOf(':');
  const tag = colon < 0 ? '' : last.slice(colon + 1);
  return tag === '' || tag === 'latest' ? 'Always' : 'IfNotPresent';
}

/** `orders-db` → `CHAPERONE_ORDERS_DB_PORT`. */
export function connectionPortEnvName(connectionName: string): string {
  return `CHAPERONE_${connectionName.toUpperCase().replace(/[^A-Z0-9]/g, '_')}_PORT`;
}

/**
 * Env vars every agent container gets, in this order (they are put first in each container's env,
 * so the container's own env can use them: `DATABASE_URL=postgres://$(PGHOST):$(PGPORT)/orders`).
 */
export function agentEnv(connections: readonly InjectedConnection[]): V1EnvVar[] {
  const env: V1EnvVar[] = [];
  const postgres = connections.find((c) => c.spec.type === 'postgres');
  if (postgres) {
    env.push({ name: 'PGHOST', value: '127.0.0.1' });
    env.push({ name: 'PGPORT', value: String(postgres.spec.listen.port) });
  }
  for (const c of connections)
    env.push({ name: connectionPortEnvName(c.metadata.name ?? ''), value: String(c.spec.listen.port) });
  if (connections.some((c) => c.spec.type === 'kubernetes'))
    env.push({
      name: 'KUBECONFIG',
      value: posix.join(SIDECAR_PATHS.agentConfig, AGENT_CONFIG_FILES.kubeconfig),
    });
  if (connections.some((c) => c.spec.type === 'ssh'))
    env.push({
      name: 'CHAPERONE_SSH_CONFIG',
      value: posix.join(SIDECAR_PATHS.agentConfig, AGENT_CONFIG_FILES.sshConfig),
    });
  return env;
}

/**
 * Variables that make libpq ignore PGHOST: set to anything, they would send the agent's clients
 * around the chaperone.
 */
const BYPASS_ENV = ['PGHOSTADDR'] as const;

const AGENT_CONFIG_MOUNT: V1VolumeMount = {
  name: INJECTED_VOLUMES.agentConfig,
  mountPath: SIDECAR_PATHS.agentConfig,
  readOnly: true,
};

function normalPath(path: string): string {
  return posix.normalize(path).replace(/(.)\/+$/, '$1');
}

function tokenFile(path: string): string {
  // The token paths are constants; keeping them under tokenDir is what lets one volume serve both.
  if (posix.dirname(path) !== SIDECAR_PATHS.tokenDir)
    throw new Error(`${path} is not in ${SIDECAR_PATHS.tokenDir}`);
  return posix.basename(path);
}

/** The volumes the webhook adds, in order. */
export function injectedVolumes(config: InjectionConfig): V1Volume[] {
  const c = resolveInjectionConfig(config);
  const sources = [
    {
      serviceAccountToken: {
        audience: SIDECAR_TOKEN_AUDIENCE,
        expirationSeconds: c.tokenExpirationSeconds,
        path: tokenFile(SIDECAR_PATHS.brokerToken),
      },
    },
  ];
  // Least privilege: no collector, no token for it.
  if (c.collectorUrl)
    sources.push({
      serviceAccountToken: {
        audience: COLLECTOR_TOKEN_AUDIENCE,
        expirationSeconds: c.tokenExpirationSeconds,
        path: tokenFile(SIDECAR_PATHS.collectorToken),
      },
    });
  return [
    // defaultMode is the API server's default, spelled out so a re-submitted pod compares equal.
    // With one container mounting it and runAsUser set, the kubelet makes the token files 0600 and
    // owned by that user.
    { name: INJECTED_VOLUMES.tokens, projected: { defaultMode: 0o644, sources } },
    { name: INJECTED_VOLUMES.spool, emptyDir: { sizeLimit: INJECTION_DEFAULTS.spoolSizeLimit } },
    { name: INJECTED_VOLUMES.tmp, emptyDir: {} },
    { name: INJECTED_VOLUMES.agentConfig, emptyDir: { sizeLimit: INJECTION_DEFAULTS.agentConfigSizeLimit } },
  ];
}

/**
 * The native sidecar: an init container with `restartPolicy: Always`, placed first, so it has passed
 * its startup probe before any other init container or the agent starts, and it stops after them.
 * Fields the API server would default are written out, so the container read back from the API
 * server equals this one and a re-submitted pod needs no patch.
 */
export function sidecarContainer(
  connections: readonly InjectedConnection[],
  config: InjectionConfig,
): V1Container {
  const c = resolveInjectionConfig(config);
  const args = [
    '--broker',
    c.brokerUrl,
    '--token-file',
    SIDECAR_PATHS.brokerToken,
    '--connections',
    connections.map((conn) => conn.metadata.name ?? '').join(','),
    '--admin-port',
    String(SIDECAR_ADMIN_PORT),
    '--spool',
    SIDECAR_PATHS.spool,
    '--agent-config-dir',
    SIDECAR_PATHS.agentConfig,
  ];
  if (c.collectorUrl)
    args.push('--collector', c.collectorUrl, '--collector-token-file', SIDECAR_PATHS.collectorToken);
  const fieldEnv = (name: string, fieldPath: string): V1EnvVar => ({
    name,
    valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath } },
  });
  const probe = (path: string) => ({ httpGet: { path, port: SIDECAR_ADMIN_PORT, scheme: 'HTTP' } });
  const volumeMounts: V1VolumeMount[] = [
    { name: INJECTED_VOLUMES.tokens, mountPath: SIDECAR_PATHS.tokenDir, readOnly: true },
    { name: INJECTED_VOLUMES.spool, mountPath: SIDECAR_PATHS.spool },
    { name: INJECTED_VOLUMES.tmp, mountPath: SIDECAR_PATHS.tmp },
    { name: INJECTED_VOLUMES.agentConfig, mountPath: SIDECAR_PATHS.agentConfig },
  ];
  return {
    name: SIDECAR_CONTAINER_NAME,
    image: c.sidecarImage,
    imagePullPolicy: c.imagePullPolicy,
    // No command: the image's entrypoint (node --liftoff-only …) runs.
    args,
    env: [
      fieldEnv('POD_NAME', 'metadata.name'),
      fieldEnv('POD_NAMESPACE', 'metadata.namespace'),
      fieldEnv('POD_UID', 'metadata.uid'),
      { name: 'CHAPERONE_BROKER_CA', value: c.brokerCaPem },
    ],
    ports: [{ name: 'chaperone-admin', containerPort: SIDECAR_ADMIN_PORT, protocol: 'TCP' }],
    resources: structuredClone(c.resources),
    restartPolicy: 'Always',
    // Up to a minute to fetch policy and open the listeners; the agent waits for it.
    startupProbe: {
      ...probe('/readyz'),
      periodSeconds: 1,
      failureThreshold: 60,
      timeoutSeconds: 1,
      successThreshold: 1,
    },
    readinessProbe: {
      ...probe('/readyz'),
      periodSeconds: 10,
      failureThreshold: 3,
      timeoutSeconds: 1,
      successThreshold: 1,
    },
    // A wedged sidecar would leave the agent failing closed forever; restart it instead.
    livenessProbe: {
      ...probe('/healthz'),
      periodSeconds: 10,
      failureThreshold: 6,
      timeoutSeconds: 5,
      successThreshold: 1,
    },
    securityContext: {
      runAsNonRoot: true,
      runAsUser: c.runAsUser,
      runAsGroup: c.runAsGroup,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    },
    volumeMounts,
    terminationMessagePath: '/dev/termination-log',
    // The sidecar's last log lines end up in the pod status when it fails to start.
    terminationMessagePolicy: 'FallbackToLogsOnError',
  };
}

interface AgentContainer {
  container: V1Container;
  /** JSON pointer of the container in the pod as submitted. */
  path: string;
  kind: 'container' | 'init container';
}

/**
 * The containers that get the agent env and config mount: every regular container, and every init
 * container except the sidecar. Init containers run after the sidecar has started (it is first), so
 * a migration job in an init container goes through the chaperone like the agent does; without the
 * env it would have no way to reach the database at all.
 */
function agentContainers(pod: V1Pod): AgentContainer[] {
  const out: AgentContainer[] = [];
  (pod.spec?.containers ?? []).forEach((container, i) => {
    out.push({ container, path: `/spec/containers/${i}`, kind: 'container' });
  });
  (pod.spec?.initContainers ?? []).forEach((container, i) => {
    if (container.name !== SIDECAR_CONTAINER_NAME)
      out.push({ container, path: `/spec/initContainers/${i}`, kind: 'init container' });
  });
  return out;
}

/** The injected token volume and any other volume projecting a token for the broker's or collector's audience. */
export function tokenVolumeNames(pod: V1Pod): Set<string> {
  const names = new Set<string>([INJECTED_VOLUMES.tokens]);
  const audiences: string[] = [SIDECAR_TOKEN_AUDIENCE, COLLECTOR_TOKEN_AUDIENCE];
  for (const volume of pod.spec?.volumes ?? []) {
    const sources = volume.projected?.sources ?? [];
    if (
      sources.some((s) => s.serviceAccountToken && audiences.includes(s.serviceAccountToken.audience ?? ''))
    )
      names.add(volume.name);
  }
  return names;
}

/**
 * Everything about the pod or its Connections that would make the injected pod unsafe or broken.
 * Empty when buildPatch may proceed. Each entry is a sentence saying what to change.
 */
export function injectionConflicts(
  pod: V1Pod,
  connections: readonly InjectedConnection[],
  config: InjectionConfig,
): string[] {
  const problems: string[] = [];
  const spec = pod.spec;
  if (!spec) return ['the pod has no spec'];

  // Connections among themselves.
  const byPort = new Map<number, string>();
  const byEnv = new Map<string, string>();
  for (const c of connections) {
    const name = c.metadata.name ?? '';
    const port = c.spec.listen.port;
    const other = byPort.get(port);
    if (other !== undefined)
      problems.push(
        `Connections "${other}" and "${name}" both listen on port ${port} (spec.listen.port); list only one of them in chaperone.dev/connections or change one port`,
      );
    else byPort.set(port, name);
    if (port === SIDECAR_ADMIN_PORT)
      problems.push(
        `Connection "${name}" listens on port ${port}, the sidecar's admin port; change its spec.listen.port`,
      );
    const envName = connectionPortEnvName(name);
    const clash = byEnv.get(envName);
    if (clash !== undefined)
      problems.push(
        `Connections "${clash}" and "${name}" both map to env var ${envName}; use only one of them`,
      );
    else byEnv.set(envName, name);
  }

  // Pod-level settings that break the sidecar's isolation.
  if (spec.hostNetwork)
    problems.push(
      "spec.hostNetwork is true: the sidecar's 127.0.0.1 listeners would be open to every process on the node; run the pod without hostNetwork",
    );
  if (spec.hostPID || spec.shareProcessNamespace)
    problems.push(
      `spec.${spec.hostPID ? 'hostPID' : 'shareProcessNamespace'} is true: other processes could read the sidecar's ServiceAccount token through /proc; remove it`,
    );

  for (const c of spec.containers ?? [])
    if (c.name === SIDECAR_CONTAINER_NAME)
      problems.push(`container "${c.name}" uses the name reserved for the chaperone sidecar; rename it`);

  const tokenVolumes = tokenVolumeNames(pod);
  const wanted = agentEnv(connections);
  const sidecarPorts = new Map<number, string>([[SIDECAR_ADMIN_PORT, "the sidecar's admin port"]]);
  for (const c of connections)
    sidecarPorts.set(c.spec.listen.port, `the sidecar's listener for Connection "${c.metadata.name}"`);

  for (const { container, kind } of agentContainers(pod)) {
    const who = `${kind} "${container.name}"`;
    for (const m of container.volumeMounts ?? []) {
      if (tokenVolumes.has(m.name))
        problems.push(
          `${who} mounts volume "${m.name}", which holds a ServiceAccount token for the chaperone broker or collector: only the sidecar may hold it; remove the mount`,
        );
      else if (
        normalPath(m.mountPath) === SIDECAR_PATHS.agentConfig &&
        !(m.name === AGENT_CONFIG_MOUNT.name && m.readOnly === true && !m.subPath && !m.subPathExpr)
      )
        problems.push(
          `${who} mounts something at ${SIDECAR_PATHS.agentConfig}, where chaperone mounts the agent's kubeconfig and ssh_config; move that mount`,
        );
    }
    for (const want of wanted) {
      for (const have of container.env ?? []) {
        if (have.name !== want.name || (have.value === want.value && !have.valueFrom)) continue;
        problems.push(
          `${who} sets ${want.name}${have.valueFrom ? ' from a reference' : ' to another value'}; chaperone sets ${want.name}=${want.value} so its clients go through the sidecar: remove it from the container's env`,
        );
      }
    }
    if (connections.some((c) => c.spec.type === 'postgres'))
      for (const name of BYPASS_ENV)
        if ((container.env ?? []).some((e) => e.name === name))
          problems.push(
            `${who} sets ${name}, which libpq prefers over PGHOST, so its clients would bypass the chaperone; remove it`,
          );
    for (const p of container.ports ?? []) {
      const owner = sidecarPorts.get(p.containerPort);
      if (owner && (p.protocol ?? 'TCP') === 'TCP')
        problems.push(`${who} declares port ${p.containerPort}, which is ${owner}; change one of them`);
    }
  }
  // Configuration problems surface here too, as a message rather than an exception.
  try {
    resolveInjectionConfig(config);
  } catch (err) {
    problems.push((err as Error).message);
  }
  return problems;
}

/**
 * The JSON patch (RFC 6902) that injects the chaperone into `pod` for `connections` (in the order of
 * the pod's annotation). Throws InjectionConflictError when injectionConflicts() finds problems.
 * Operations: status annotation, ServiceAccount name, volumes, each agent container (env first,
 * config mount), then the sidecar — container edits come before the sidecar insertion so their
 * indices stay valid.
 */
export function buildPatch(
  pod: V1Pod,
  connections: readonly InjectedConnection[],
  config: InjectionConfig,
): JsonPatchOperation[] {
  const problems = injectionConflicts(pod, connections, config);
  if (problems.length) throw new InjectionConflictError(problems);
  const spec = pod.spec as NonNullable<V1Pod['spec']>;
  const ops: JsonPatchOperation[] = [];

  const annotations = pod.metadata?.annotations;
  if (!pod.metadata)
    ops.push({
      op: 'add',
      path: '/metadata',
      value: { annotations: { [STATUS_ANNOTATION]: STATUS_INJECTED } },
    });
  else if (!annotations)
    ops.push({ op: 'add', path: '/metadata/annotations', value: { [STATUS_ANNOTATION]: STATUS_INJECTED } });
  else if (annotations[STATUS_ANNOTATION] !== STATUS_INJECTED)
    ops.push({
      op: 'add',
      path: `/metadata/annotations/${pointerSegment(STATUS_ANNOTATION)}`,
      value: STATUS_INJECTED,
    });

  // A projected token needs a named ServiceAccount. The ServiceAccount admission plugin sets
  // `default` before webhooks run; where it is disabled, the API server would refuse our volume.
  if (!spec.serviceAccountName) ops.push({ op: 'add', path: '/spec/serviceAccountName', value: 'default' });

  const volumes = injectedVolumes(config);
  if (!spec.volumes) ops.push({ op: 'add', path: '/spec/volumes', value: volumes });
  else
    for (const volume of volumes) {
      const i = spec.volumes.findIndex((v) => v.name === volume.name);
      if (i < 0) ops.push({ op: 'add', path: '/spec/volumes/-', value: volume });
      else if (!sameJson(spec.volumes[i], volume))
        ops.push({ op: 'replace', path: `/spec/volumes/${i}`, value: volume });
    }

  // The agent's own ServiceAccount token would let it talk to the API server around the sidecar.
  const kube = connections.some((c) => c.spec.type === 'kubernetes');
  const apiTokenVolumes = kube ? apiTokenVolumeIndices(spec.volumes) : [];
  if (kube) {
    // Removals last and from the end: the adds above only appended, so these indices still hold.
    for (const i of [...apiTokenVolumes].reverse()) ops.push({ op: 'remove', path: `/spec/volumes/${i}` });
    if (spec.automountServiceAccountToken !== false)
      ops.push({ op: 'add', path: '/spec/automountServiceAccountToken', value: false });
  }
  const apiTokenNames = new Set(apiTokenVolumes.map((i) => spec.volumes?.[i]?.name));

  const wanted = agentEnv(connections);
  for (const { container, path } of agentContainers(pod)) {
    if (kube) {
      const drop = (container.volumeMounts ?? [])
        .map((m, i) => ({ m, i }))
        .filter(({ m }) => apiTokenNames.has(m.name) || normalPath(m.mountPath) === SERVICE_ACCOUNT_DIR);
      for (const { i } of drop.reverse()) ops.push({ op: 'remove', path: `${path}/volumeMounts/${i}` });
    }
    const missing = wanted.filter((w) => !(container.env ?? []).some((e) => e.name === w.name));
    if (!container.env) {
      if (missing.length) ops.push({ op: 'add', path: `${path}/env`, value: missing });
    } else
      for (const [i, env] of missing.entries()) ops.push({ op: 'add', path: `${path}/env/${i}`, value: env });
    const mounted = (container.volumeMounts ?? []).some(
      (m) => m.name === AGENT_CONFIG_MOUNT.name && normalPath(m.mountPath) === AGENT_CONFIG_MOUNT.mountPath,
    );
    if (!container.volumeMounts)
      ops.push({ op: 'add', path: `${path}/volumeMounts`, value: [AGENT_CONFIG_MOUNT] });
    else if (!mounted) ops.push({ op: 'add', path: `${path}/volumeMounts/-`, value: AGENT_CONFIG_MOUNT });
  }

  const sidecar = sidecarContainer(connections, config);
  const init = spec.initContainers;
  const at = init?.findIndex((c) => c.name === SIDECAR_CONTAINER_NAME) ?? -1;
  if (!init) ops.push({ op: 'add', path: '/spec/initContainers', value: [sidecar] });
  else if (at < 0) ops.push({ op: 'add', path: '/spec/initContainers/0', value: sidecar });
  else if (at > 0) {
    // Init containers before it would run without their chaperone: move it to the front.
    ops.push({ op: 'remove', path: `/spec/initContainers/${at}` });
    ops.push({ op: 'add', path: '/spec/initContainers/0', value: sidecar });
  } else if (!sameJson(init[0], sidecar))
    ops.push({ op: 'replace', path: '/spec/initContainers/0', value: sidecar });
  return ops;
}

/** Where the kubelet mounts a pod's own ServiceAccount token (the ServiceAccount admission plugin). */
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/**
 * Volumes the ServiceAccount admission plugin added for the pod's API token (`kube-api-access-*`,
 * a projection of a token without audience, the CA and the namespace), in index order. They ran
 * before this webhook, so `automountServiceAccountToken: false` alone would not take them away.
 */
function apiTokenVolumeIndices(volumes: readonly V1Volume[] | undefined): number[] {
  const out: number[] = [];
  (volumes ?? []).forEach((v, i) => {
    const sources = v.projected?.sources ?? [];
    const apiToken = sources.some((s) => s.serviceAccountToken && !s.serviceAccountToken.audience);
    if (v.name.startsWith('kube-api-access-') && apiToken) out.push(i);
  });
  return out;
}

/** Structural equality of JSON values, ignoring key order. */
export function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a) && Array.isArray(b))
    return a.length === b.length && a.every((x, i) => sameJson(x, b[i]));
  const ak = Object.keys(a).filter((k) => (a as Record<string, unknown>)[k] !== undefined);
  const bk = Object.keys(b).filter((k) => (b as Record<string, unknown>)[k] !== undefined);
  return (
    ak.length === bk.length &&
    ak.every((k) => sameJson((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]))
  );
}
