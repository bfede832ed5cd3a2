// The delivery functions between two loopback HTTP servers: an "upstream" that answers with what
// the API server never sends to the gateway (gzip despite identity, other encodings, non-JSON,
// bombs) and a front server that delivers it with the function under test.

import { createServer, get, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type DeliveryLimits,
  deliverRaw,
  deliverRedactedBody,
  deliverRedactedWatch,
  InspectionRefused,
} from './response-delivery.js';
import { REDACTED_DATA } from './secret-redaction.js';

const SECRET = { kind: 'Secret', metadata: { name: 's' }, data: { p: 'aHVudGVyMg==' } };
const LIMITS: DeliveryLimits = { maxBodyBytes: 1024 * 1024, maxEventBytes: 64 * 1024 };
const servers: Server[] = [];

async function listen(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const s = createServer(handler);
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  return `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
}

afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

type Deliver = typeof deliverRedactedBody;

async function front(upstream: (res: ServerResponse) => void, deliver: Deliver) {
  const up = await listen((_req, res) => upstream(res));
  const outcome: { error?: unknown } = {};
  const url = await listen((_req, res) => {
    get(up, (upRes) => {
      deliver(upRes, res, LIMITS).catch((err: unknown) => {
        outcome.error = err;
        res.writeHead(502).end('refused');
      });
    });
  });
  return { url, outcome };
}

describe('deliverRedactedBody', () => {
  it('decodes gzip, redacts, and sends an uncompressed body with its length', async () => {
    const { url } = await front((res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
      res.end(gzipSync(JSON.stringify(SECRET)));
    }, deliverRedactedBody);
    const r = await fetch(url);
    expect(r.headers.get('content-encoding')).toBe(null);
    const body = (await r.json()) as { data: { p: string } };
    expect(body.data.p).toBe(REDACTED_DATA);
  });

  it.each([
    ['br encoding', { 'content-type': 'application/json', 'content-encoding': 'br' }, 'x'],
    ['protobuf', { 'content-type': 'application/vnd.kubernetes.protobuf' }, 'k8s\0'],
    ['yaml', { 'content-type': 'application/yaml' }, 'data:\n  p: aHVudGVyMg==\n'],
    ['invalid JSON', { 'content-type': 'application/json' }, '{"data":{"p":"aHVudGVyMg=="'],
    ['oversized', { 'content-type': 'application/json' }, `"${'x'.repeat(2 * 1024 * 1024)}"`],
    ['a gzip bomb', { 'content-type': 'application/json', 'content-encoding': 'gzip' }, 'BOMB'],
  ])('refuses %s without passing a byte through', async (_what, headers, body) => {
    const payload = body === 'BOMB' ? gzipSync(Buffer.alloc(16 * 1024 * 1024, 0x20)) : body;
    const { url, outcome } = await front((res) => {
      res.writeHead(200, headers);
      res.end(payload);
    }, deliverRedactedBody);
    const r = await fetch(url);
    expect(r.status).toBe(502);
    expect(await r.text()).toBe('refused');
    expect(outcome.error).toBeInstanceOf(InspectionRefused);
  });
});

describe('deliverRedactedWatch', () => {
  it('flushes each event as it arrives, events split across chunks', async () => {
    let sendSecond!: () => void;
    const { url } = await front((res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      const ev = JSON.stringify({ type: 'ADDED', object: SECRET });
      res.write(ev.slice(0, 10));
      res.write(`${ev.slice(10)}\n{"type":"MODI`);
      sendSecond = () => res.end(`FIED","object":${JSON.stringify(SECRET)}}\n`);
    }, deliverRedactedWatch);
    const r = await fetch(url);
    const reader = r.body!.getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    expect(first.trim().split('\n')).toHaveLength(1);
    expect(JSON.parse(first)).toMatchObject({ type: 'ADDED', object: { data: { p: REDACTED_DATA } } });
    sendSecond();
    let rest = '';
    for (let c = await reader.read(); !c.done; c = await reader.read())
      rest += new TextDecoder().decode(c.value);
    expect(JSON.parse(rest)).toMatchObject({ type: 'MODIFIED', object: { data: { p: REDACTED_DATA } } });
    expect(rest).not.toContain('aHVudGVy');
  });

  it('cuts the stream on an oversized or unparsable event instead of passing it', async () => {
    for (const bad of [
      `{"type":"ADDED","object":"${'x'.repeat(100 * 1024)}`,
      '{"type":"ADDED","object":{"data":{"p":"aHVudGVyMg=="}\n',
    ]) {
      const { url } = await front((res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write(`${JSON.stringify({ type: 'ADDED', object: SECRET })}\n`);
        res.end(bad);
      }, deliverRedactedWatch);
      const r = await fetch(url);
      const text = await r.text().catch(() => 'cut');
      expect(text).not.toContain('aHVudGVy');
    }
  });
});

describe('deliverRaw', () => {
  it('streams chunks as they come (logs -f)', async () => {
    let more!: () => void;
    const { url } = await front((res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('line 1\n');
      more = () => res.end('line 2\n');
    }, deliverRaw as Deliver);
    const r = await fetch(url);
    const reader = r.body!.getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toBe('line 1\n');
    more();
    expect(new TextDecoder().decode((await reader.read()).value)).toBe('line 2\n');
  });
});
