import { canonicalJson } from '@chaperone/api';

/**
 * canonicalJson(value) for parsed JSON, fast when the producer already sent canonical JSON (keys
 * sorted at every level), as the sidecar does: then the native JSON.stringify yields the same
 * text, because it writes keys in Object.keys order and parsed JSON holds no undefined, no
 * toJSON and no non-finite numbers. Otherwise it falls back to canonicalJson. Ingest spends most
 * of its CPU here, so this matters; a property test holds the two equal.
 */
export function canonicalText(value: unknown): string {
  return keysSorted(value) ? JSON.stringify(value) : canonicalJson(value);
}

function keysSorted(value: unknown): boolean {
  if (value === null || typeof value !== 'object') return true;
  if (Array.isArray(value)) {
    for (const item of value) if (!keysSorted(item)) return false;
    return true;
  }
  let prev: string | undefined;
  for (const key of Object.keys(value)) {
    // Code-unit order, as Array.prototype.sort compares in canonicalJson.
    if (prev !== undefined && !(prev < key)) return false;
    if (!keysSorted((value as Record<string, unknown>)[key])) return false;
    prev = key;
  }
  return true;
}
