// Strict RFC 6902 applier for tests: add/replace/remove with the same preconditions the API server
// enforces (replace and remove need an existing target, add needs an existing parent), so a test
// that applies the webhook's patch also proves the patch is valid against the object it was made for.

import type { JsonPatchOperation } from '../admission/admission-review.js';

export function applyJsonPatch<T>(doc: T, ops: readonly JsonPatchOperation[]): T {
  const root: unknown = structuredClone(doc);
  for (const op of ops) {
    if (op.path === '') throw new Error('whole-document patches are not used');
    const segments = op.path
      .slice(1)
      .split('/')
      .map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~'));
    const last = segments.pop() as string;
    let parent: unknown = root;
    for (const s of segments) {
      parent = child(parent, s, op.path);
    }
    if (Array.isArray(parent)) {
      const index = last === '-' ? parent.length : Number(last);
      if (!Number.isInteger(index) || index < 0 || index > parent.length)
        throw new Error(`bad index in ${op.path}`);
      if (op.op === 'add') parent.splice(index, 0, structuredClone(op.value));
      else if (index >= parent.length) throw new Error(`${op.op} of missing ${op.path}`);
      else if (op.op === 'replace') parent[index] = structuredClone(op.value);
      else if (op.op === 'remove') parent.splice(index, 1);
      else throw new Error(`unsupported op ${op.op}`);
    } else if (typeof parent === 'object' && parent !== null) {
      const obj = parent as Record<string, unknown>;
      if (op.op !== 'add' && !(last in obj)) throw new Error(`${op.op} of missing ${op.path}`);
      if (op.op === 'add' || op.op === 'replace') obj[last] = structuredClone(op.value);
      else if (op.op === 'remove') delete obj[last];
      else throw new Error(`unsupported op ${op.op}`);
    } else {
      throw new Error(`parent of ${op.path} is not a container`);
    }
  }
  return root as T;
  function child(node: unknown, key: string, path: string): unknown {
    if (typeof node !== 'object' || node === null || !(key in node)) throw new Error(`no parent for ${path}`);
    return (node as Record<string, unknown>)[key];
  }
}
