// Guardrail risks of one API request, in the policy's detector vocabulary (delete-namespace,
// delete-collection, read-secrets, exec). `read-secrets` covers every way to a Secret's value that
// redaction cannot close — token minting, proxies, workloads that mount or inject a Secret (their
// logs or an exec then reveal it) — so the default guardrail (approve) applies to all of them.
// Pure.

import { parse as parseYaml } from 'yaml';
import type { Risk } from '../../policy/index.js';
import type { KubeRequestAttributes } from './request-attributes.js';

const WRITE_VERBS = new Set(['create', 'update', 'patch']);
const EXEC_SUBRESOURCES = new Set(['exec', 'attach', 'portforward', 'ephemeralcontainers']);
const PROXY_RESOURCES = new Set(['pods', 'services', 'nodes']);
/** Resources whose objects carry a pod template (or are pods). */
const WORKLOADS = new Set([
  'pods',
  'deployments',
  'statefulsets',
  'daemonsets',
  'replicasets',
  'replicationcontrollers',
  'jobs',
  'cronjobs',
  'podtemplates',
]);
const MAX_SCANNED_REFS = 20;

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Names of Secrets a pod spec (anywhere in the document) mounts or injects. */
export function referencedSecrets(doc: unknown): string[] {
  const found = new Set<string>();
  const visit = (v: unknown): void => {
    if (found.size >= MAX_SCANNED_REFS) return;
    if (Array.isArray(v)) {
      for (const x of v) visit(x);
      return;
    }
    if (!isObj(v)) return;
    // volumes[].secret.secretName, projected sources[].secret.name, env valueFrom.secretKeyRef.name,
    // envFrom[].secretRef.name, imagePullSecrets are not values the pod can read.
    if (isObj(v.secret)) found.add(String(v.secret.secretName ?? v.secret.name ?? '?'));
    if (isObj(v.secretKeyRef)) found.add(String(v.secretKeyRef.name ?? '?'));
    if (isObj(v.secretRef)) found.add(String(v.secretRef.name ?? '?'));
    for (const [k, x] of Object.entries(v)) if (k !== 'imagePullSecrets') visit(x);
  };
  visit(doc);
  return [...found];
}

function parseBody(body: Buffer, contentType: string | undefined): unknown {
  const type = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  const text = body.toString('utf8');
  if (type.endsWith('json')) return JSON.parse(text);
  if (type.endsWith('yaml')) return parseYaml(text);
  throw new Error(`unparsable body type ${type || 'none'}`);
}

function workloadRisks(a: KubeRequestAttributes, body?: Buffer, contentType?: string): Risk[] {
  if (!WRITE_VERBS.has(a.verb) || !WORKLOADS.has(a.resource) || a.subresource !== '') return [];
  if (!body || body.length === 0) return [];
  let doc: unknown;
  try {
    doc = parseBody(body, contentType);
  } catch {
    // protobuf/CBOR or malformed: what it mounts cannot be seen, so assume it may.
    return [{ detector: 'read-secrets', reason: `${a.resource} write whose body cannot be inspected` }];
  }
  const names = referencedSecrets(doc);
  if (names.length === 0) return [];
  return [
    { detector: 'read-secrets', reason: `${a.resource} that mounts or injects Secret ${names.join(', ')}` },
  ];
}

export function requestRisks(a: KubeRequestAttributes, body?: Buffer, contentType?: string): Risk[] {
  if (!a.isResourceRequest) return [];
  const risks: Risk[] = [];
  const core = a.apiGroup === '';
  if (core && a.resource === 'namespaces' && (a.verb === 'delete' || a.verb === 'deletecollection')) {
    risks.push({ detector: 'delete-namespace', reason: `delete of namespace ${a.name || '(all)'}` });
  }
  if (a.verb === 'deletecollection') {
    risks.push({
      detector: 'delete-collection',
      reason: `delete of every ${a.resource} matching the request`,
    });
  }
  if (core && a.resource === 'secrets' && ['get', 'list', 'watch'].includes(a.verb)) {
    risks.push({ detector: 'read-secrets', reason: `${a.verb} of secrets` });
  }
  if (core && a.resource === 'serviceaccounts' && a.subresource === 'token') {
    risks.push({ detector: 'read-secrets', reason: `mints a token for ServiceAccount ${a.name}` });
  }
  if (a.verb === 'proxy' || (core && PROXY_RESOURCES.has(a.resource) && a.subresource === 'proxy')) {
    risks.push({
      detector: 'read-secrets',
      reason: `${a.resource}/proxy reaches endpoints the gateway cannot inspect`,
    });
  }
  if (core && a.resource === 'pods' && EXEC_SUBRESOURCES.has(a.subresource)) {
    risks.push({ detector: 'exec', reason: `pods/${a.subresource} on ${a.name}` });
  }
  risks.push(...workloadRisks(a, body, contentType));
  return risks;
}
