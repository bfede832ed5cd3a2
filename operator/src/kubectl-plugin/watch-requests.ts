// `kubectl chaperone requests --watch`: list once, then a watch on the API server from the list's
// resourceVersion, printing each new pending request the moment it arrives and each phase change
// after it. The watch is restarted where it stopped (and relisted when that version is gone), so it
// runs until interrupted.

import type { AccessRequest } from '@chaperone/api';
import * as k8s from '@kubernetes/client-node';
import { formatRequestsTable, formatWatchLine, isPending, tableWidths } from './format.js';

export interface WatchOptions {
  kc: k8s.KubeConfig;
  namespace: string;
  allNamespaces: boolean;
  all: boolean;
  out(text: string): void;
  err(text: string): void;
  /** Resolves when the command should stop (tests); default never. */
  stop?: Promise<void>;
}

const GROUP = 'chaperone.dev';
const VERSION = 'v1alpha1';
const PLURAL = 'accessrequests';

/** 429 (the API server busy or starting) and 5xx are retried a few times, as kubectl does. */
async function withRetries<T>(fn: () => Promise<T>, err: (text: string) => void): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (e) {
      const code = e instanceof k8s.ApiException ? e.code : undefined;
      if (attempt >= 10 || code === undefined || (code !== 429 && code < 500)) throw e;
      if (attempt === 3) err(`the API server answered ${code}; retrying`);
      await new Promise((r) => setTimeout(r, Math.min(5_000, 250 * 2 ** attempt)));
    }
  }
}

export async function watchRequests(opts: WatchOptions): Promise<number> {
  const api = opts.kc.makeApiClient(k8s.CustomObjectsApi);
  const path = opts.allNamespaces
    ? `/apis/${GROUP}/${VERSION}/${PLURAL}`
    : `/apis/${GROUP}/${VERSION}/namespaces/${opts.namespace}/${PLURAL}`;
  const tableOpts = () => ({ now: new Date(), allNamespaces: opts.allNamespaces });
  /** uid -> the phase last printed. */
  const printed = new Map<string, string>();
  let widths: number[] | undefined;
  let stopped = false;
  let current: { abort(): void } | undefined;
  void opts.stop?.then(() => {
    stopped = true;
    current?.abort();
  });

  const listOnce = () =>
    opts.allNamespaces
      ? api.listClusterCustomObject({ group: GROUP, version: VERSION, plural: PLURAL })
      : api.listNamespacedCustomObject({
          group: GROUP,
          version: VERSION,
          namespace: opts.namespace,
          plural: PLURAL,
        });
  const list = async (first: boolean): Promise<string> => {
    const res = (await withRetries(listOnce, opts.err)) as {
      items?: AccessRequest[];
      metadata?: { resourceVersion?: string };
    };
    const items = (res.items ?? []).filter((r) => opts.all || isPending(r));
    if (first) {
      if (items.length > 0) {
        const table = formatRequestsTable(items, tableOpts());
        widths = tableWidths(table);
        opts.out(table);
      } else {
        const where = opts.allNamespaces ? 'in any namespace' : `in namespace ${opts.namespace}`;
        opts.err(`No ${opts.all ? '' : 'pending '}AccessRequests ${where} yet; waiting for new ones.`);
      }
      for (const r of items) printed.set(r.metadata.uid ?? '', r.status?.phase ?? 'Pending');
    } else {
      for (const r of items) show(r);
    }
    return res.metadata?.resourceVersion ?? '';
  };

  const show = (r: AccessRequest) => {
    const uid = r.metadata.uid ?? '';
    const phase = r.status?.phase ?? 'Pending';
    const seen = printed.get(uid);
    // New pending requests, and what became of the ones shown; decided ones never seen are old news.
    if (seen === phase || (seen === undefined && !opts.all && !isPending(r))) return;
    printed.set(uid, phase);
    opts.out(formatWatchLine(r, tableOpts(), widths));
  };

  let resourceVersion = await list(true);
  while (!stopped) {
    const outcome = await new Promise<'again' | 'relist'>((resolve) => {
      new k8s.Watch(opts.kc)
        .watch(
          path,
          { resourceVersion, allowWatchBookmarks: true },
          (type: string, obj: AccessRequest & { code?: number }) => {
            if (type === 'ERROR') {
              // 410 Gone: the version is too old; list again.
              if (obj.code === 410) resolve('relist');
              return;
            }
            if (obj.metadata?.resourceVersion) resourceVersion = obj.metadata.resourceVersion;
            if (type === 'ADDED' || type === 'MODIFIED') show(obj);
          },
          () => resolve('again'),
        )
        .then(
          (req) => {
            current = req;
            if (stopped) req.abort();
          },
          (err: unknown) => {
            opts.err(`watch failed: ${(err as Error).message}; retrying`);
            setTimeout(() => resolve('again'), 1_000);
          },
        );
    });
    if (stopped) break;
    if (outcome === 'relist') resourceVersion = await list(false);
  }
  return 0;
}
