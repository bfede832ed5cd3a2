// Operations come from our own classifiers, typed; this check exists so that a classifier bug (or a
// malformed value reaching the data path some other way) is a clear deny, never a TypeError inside
// a gateway. It costs a few typeof checks per decide().

const isString = (v: unknown): v is string => typeof v === 'string';
const optionalString = (v: unknown) => v === undefined || typeof v === 'string';
const stringArray = (v: unknown) => Array.isArray(v) && v.every(isString);

/** What is wrong with the operation's shape, or undefined when decide() can work with it. */
export function operationShapeProblem(op: unknown): string | undefined {
  if (typeof op !== 'object' || op === null) return 'the operation is not an object';
  const o = op as Record<string, unknown>;
  if (o.risks !== undefined && !Array.isArray(o.risks)) return 'risks is not a list';
  switch (o.type) {
    case 'postgres':
      if (!stringArray(o.classes)) return 'classes is not a list of strings';
      if (!stringArray(o.tables)) return 'tables is not a list of strings';
      return undefined;
    case 'ssh':
      if (!isString(o.operation)) return 'operation is not a string';
      if (!optionalString(o.command) || !optionalString(o.target)) return 'command or target is not a string';
      return undefined;
    case 'kubernetes':
      if (!isString(o.verb) || !isString(o.apiGroup) || !isString(o.resource))
        return 'verb, apiGroup or resource is not a string';
      if (!optionalString(o.subresource) || !optionalString(o.namespace) || !optionalString(o.name)) {
        return 'subresource, namespace or name is not a string';
      }
      return undefined;
    default:
      return `operation type ${JSON.stringify(String(o.type)).slice(0, 40)} is unknown`;
  }
}
