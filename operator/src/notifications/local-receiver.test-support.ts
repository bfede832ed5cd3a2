// A notification receiver on 127.0.0.1 for tests: records what arrives, and answers the first
// `failFirst` requests with 503 (a service that is briefly down).
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  /** The HTTP status this request was answered with. */
  status: number;
}

export interface LocalReceiver {
  url: string;
  received: Received[];
  /** Requests answered 2xx. */
  accepted(): Received[];
  close(): Promise<void>;
}

export async function startLocalReceiver(
  opts: { failFirst?: number; okStatus?: number } = {},
): Promise<LocalReceiver> {
  const received: Received[] = [];
  let failuresLeft = opts.failFirst ?? 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const status = failuresLeft > 0 ? 503 : (opts.okStatus ?? 200);
      if (failuresLeft > 0) failuresLeft--;
      received.push({
        path: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        status,
      });
      res.writeHead(status, { 'content-type': 'text/plain' }).end(status < 300 ? 'ok' : 'unavailable');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    accepted: () => received.filter((r) => r.status < 300),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
