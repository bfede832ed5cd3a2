import type {
  KubernetesRuleMatch,
  PolicyRule,
  PostgresRuleMatch,
  RuleAction,
  SSHRuleMatch,
} from '@chaperone/api';
import { commandGlob, commandSegments, hostGlob, segmentGlob } from './glob.js';
import type { Operation } from './types.js';

// Rule matching. The asymmetry between allow/approve rules and deny rules is deliberate: wherever a
// filter could be read as "every" or "any", allow and approve rules take the narrow reading and deny
// rules the broad one, so that an ambiguous operation is never let through by accident.

/** An operation with what every rule would otherwise recompute, computed once per decide(). */
export type PreparedOperation =
  | { op: Extract<Operation, { type: 'postgres' }>; classes: string[] }
  | {
      op: Extract<Operation, { type: 'ssh' }>;
      segments: () => string[];
      target?: { host: string; port: string };
    }
  | { op: Extract<Operation, { type: 'kubernetes' }>; resource: string };

export function prepareOperation(op: Operation): PreparedOperation {
  switch (op.type) {
    case 'postgres':
      return { op, classes: (op.classes ?? []).filter((c) => c !== 'session') };
    case 'ssh': {
      let segments: string[] | undefined;
      return {
        op,
        segments: () => {
          segments ??= commandSegments(op.command ?? '');
          return segments;
        },
        ...(op.target !== undefined ? { target: splitHostPort(op.target) } : {}),
      };
    }
    case 'kubernetes':
      return { op, resource: op.subresource ? `${op.resource}/${op.subresource}` : op.resource };
  }
}

export interface CompiledRule {
  readonly name: string;
  readonly action: RuleAction;
  readonly reason?: string;
  matches(prepared: PreparedOperation): boolean;
}

export const RULE_ACTIONS: readonly RuleAction[] = ['allow', 'deny', 'approve'];
const POSTGRES_CLASSES = new Set(['read', 'write', 'ddl', 'admin', 'copy']);
const SSH_OPERATIONS = new Set(['shell', 'exec', 'port-forward', 'sftp']);

type Matcher = (p: PreparedOperation) => boolean;

/** Compiles one rule; `problems` collects what makes it unusable (the policy then fails closed). */
export function compileRule(rule: PolicyRule, index: number, problems: string[]): CompiledRule {
  const where = `rules[${index}]${rule?.name ? ` (${rule.name})` : ''}`;
  const name = typeof rule?.name === 'string' && rule.name ? rule.name : `rules[${index}]`;
  if (!rule?.name) problems.push(`${where} has no name`);
  const action = rule?.action;
  if (!RULE_ACTIONS.includes(action))
    problems.push(`${where} has action ${JSON.stringify(action)}; use allow, deny or approve`);
  const broad = action === 'deny';
  const blocks = [rule?.postgres, rule?.ssh, rule?.kubernetes].filter(
    (b) => b !== undefined && b !== null,
  ).length;
  if (blocks > 1)
    problems.push(`${where} has more than one of postgres, ssh and kubernetes; write one rule per protocol`);

  let matcher: Matcher = () => true;
  if (rule?.postgres) matcher = postgresMatcher(rule.postgres, broad, where, problems);
  else if (rule?.ssh) matcher = sshMatcher(rule.ssh, broad, where, problems);
  else if (rule?.kubernetes) matcher = kubernetesMatcher(rule.kubernetes);

  return {
    name,
    action,
    ...(rule?.reason ? { reason: rule.reason } : {}),
    matches: matcher,
  };
}

// ---- postgres ----------------------------------------------------------------------------------

interface TableGlob {
  schema: RegExp;
  schemaIsStar: boolean;
  table: RegExp;
}

function compileTableGlob(
  glob: string,
  broad: boolean,
  where: string,
  problems: string[],
): TableGlob | undefined {
  const parts = typeof glob === 'string' ? glob.split('.') : [];
  const [schema, table] = parts;
  if (parts.length !== 2 || !schema || !table) {
    problems.push(
      `${where}: table ${JSON.stringify(glob)} is not 'schema.table' (e.g. public.orders, billing.*)`,
    );
    return undefined;
  }
  // Deny globs ignore case: "public.Orders" (a quoted identifier) is still caught by public.orders.
  const flags = broad ? 'i' : '';
  return {
    schema: segmentGlob(schema, flags),
    schemaIsStar: schema === '*',
    table: segmentGlob(table, flags),
  };
}

function tableMatches(glob: TableGlob, qualified: string, broad: boolean): boolean {
  if (typeof qualified !== 'string') return false;
  const dot = qualified.indexOf('.');
  // An unqualified name has an unknown schema: a deny glob assumes the worst (it could be any schema),
  // an allow glob accepts it only if it allows every schema.
  if (dot < 0) return (broad || glob.schemaIsStar) && glob.table.test(qualified);
  return glob.schema.test(qualified.slice(0, dot)) && glob.table.test(qualified.slice(dot + 1));
}

function postgresMatcher(m: PostgresRuleMatch, broad: boolean, where: string, problems: string[]): Matcher {
  const ops = m.operations && m.operations.length > 0 ? new Set<string>(m.operations) : undefined;
  for (const o of m.operations ?? []) {
    if (!POSTGRES_CLASSES.has(o)) problems.push(`${where}: unknown postgres operation ${JSON.stringify(o)}`);
  }
  const globs = (m.tables ?? [])
    .map((t) => compileTableGlob(t, broad, where, problems))
    .filter((g): g is TableGlob => g !== undefined);
  const hasTables = (m.tables ?? []).length > 0;
  return (p) => {
    if (p.op.type !== 'postgres' || !('classes' in p)) return false;
    if (ops) {
      // A statement that is both read and write needs a rule that covers both; a deny rule for
      // either class already catches it.
      if (broad ? !p.classes.some((c) => ops.has(c)) : !p.classes.every((c) => ops.has(c))) return false;
    }
    if (hasTables) {
      const tables = p.op.tables ?? [];
      const inScope = (t: string) => globs.some((g) => tableMatches(g, t, broad));
      // allow/approve: no out-of-scope table may ride along (no tables: vacuously true);
      // deny: one matching table suffices (no tables: nothing to deny).
      if (broad ? !tables.some(inScope) : !tables.every(inScope)) return false;
    }
    return true;
  };
}

// ---- ssh ---------------------------------------------------------------------------------------

/** 'host:port' → parts; IPv6 brackets removed, host lowercased. */
export function splitHostPort(target: string): { host: string; port: string } {
  const s = String(target);
  const colon = s.lastIndexOf(':');
  const host = (colon < 0 ? s : s.slice(0, colon)).replace(/^\[(.*)\]$/, '$1').toLowerCase();
  return { host, port: colon < 0 ? '' : s.slice(colon + 1) };
}

interface TargetGlob {
  host: RegExp | undefined; // undefined: any host
  port: number | undefined; // undefined: any port
}

function compileTargetGlob(
  glob: string,
  broad: boolean,
  where: string,
  problems: string[],
): TargetGlob | undefined {
  const m = typeof glob === 'string' ? /^([^\s:]+):([0-9]{1,5}|\*)$/.exec(glob) : null;
  if (!m || m[1] === undefined || m[2] === undefined) {
    problems.push(`${where}: forward target ${JSON.stringify(glob)} is not 'host:port' (port may be '*')`);
    return undefined;
  }
  const hostPattern = m[1].toLowerCase();
  let host: RegExp | undefined;
  if (hostPattern !== '*') {
    // In allow rules '*' stays within one DNS label, so "10.0.0.*" cannot reach "10.0.0.1.evil.example".
    host = hostGlob(hostPattern, broad);
  }
  return { host, port: m[2] === '*' ? undefined : Number(m[2]) };
}

function sshMatcher(m: SSHRuleMatch, broad: boolean, where: string, problems: string[]): Matcher {
  const ops = m.operations && m.operations.length > 0 ? new Set<string>(m.operations) : undefined;
  for (const o of m.operations ?? []) {
    if (!SSH_OPERATIONS.has(o)) problems.push(`${where}: unknown ssh operation ${JSON.stringify(o)}`);
  }
  const commands = (m.commands ?? []).map((c) => commandGlob(String(c), broad));
  const targets = (m.forwardTargets ?? [])
    .map((t) => compileTargetGlob(t, broad, where, problems))
    .filter((t): t is TargetGlob => t !== undefined);
  const hasCommands = (m.commands ?? []).length > 0;
  const hasTargets = (m.forwardTargets ?? []).length > 0;
  return (p) => {
    if (p.op.type !== 'ssh' || !('segments' in p)) return false;
    const op = p.op;
    if (ops && !ops.has(op.operation)) return false;
    if (hasCommands) {
      if (op.operation !== 'exec' || typeof op.command !== 'string') return false;
      const command = op.command;
      // A deny glob also looks at each simple command of a compound line ("ls; rm -rf /").
      const hit = broad
        ? p.segments().some((s) => commands.some((re) => re.test(s)))
        : commands.some((re) => re.test(command));
      if (!hit) return false;
    }
    if (hasTargets) {
      const target = p.target;
      if (op.operation !== 'port-forward' || !target) return false;
      const hit = targets.some(
        (t) =>
          (t.port === undefined || (/^[0-9]{1,5}$/.test(target.port) && Number(target.port) === t.port)) &&
          (t.host === undefined || t.host.test(target.host)),
      );
      if (!hit) return false;
    }
    return true;
  };
}

// ---- kubernetes --------------------------------------------------------------------------------

function anyOrSet(values: readonly string[] | undefined): Set<string> | 'any' {
  if (!values || values.length === 0 || values.includes('*')) return 'any';
  return new Set(values);
}

function kubernetesMatcher(m: KubernetesRuleMatch): Matcher {
  const verbs = anyOrSet(m.verbs);
  const groups = anyOrSet(m.apiGroups);
  const names = m.resourceNames && m.resourceNames.length > 0 ? new Set(m.resourceNames) : undefined;
  const namespaces = m.namespaces && m.namespaces.length > 0 ? anyOrSet(m.namespaces) : undefined;
  const resources = m.resources && m.resources.length > 0 ? m.resources : undefined;
  return (p) => {
    if (p.op.type !== 'kubernetes' || !('resource' in p)) return false;
    const op = p.op;
    if (verbs !== 'any' && !verbs.has(op.verb)) return false;
    if (groups !== 'any' && !groups.has(op.apiGroup)) return false;
    if (resources && !resources.some((r) => resourceMatches(r, op.resource, op.subresource, p.resource)))
      return false;
    // As in RBAC: resourceNames only match requests that name an object.
    if (names && (op.name === undefined || !names.has(op.name))) return false;
    // Cluster-scoped requests do not match a rule that lists namespaces.
    if (namespaces) {
      if (!op.namespace) return false;
      if (namespaces !== 'any' && !namespaces.has(op.namespace)) return false;
    }
    return true;
  };
}

/** RBAC's resource matching: '*' (everything), 'pods', 'pods/exec', 'pods/*', '*\/scale'. */
function resourceMatches(
  rule: string,
  resource: string,
  subresource: string | undefined,
  combined: string,
): boolean {
  if (rule === '*' || rule === combined) return true;
  if (!subresource) return false;
  return rule === `*/${subresource}` || rule === `${resource}/*`;
}
