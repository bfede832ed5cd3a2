// The SSH gateway's listener: an ssh2 server on loopback with its own host key. The agent logs in
// with any key or `none` (its identity is the pod), or with a password that verifyPassword accepts
// (an OIDC ID token). Each agent connection gets one upstream connection, opened at its first
// allowed channel; channels are decided and bridged by session-channel.ts and port-forward.ts.
import ssh2, { type AuthContext, type Client, type ClientInfo, type Connection } from 'ssh2';
import type { SshAgentIdentity, SshSessionHooks } from './hooks.js';
import { handleDirectTcpip } from './port-forward.js';
import { handleSession } from './session-channel.js';
import { fingerprintOf, generateOpenSshEd25519Key } from './ssh-keys.js';

export interface SshGatewayLimits {
  /** Channels (sessions + forwards) open at once per connection. Default 16. */
  readonly maxChannels?: number;
  /** Channel opens refused for the limit before the connection is dropped. Default 64. */
  readonly maxRefusedOpens?: number;
  /** Agent connections at once. Default 64. */
  readonly maxConnections?: number;
  /** Time to finish login. Default 30 s. */
  readonly authTimeoutMs?: number;
}

export interface SshGatewayOptions {
  /** The gateway's own host private key (OpenSSH format, see generateGatewayHostKey). */
  readonly hostKey: string;
  readonly host?: string;
  /** 0 (default) picks a free port. */
  readonly port?: number;
  sessionHooks(identity: SshAgentIdentity): SshSessionHooks;
  /** Opens the authenticated connection to the target for one agent connection (called at most once). */
  connectUpstream(identity: SshAgentIdentity): Promise<Client>;
  /** Returns what to keep of a valid password (e.g. verified token claims), undefined to refuse it. */
  verifyPassword?(username: string, password: string): Promise<Readonly<Record<string, unknown>> | undefined>;
  /** Accept `none` and any public key as the pod's own identity. Default true; false requires a password. */
  readonly allowPodIdentity?: boolean;
  /**
   * Logging in as this user asks for a password even when the pod identity is allowed (as the
   * PostgreSQL gateway does for user `oidc`). Default `oidc`; only with verifyPassword.
   */
  readonly passwordUser?: string;
  /** `parsed` (default): each SFTP request is decided and recorded; `raw`: `subsystem sftp` as a whole. */
  readonly sftp?: 'parsed' | 'raw';
  readonly limits?: SshGatewayLimits;
  log?(message: string, fields?: Readonly<Record<string, unknown>>): void;
}

export interface SshGateway {
  readonly host: string;
  readonly port: number;
  connectionCount(): number;
  close(): Promise<void>;
}

/**
 * A fresh ed25519 host key for the gateway, and its known_hosts public half. Encoded here because
 * ssh2's own generateKeyPairSync drops a leading zero byte of the public key about once in 256 keys
 * and then cannot read its own output.
 */
export function generateGatewayHostKey(comment = 'chaperone-gateway'): {
  privateKey: string;
  publicKeyLine: string;
} {
  return generateOpenSshEd25519Key(comment);
}

export async function startSshGateway(opts: SshGatewayOptions): Promise<SshGateway> {
  const host = opts.host ?? '127.0.0.1';
  const open = new Set<Connection>();
  const server = new ssh2.Server(
    // Keepalives find agents that vanished without closing (4 unanswered at 15 s: one minute).
    { hostKeys: [opts.hostKey], ident: 'chaperone', keepaliveInterval: 15_000, keepaliveCountMax: 4 },
    (client, info) => {
      try {
        serveConnection(client, info, opts, open);
      } catch (err) {
        opts.log?.('ssh connection setup failed', { error: (err as Error).message });
        drop(client);
      }
    },
  );
  server.maxConnections = opts.limits?.maxConnections ?? 64;
  server.on('error', (err: Error) => opts.log?.('ssh gateway listener error', { error: err.message }));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    host,
    port,
    connectionCount: () => (server as unknown as { _connections: number })._connections,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Open connections keep server.close() waiting; they end with their upstreams.
        for (const c of open) drop(c, 0);
      }),
  };
}

function serveConnection(
  client: Connection,
  info: ClientInfo,
  opts: SshGatewayOptions,
  open: Set<Connection>,
): void {
  const limits = { maxChannels: 16, maxRefusedOpens: 64, authTimeoutMs: 30_000, ...opts.limits };
  const startedAt = performance.now();
  let identity: SshAgentIdentity | undefined;
  let hooks: SshSessionHooks | undefined;
  let upstream: Promise<Client> | undefined;
  let channels = 0;
  let openChannels = 0;
  let refusedOpens = 0;
  let endReason = 'closed by the agent';
  open.add(client);

  const authTimer = setTimeout(() => {
    endReason = 'login timed out';
    drop(client);
  }, limits.authTimeoutMs).unref();
  const guard =
    <A extends unknown[]>(fn: (...args: A) => void) =>
    (...args: A) => {
      try {
        fn(...args);
      } catch (err) {
        endReason = `internal error: ${(err as Error).message}`;
        opts.log?.('ssh connection failed', { error: (err as Error).message });
        drop(client);
      }
    };

  client.on('error', (err: Error) => {
    endReason = `protocol error: ${err.message}`;
    drop(client);
    opts.log?.('ssh agent connection error', { error: err.message, remote: `${info.ip}:${info.port}` });
  });
  client.on(
    'authentication',
    guard((ctx: AuthContext) => {
      authenticate(ctx, info, opts, (id) => {
        identity = id;
      }).catch(() => ctx.reject());
    }),
  );
  client.on(
    'ready',
    guard(() => {
      clearTimeout(authTimer);
      if (!identity) return drop(client);
      hooks = opts.sessionHooks(identity);
      hooks.record({ type: 'session.start', identity });
    }),
  );
  const connectUpstream = () => {
    upstream ??= opts.connectUpstream(identity as SshAgentIdentity).then((c) => {
      c.on('close', () => {
        endReason = 'the target closed the connection';
        drop(client);
      });
      if (!open.has(client)) c.end();
      return c;
    });
    return upstream;
  };
  /** Claims a channel slot, or refuses (and after too many refusals drops the connection). */
  const claim = (): number | undefined => {
    if (!hooks) return undefined;
    if (openChannels >= limits.maxChannels) {
      if (++refusedOpens > limits.maxRefusedOpens) {
        endReason = 'too many channel opens';
        drop(client);
      }
      return undefined;
    }
    openChannels++;
    return ++channels;
  };
  const release = () => {
    openChannels--;
  };

  client.on(
    'session',
    guard((accept, reject) => {
      const id = claim();
      if (id === undefined || !hooks) return reject();
      const session = accept();
      session.once('close', release);
      handleSession(session, {
        channel: id,
        hooks,
        sftp: opts.sftp ?? 'parsed',
        upstream: connectUpstream,
        refused: refuse,
      });
    }),
  );
  client.on(
    'tcpip',
    guard((accept, reject, tcpInfo) => {
      const id = claim();
      if (id === undefined || !hooks) return reject();
      void handleDirectTcpip(accept, reject, tcpInfo, { channel: id, hooks, upstream: connectUpstream })
        .catch(() => reject())
        .finally(release);
    }),
  );
  client.on(
    'openssh.streamlocal',
    guard((_accept, reject) => {
      reject();
      refuse('streamlocal-forwarding', 'forwarding to Unix sockets is not offered through the gateway');
    }),
  );
  client.on(
    'request',
    guard((_accept, reject, name: string) => {
      reject?.();
      if (name === 'tcpip-forward' || name === 'streamlocal-forward@openssh.com') {
        refuse('remote-forwarding', 'remote port forwarding (ssh -R) is not offered through the gateway');
      }
    }),
  );
  client.on('close', () => {
    clearTimeout(authTimer);
    open.delete(client);
    void upstream?.then((c) => c.end()).catch(() => {});
    hooks?.record({
      type: 'session.end',
      durationMs: Math.round(performance.now() - startedAt),
      reason: endReason,
    });
  });

  function refuse(what: string, reason: string): void {
    hooks?.record({ type: 'refused', what, reason });
  }
}

/**
 * Ends a connection: ssh2 sends DISCONNECT and half-closes the socket, which a hostile peer can keep
 * open forever; the socket is destroyed after a short grace period.
 */
function drop(client: Connection, graceMs = 1000): void {
  try {
    client.end();
  } catch {
    // already gone
  }
  const sock = (client as unknown as { _sock?: { destroy(): void; destroyed?: boolean } })._sock;
  if (!sock || sock.destroyed) return;
  if (graceMs === 0) sock.destroy();
  else setTimeout(() => sock.destroy(), graceMs).unref();
}

/** Calls accepted() before ctx.accept(): ssh2 emits 'ready' from inside accept(). */
async function authenticate(
  ctx: AuthContext,
  info: ClientInfo,
  opts: SshGatewayOptions,
  accepted: (identity: SshAgentIdentity) => void,
): Promise<void> {
  const base = {
    username: ctx.username,
    remoteAddress: info.ip,
    remotePort: info.port,
    clientVersion: info.header.identRaw,
  };
  const podIdentity =
    opts.allowPodIdentity !== false &&
    !(opts.verifyPassword && ctx.username === (opts.passwordUser ?? 'oidc'));
  const methods: Array<'none' | 'publickey' | 'password'> = [];
  if (podIdentity) methods.push('publickey');
  if (opts.verifyPassword) methods.push('password');
  const refuse = () => ctx.reject(methods as AuthContext['method'][]);
  const accept = (identity: SshAgentIdentity) => {
    accepted(identity);
    ctx.accept();
  };
  if (ctx.method === 'none' && podIdentity) return accept({ ...base, method: 'none' });
  if (ctx.method === 'publickey' && podIdentity) {
    // The key only says which agent process it is; still, a signature proves the client holds it.
    if (!ctx.signature || !ctx.blob) return ctx.accept();
    const key = ssh2.utils.parseKey(ctx.key.data);
    if (key instanceof Error || !key.verify(ctx.blob, ctx.signature, ctx.hashAlgo)) return refuse();
    return accept({ ...base, method: 'publickey', publicKeyFingerprint: fingerprintOf(ctx.key.data) });
  }
  if (ctx.method === 'password' && opts.verifyPassword) {
    const verified = await opts.verifyPassword(ctx.username, ctx.password).catch(() => undefined);
    if (!verified) return refuse();
    return accept({ ...base, method: 'password', verified });
  }
  refuse();
}
