// Integration-test fixture: a real kube-apiserver (audited at Metadata level), the gateway in front
// of it with a ServiceAccount token, and the real kubectl pointed at the gateway with a kubeconfig
// that holds no credential.

import { type ChildProcess, spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import {
  type ControlPlane,
  type KubeAuditLog,
  kubeAuditLog,
  makeWorkDir,
  type RunResult,
  run,
  startControlPlane,
  type WorkDir,
  waitFor,
  writeCredentiallessKubeconfig,
} from '@chaperone/testkit';
import type { PolicyVerdict } from './access-review.js';
import type {
  KubeAgentIdentity,
  KubeDecision,
  KubeGatewayHooks,
  KubeRecordEvent,
  KubeRequestContext,
} from './hooks.js';
import { type KubeGateway, type KubeGatewayLimits, startKubeGateway } from './kube-gateway.js';
import type { KubeRequestAttributes } from './request-attributes.js';
import type { SecretIdentity } from './secret-redaction.js';

export type Decide = (ctx: KubeRequestContext, notify: (m: string) => void) => Promise<KubeDecision>;

export interface KubeFixture {
  readonly cp: ControlPlane;
  readonly audit: KubeAuditLog;
  readonly gateway: KubeGateway;
  readonly kubeconfig: string;
  /** The same gateway served over TLS (kubectl only sends a bearer token over TLS). */
  readonly tlsGateway: KubeGateway;
  readonly records: KubeRecordEvent[];
  /** Replaceable per test; allows everything by default. */
  decide: Decide;
  /** Replaceable per test; undefined: the gateway refuses bearer tokens. */
  verifyBearer?: (token: string) => Promise<KubeAgentIdentity>;
  /** Replaceable per test; undefined: access reviews pass through. */
  evaluate?: (attributes: KubeRequestAttributes) => Promise<PolicyVerdict>;
  /** Replaceable per test; undefined: every Secret is redacted. */
  revealSecret?: (secret: SecretIdentity) => boolean;
  /** The token the gateway sends upstream; replaceable (renewal). */
  token: string;
  /** A new TokenRequest token for a ServiceAccount in `default` (the gateway's by default). */
  mintToken(serviceAccount?: string): Promise<string>;
  /** kubectl through the gateway. */
  kubectl(args: string[], opts?: { input?: string; timeoutMs?: number; tls?: boolean }): Promise<RunResult>;
  /** A long-running kubectl through the gateway (watch, logs -f). */
  spawnKubectl(args: string[]): RunningKubectl;
  stop(): Promise<void>;
}

export interface RunningKubectl {
  readonly child: ChildProcess;
  stdout(): string;
  stderr(): string;
  waitForStdout(pattern: RegExp, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

export const GATEWAY_SA = 'chaperone-gateway';

export async function startKubeFixture(limits: Partial<KubeGatewayLimits> = {}): Promise<KubeFixture> {
  const audit = await kubeAuditLog();
  const cp = await startControlPlane({ installCrds: false, apiserverFlags: audit.flags });
  const work: WorkDir = await makeWorkDir('kube-gw');
  const admin = async (args: string[]) => {
    const r = await cp.kubectl(args);
    if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  await admin(['create', 'serviceaccount', GATEWAY_SA, '-n', 'default']);
  await admin([
    'create',
    'clusterrolebinding',
    GATEWAY_SA,
    '--clusterrole=cluster-admin',
    `--serviceaccount=default:${GATEWAY_SA}`,
  ]);
  const mintToken = async (sa = GATEWAY_SA) =>
    (await admin(['create', 'token', sa, '-n', 'default', '--duration=2h'])).trim();
  const token = await mintToken();
  const records: KubeRecordEvent[] = [];
  const fx = {} as KubeFixture;
  const hooks: KubeGatewayHooks = {
    decide: (ctx, notify) => fx.decide(ctx, notify),
    record: (e) => records.push(e),
    upstreamToken: async () => fx.token,
    revealSecret: (secret) => fx.revealSecret?.(secret) ?? false,
    evaluate: async (attributes) => (fx.evaluate ? fx.evaluate(attributes) : { allowed: true }),
    verifyBearer: (t) => {
      if (!fx.verifyBearer) return Promise.reject(new Error('no verifier'));
      return fx.verifyBearer(t);
    },
  };
  const gateway = await startKubeGateway({
    upstreamUrl: cp.server,
    upstreamCa: await readFile(cp.caCertPath),
    hooks,
    limits,
  });
  const serving = await cp.ca.issue('kube-gateway', {
    commonName: 'kube-gateway',
    altNames: ['IP:127.0.0.1'],
    usage: 'server',
  });
  const tlsGateway = await startKubeGateway({
    upstreamUrl: cp.server,
    upstreamCa: await readFile(cp.caCertPath),
    hooks,
    limits,
    tls: { cert: await readFile(serving.certPath), key: await readFile(serving.keyPath) },
  });
  const kubeconfig = await writeCredentiallessKubeconfig(work.file('agent.kubeconfig'), gateway.url);
  const tlsKubeconfig = await writeCredentiallessKubeconfig(
    work.file('agent-tls.kubeconfig'),
    tlsGateway.url,
    {
      caPath: cp.caCertPath,
    },
  );
  const baseArgs = ['--kubeconfig', kubeconfig, '--cache-dir', work.file('cache')];
  const children = new Set<RunningKubectl>();
  Object.assign(fx, {
    cp,
    audit,
    gateway,
    kubeconfig,
    records,
    token,
    mintToken,
    decide: async () => ({ action: 'allow', rule: 'test-allow' }) as KubeDecision,
    tlsGateway,
    kubectl: (args: string[], o: { input?: string; timeoutMs?: number; tls?: boolean } = {}) =>
      run(
        cp.kubectlPath,
        [
          ...(o.tls ? ['--kubeconfig', tlsKubeconfig, '--cache-dir', work.file('cache-tls')] : baseArgs),
          ...args,
        ],
        { input: o.input, timeoutMs: o.timeoutMs ?? 60_000 },
      ),
    spawnKubectl(args: string[]): RunningKubectl {
      const child = spawn(cp.kubectlPath, [...baseArgs, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
      });
      child.stderr.on('data', (d: Buffer) => {
        err += d.toString();
      });
      const running: RunningKubectl = {
        child,
        stdout: () => out,
        stderr: () => err,
        waitForStdout: async (pattern, timeoutMs = 20_000) => {
          await waitFor(
            `kubectl ${args.join(' ')} to print ${pattern} (stderr: ${err})`,
            async () => pattern.test(out),
            timeoutMs,
            50,
          );
        },
        stop: async () => {
          children.delete(running);
          if (child.exitCode === null && child.signalCode === null) {
            const exited = new Promise((r) => child.once('exit', r));
            child.kill('SIGTERM');
            await exited;
          }
        },
      };
      children.add(running);
      return running;
    },
    async stop() {
      for (const c of [...children]) await c.stop();
      await gateway.close();
      await tlsGateway.close();
      await cp.stop();
      await audit.remove();
      await work.remove();
    },
  });
  return fx;
}
