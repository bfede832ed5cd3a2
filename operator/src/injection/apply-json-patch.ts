// A strict RFC 6902 applier (add, remove, replace, test), for tests: it applies a webhook's patch the
// way the API server does and fails where the API server would (missing parent, index out of range).
// No dependency ships one; the API server's own behaviour is checked in the integration tests.

import type { JsonPatchOperation } from '../admission/admission-review.js';
import { sameJson } from './build-patch.js';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export class JsonPatchError extends Error {}

function parsePointer(path: string): string[] {
  if (path === '') return [];
  if (!path.startsWith('/')) throw new JsonPatchError(`"${path}" is not a JSON pointer`);
  return path
    .slice(1)
    .split('/')
    .map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~'));
}

function arrayIndex(arr: Json[], token: string, forAdd: boolean, path: string): number {
  if (forAdd && token === '-') return arr.length;
  if (!/^(0|[1-9][0-9]*)$/.test(token)) throw new JsonPatchError(`bad array index "${token}" in ${path}`);
  const i = Number(token);
  if (i > arr.length || (!forAdd && i === arr.length))
    throw new JsonPatchError(`index ${i} out of range (length ${arr.length}) in ${path}`);
  return i;
}

/** Returns the patched copy; `doc` is not modified. Throws JsonPatchError like a failed patch. */
export function applyJsonPatch<T>(doc: T, ops: readonly JsonPatchOperation[]): T {
  let root = structuredClone(doc) as unknown as Json;
  for (const op of ops) {
    const tokens = parsePointer(op.path);
    if (tokens.length === 0) {
      if (op.op === 'test') {
        if (!sameJson(root, op.value)) throw new JsonPatchError('test failed at the root');
      } else if (op.op === 'remove') throw new JsonPatchError('cannot remove the root');
      else root = structuredClone(op.value) as Json;
      continue;
    }
    let parent: Json = root;
    for (const token of tokens.slice(0, -1)) {
      const next: Json | undefined = Array.isArray(parent)
        ? parent[arrayIndex(parent, token, false, op.path)]
        : parent !== null && typeof parent === 'object'
          ? parent[token]
          : undefined;
      if (next === undefined || next === null || typeof next !== 'object')
        throw new JsonPatchError(`path ${op.path}: parent "${token}" does not exist`);
      parent = next;
    }
    const last = tokens[tokens.length - 1] as string;
    if (Array.isArray(parent)) {
      const i = arrayIndex(parent, last, op.op === 'add', op.path);
      if (op.op === 'add') parent.splice(i, 0, structuredClone(op.value) as Json);
      else if (op.op === 'remove') parent.splice(i, 1);
      else if (op.op === 'replace') parent[i] = structuredClone(op.value) as Json;
      else if (!sameJson(parent[i], op.value)) throw new JsonPatchError(`test failed at ${op.path}`);
    } else if (parent !== null && typeof parent === 'object') {
      const has = Object.hasOwn(parent, last);
      if (op.op === 'add') parent[last] = structuredClone(op.value) as Json;
      else if (!has) throw new JsonPatchError(`path ${op.path} does not exist`);
      else if (op.op === 'remove') delete parent[last];
      else if (op.op === 'replace') parent[last] = structuredClone(op.value) as Json;
      else if (!sameJson(parent[last], op.value)) throw new JsonPatchError(`test failed at ${op.path}`);
    } else throw new JsonPatchError(`path ${op.path}: parent is not a container`);
  }
  return root as unknown as T;
}
