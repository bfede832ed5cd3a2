// Secret value redaction for JSON bodies of responses to core `secrets` requests. Pure.
//
// In that context every object that has `metadata` is treated as a Secret, wherever it sits: the
// object itself, `items` of a list, `object` of a watch event, `rows[].object` of a Table
// (includeObject=Object) — so no shape is missed because its `kind` was absent (typed list items
// carry none). `data`/`stringData` values are replaced (keys stay: they are not secret and tools
// show them), and the `kubectl.kubernetes.io/last-applied-configuration` annotation, which holds a
// copy of the whole applied object, is redacted the same way (or replaced when unparsable), which
// also covers PartialObjectMetadata(List) responses.

export const REDACTED = '[redacted by chaperone]';
/** `data` values are base64 in JSON; clients decode them, so the marker is base64 too. */
export const REDACTED_DATA = Buffer.from(REDACTED).toString('base64');
export const LAST_APPLIED_ANNOTATION = 'kubectl.kubernetes.io/last-applied-configuration';

export interface RedactionCount {
  /** Values replaced (data + stringData entries, annotations). */
  values: number;
  /** Secrets passed through whole because policy revealed them. */
  revealed: number;
}

/** What policy may look at to reveal one Secret (a Table row or metadata-only item has no type). */
export interface SecretIdentity {
  namespace: string;
  name: string;
  type?: string;
  labels: Record<string, string>;
}

/** Returns true to pass a Secret's values through (`masking.kubernetes.secretData` allowed). */
export type RevealSecret = (secret: SecretIdentity) => boolean;

interface WalkContext {
  count: RedactionCount;
  reveal?: RevealSecret;
}

/** Lists, Tables and Statuses carry metadata too, but are never what policy reveals. */
function isSingleObject(node: JsonObject): boolean {
  const kind = typeof node.kind === 'string' ? node.kind : '';
  return (
    !('items' in node) && !('rows' in node) && kind !== 'Status' && kind !== 'Table' && !kind.endsWith('List')
  );
}

function identityOf(node: JsonObject): SecretIdentity {
  const meta = isObject(node.metadata) ? node.metadata : {};
  const labels: Record<string, string> = {};
  if (isObject(meta.labels)) {
    for (const [k, v] of Object.entries(meta.labels)) if (typeof v === 'string') labels[k] = v;
  }
  return {
    namespace: typeof meta.namespace === 'string' ? meta.namespace : '',
    name: typeof meta.name === 'string' ? meta.name : '',
    ...(typeof node.type === 'string' ? { type: node.type } : {}),
    labels,
  };
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type JsonObject = { [k: string]: Json };

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function redactMap(map: Json, marker: string, count: RedactionCount): Json {
  // Anything other than a map of strings is not a valid Secret field: drop it rather than guess.
  if (!isObject(map)) {
    count.values++;
    return {};
  }
  const out: JsonObject = {};
  for (const key of Object.keys(map)) {
    out[key] = marker;
    count.values++;
  }
  return out;
}

function redactLastApplied(value: Json, count: RedactionCount): Json {
  count.values++;
  if (typeof value !== 'string') return REDACTED;
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    return REDACTED;
  }
  if (!isObject(parsed)) return REDACTED;
  redactNode(parsed, { count }, true);
  return JSON.stringify(parsed);
}

/** Redacts one object node as a Secret, then recurses into its values. */
function redactNode(node: JsonObject, ctx: WalkContext, treatAsSecret: boolean): void {
  const { count } = ctx;
  if (treatAsSecret && ctx.reveal && isSingleObject(node) && ctx.reveal(identityOf(node))) {
    count.revealed++;
    return;
  }
  if (treatAsSecret) {
    if ('data' in node) node.data = redactMap(node.data!, REDACTED_DATA, count);
    if ('stringData' in node) node.stringData = redactMap(node.stringData!, REDACTED, count);
    const annotations = isObject(node.metadata) ? node.metadata.annotations : undefined;
    if (isObject(annotations) && LAST_APPLIED_ANNOTATION in annotations) {
      annotations[LAST_APPLIED_ANNOTATION] = redactLastApplied(annotations[LAST_APPLIED_ANNOTATION]!, count);
    }
  }
  for (const key of Object.keys(node)) {
    if (treatAsSecret && (key === 'data' || key === 'stringData' || key === 'metadata')) continue;
    walk(node[key]!, ctx);
  }
}

function walk(value: Json, ctx: WalkContext): void {
  if (Array.isArray(value)) {
    for (const v of value) walk(v, ctx);
  } else if (isObject(value)) {
    redactNode(value, ctx, isObject(value.metadata) || value.kind === 'Secret');
  }
}

/**
 * Redacts a parsed JSON document in place (a Secret, SecretList, Table, PartialObjectMetadata(List),
 * watch event, Status, ...) and returns how many values were replaced.
 */
export function redactSecretDocument(doc: unknown, reveal?: RevealSecret): RedactionCount {
  const count = { values: 0, revealed: 0 };
  walk(doc as Json, reveal ? { count, reveal } : { count });
  return count;
}

/**
 * Redacts a write body sent for a Secret (create/update/merge or strategic patch object, or a JSON
 * patch array): the top level is a Secret even without `kind`/`metadata`, and every JSON patch
 * `value` is replaced whatever its path.
 */
export function redactSecretWriteBody(doc: unknown): RedactionCount {
  const count = { values: 0, revealed: 0 };
  if (Array.isArray(doc)) {
    for (const op of doc) {
      if (isObject(op) && 'value' in op) {
        op.value = REDACTED;
        count.values++;
      }
    }
  } else if (isObject(doc)) {
    redactNode(doc, { count }, true);
  }
  return count;
}

/** Parses, redacts and re-serialises one JSON text; throws on invalid JSON (callers fail closed). */
export function redactSecretJson(
  text: string,
  reveal?: RevealSecret,
): { text: string; count: RedactionCount } {
  const doc = JSON.parse(text) as unknown;
  const count = redactSecretDocument(doc, reveal);
  return { text: JSON.stringify(doc), count };
}
