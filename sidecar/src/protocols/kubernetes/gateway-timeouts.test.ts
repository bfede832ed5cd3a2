// The gateway's slowloris bounds apply to receiving a request, never to waiting for its decision
// or for a long response: an approval may take minutes, a watch hours. The upstream is a stand-in
// HTTPS server on loopback (the real API server is covered by the *.int tests).

import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { createTestCa, makeWorkDir, type WorkDir } from '@chaperone/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type KubeGateway, startKubeGateway } from './kube-gateway.js';

let work: WorkDir;
let upstream: Server;
let gateway: KubeGateway;
const upstreamHits = 0;
let abandoned: Promise<void> | undefined;

beforeAll(async () => {
  work = await makeWorkDir('kube-gw-timeouts');
  const ca = await createTestCa(work.path);
  const cert = await ca.issue('upstream', {
    commonName: 'upstream',
    altNames: ['IP:127.0.0.1'],
    usage: 'server',
  });
  upstream = createServer(
    { cert: await readFile(cert.certPath), key: await readFile(cert.keyPath) },
    (req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      if (req.url?.startsWith('/slow')) {
        res.write('first\n');
        setTimeout(() => res.end('second\n'), 2_500);
      } else res.end('ok');
    },
  );
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
  gateway = await startKubeGateway({
    upstreamUrl: `https://127.0.0.1:${(upstream.address() as AddressInfo).port}`,
    upstreamCa: await readFile(ca.certPath),
    limits: { headersTimeoutMs: 1_000, requestTimeoutMs: 1_000 },
    hooks: {
      decide: async (ctx) => {
        if (ctx.attributes.path === '/approve') await new Promise((r) => setTimeout(r, 2_500));
        if (ctx.attributes.path === '/abandon') {
          abandoned = new Promise((r) => ctx.signal.addEventListener('abort', () => r()));
          await abandoned;
          return { action: 'allow' };
        }
        return { action: 'allow' };
      },
      record: () => {},
      upstreamToken: async () => 't',
    },
  });
});
afterAll(async () => {
  await gateway?.close();
  upstream?.closeAllConnections();
  await new Promise((r) => upstream?.close(r));
  await work?.remove();
});

describe('gateway timeouts', () => {
  it('a decision longer than the request timeout still completes', async () => {
    const r = await fetch(`${gateway.url}/approve`);
    expect(r.status).toBe(200);
    expect(await r.text()).toBe('ok');
  });

  it('a response slower than the request timeout streams to the end', async () => {
    const r = await fetch(`${gateway.url}/slow`);
    expect(await r.text()).toBe('first\nsecond\n');
  });

  it('an agent that goes away while waiting aborts the decision; nothing is forwarded', async () => {
    const before = upstreamHits;
    const ctl = new AbortController();
    const pending = fetch(`${gateway.url}/abandon`, { signal: ctl.signal }).catch(() => 'aborted');
    for (let i = 0; i < 50 && !abandoned; i++) await new Promise((r) => setTimeout(r, 20));
    ctl.abort();
    expect(await pending).toBe('aborted');
    await abandoned;
    await new Promise((r) => setTimeout(r, 100));
    expect(upstreamHits).toBe(before);
  });
});
