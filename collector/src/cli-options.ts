import { parseArgs } from 'node:util';
import type { OidcIssuerConfig } from '@chaperone/api';
import { parseDuration, parseRetention } from './retention/retention-policy.js';
import type { RetentionPolicy } from './store/event-store.js';
import { parseStoreLocation } from './store/open-store.js';

export const USAGE = `Usage:
  chaperone-collector serve --db sqlite:PATH|postgres://… [options]   (or $CHAPERONE_COLLECTOR_DB)
  chaperone-collector verify --db … [--session ID | --from TIME --to TIME] [--abandoned-after DUR] [--json]
  chaperone-collector migrate --db …

serve options:
  --host ADDR                 listen address (default 127.0.0.1; 0.0.0.0 in a pod)
  --port N                    default 8080
  --ingest-token-file F       standalone sidecar authentication (shared bearer token)
  --kube-token-review         in-cluster sidecar authentication: ServiceAccount tokens for audience
                              chaperone-collector, checked with TokenReview
  --kubeconfig F              for TokenReview (default: in-cluster config or $KUBECONFIG)
  --token-audience A          default chaperone-collector
  --auditor-token-file F      standalone/dev auditor token
  --oidc-issuer URL --oidc-audience A [--oidc-groups-claim C] [--oidc-username-claim C]
  --auditor-group G           repeatable or comma-separated; OIDC auditors need one of them
  --retention SPEC            e.g. orders-db=30d,*=90d (age of a session's last event)
  --retention-interval DUR    default 1h
  --abandoned-after DUR       a session without session.end and without an event for this long is
                              shown as abandoned (its sidecar most likely died); default 1h
  --max-body-bytes N          default 8388608
  --max-batch-events N        default 1000
  --log-level LEVEL           default info

verify exits 0 when every chain verifies, 1 when one is broken, 2 on usage or access errors.`;

export class UsageError extends Error {}

export interface ServeOptions {
  command: 'serve';
  db: string;
  host: string;
  port: number;
  ingestTokenFile?: string;
  kubeTokenReview: boolean;
  kubeconfig?: string;
  tokenAudience: string;
  auditorTokenFile?: string;
  oidc?: OidcIssuerConfig;
  auditorGroups: string[];
  retention?: RetentionPolicy;
  retentionIntervalMs: number;
  abandonedAfterMs: number;
  maxBodyBytes: number;
  maxBatchEvents: number;
  logLevel: string;
}

export interface VerifyOptions {
  command: 'verify';
  db: string;
  session?: string;
  from?: Date;
  to?: Date;
  abandonedAfterMs: number;
  json: boolean;
}

export interface MigrateOptions {
  command: 'migrate';
  db: string;
}

export type CliOptions = ServeOptions | VerifyOptions | MigrateOptions;

function positiveInt(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n <= 0)
    throw new UsageError(`--${name} must be a positive integer, got ${text}`);
  return n;
}

function time(name: string, text: string | undefined): Date | undefined {
  if (text === undefined) return undefined;
  const ms = Date.parse(/^\d{4}-\d{2}-\d{2}$/.test(text) ? `${text}T00:00:00Z` : text);
  if (!Number.isFinite(ms)) throw new UsageError(`--${name}: not a date or ISO 8601 time: ${text}`);
  return new Date(ms);
}

/** Env fallback for --db, so a PostgreSQL URL with its password can come from a Secret, not argv. */
export const DB_ENV = 'CHAPERONE_COLLECTOR_DB';

function requireDb(flag: string | undefined): string {
  const db = flag ?? process.env[DB_ENV];
  if (!db) throw new UsageError(`--db is required (sqlite:PATH or a postgres:// URL), or set ${DB_ENV}`);
  try {
    parseStoreLocation(db);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  return db;
}

export function parseCliArgs(argv: readonly string[]): CliOptions {
  const [command, ...rest] = argv;
  const wrap = <T>(fn: () => T): T => {
    try {
      return fn();
    } catch (err) {
      throw err instanceof UsageError ? err : new UsageError((err as Error).message);
    }
  };
  if (command === 'serve') {
    const { values: v } = wrap(() =>
      parseArgs({
        args: [...rest],
        strict: true,
        options: {
          db: { type: 'string' },
          host: { type: 'string', default: '127.0.0.1' },
          port: { type: 'string', default: '8080' },
          'ingest-token-file': { type: 'string' },
          'kube-token-review': { type: 'boolean', default: false },
          kubeconfig: { type: 'string' },
          'token-audience': { type: 'string', default: 'chaperone-collector' },
          'auditor-token-file': { type: 'string' },
          'oidc-issuer': { type: 'string' },
          'oidc-audience': { type: 'string' },
          'oidc-groups-claim': { type: 'string' },
          'oidc-username-claim': { type: 'string' },
          'auditor-group': { type: 'string', multiple: true, default: [] },
          retention: { type: 'string' },
          'retention-interval': { type: 'string', default: '1h' },
          'abandoned-after': { type: 'string', default: '1h' },
          'max-body-bytes': { type: 'string' },
          'max-batch-events': { type: 'string' },
          'log-level': { type: 'string', default: 'info' },
        },
      }),
    );
    const port = Number(v.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535)
      throw new UsageError(`--port must be 0-65535, got ${v.port}`);
    if (!v['ingest-token-file'] && !v['kube-token-review']) {
      throw new UsageError(
        'sidecars must authenticate: give --ingest-token-file, --kube-token-review, or both',
      );
    }
    if (Boolean(v['oidc-issuer']) !== Boolean(v['oidc-audience'])) {
      throw new UsageError('--oidc-issuer and --oidc-audience go together');
    }
    const auditorGroups = v['auditor-group']
      .flatMap((g) => g.split(','))
      .map((g) => g.trim())
      .filter(Boolean);
    if (v['oidc-issuer'] && !auditorGroups.length) {
      throw new UsageError('--oidc-issuer needs --auditor-group: which OIDC group may audit?');
    }
    return {
      command,
      db: requireDb(v.db),
      host: v.host,
      port,
      ingestTokenFile: v['ingest-token-file'],
      kubeTokenReview: v['kube-token-review'],
      kubeconfig: v.kubeconfig,
      tokenAudience: v['token-audience'],
      auditorTokenFile: v['auditor-token-file'],
      ...(v['oidc-issuer'] && v['oidc-audience']
        ? {
            oidc: {
              issuer: v['oidc-issuer'],
              audience: v['oidc-audience'],
              ...(v['oidc-groups-claim'] ? { groupsClaim: v['oidc-groups-claim'] } : {}),
              ...(v['oidc-username-claim'] ? { usernameClaim: v['oidc-username-claim'] } : {}),
            },
          }
        : {}),
      auditorGroups,
      retention: v.retention ? wrap(() => parseRetention(v.retention!)) : undefined,
      retentionIntervalMs: wrap(() => parseDuration(v['retention-interval'])),
      abandonedAfterMs: wrap(() => parseDuration(v['abandoned-after'])),
      maxBodyBytes: positiveInt('max-body-bytes', v['max-body-bytes'], 8 * 1024 * 1024),
      maxBatchEvents: positiveInt('max-batch-events', v['max-batch-events'], 1000),
      logLevel: v['log-level'],
    };
  }
  if (command === 'verify') {
    const { values: v } = wrap(() =>
      parseArgs({
        args: [...rest],
        strict: true,
        options: {
          db: { type: 'string' },
          session: { type: 'string' },
          from: { type: 'string' },
          to: { type: 'string' },
          'abandoned-after': { type: 'string', default: '1h' },
          json: { type: 'boolean', default: false },
        },
      }),
    );
    if (v.session && (v.from || v.to)) throw new UsageError('give --session or --from/--to, not both');
    return {
      command,
      db: requireDb(v.db),
      session: v.session,
      from: time('from', v.from),
      to: time('to', v.to),
      abandonedAfterMs: wrap(() => parseDuration(v['abandoned-after'])),
      json: v.json,
    };
  }
  if (command === 'migrate') {
    const { values: v } = wrap(() =>
      parseArgs({ args: [...rest], strict: true, options: { db: { type: 'string' } } }),
    );
    return { command, db: requireDb(v.db) };
  }
  throw new UsageError(command ? `unknown command ${command}` : 'no command given');
}
