#!/usr/bin/env node
import { buildCollector } from './app.js';
import {
  type MigrateOptions,
  parseCliArgs,
  type ServeOptions,
  USAGE,
  UsageError,
  type VerifyOptions,
} from './cli-options.js';
import { describeRetention } from './retention/retention-policy.js';
import { latestVersion } from './store/migrations/migration.js';
import { POSTGRES_MIGRATIONS } from './store/migrations/postgres-migrations.js';
import { SQLITE_MIGRATIONS } from './store/migrations/sqlite-migrations.js';
import { describeStoreLocation, openStore, parseStoreLocation } from './store/open-store.js';
import { describeVerification, verifyRange, verifySession } from './verify/chain.js';

/** The tool could not do its job (exit 2) — distinct from a verdict about the chains. */
class AccessError extends Error {}

async function serve(o: ServeOptions): Promise<void> {
  let kubeConfig: import('@kubernetes/client-node').KubeConfig | undefined;
  if (o.kubeTokenReview) {
    // Loaded only when needed: the client takes about a second to import, which every
    // `verify` run would otherwise pay.
    const k8s = await import('@kubernetes/client-node');
    kubeConfig = new k8s.KubeConfig();
    if (o.kubeconfig) kubeConfig.loadFromFile(o.kubeconfig);
    else kubeConfig.loadFromDefault();
  }
  const collector = await buildCollector({
    db: o.db,
    ingestTokenFile: o.ingestTokenFile,
    tokenReview: kubeConfig ? { kubeConfig, audience: o.tokenAudience } : undefined,
    auditorTokenFile: o.auditorTokenFile,
    oidc: o.oidc ? [o.oidc] : undefined,
    auditorGroups: o.auditorGroups,
    retention: o.retention,
    retentionIntervalMs: o.retentionIntervalMs,
    maxBodyBytes: o.maxBodyBytes,
    maxBatchEvents: o.maxBatchEvents,
    abandonedAfterMs: o.abandonedAfterMs,
    logger: { level: o.logLevel },
  });
  const { app } = collector;
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      app.log.warn({ signal }, 'second signal: exiting without waiting');
      process.exit(1);
    }
    stopping = true;
    app.log.info({ signal }, 'shutting down: no new requests, finishing in-flight batches');
    const force = setTimeout(() => {
      app.log.error('in-flight requests did not finish within 30 s; exiting');
      process.exit(1);
    }, 30_000);
    force.unref();
    collector.close().then(
      () => {
        app.log.info('stopped');
        process.exit(0);
      },
      (err: Error) => {
        app.log.error({ err: err.message }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  const address = await app.listen({ host: o.host, port: o.port });
  app.log.info(
    {
      address,
      store: describeStoreLocation(parseStoreLocation(o.db)),
      ingestAuth: [o.ingestTokenFile && 'token-file', o.kubeTokenReview && 'token-review'].filter(Boolean),
      auditorAuth: [o.auditorTokenFile && 'dev-token', o.oidc && `oidc ${o.oidc.issuer}`].filter(Boolean),
      retention: o.retention ? describeRetention(o.retention) : 'keep forever',
    },
    'collector listening',
  );
}

/** Exit code 0: every chain verifies; 1: something is broken. */
async function verify(o: VerifyOptions): Promise<number> {
  const location = parseStoreLocation(o.db);
  let store: ReturnType<typeof openStore>;
  try {
    store = openStore(location, { mustExist: true });
  } catch (err) {
    throw new AccessError(`cannot open ${describeStoreLocation(location)}: ${(err as Error).message}`);
  }
  try {
    const known = latestVersion(location.kind === 'sqlite' ? SQLITE_MIGRATIONS : POSTGRES_MIGRATIONS);
    const version = await store.schemaVersion();
    // Verification reads; it never changes the schema of the database it is auditing.
    if (version !== known) {
      throw new AccessError(
        `${describeStoreLocation(location)} has schema version ${version}, this tool reads ${known}${version < known ? ' (run `chaperone-collector migrate` or start the collector first)' : ''}`,
      );
    }
    if (o.session) {
      if (!(await store.getSession(o.session)))
        throw new AccessError(`no session ${o.session} in ${describeStoreLocation(location)}`);
      const v = await verifySession(store, o.session);
      if (o.json) process.stdout.write(`${JSON.stringify(v, null, 2)}\n`);
      else
        process.stdout.write(
          `${describeVerification(v, { abandonedAfterMs: o.abandonedAfterMs }).join('\n')}\n`,
        );
      return v.ok ? 0 : 1;
    }
    const report = await verifyRange(store, { from: o.from, to: o.to, abandonedAfterMs: o.abandonedAfterMs });
    if (o.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    else {
      const liveness = { abandonedAfterMs: o.abandonedAfterMs };
      for (const b of report.broken)
        process.stdout.write(`${describeVerification(b, liveness).join('\n')}\n`);
      if (report.abandoned.length > 0)
        process.stdout.write(
          `${report.abandoned.length} session(s) abandoned (no session.end and no event for longer than --abandoned-after; their sidecar most likely died): ${report.abandoned.join(', ')}\n`,
        );
      const scope =
        o.from || o.to ? ` active between ${report.from ?? 'the beginning'} and ${report.to ?? 'now'}` : '';
      process.stdout.write(
        `verified ${report.sessionsChecked} sessions${scope}, ${report.eventsChecked} events: ${report.ok ? 'every chain is intact' : `${report.broken.length} broken`}\n`,
      );
    }
    return report.ok ? 0 : 1;
  } finally {
    await store.close();
  }
}

async function migrate(o: MigrateOptions): Promise<number> {
  const location = parseStoreLocation(o.db);
  const store = openStore(location);
  try {
    const r = await store.migrate();
    process.stdout.write(
      `${describeStoreLocation(location)}: schema version ${r.version}${r.applied.length ? ` (applied ${r.applied.join(', ')})` : ' (already current)'}\n`,
    );
    return 0;
  } finally {
    await store.close();
  }
}

async function main(argv: string[]): Promise<number | undefined> {
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return argv.length === 0 ? 2 : 0;
  }
  const options = parseCliArgs(argv);
  switch (options.command) {
    case 'serve':
      await serve(options);
      return undefined; // keeps running until a signal
    case 'verify':
      return verify(options);
    case 'migrate':
      return migrate(options);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code !== undefined) process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof UsageError) {
      process.stderr.write(`chaperone-collector: ${err.message}\n\n${USAGE}\n`);
    } else {
      process.stderr.write(`chaperone-collector: ${err instanceof Error ? err.message : String(err)}\n`);
    }
    process.exitCode = 2;
  },
);
