// Status conditions (pure) and the one way the operator writes status: a JSON merge patch of
// `{status}` to the status subresource under the operator's field manager, so it never touches
// spec or metadata and never races a user's edit of them.

import { API_GROUP, API_VERSION, type ChaperoneKind, type Condition, PLURALS } from '@chaperone/api';
import { type CustomObjectsApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { FIELD_MANAGER } from '../operator-constants.js';

export type ConditionStatus = Condition['status'];

export interface ConditionInput {
  type: string;
  status: ConditionStatus;
  /** CamelCase; the CRD pattern allows letters, digits, `_`, `,` and `:`. */
  reason: string;
  message: string;
  observedGeneration?: number;
}

/** The CRDs cap condition messages at 32768 characters. */
export const MAX_CONDITION_MESSAGE = 32_768;

export function getCondition(
  conditions: readonly Condition[] | undefined,
  type: string,
): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

export function isConditionTrue(conditions: readonly Condition[] | undefined, type: string): boolean {
  return getCondition(conditions, type)?.status === 'True';
}

function clampMessage(message: string): string {
  const suffix = ' ... (truncated)';
  return message.length <= MAX_CONDITION_MESSAGE
    ? message
    : `${message.slice(0, MAX_CONDITION_MESSAGE - suffix.length)}${suffix}`;
}

/**
 * Returns a new condition list with `input` set. lastTransitionTime moves only when the status
 * changes (Kubernetes API conventions), so re-running a reconcile that finds the same state leaves
 * the list identical and nothing is written. Other conditions keep their place.
 */
export function setCondition(
  conditions: readonly Condition[] | undefined,
  input: ConditionInput,
  now: Date,
): Condition[] {
  const list = [...(conditions ?? [])];
  const index = list.findIndex((c) => c.type === input.type);
  const previous = index >= 0 ? list[index] : undefined;
  const next: Condition = {
    type: input.type,
    status: input.status,
    ...(input.observedGeneration !== undefined ? { observedGeneration: input.observedGeneration } : {}),
    lastTransitionTime:
      previous && previous.status === input.status && previous.lastTransitionTime
        ? previous.lastTransitionTime
        : now.toISOString().replace(/\.\d{3}Z$/, 'Z'),
    reason: input.reason,
    message: clampMessage(input.message),
  };
  if (index >= 0) list[index] = next;
  else list.push(next);
  return list;
}

/** Structural equality of JSON values; object key order does not matter, array order does. */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== typeof b || a === null || b === null || typeof a !== 'object') return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((item, i) => jsonEqual(item, b[i]));
  }
  const ao = a as Record<string, unknown>;
  const bo = b as Record<string, unknown>;
  const keys = new Set([...Object.keys(ao), ...Object.keys(bo)]);
  for (const key of keys) {
    if (ao[key] === undefined && bo[key] === undefined) continue;
    if (!jsonEqual(ao[key], bo[key])) return false;
  }
  return true;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Whether a JSON merge patch (RFC 7386) would change `current`: objects merge key by key, so keys
 * the patch does not name are not compared; arrays and scalars replace; null deletes.
 */
export function mergePatchChanges(current: unknown, patch: unknown): boolean {
  if (patch === null) return current !== undefined && current !== null;
  if (!isPlainObject(patch)) return !jsonEqual(current, patch);
  const cur = isPlainObject(current) ? current : undefined;
  if (!cur) return true;
  return Object.entries(patch).some(
    ([key, value]) => value !== undefined && mergePatchChanges(cur[key], value),
  );
}

/**
 * Whether writing `next` (a merge patch of the fields a reconciler owns) would change `current`.
 * Fields of `current` that `next` does not name (e.g. an AccessRequest's decision) are not compared:
 * a merge patch leaves them alone.
 */
export function statusChanged(current: object | undefined, next: object): boolean {
  return mergePatchChanges(current ?? {}, next);
}

export interface StatusTarget {
  kind: ChaperoneKind;
  namespace: string;
  name: string;
}

/** The request body of a status write: the status, nothing else. */
export function statusPatchBody(status: object): { status: object } {
  return { status };
}

/** Writes status through the status subresource with a JSON merge patch under FIELD_MANAGER. */
export class StatusWriter {
  constructor(private readonly api: CustomObjectsApi) {}

  /** Returns the object as stored after the patch. Throws the API error (e.g. 404, 422) as is. */
  async patchStatus(target: StatusTarget, status: object): Promise<unknown> {
    return this.api.patchNamespacedCustomObjectStatus(
      {
        group: API_GROUP,
        version: API_VERSION,
        namespace: target.namespace,
        plural: PLURALS[target.kind],
        name: target.name,
        body: statusPatchBody(status),
        fieldManager: FIELD_MANAGER,
      },
      // client-node picks application/json-patch+json for PATCH unless told otherwise.
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
  }
}
