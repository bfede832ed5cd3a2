// The exec relay's data path. A real exec stream needs a kubelet (the local cluster's e2e tier),
// so here the upstream is a stand-in WebSocket server on loopback TLS that speaks the channel
// protocol: it echoes stdin (channel 0) to stdout (1), reports the resize (4) on stderr (2), and on
// the v5 CLOSE of stdin answers exit code 3 on the error channel as the kubelet does.

import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { createTestCa, makeWorkDir, type WorkDir } from '@chaperone/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { exitCodeOf } from './exec-websocket.js';
import type { KubeDecision, KubeRecordEvent } from './hooks.js';
import { type KubeGateway, startKubeGateway } from './kube-gateway.js';

let work: WorkDir;
let upstream: Server;
let gateway: KubeGateway;
const records: KubeRecordEvent[] = [];
const upstreamAuth: string[] = [];
let decide: (notify: (m: string) => void) => Promise<KubeDecision> = async () => ({
  action: 'allow',
  rule: 'r',
});

const frame = (channel: number, data: string | Buffer) =>
  Buffer.concat([Buffer.from([channel]), Buffer.from(data)]);

beforeAll(async () => {
  work = await makeWorkDir('exec-ws');
  const ca = await createTestCa(work.path);
  const cert = await ca.issue('upstream', {
    commonName: 'upstream',
    altNames: ['IP:127.0.0.1'],
    usage: 'server',
  });
  upstream = createServer({ cert: await readFile(cert.certPath), key: await readFile(cert.keyPath) });
  const wss = new WebSocketServer({
    server: upstream,
    handleProtocols: (p) => (p.has('v5.channel.k8s.io') ? 'v5.channel.k8s.io' : false),
  });
  wss.on('connection', (ws, req) => {
    upstreamAuth.push(String(req.headers.authorization));
    ws.on('message', (data: Buffer) => {
      if (data[0] === 0) ws.send(frame(1, data.subarray(1)));
      else if (data[0] === 4) ws.send(frame(2, `resize ${data.subarray(1).toString()}`));
      else if (data[0] === 255 && data[1] === 0) {
        const status = {
          status: 'Failure',
          reason: 'NonZeroExitCode',
          details: { causes: [{ reason: 'ExitCode', message: '3' }] },
        };
        ws.send(frame(3, JSON.stringify(status)));
        ws.close(1000);
      }
    });
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
  gateway = await startKubeGateway({
    upstreamUrl: `https://127.0.0.1:${(upstream.address() as AddressInfo).port}`,
    upstreamCa: await readFile(ca.certPath),
    hooks: {
      decide: (_ctx, notify) => decide(notify),
      record: (e) => records.push(e),
      upstreamToken: async () => 'gateway-token',
      verifyBearer: async (t) => {
        if (t !== 'agent-oidc-token') throw new Error('bad token');
        return { user: 'alice', groups: ['ops'] };
      },
    },
  });
});
afterAll(async () => {
  await gateway?.close();
  upstream?.closeAllConnections();
  await new Promise((r) => upstream?.close(r));
  await work?.remove();
});

function execClient(query = 'command=sh&command=-c&command=cat&stdin=true&stdout=true&tty=false') {
  const ws = new WebSocket(
    `ws://127.0.0.1:${gateway.port}/api/v1/namespaces/n/pods/p/exec?${query}`,
    ['v5.channel.k8s.io'],
    { headers: { authorization: 'Bearer agent-oidc-token' } },
  );
  const got: Buffer[] = [];
  ws.on('message', (d: Buffer) => got.push(d));
  const closed = new Promise<void>((r) => ws.on('close', () => r()));
  const opened = new Promise<void>((r, j) => {
    ws.on('open', () => r());
    ws.on('error', j);
  });
  return { ws, got, closed, opened };
}

describe('exec over WebSocket', () => {
  it('relays stdin, stdout, resize and the exit code; frames sent during the decision are kept', async () => {
    let release!: () => void;
    decide = (notify) =>
      new Promise((r) => {
        notify('chaperone: waiting for approval (AccessRequest ar-1)');
        release = () => r({ action: 'allow', rule: 'exec-ok' });
      });
    const verifyAbsent = records.length;
    const c = execClient();
    await c.opened;
    expect(c.ws.protocol).toBe('v5.channel.k8s.io');
    c.ws.send(frame(0, 'early '));
    await new Promise((r) => setTimeout(r, 100));
    release();
    c.ws.send(frame(0, 'hello'));
    c.ws.send(frame(4, '{"Width":80,"Height":24}'));
    await new Promise((r) => setTimeout(r, 200));
    c.ws.send(Buffer.from([255, 0]));
    await c.closed;
    const byChannel = (ch: number) =>
      Buffer.concat(c.got.filter((f) => f[0] === ch).map((f) => f.subarray(1))).toString();
    expect(byChannel(1)).toBe('early hello');
    expect(byChannel(2)).toBe(
      'chaperone: waiting for approval (AccessRequest ar-1)\nresize {"Width":80,"Height":24}',
    );
    expect(exitCodeOf(c.got.find((f) => f[0] === 3)!)).toBe(3);
    expect(upstreamAuth.at(-1)).toBe('Bearer gateway-token');
    await new Promise((r) => setTimeout(r, 50));
    const rec = records.slice(verifyAbsent).find((e) => e.exec);
    expect(rec).toMatchObject({
      decision: 'allow',
      rule: 'exec-ok',
      identity: { user: 'alice', groups: ['ops'] },
      status: 101,
      exec: { command: ['sh', '-c', 'cat'], tty: false, stdinBytes: 11, stdoutBytes: 11, exitCode: 3 },
    });
  });

  it('a denial arrives as a Status on the error channel; nothing is dialled upstream', async () => {
    decide = async () => ({ action: 'deny', rule: 'no-exec', reason: 'not today' });
    const dialled = upstreamAuth.length;
    const c = execClient();
    await c.closed;
    const status = JSON.parse(c.got[0]!.subarray(1).toString()) as { code: number; message: string };
    expect(c.got[0]![0]).toBe(3);
    expect(status).toMatchObject({ code: 403 });
    expect(status.message).toContain('denied by rule "no-exec": not today');
    expect(upstreamAuth.length).toBe(dialled);
  });

  it('impersonation on an exec upgrade is refused the same way', async () => {
    decide = async () => ({ action: 'allow' });
    const ws = new WebSocket(
      `ws://127.0.0.1:${gateway.port}/api/v1/namespaces/n/pods/p/exec?command=id`,
      ['v5.channel.k8s.io'],
      {
        headers: { 'impersonate-user': 'system:admin' },
      },
    );
    const got: Buffer[] = [];
    ws.on('message', (d: Buffer) => got.push(d));
    await new Promise((r) => ws.on('close', r));
    expect(JSON.parse(got[0]!.subarray(1).toString())).toMatchObject({ code: 403 });
  });
});
