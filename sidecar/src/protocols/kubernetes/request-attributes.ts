// Request attributes derived exactly as the API server's RequestInfoFactory does
// (k8s.io/apiserver/pkg/endpoints/request/requestinfo.go), from a target already normalised by
// request-target.ts. Audit events and RBAC see these same values; policy must too.

import { fieldSelectorExactName, isValidPathSegmentName } from './field-selector.js';
import { firstQueryValue, type RequestTarget } from './request-target.js';

export interface KubeRequestAttributes {
  /** false for /version, /healthz, discovery roots, OpenAPI, ... (verb is then the lower-case method). */
  readonly isResourceRequest: boolean;
  readonly verb: string;
  /** Canonical path the gateway forwards. */
  readonly path: string;
  /** 'api' | 'apis' for resource requests, '' otherwise. */
  readonly apiPrefix: string;
  /** '' for the core group. */
  readonly apiGroup: string;
  readonly apiVersion: string;
  /** '' when cluster-scoped or across all namespaces. */
  readonly namespace: string;
  readonly resource: string;
  readonly subresource: string;
  readonly name: string;
  /** Path parts from the resource on (for proxy: the proxied path after resource/name). */
  readonly parts: readonly string[];
}

export type AttributesResult =
  | { ok: true; attributes: KubeRequestAttributes }
  | { ok: false; reason: string };

const API_PREFIXES = new Set(['api', 'apis']);
const GROUPLESS_PREFIXES = new Set(['api']);
const SPECIAL_VERBS = new Set(['proxy', 'watch']);
const SPECIAL_VERBS_NO_SUBRESOURCES = new Set(['proxy']);
const NAMESPACE_SUBRESOURCES = new Set(['status', 'finalize']);

const METHOD_VERBS: Record<string, string> = {
  POST: 'create',
  GET: 'get',
  HEAD: 'get',
  PUT: 'update',
  PATCH: 'patch',
  DELETE: 'delete',
};

/** Go's conversion of a query value to bool: only absence, "0" and "false" (any case) are false. */
function queryBool(value: string | undefined): boolean {
  if (value === undefined) return false;
  return !(value === '0' || value.toLowerCase() === 'false');
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
function isGoInt64(s: string): boolean {
  if (!/^[+-]?[0-9]+$/.test(s)) return false;
  const n = BigInt(s);
  return n >= INT64_MIN && n <= INT64_MAX;
}

/**
 * The name a list/watch is narrowed to by `fieldSelector=metadata.name=X`, or '' — only when the
 * API server's ListOptions decoding would succeed (the integer options parse; an unparsable
 * label selector is refused by the handler itself, after authorization, so it cannot widen access).
 */
function listNameFromQuery(query: RequestTarget['query']): string {
  for (const key of ['timeoutSeconds', 'limit']) {
    const v = firstQueryValue(query, key);
    if (v !== undefined && !isGoInt64(v)) return '';
  }
  const selector = firstQueryValue(query, 'fieldSelector');
  if (selector === undefined) return '';
  const name = fieldSelectorExactName(selector, 'metadata.name');
  return name !== undefined && isValidPathSegmentName(name) ? name : '';
}

export function deriveAttributes(method: string, target: RequestTarget): AttributesResult {
  const nonResource: KubeRequestAttributes = {
    isResourceRequest: false,
    verb: method.toLowerCase(),
    path: target.path,
    apiPrefix: '',
    apiGroup: '',
    apiVersion: '',
    namespace: '',
    resource: '',
    subresource: '',
    name: '',
    parts: [],
  };
  let parts = [...target.segments];
  if (parts.length < 3 || !API_PREFIXES.has(parts[0]!)) return { ok: true, attributes: nonResource };
  const apiPrefix = parts[0]!;
  parts = parts.slice(1);
  let apiGroup = '';
  if (!GROUPLESS_PREFIXES.has(apiPrefix)) {
    if (parts.length < 3) return { ok: true, attributes: nonResource };
    apiGroup = parts[0]!;
    parts = parts.slice(1);
  }
  const apiVersion = parts[0]!;
  parts = parts.slice(1);

  let verb: string;
  if (SPECIAL_VERBS.has(parts[0]!)) {
    if (parts.length < 2) return { ok: false, reason: 'unable to determine kind and namespace from url' };
    verb = parts[0]!;
    parts = parts.slice(1);
  } else {
    verb = METHOD_VERBS[method] ?? '';
  }

  let namespace = '';
  if (parts[0] === 'namespaces' && parts.length > 1) {
    namespace = parts[1]!;
    // /namespaces/{ns}/{resource}/... unless the third part is a namespace subresource.
    if (parts.length > 2 && !NAMESPACE_SUBRESOURCES.has(parts[2]!)) parts = parts.slice(2);
  }

  let resource = '';
  let name = '';
  let subresource = '';
  if (parts.length >= 3 && !SPECIAL_VERBS_NO_SUBRESOURCES.has(verb)) subresource = parts[2]!;
  if (parts.length >= 2) name = parts[1]!;
  if (parts.length >= 1) resource = parts[0]!;

  if (name === '' && verb === 'get') {
    verb = queryBool(firstQueryValue(target.query, 'watch')) ? 'watch' : 'list';
    name = listNameFromQuery(target.query);
  }
  if (name === '' && verb === 'delete') verb = 'deletecollection';

  return {
    ok: true,
    attributes: {
      isResourceRequest: true,
      verb,
      path: target.path,
      apiPrefix,
      apiGroup,
      apiVersion,
      namespace,
      resource,
      subresource,
      name,
      parts,
    },
  };
}

/** "get pods/log "web" in namespace "prod"" — for messages and records. */
export function describeAttributes(a: KubeRequestAttributes): string {
  if (!a.isResourceRequest) return `${a.verb} ${a.path}`;
  const group = a.apiGroup ? `.${a.apiGroup}` : '';
  const res = `${a.resource}${group}${a.subresource ? `/${a.subresource}` : ''}`;
  const name = a.name ? ` "${a.name}"` : '';
  const ns = a.namespace ? ` in namespace "${a.namespace}"` : '';
  return `${a.verb} ${res}${name}${ns}`;
}
