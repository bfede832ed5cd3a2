import { createServer, Socket } from 'node:net';

/** A free TCP port on 127.0.0.1 (the kernel picks it; the small race is acceptable for tests). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** True when something accepts TCP connections on host:port. */
export function canConnect(port: number, host = '127.0.0.1', timeoutMs = 1_000): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = new Socket();
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.once('error', () => done(false));
    sock.connect(port, host, () => done(true));
  });
}

/** Reads the first line a server sends after connect (e.g. the SSH version banner). */
export function readBanner(port: number, host = '127.0.0.1', timeoutMs = 2_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = new Socket();
    let buf = '';
    sock.setTimeout(timeoutMs, () => {
      sock.destroy();
      reject(new Error(`no banner from ${host}:${port} within ${timeoutMs} ms`));
    });
    sock.once('error', reject);
    sock.on('data', (chunk) => {
      buf += chunk.toString('latin1');
      const nl = buf.indexOf('\n');
      if (nl >= 0) {
        sock.destroy();
        resolve(buf.slice(0, nl).trim());
      }
    });
    sock.connect(port, host);
  });
}
