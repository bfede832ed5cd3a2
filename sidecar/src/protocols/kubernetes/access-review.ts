// `kubectl auth can-i` through the gateway: the API server answers a SelfSubjectAccessReview for
// the gateway's identity (RBAC), which says nothing about Chaperone's policy. When the caller can
// evaluate policy without side effects (`hooks.evaluate`), the answer becomes policy ∧ RBAC: the
// reviewed attributes (from the JSON answer, which echoes the spec) are evaluated, and a policy
// denial turns the answer into `allowed: false, denied: true` with the rule as the reason. Pure.

import type { KubeRequestAttributes } from './request-attributes.js';

export interface PolicyVerdict {
  allowed: boolean;
  reason?: string;
  rule?: string;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string => (typeof v === 'string' ? v : '');

export function isSelfSubjectAccessReview(a: KubeRequestAttributes): boolean {
  return (
    a.isResourceRequest &&
    a.verb === 'create' &&
    a.apiGroup === 'authorization.k8s.io' &&
    a.resource === 'selfsubjectaccessreviews'
  );
}

/**
 * The attributes a SelfSubjectAccessReview asks about, read from the API server's JSON answer
 * (which echoes the spec: the request itself may be protobuf), or undefined if it is not one.
 */
export function reviewedAttributes(doc: unknown): KubeRequestAttributes | undefined {
  if (!isObj(doc) || doc.kind !== 'SelfSubjectAccessReview') return undefined;
  const spec = isObj(doc) && isObj(doc.spec) ? doc.spec : undefined;
  if (!spec) return undefined;
  const base = { apiPrefix: '', path: '', parts: [] as string[] };
  if (isObj(spec.resourceAttributes)) {
    const r = spec.resourceAttributes;
    return {
      ...base,
      isResourceRequest: true,
      verb: str(r.verb),
      apiGroup: str(r.group),
      apiVersion: str(r.version),
      resource: str(r.resource),
      subresource: str(r.subresource),
      namespace: str(r.namespace),
      name: str(r.name),
    };
  }
  if (isObj(spec.nonResourceAttributes)) {
    const n = spec.nonResourceAttributes;
    return {
      ...base,
      isResourceRequest: false,
      verb: str(n.verb),
      path: str(n.path),
      apiGroup: '',
      apiVersion: '',
      resource: '',
      subresource: '',
      namespace: '',
      name: '',
    };
  }
  return undefined;
}

/** Applies a policy verdict to the API server's review response in place; returns 1 if changed. */
export function applyVerdict(doc: unknown, verdict: PolicyVerdict): number {
  if (verdict.allowed || !isObj(doc) || doc.kind !== 'SelfSubjectAccessReview') return 0;
  const rule = verdict.rule ? ` (rule "${verdict.rule}")` : '';
  doc.status = {
    allowed: false,
    denied: true,
    reason: `chaperone policy: ${verdict.reason ?? 'not allowed'}${rule}`,
  };
  return 1;
}
