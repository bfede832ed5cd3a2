import { API_GROUP, API_VERSION, type Connection, type Logger, PLURALS } from '@chaperone/api';
import * as k8s from '@kubernetes/client-node';
import { Counter, type Registry } from 'prom-client';
import { postgresAdminLogin, postgresAdminTarget } from '../broker/connection-issuers.js';
import type { BrokerStore } from '../broker/credential-broker.js';
import { PostgresRoleSweeper, type RoleSweepOutcome } from '../credentials/index.js';

export interface RoleJanitorOptions {
  kubeConfig: k8s.KubeConfig;
  operatorNamespace: string;
  store: Pick<BrokerStore, 'readSecret'>;
  registry: Registry;
  /** Sweep this often (default 10 s): the upper bound on how long a role outlives its TTL. */
  intervalMs?: number;
  /** Keep disabled roles this long before dropping them (default 1 h). */
  dropAfterMs?: number;
  /**
   * A role younger than this is not retired for a missing pod (default 10 s): pods are listed once
   * per sweep, so a pod created (and a role issued to it) after that list is not in it yet.
   */
  podGoneGraceMs?: number;
  onOutcome?: (connection: Connection, outcome: RoleSweepOutcome) => void;
  log?: Logger;
}

/**
 * Leader-only: retires the JIT PostgreSQL roles of every postgres Connection — disabled (and their
 * sessions ended) when their TTL has passed or their pod is gone, dropped later. It keeps no state:
 * roles carry their own mark, so a new leader picks up where the old one stopped.
 */
export class RoleJanitor {
  private readonly custom: k8s.CustomObjectsApi;
  private readonly core: k8s.CoreV1Api;
  private readonly actions: Counter<'action' | 'reason' | 'result'>;
  private readonly sweeps: Counter<'result'>;
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private stopped = true;

  constructor(private readonly opts: RoleJanitorOptions) {
    this.custom = opts.kubeConfig.makeApiClient(k8s.CustomObjectsApi);
    this.core = opts.kubeConfig.makeApiClient(k8s.CoreV1Api);
    this.actions = new Counter({
      name: 'chaperone_operator_jit_role_actions_total',
      help: 'JIT PostgreSQL roles disabled or dropped, by reason and result.',
      labelNames: ['action', 'reason', 'result'],
      registers: [opts.registry],
    });
    this.sweeps = new Counter({
      name: 'chaperone_operator_jit_role_sweeps_total',
      help: 'Sweeps of one Connection’s JIT roles, by result.',
      labelNames: ['result'],
      registers: [opts.registry],
    });
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    const tick = () => {
      if (this.stopped) return;
      this.running = this.sweepAll().finally(() => {
        if (!this.stopped) this.timer = setTimeout(tick, this.opts.intervalMs ?? 10_000);
      });
    };
    tick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  /** One pass over every postgres Connection; failures of one never stop the others. */
  async sweepAll(): Promise<void> {
    let connections: Connection[];
    let liveUids: Set<string>;
    try {
      const list = (await this.custom.listClusterCustomObject({
        group: API_GROUP,
        version: API_VERSION,
        plural: PLURALS.Connection,
      })) as { items: Connection[] };
      connections = list.items.filter((c) => c.spec.type === 'postgres');
      const pods = await this.core.listPodForAllNamespaces({});
      // A pod that is being deleted has no business holding a database login any more.
      liveUids = new Set(
        pods.items.filter((p) => !p.metadata?.deletionTimestamp).map((p) => p.metadata?.uid ?? ''),
      );
    } catch (err) {
      this.opts.log?.('warn', 'JIT role sweep: cannot list Connections or pods', {
        error: (err as Error).message,
      });
      this.sweeps.inc({ result: 'error' });
      return;
    }
    for (const connection of connections) {
      const id = `${connection.metadata.namespace}/${connection.metadata.name}`;
      try {
        const sweeper = new PostgresRoleSweeper({
          target: await postgresAdminTarget(this.opts, connection),
          admin: await postgresAdminLogin(this.opts, connection, 'cleanup'),
          connections: (c) => c === id,
        });
        const report = await sweeper.sweep({
          livePodUids: liveUids,
          dropAfterMs: this.opts.dropAfterMs ?? 3_600_000,
          podGoneGraceMs: this.opts.podGoneGraceMs ?? 10_000,
        });
        for (const outcome of report.outcomes) {
          if (outcome.skipped) continue;
          this.actions.inc({
            action: outcome.action,
            reason: outcome.reason,
            result: outcome.ok ? 'ok' : 'error',
          });
          this.opts.log?.(outcome.ok ? 'info' : 'warn', `JIT role ${outcome.action}`, {
            connection: id,
            role: outcome.role,
            pod: outcome.pod,
            reason: outcome.reason,
            terminatedSessions: outcome.terminatedSessions,
            ...(outcome.error ? { error: outcome.error } : {}),
          });
          this.opts.onOutcome?.(connection, outcome);
        }
        this.sweeps.inc({ result: 'ok' });
      } catch (err) {
        this.sweeps.inc({ result: 'error' });
        this.opts.log?.('warn', 'JIT role sweep failed', { connection: id, error: (err as Error).message });
      }
    }
  }
}
