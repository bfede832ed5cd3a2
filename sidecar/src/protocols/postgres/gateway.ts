import { createServer, type Server } from 'node:net';
import { PostgresSession } from './session.js';
import type { CancelRegistry, PostgresSessionConfig } from './session-state.js';
import { errorResponse } from './wire/backend-messages.js';

const REFUSAL_LINGER_MS = 1_000;

/** Backend keys handed to agents → the session that can cancel upstream. Shared by all listeners. */
export class LocalCancelRegistry implements CancelRegistry {
  private readonly byKey = new Map<string, () => void>();

  register(processId: number, secretKey: number, cancel: () => void): () => void {
    const key = `${processId}:${secretKey}`;
    this.byKey.set(key, cancel);
    return () => this.byKey.delete(key);
  }

  fire(processId: number, secretKey: number): void {
    // An unknown key is ignored silently, as PostgreSQL does: no oracle for guessing keys.
    this.byKey.get(`${processId}:${secretKey}`)?.();
  }
}

export interface PostgresGatewayOptions extends Omit<PostgresSessionConfig, 'cancels'> {
  listenHost: string;
  listenPort: number;
  cancels: CancelRegistry;
  /** Most concurrent agent connections on this listener; more are refused with SQLSTATE 53300. */
  maxConnections: number;
}

/** The PostgreSQL listener for one Connection: one PostgresSession per accepted socket. */
export class PostgresGateway {
  private server?: Server;
  private readonly sessions = new Set<PostgresSession>();

  constructor(private readonly opts: PostgresGatewayOptions) {}

  get port(): number {
    const addr = this.server?.address();
    return typeof addr === 'object' && addr ? addr.port : this.opts.listenPort;
  }

  get activeSessions(): number {
    return this.sessions.size;
  }

  async listen(): Promise<void> {
    const server = createServer({ noDelay: true }, (socket) => {
      if (this.sessions.size >= this.opts.maxConnections) {
        // A refused client may reset the connection at once: without a listener that error
        // would be unhandled and end the process. Read and drop whatever it sends; the socket
        // goes after a short grace period whatever the peer does.
        socket.on('error', () => {});
        socket.end(tooManyConnections(this.opts.maxConnections));
        socket.resume();
        setTimeout(() => socket.destroy(), REFUSAL_LINGER_MS).unref();
        return;
      }
      const session = new PostgresSession(socket, this.opts);
      this.sessions.add(session);
      socket.once('close', () => this.sessions.delete(session));
      session.start();
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.opts.listenPort, this.opts.listenHost, () => {
        server.off('error', reject);
        resolve();
      });
    });
  }

  async close(): Promise<void> {
    for (const s of this.sessions) s.close('gateway shutting down');
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

function tooManyConnections(max: number): Buffer {
  return errorResponse({
    severity: 'FATAL',
    code: '53300',
    message: `chaperone: too many connections (limit ${max})`,
  });
}
