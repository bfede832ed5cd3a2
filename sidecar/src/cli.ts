#!/usr/bin/env -S node --liftoff-only
// chaperone-sidecar — the per-pod gateway.
//   chaperone-sidecar --broker URL [options]            in a pod: everything from the operator's broker
//   chaperone-sidecar --standalone DIR [options]        serve the Connections defined in DIR
//   chaperone-sidecar approvals list|approve|deny NAME  decide paused operations (standalone)
import { readFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runInCluster } from './modes/in-cluster.js';
import { jsonLog, runStandalone } from './modes/standalone.js';

const USAGE = `usage:
  chaperone-sidecar --broker URL --token-file FILE [--broker-ca-file FILE]   (CA also from $CHAPERONE_BROKER_CA)
                    [--collector URL --collector-token-file FILE] [--spool DIR] [--recordings DIR]
                    [--admin-port 15020] [--admin-address 0.0.0.0] [--agent-config-dir DIR]
                    [--oidc-issuer URL --oidc-audience ID [--oidc-required] [--oidc-token-user oidc]]
  chaperone-sidecar --standalone DIR [--service-account NS/NAME] [--connections a,b]
                    [--recordings DIR | --collector URL --collector-token-file FILE [--spool DIR]]
                    [--admin-port 15020] [--tls-cert FILE --tls-key FILE]
                    [--oidc-issuer URL --oidc-audience ID [--oidc-required] [--oidc-token-user oidc]]
  chaperone-sidecar approvals list [--admin URL]
  chaperone-sidecar approvals approve|deny NAME [--reason TEXT] [--admin URL]`;

const DEFAULT_ADMIN_PORT = 15020;

/**
 * The SQL parser is a large WebAssembly module. V8's optimizing tier recompiles it in the
 * background after first use, which briefly takes ~600 MB — enough to get a sidecar with a memory
 * limit OOM-killed. Baseline (Liftoff) code is ~1.5x slower to parse but keeps RSS flat. It is a
 * command-line flag only (setting it at run time is too late), hence the shebang and this check.
 */
const NODE_FLAGS = ['--liftoff-only'];

async function approvalsCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { admin: { type: 'string' }, reason: { type: 'string' }, by: { type: 'string' } },
  });
  const admin = (
    values.admin ??
    process.env.CHAPERONE_ADMIN_URL ??
    `http://127.0.0.1:${DEFAULT_ADMIN_PORT}`
  ).replace(/\/$/, '');
  const [verb, name] = positionals;
  try {
    if (verb === 'list') {
      const res = await fetch(`${admin}/approvals`);
      const body = (await res.json()) as { items: Array<Record<string, string | string[]>> };
      if (!body.items.length) console.log('No pending access requests.');
      for (const r of body.items) {
        console.log(
          `${r.name}\t${r.connection}\t${r.requester}\t${r.rule}\texpires ${r.expiresAt}\n  ${r.operation}\n  ${(r.reasons as string[]).join('; ')}`,
        );
      }
      return 0;
    }
    if ((verb === 'approve' || verb === 'deny') && name) {
      const res = await fetch(`${admin}/approvals/${encodeURIComponent(name)}/${verb}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ by: values.by ?? userInfo().username, comment: values.reason }),
      });
      const body = (await res.json()) as { error?: string; verdict?: string };
      if (!res.ok) {
        console.error(`error: ${body.error}`);
        return 1;
      }
      console.log(`accessrequest ${name} ${body.verdict?.toLowerCase()}`);
      return 0;
    }
  } catch (err) {
    console.error(`error: cannot reach the sidecar admin endpoint at ${admin}: ${(err as Error).message}`);
    return 1;
  }
  console.error(USAGE);
  return 2;
}

async function main(argv: string[]): Promise<number> {
  if (argv[0] === 'approvals') return approvalsCommand(argv.slice(1));
  const { values } = parseArgs({
    args: argv,
    options: {
      standalone: { type: 'string' },
      'service-account': { type: 'string' },
      connections: { type: 'string' },
      recordings: { type: 'string' },
      'admin-port': { type: 'string' },
      'oidc-issuer': { type: 'string' },
      'oidc-audience': { type: 'string' },
      'oidc-required': { type: 'boolean' },
      'oidc-token-user': { type: 'string' },
      'tls-cert': { type: 'string' },
      collector: { type: 'string' },
      'collector-token-file': { type: 'string' },
      spool: { type: 'string' },
      'tls-key': { type: 'string' },
      broker: { type: 'string' },
      'broker-ca-file': { type: 'string' },
      'token-file': { type: 'string' },
      'agent-config-dir': { type: 'string' },
      'admin-address': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help || (!values.standalone && !values.broker)) {
    console.error(USAGE);
    return values.help ? 0 : 2;
  }
  const missing = NODE_FLAGS.filter((f) => !process.execArgv.includes(f));
  if (missing.length) {
    jsonLog(
      'warn',
      `node was started without ${missing.join(' ')}: expect a transient memory spike of ~600 MB after the first SQL statement`,
    );
  }
  const oidc = values['oidc-issuer']
    ? {
        issuers: [{ issuer: values['oidc-issuer'], audience: values['oidc-audience'] ?? 'chaperone' }],
        require: values['oidc-required'] ?? false,
        tokenUser: values['oidc-token-user'] ?? 'oidc',
      }
    : undefined;
  const started = performance.now();
  let sidecar: { admin: { port: number }; stop(): Promise<void> };
  if (values.broker) {
    const caPem = values['broker-ca-file']
      ? await readFile(values['broker-ca-file'], 'utf8')
      : process.env.CHAPERONE_BROKER_CA;
    if (!caPem) {
      console.error('the broker CA is missing: pass --broker-ca-file FILE or set CHAPERONE_BROKER_CA (PEM)');
      return 2;
    }
    if (!values['token-file']) {
      console.error('--token-file is required with --broker (the projected ServiceAccount token)');
      return 2;
    }
    sidecar = await runInCluster({
      brokerUrl: values.broker,
      brokerCaPem: caPem,
      tokenFile: values['token-file'],
      collectorUrl: values.collector,
      collectorTokenFile: values['collector-token-file'],
      spoolDir: values.spool ?? 'spool',
      // In a pod the root filesystem is read-only: without a collector, record into the spool volume.
      recordingsDir: values.recordings ?? join(values.spool ?? 'spool', 'recordings'),
      adminPort: Number(values['admin-port'] ?? DEFAULT_ADMIN_PORT),
      agentConfigDir: values['agent-config-dir'],
      adminHost: values['admin-address'],
      oidc,
    });
  } else {
    const [ns, name] = (
      values['service-account'] ??
      process.env.CHAPERONE_SERVICE_ACCOUNT ??
      'default/standalone-agent'
    ).split('/');
    if (!ns || !name) {
      console.error('--service-account must be NAMESPACE/NAME');
      return 2;
    }
    sidecar = await runStandalone({
      configDir: values.standalone as string, // checked above: --broker or --standalone
      serviceAccount: { namespace: ns, name },
      connections: values.connections?.split(',').filter(Boolean),
      recordingsDir: values.recordings ?? 'recordings',
      adminPort: Number(values['admin-port'] ?? DEFAULT_ADMIN_PORT),
      collector: values.collector
        ? {
            url: values.collector,
            tokenFile: values['collector-token-file'] ?? '/var/run/secrets/chaperone/collector-token',
            spoolDir: values.spool ?? 'spool',
          }
        : undefined,
      clientTls:
        values['tls-cert'] && values['tls-key']
          ? {
              cert: await readFile(values['tls-cert'], 'utf8'),
              key: await readFile(values['tls-key'], 'utf8'),
            }
          : undefined,
      oidc,
    });
  }
  jsonLog('info', 'ready', {
    ms: Math.round(performance.now() - started),
    admin: `http://127.0.0.1:${sidecar.admin.port}`,
  });
  const shutdown = async (signal: string) => {
    jsonLog('info', 'shutting down', { signal });
    await sidecar.stop();
    process.exit(0);
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));
  return -1; // keep running
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (err: Error) => {
    jsonLog('error', err.message);
    process.exit(1);
  },
);
