#!/usr/bin/env node
// kubectl plugin for approvers: `kubectl chaperone requests [-w] | describe NAME | approve NAME |
// deny NAME --reason`.
// kubectl finds it on PATH as `kubectl-chaperone`. Approve/deny is the same merge patch of
// status.decision an approver could send with `kubectl patch --subresource=status`; the approval
// webhook stamps who decided. Argument parsing and output are pure (cli-args.ts, format.ts).

import type { AccessRequest } from '@chaperone/api';
import * as k8s from '@kubernetes/client-node';
import { HELP, type PluginCommand, parseArgs, UsageError } from './cli-args.js';
import { formatDescribe } from './describe-format.js';
import { sessionContext } from './describe-request.js';
import {
  apiErrorMessage,
  describeOutcome,
  formatRequestsTable,
  isPending,
  parseWarningHeader,
} from './format.js';
import { watchRequests } from './watch-requests.js';

const GROUP = 'chaperone.dev';
const VERSION = 'v1alpha1';
const PLURAL = 'accessrequests';

interface Io {
  out(text: string): void;
  err(text: string): void;
}

async function main(argv: readonly string[], io: Io): Promise<number> {
  let cmd: PluginCommand;
  try {
    cmd = parseArgs(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    io.err(`error: ${err.message}\nSee 'kubectl chaperone --help' for usage.`);
    return 1;
  }
  if (cmd.command === 'help') {
    io.out(HELP[cmd.topic ?? 'main']);
    return 0;
  }

  let kc: k8s.KubeConfig;
  let namespace: string;
  try {
    ({ kc, namespace } = loadKubeConfig(cmd.connection));
  } catch (err) {
    io.err(`error: ${(err as Error).message}`);
    return 1;
  }
  const api = kc.makeApiClient(k8s.CustomObjectsApi);

  try {
    if (cmd.command === 'requests' && cmd.watch) {
      return await watchRequests({
        kc,
        namespace,
        allNamespaces: cmd.allNamespaces,
        all: cmd.all,
        out: io.out,
        err: io.err,
      });
    }
    if (cmd.command === 'describe') {
      const req = (await api.getNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace,
        plural: PLURAL,
        name: cmd.name,
      })) as AccessRequest;
      const url = cmd.collector ?? process.env.CHAPERONE_COLLECTOR_URL;
      const token = process.env.CHAPERONE_COLLECTOR_TOKEN;
      const ctx = await sessionContext(req.spec.sessionId, {
        ...(url ? { url } : {}),
        ...(token ? { token } : {}),
      });
      io.out(formatDescribe(req, ctx, new Date()));
      return 0;
    }
    if (cmd.command === 'requests') {
      const list = (
        cmd.allNamespaces
          ? await api.listClusterCustomObject({ group: GROUP, version: VERSION, plural: PLURAL })
          : await api.listNamespacedCustomObject({
              group: GROUP,
              version: VERSION,
              namespace,
              plural: PLURAL,
            })
      ) as { items?: AccessRequest[] };
      const items = (list.items ?? []).filter((r) => cmd.all || isPending(r));
      if (items.length === 0) {
        const where = cmd.allNamespaces ? 'in any namespace' : `in namespace ${namespace}`;
        io.err(`No ${cmd.all ? '' : 'pending '}AccessRequests ${where}.`);
        return 0;
      }
      io.out(formatRequestsTable(items, { now: new Date(), allNamespaces: cmd.allNamespaces }));
      return 0;
    }

    const verdict = cmd.command === 'approve' ? 'Approved' : 'Denied';
    const comment = cmd.command === 'approve' ? cmd.comment : cmd.reason;
    const body = { status: { decision: { verdict, ...(comment ? { comment } : {}) } } };
    const res = await api.patchNamespacedCustomObjectStatusWithHttpInfo(
      { group: GROUP, version: VERSION, namespace, plural: PLURAL, name: cmd.name, body },
      // v2 defaults patches to JSON Patch; this body is a merge patch.
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    const warnings = parseWarningHeader(res.headers.warning);
    const outcome = describeOutcome(cmd.name, verdict, res.data as AccessRequest, warnings);
    // The approval count is in the outcome; other warnings are shown as kubectl shows them.
    for (const w of warnings) if (!/approvals recorded/.test(w)) io.err(`Warning: ${w}`);
    if (outcome.ok) io.out(outcome.message);
    else io.err(`error: ${outcome.message}`);
    return outcome.ok ? 0 : 1;
  } catch (err) {
    if (err instanceof k8s.ApiException) {
      io.err(apiErrorMessage(err.code, err.body));
      return 1;
    }
    io.err(`error: ${(err as Error).message}`);
    return 1;
  }
}

function loadKubeConfig(opts: { kubeconfig?: string; context?: string; namespace?: string }): {
  kc: k8s.KubeConfig;
  namespace: string;
} {
  const kc = new k8s.KubeConfig();
  if (opts.kubeconfig) {
    try {
      kc.loadFromFile(opts.kubeconfig);
    } catch (err) {
      throw new Error(`cannot read kubeconfig ${opts.kubeconfig}: ${(err as Error).message}`);
    }
  } else {
    kc.loadFromDefault();
    // client-node's last resort is an unauthenticated http://localhost:8080; kubectl would refuse.
    if (kc.getCurrentCluster()?.server === 'http://localhost:8080' && kc.getCurrentUser()?.name === 'user') {
      throw new Error(
        'no kubeconfig found: set KUBECONFIG, pass --kubeconfig PATH, or create ~/.kube/config',
      );
    }
  }
  if (opts.context) {
    if (!kc.getContextObject(opts.context)) {
      const known = kc.getContexts().map((c) => c.name);
      throw new Error(
        `context "${opts.context}" is not in the kubeconfig (it has: ${known.join(', ') || 'none'})`,
      );
    }
    kc.setCurrentContext(opts.context);
  }
  if (!kc.getCurrentCluster()) {
    throw new Error(
      `the kubeconfig's current context "${kc.getCurrentContext()}" has no cluster; pass --context`,
    );
  }
  const namespace = opts.namespace ?? kc.getContextObject(kc.getCurrentContext())?.namespace ?? 'default';
  return { kc, namespace };
}

main(process.argv.slice(2), {
  out: (t) => process.stdout.write(`${t}\n`),
  err: (t) => process.stderr.write(`${t}\n`),
}).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`error: ${(err as Error).message ?? String(err)}\n`);
    process.exitCode = 1;
  },
);
