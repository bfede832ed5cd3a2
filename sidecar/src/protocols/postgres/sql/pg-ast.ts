/**
 * Typed access to libpg-query's JSON parse tree.
 *
 * Fields typed `Node` in @pgsql/types are wrapped as `{ Tag: body }`; fields typed as a specific struct
 * (e.g. `InsertStmt.relation: RangeVar`, `SelectStmt.larg: SelectStmt`) are bare bodies. The parser's
 * JSON is trusted to match the published types, so the casts live here and nowhere else.
 */
import type { Node } from 'libpg-query';

type KeysOfUnion<T> = T extends unknown ? keyof T : never;

/** Every node tag of the parse tree ('SelectStmt', 'ColumnRef', …). */
export type NodeTag = KeysOfUnion<Node>;

/** The body type of a wrapped node with the given tag. */
export type NodeOf<K extends NodeTag> = Extract<Node, { [P in K]: unknown }>[K];

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The tag of a wrapped node, or undefined for bare structs, lists and scalars. */
export function tagOf(node: unknown): string | undefined {
  if (!isRecord(node)) return undefined;
  for (const key in node) {
    const first = key.charCodeAt(0);
    // Tags start with an upper-case letter (A_Const, SelectStmt); struct fields never do.
    return first >= 65 && first <= 90 ? key : undefined;
  }
  return undefined;
}

/** The body of a wrapped node if it has the given tag. */
export function nodeAs<K extends NodeTag>(node: unknown, tag: K): NodeOf<K> | undefined {
  if (!isRecord(node)) return undefined;
  const body = node[tag];
  return isRecord(body) ? (body as NodeOf<K>) : undefined;
}

/** The body of a wrapped node whatever its tag (for generic walks). */
export function bodyOf(node: unknown): Record<string, unknown> | undefined {
  const tag = tagOf(node);
  if (tag === undefined || !isRecord(node)) return undefined;
  const body = node[tag];
  return isRecord(body) ? body : undefined;
}

/** The values of a list of String nodes (qualified names, column lists). */
export function stringValues(nodes: readonly Node[] | undefined): string[] {
  const out: string[] = [];
  for (const n of nodes ?? []) {
    const s = nodeAs(n, 'String');
    if (s?.sval !== undefined) out.push(s.sval);
  }
  return out;
}

/** The String items of a `List` node (DROP's object names). */
export function listStrings(node: unknown): string[] {
  const list = nodeAs(node, 'List');
  if (list !== undefined) return stringValues(list.items);
  const single = nodeAs(node, 'String');
  return single?.sval !== undefined ? [single.sval] : [];
}

/** The string value of an A_Const / String node, if it is one. */
export function constString(node: unknown): string | undefined {
  const c = nodeAs(node, 'A_Const');
  if (c !== undefined) return c.sval?.sval;
  return nodeAs(node, 'String')?.sval;
}

/** True for `LIMIT ALL` / `LIMIT NULL`, which do not bound anything. */
export function isNullConst(node: unknown): boolean {
  return nodeAs(node, 'A_Const')?.isnull === true;
}

/**
 * A DefElem option's boolean value as PostgreSQL's defGetBoolean reads it: no argument means true;
 * 'true'/'on'/'1'/'yes' true; anything else false.
 */
export function defElemIsTrue(def: NodeOf<'DefElem'>): boolean {
  const arg = def.arg;
  if (arg === undefined) return true;
  const b = nodeAs(arg, 'Boolean');
  if (b !== undefined) return b.boolval === true;
  const i = nodeAs(arg, 'Integer');
  if (i !== undefined) return (i.ival ?? 0) !== 0;
  const s = constString(arg);
  if (s !== undefined) return ['true', 'on', '1', 'yes', 't', 'y'].includes(s.toLowerCase());
  const c = nodeAs(arg, 'A_Const');
  if (c?.ival !== undefined) return (c.ival.ival ?? 0) !== 0;
  if (c?.boolval !== undefined) return c.boolval.boolval === true;
  return true;
}

/** The DefElem options with the given name. */
export function findOption(
  options: readonly Node[] | undefined,
  name: string,
): NodeOf<'DefElem'> | undefined {
  for (const o of options ?? []) {
    const d = nodeAs(o, 'DefElem');
    if (d?.defname === name) return d;
  }
  return undefined;
}

/** A qualified name joined with dots, lower-cased ('pg_catalog.upper'). */
export function qualifiedName(parts: readonly string[]): string {
  return parts.join('.').toLowerCase();
}
