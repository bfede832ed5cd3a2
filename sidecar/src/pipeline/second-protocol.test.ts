import { createHash } from 'node:crypto';
import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';
import { type Connection, canonicalJson, type RecordingEvent } from '@chaperone/api';
import { afterEach, describe, expect, it } from 'vitest';
import { LocalApprovalGate } from '../approvals/local-approvals.js';
import type { CredentialOf, CredentialRequest, CredentialSource } from '../credentials/credential-source.js';
import type { Identity } from '../identity/identity.js';
import { compilePolicies } from '../policy/index.js';
import { policy } from '../policy/test-fixtures.js';
import { protocols } from '../protocols/index.js';
import type { GatewayContext, ProtocolModule, ProtocolRegistry, RunningGateway } from '../protocols/types.js';
import { type RecordingSink, SessionRecorder } from '../recording/session-recorder.js';
import { isRefusal } from './refusal.js';
import { SessionPipeline } from './session-pipeline.js';

// A second protocol built only from the registry contract and the pipeline, touching nothing in
// protocols/postgres: a line protocol where each line is an SSH-style exec command. It proves the
// shared path (admit → decide → approval → record → end) is protocol-neutral.

type StubView = { decide(command: string): ReturnType<ReturnType<typeof compilePolicies>['decide']> };

const SECRET = 'stub-token-never-recorded';

const stubProtocol: ProtocolModule<{ banner: string }, StubView> = {
  type: 'ssh',
  supported: true,
  prepare: async () => {},
  ready: () => true,
  targetOf: (conn) => ({ banner: `stub ${conn.metadata.name}` }),
  policyView: (conn, policies) => {
    const engine = compilePolicies(policies, conn);
    return (identity) => {
      const view = engine.forIdentity(identity);
      if ('refused' in view) return view;
      return { decide: (command) => view.decide({ type: 'ssh', operation: 'exec', command, risks: [] }) };
    };
  },
  async startGateway(served, ctx): Promise<RunningGateway> {
    let sessions = 0;
    let n = 0;
    const server: Server = createServer((sock) => {
      sessions++;
      sock.once('close', () => sessions--);
      void serveStubSession(sock, `stub-${++n}`, served.name, served.policyFor, ctx);
    });
    await new Promise<void>((r) => server.listen(served.listenPort, ctx.listenHost, r));
    return {
      get port() {
        const a = server.address();
        return typeof a === 'object' && a ? a.port : 0;
      },
      get activeSessions() {
        return sessions;
      },
      close: () => new Promise<void>((r) => server.close(() => r())),
    };
  },
};

/** The whole stub session: every refusal becomes "ERR <kind>: <message>" (its "native" error). */
async function serveStubSession(
  sock: Socket,
  id: string,
  connection: string,
  policyFor: (identity: Identity) => StubView | { refused: string },
  ctx: GatewayContext,
): Promise<void> {
  const pipeline = new SessionPipeline<StubView>(
    { connection, protocol: 'ssh', policyFor, ...ctx },
    id,
    ctx.podIdentity,
  );
  sock.once('close', () => pipeline.end('client disconnected'));
  const admitted = await pipeline.admit({ type: 'kubernetes' }, { client: 'test' });
  if (isRefusal(admitted)) {
    sock.end(`ERR ${admitted.kind}: ${admitted.message}\n`);
    return;
  }
  sock.write('READY\n');
  let buffered = '';
  let chain = Promise.resolve();
  sock.on('data', (chunk) => {
    buffered += chunk.toString();
    for (let i = buffered.indexOf('\n'); i >= 0; i = buffered.indexOf('\n')) {
      const line = buffered.slice(0, i);
      buffered = buffered.slice(i + 1);
      chain = chain.then(() => onCommand(sock, pipeline, admitted.view, line));
    }
  });
}

async function onCommand(sock: Socket, pipeline: SessionPipeline<StubView>, view: StubView, text: string) {
  pipeline.operations++;
  const d = view.decide(text);
  if (d.action === 'allow') {
    pipeline.record('command', { text, decision: 'allowed' }, `${d.policy}/${d.rule}`);
    sock.write(`OK ${text}\n`);
    return;
  }
  if (d.action === 'deny') {
    pipeline.record('command', { text, decision: 'denied', reason: d.reason }, d.rule);
    sock.write(`ERR denied: ${d.reason}\n`);
    return;
  }
  const rule = `${d.policy}/${d.rule}`;
  pipeline.record('command', { text, decision: 'pending', reason: d.reason }, rule);
  const result = await pipeline.awaitApproval(
    {
      policy: d.policy,
      rule,
      reason: d.reason,
      approvers: d.approvers,
      timeoutMs: d.timeoutMs,
      operation: { type: 'ssh', class: 'exec', text, fingerprint: text, riskReasons: [d.reason] },
    },
    (notice) => sock.write(`WAIT ${notice.request} ${notice.message}\n`),
    (onGone) => {
      sock.once('close', onGone);
      return () => sock.off('close', onGone);
    },
  );
  if (result === 'gone') return;
  sock.write(result === 'approved' ? `OK ${text}\n` : `ERR ${result.kind}: ${result.message}\n`);
}

// ------------------------------------------------------------------ harness

class MemorySink implements RecordingSink {
  readonly lines: string[] = [];
  write(_e: RecordingEvent, canonical: string): void {
    this.lines.push(canonical);
  }
  async flush(): Promise<void> {}
}

const conn: Connection = {
  apiVersion: 'chaperone.dev/v1alpha1',
  kind: 'Connection',
  metadata: { name: 'stub-box', namespace: 'shop' },
  spec: { type: 'ssh', endpoint: { host: '127.0.0.1', port: 22 }, listen: { port: 0 } },
} as Connection;

const policies = [
  policy('ops', {
    connections: { names: ['stub-box'] },
    rules: [
      { name: 'read', action: 'allow', ssh: { operations: ['exec'], commands: ['ls *'] } },
      { name: 'deploys', action: 'approve', ssh: { operations: ['exec'], commands: ['deploy *'] } },
    ],
    guardrails: [],
    approval: { approvers: { groups: ['ops'] }, timeout: '10s' },
  }),
];

function credentials(fail = false): CredentialSource {
  return {
    async credentialFor<R extends CredentialRequest>(_c: string, req: R): Promise<CredentialOf<R['type']>> {
      if (fail) throw new Error('issuer down');
      expect(req.type).toBe('kubernetes');
      return { type: 'kubernetes', token: SECRET, description: 'stub token' } as CredentialOf<R['type']>;
    },
  };
}

function lineClient(port: number) {
  const sock = tcpConnect(port, '127.0.0.1');
  const lines: string[] = [];
  let waiters: Array<() => void> = [];
  let buf = '';
  sock.on('data', (c) => {
    buf += c.toString();
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      lines.push(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
    for (const w of waiters) w();
    waiters = [];
  });
  const closed = new Promise<void>((r) => sock.once('close', () => r()));
  return {
    sock,
    closed,
    send: (l: string) => sock.write(`${l}\n`),
    async next(): Promise<string> {
      while (lines.length === 0) await new Promise<void>((r) => waiters.push(r));
      return lines.shift() as string;
    },
  };
}

const running: RunningGateway[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((g) => g.close()));
});

async function start(opts: { who?: Identity; failCredential?: boolean } = {}) {
  const registry: ProtocolRegistry = { ...protocols, ssh: stubProtocol };
  const sinks: MemorySink[] = [];
  const approvals = new LocalApprovalGate((name) => `approve ${name}`);
  const module = registry[conn.spec.type];
  const ctx: GatewayContext = {
    podIdentity: opts.who ?? { serviceAccount: { namespace: 'shop', name: 'agent' }, groups: [] },
    credentials: credentials(opts.failCredential),
    approvals,
    recorderFor: (sessionId, identity) => {
      const sink = new MemorySink();
      sinks.push(sink);
      return new SessionRecorder(sink, sessionId, 'stub-box', identity);
    },
    requireToken: false,
    tokenUser: 'oidc',
    maxMessageBytes: 1 << 20,
    hashKey: Buffer.alloc(32),
    listenHost: '127.0.0.1',
    maxConnections: 4,
    log: () => {},
  };
  const gw = await module.startGateway(
    {
      type: 'ssh',
      name: 'stub-box',
      listenPort: 0,
      target: module.targetOf(conn, undefined),
      policyFor: module.policyView(conn, policies),
    },
    ctx,
  );
  running.push(gw);
  return { gw, sinks, approvals };
}

const events = (sink: MemorySink | undefined) =>
  (sink?.lines ?? []).map((l) => JSON.parse(l) as RecordingEvent & { data: Record<string, unknown> });

describe('a second protocol on the registry and the pipeline', () => {
  it('admits, decides, waits for approval, records and ends through the shared pipeline', async () => {
    const { gw, sinks, approvals } = await start();
    const c = lineClient(gw.port);
    expect(await c.next()).toBe('READY');
    c.send('ls /srv');
    expect(await c.next()).toBe('OK ls /srv');
    c.send('rm -rf /srv');
    expect(await c.next()).toMatch(/^ERR denied: /);
    c.send('deploy web');
    const wait = await c.next();
    expect(wait).toMatch(/^WAIT (\S+) chaperone: waiting for approval of access request \1 \(/);
    const [pending] = approvals.list();
    expect(pending?.operation).toBe('deploy web');
    approvals.decide(pending?.name ?? '', 'approved', 'alice');
    expect(await c.next()).toBe('OK deploy web');
    c.send('deploy db');
    await c.next(); // WAIT
    approvals.decide(approvals.list()[0]?.name ?? '', 'denied', 'bob', 'not today');
    expect(await c.next()).toMatch(/^ERR approval-denied: access request \S+ was denied by bob: not today$/);
    c.sock.end();
    await c.closed;
    await expect.poll(() => events(sinks[0]).at(-1)?.type).toBe('session.end');

    const ev = events(sinks[0]);
    expect(ev.map((e) => [e.type, e.data.decision ?? e.data.verdict ?? ''])).toEqual([
      ['session.start', ''],
      ['credential.issued', ''],
      ['command', 'allowed'],
      ['command', 'denied'],
      ['command', 'pending'],
      ['approval.requested', ''],
      ['approval.decided', 'approved'],
      ['command', 'pending'],
      ['approval.requested', ''],
      ['approval.decided', 'denied'],
      ['session.end', ''],
    ]);
    expect(ev[0]?.data.protocol).toBe('ssh');
    expect(ev.at(-1)?.data).toMatchObject({ reason: 'client disconnected', statements: 4 });
    // A hash chain, and never the credential.
    ev.forEach((e, i) => {
      const prev =
        i === 0
          ? ''
          : createHash('sha256')
              .update(canonicalJson(ev[i - 1]))
              .digest('hex');
      expect(e.prevHash).toBe(prev);
    });
    expect(sinks[0]?.lines.join('\n')).not.toContain(SECRET);
  });

  it('refuses without a policy (nothing recorded) and without a credential (start and end recorded)', async () => {
    const stranger = await start({
      who: { serviceAccount: { namespace: 'shop', name: 'other' }, groups: [] },
    });
    const a = lineClient(stranger.gw.port);
    expect(await a.next()).toMatch(/^ERR no-policy: /);
    await a.closed;
    expect(stranger.sinks).toHaveLength(0);

    const broken = await start({ failCredential: true });
    const b = lineClient(broken.gw.port);
    expect(await b.next()).toBe('ERR no-credential: no credential for connection stub-box: issuer down');
    await b.closed;
    await expect
      .poll(() => events(broken.sinks[0]).map((e) => e.type))
      .toEqual(['session.start', 'session.end']);
  });

  it('reports an agent that leaves while waiting as gone, and withdraws its request', async () => {
    const { gw, sinks, approvals } = await start();
    const c = lineClient(gw.port);
    await c.next();
    c.send('deploy api');
    await c.next(); // WAIT
    expect(approvals.list()).toHaveLength(1);
    c.sock.destroy();
    await expect.poll(() => approvals.list()).toHaveLength(0);
    await expect.poll(() => events(sinks[0]).at(-1)?.type).toBe('session.end');
    expect(events(sinks[0]).filter((e) => e.type === 'approval.decided')).toEqual([]);
  });

  it('serves every Connection type: no protocol is left unbuilt', () => {
    expect(protocols.ssh.supported).toBe(true);
    expect(protocols.kubernetes.supported).toBe(true);
  });
});
