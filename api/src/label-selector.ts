import type { LabelSelector, LabelSelectorRequirement, PolicyConnections } from './generated/crds.js';

type Labels = Readonly<Record<string, string | undefined>>;

function requirementHolds(req: LabelSelectorRequirement, labels: Labels): boolean {
  const has = Object.hasOwn(labels, req.key) && labels[req.key] !== undefined;
  const value = has ? labels[req.key] : undefined;
  const values = req.values ?? [];
  switch (req.operator) {
    case 'In':
      return value !== undefined && values.includes(value);
    case 'NotIn':
      // As in Kubernetes: a missing label is "not in" any set.
      return value === undefined || !values.includes(value);
    case 'Exists':
      return has;
    case 'DoesNotExist':
      return !has;
    default:
      return false;
  }
}

/** Kubernetes label-selector semantics: every matchLabels pair and every expression must hold; {} selects all. */
export function selectorMatches(selector: LabelSelector, labels: Labels | undefined): boolean {
  const l = labels ?? {};
  for (const [key, want] of Object.entries(selector.matchLabels ?? {})) {
    if (want === undefined) continue;
    if (!Object.hasOwn(l, key) || l[key] !== want) return false;
  }
  return (selector.matchExpressions ?? []).every((req) => requirementHolds(req, l));
}

/** Whether spec.connections picks the Connection (names ∪ selector). The namespace check is the caller's. */
export function connectionsSelect(
  connections: PolicyConnections | undefined,
  name: string | undefined,
  labels: Labels | undefined,
): boolean {
  if (!connections) return false;
  if (name !== undefined && (connections.names ?? []).includes(name)) return true;
  return (
    connections.selector !== undefined &&
    connections.selector !== null &&
    selectorMatches(connections.selector, labels)
  );
}
