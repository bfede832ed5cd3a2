// Argument parsing for `kubectl chaperone`, kept pure so every flag combination is unit-tested. Flags
// follow kubectl's spelling (-n/--namespace, -A/--all-namespaces, --kubeconfig, --context) and may
// come before or after the subcommand, as `--flag value` or `--flag=value`.

export interface ConnectionOptions {
  kubeconfig?: string;
  context?: string;
  /** -n; undefined means the current context's namespace. */
  namespace?: string;
}

export type PluginCommand =
  | { command: 'help'; topic?: Subcommand }
  | {
      command: 'requests';
      connection: ConnectionOptions;
      allNamespaces: boolean;
      all: boolean;
      watch: boolean;
    }
  | { command: 'describe'; connection: ConnectionOptions; name: string; collector?: string }
  | { command: 'approve'; connection: ConnectionOptions; name: string; comment?: string }
  | { command: 'deny'; connection: ConnectionOptions; name: string; reason: string };

export type Subcommand = 'requests' | 'describe' | 'approve' | 'deny';

/** A mistake in the command line; the message says what to type instead. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** status.decision.comment is capped by the CRD. */
export const MAX_COMMENT_LENGTH = 1024;

const SUBCOMMANDS: readonly Subcommand[] = ['requests', 'describe', 'approve', 'deny'];

type ValueFlag = 'namespace' | 'kubeconfig' | 'context' | 'comment' | 'reason' | 'collector';
type BoolFlag = 'all' | 'allNamespaces' | 'help' | 'watch';

const VALUE_FLAGS: Record<string, ValueFlag> = {
  '-n': 'namespace',
  '--namespace': 'namespace',
  '--kubeconfig': 'kubeconfig',
  '--context': 'context',
  '--comment': 'comment',
  '-m': 'comment',
  '--reason': 'reason',
  '--collector': 'collector',
};
const BOOL_FLAGS: Record<string, BoolFlag> = {
  '--all': 'all',
  '-A': 'allNamespaces',
  '--all-namespaces': 'allNamespaces',
  '-h': 'help',
  '--help': 'help',
  '-w': 'watch',
  '--watch': 'watch',
};

export function parseArgs(argv: readonly string[]): PluginCommand {
  const values: Partial<Record<ValueFlag, string>> = {};
  const bools = new Set<BoolFlag>();
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith('-') || arg === '-') {
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    // `--flag=value`, `-n=value` and kubectl's `-nvalue`.
    let flag = eq > 0 ? arg.slice(0, eq) : arg;
    let inline = eq > 0 ? arg.slice(eq + 1) : undefined;
    if (!arg.startsWith('--') && flag.length > 2 && inline === undefined) {
      inline = flag.slice(2);
      flag = flag.slice(0, 2);
    }
    const valueFlag = VALUE_FLAGS[flag];
    if (valueFlag) {
      const value = inline ?? argv[++i];
      if (value === undefined) throw new UsageError(`flag ${flag} needs a value`);
      values[valueFlag] = value;
      continue;
    }
    const boolFlag = BOOL_FLAGS[flag];
    if (boolFlag) {
      if (inline !== undefined && inline !== 'true') {
        if (inline === 'false') {
          bools.delete(boolFlag);
          continue;
        }
        throw new UsageError(`flag ${flag} takes no value`);
      }
      bools.add(boolFlag);
      continue;
    }
    throw new UsageError(`unknown flag ${flag}`);
  }

  const [first, ...rest] = positionals;
  if (first === undefined || first === 'help') {
    const topic = first === 'help' ? rest[0] : undefined;
    if (topic !== undefined && !isSubcommand(topic)) throw new UsageError(`unknown command "${topic}"`);
    return topic ? { command: 'help', topic } : { command: 'help' };
  }
  if (!isSubcommand(first)) {
    throw new UsageError(`unknown command "${first}"; commands are ${SUBCOMMANDS.join(', ')}`);
  }
  if (bools.has('help')) return { command: 'help', topic: first };

  for (const [flag, value] of Object.entries(values)) {
    if (flag !== 'comment' && value === '') throw new UsageError(`flag --${flag} needs a non-empty value`);
  }
  const connection: ConnectionOptions = {
    ...(values.kubeconfig !== undefined ? { kubeconfig: values.kubeconfig } : {}),
    ...(values.context !== undefined ? { context: values.context } : {}),
    ...(values.namespace !== undefined ? { namespace: values.namespace } : {}),
  };

  if (first === 'requests') {
    if (rest.length > 0) {
      throw new UsageError(`requests takes no arguments (got ${rest.join(' ')}); use -n NAMESPACE or -A`);
    }
    rejectFlags(first, values, ['comment', 'reason', 'collector']);
    if (bools.has('allNamespaces') && values.namespace !== undefined) {
      throw new UsageError('use either -n NAMESPACE or -A (all namespaces), not both');
    }
    return {
      command: 'requests',
      connection,
      allNamespaces: bools.has('allNamespaces'),
      all: bools.has('all'),
      watch: bools.has('watch'),
    };
  }
  if (bools.has('watch')) throw new UsageError('-w/--watch only applies to requests');

  if (bools.has('allNamespaces') || bools.has('all')) {
    throw new UsageError(`${first} decides one request; -A and --all only apply to requests`);
  }
  if (rest.length !== 1) {
    throw new UsageError(
      rest.length === 0
        ? `${first} needs the name of an AccessRequest; list them with kubectl chaperone requests`
        : `${first} takes exactly one AccessRequest name (got ${rest.join(' ')})`,
    );
  }
  const name = rest[0] as string;
  if (name.trim() === '') throw new UsageError(`${first} needs a non-empty AccessRequest name`);

  if (first === 'describe') {
    rejectFlags(first, values, ['comment', 'reason']);
    return {
      command: 'describe',
      connection,
      name,
      ...(values.collector ? { collector: values.collector } : {}),
    };
  }
  if (values.collector !== undefined) throw new UsageError('--collector only applies to describe');

  if (first === 'approve') {
    if (values.reason !== undefined)
      throw new UsageError('--reason is for deny; approve takes --comment TEXT');
    const comment = values.comment;
    checkLength('--comment', comment);
    return { command: 'approve', connection, name, ...(comment ? { comment } : {}) };
  }

  if (values.comment !== undefined) {
    throw new UsageError('deny takes --reason TEXT (shown to the agent and recorded), not --comment');
  }
  const reason = values.reason?.trim();
  if (!reason) {
    throw new UsageError(
      'deny needs --reason TEXT: the agent and the audit record are told why, e.g. --reason "not during the freeze"',
    );
  }
  checkLength('--reason', values.reason);
  return { command: 'deny', connection, name, reason: values.reason as string };
}

function isSubcommand(value: string): value is Subcommand {
  return (SUBCOMMANDS as readonly string[]).includes(value);
}

function rejectFlags(command: string, values: Partial<Record<ValueFlag, string>>, flags: ValueFlag[]): void {
  for (const flag of flags) {
    if (values[flag] !== undefined) throw new UsageError(`${command} does not take --${flag}`);
  }
}

function checkLength(flag: string, value: string | undefined): void {
  if (value !== undefined && value.length > MAX_COMMENT_LENGTH) {
    throw new UsageError(`${flag} is at most ${MAX_COMMENT_LENGTH} characters (got ${value.length})`);
  }
}

export const HELP: Record<'main' | Subcommand, string> = {
  main: `Decide Chaperone AccessRequests: operations that agents' sidecars paused until a human approves.

Usage:
  kubectl chaperone requests [-n NAMESPACE | -A] [--all] [-w]
  kubectl chaperone describe NAME [-n NAMESPACE] [--collector URL]
  kubectl chaperone approve NAME [-n NAMESPACE] [--comment TEXT]
  kubectl chaperone deny NAME --reason TEXT [-n NAMESPACE]

Commands:
  requests   List pending AccessRequests (all of them with --all); -w keeps printing new ones.
  describe   One request in full, with the session's recent statements from the collector.
  approve    Approve one. With a policy that needs several approvers, records your approval.
  deny       Deny one, saying why. One denial decides.

Flags (all commands):
  -n, --namespace NAME   Namespace (default: the current context's namespace).
      --kubeconfig PATH  Kubeconfig file (default: $KUBECONFIG or ~/.kube/config).
      --context NAME     Kubeconfig context to use.
  -h, --help             Show help.

You decide as the user your kubeconfig authenticates as; the Chaperone webhook records who, checks
that you are an approver of the request's AccessPolicy, and refuses your own requests.`,
  requests: `List AccessRequests waiting for a decision.

Usage:
  kubectl chaperone requests [-n NAMESPACE | -A] [--all] [-w]

  -A, --all-namespaces  List across all namespaces.
      --all             Include decided and expired requests.
  -w, --watch           After the list, print each new request as it arrives and each decision
                        (a watch on the API server; stop with Ctrl-C).`,
  describe: `Show one AccessRequest in full: who asks, the operation, why it needs approval, approvals,
notifications, and the recent statements of its session.

Usage:
  kubectl chaperone describe NAME [-n NAMESPACE] [--collector URL]

  --collector URL  The collector's auditor API, e.g. https://chaperone-collector.example.com
                   (default: $CHAPERONE_COLLECTOR_URL). The bearer token is read from
                   $CHAPERONE_COLLECTOR_TOKEN (an auditor OIDC ID token or the static auditor
                   token); a private CA from $NODE_EXTRA_CA_CERTS. Without a collector, or when it
                   cannot be reached, the request is still shown and the reason is printed.`,
  approve: `Approve an AccessRequest.

Usage:
  kubectl chaperone approve NAME [-n NAMESPACE] [--comment TEXT]

  -m, --comment TEXT  Note shown to the agent and recorded with the decision.`,
  deny: `Deny an AccessRequest.

Usage:
  kubectl chaperone deny NAME --reason TEXT [-n NAMESPACE]

  --reason TEXT  Required. Why; shown to the agent and recorded with the decision.`,
};
