// One agent "session" channel: collects pty-req and env, then on shell / exec / subsystem asks
// decide(), opens the matching channel on the target with the same pty and env, and bridges them.
import type { Client, ClientChannel, PseudoTtyInfo, ServerChannel, Session, SFTPWrapper } from 'ssh2';
import { bridgeChannels, type UpstreamWatch, watchUpstream } from './channel-bridge.js';
import type { SshOperation, SshRecordEvent, SshSessionHooks } from './hooks.js';
import { bridgeSftp } from './sftp-bridge.js';
import { TerminalRecorder } from './terminal-recorder.js';

/**
 * Exit status for an operation the policy refused: 126 is what shells return for a command that was
 * found but may not run. It is neither the command's own failure (1, 2, …) nor ssh's own failure
 * (255, which tools such as Ansible read as "host unreachable" and retry).
 */
export const DENIED_EXIT_STATUS = 126;
/** The target could not be reached or refused the channel: ssh's own code for connection errors. */
export const UPSTREAM_FAILED_EXIT_STATUS = 255;

/** Environment variables passed on (OpenSSH's usual AcceptEnv set); the rest are refused. */
const ENV_ALLOWED = /^(LANG|LANGUAGE|LC_[A-Z_]{1,32}|TZ|COLORTERM|TERM)$/;
const MAX_ENV_VARS = 32;
const MAX_ENV_VALUE = 4096;

export interface SessionContext {
  readonly channel: number;
  readonly hooks: SshSessionHooks;
  /** `parsed`: every SFTP request is decided and recorded; `raw`: the subsystem is decided as a whole. */
  readonly sftp: 'parsed' | 'raw';
  upstream(): Promise<Client>;
  refused(what: string, reason: string): void;
}

export function handleSession(session: Session, ctx: SessionContext): void {
  let pty: PseudoTtyInfo | undefined;
  const env: Record<string, string> = {};
  let upstream: ClientChannel | undefined;
  let recorder: TerminalRecorder | undefined;
  let started = false;

  session.on('error', () => {});
  session.on('pty', (accept, reject, info) => {
    if (started) return reject?.();
    pty = info;
    accept?.();
  });
  session.on('env', (accept, reject, info) => {
    const ok =
      !started &&
      ENV_ALLOWED.test(info.key) &&
      info.val.length <= MAX_ENV_VALUE &&
      Object.keys(env).length < MAX_ENV_VARS;
    if (!ok) return reject?.();
    env[info.key] = info.val;
    accept?.();
  });
  session.on('window-change', (accept: (() => void) | undefined, _reject: unknown, info: PseudoTtyInfo) => {
    accept?.();
    if (pty) pty = { ...pty, cols: info.cols, rows: info.rows, width: info.width, height: info.height };
    upstream?.setWindow(info.rows, info.cols, info.height, info.width);
    recorder?.resize(info.cols, info.rows);
  });
  session.on('signal', (accept, _reject, info) => {
    accept?.();
    upstream?.signal(info.name);
  });
  session.on('x11', (_accept, reject) => {
    reject?.();
    ctx.refused('x11-forwarding', 'X11 forwarding is not offered through the gateway');
  });
  session.on('auth-agent', (_accept, reject) => {
    reject?.();
    ctx.refused('agent-forwarding', 'agent forwarding is not offered through the gateway');
  });

  if (ctx.sftp === 'parsed') {
    // With a listener, ssh2 hands `subsystem sftp` here (parsed) instead of to 'subsystem' (raw).
    session.on('sftp', (accept, reject) => {
      if (started) return reject();
      started = true;
      const agent = accept();
      if (!agent) return;
      const up = openUpstreamSftp(ctx, session);
      up.catch(() => {});
      bridgeSftp(agent, up, ctx, session);
    });
  }

  const start = (channel: ServerChannel | undefined, op: SshOperation) => {
    if (!channel || started) return;
    started = true;
    void run(channel, op).catch(() => channel.close());
  };
  const term = () => (pty ? { term: pty.term, cols: pty.cols, rows: pty.rows } : undefined);
  session.on('shell', (accept) => start(accept(), { kind: 'shell', ...withPty(term()) }));
  session.on('exec', (accept, _reject, info) =>
    start(accept(), { kind: 'exec', command: info.command, ...withPty(term()) }),
  );
  session.on(
    'subsystem',
    (accept: () => ServerChannel | undefined, _reject: unknown, info: { name: string }) =>
      start(accept(), { kind: 'subsystem', name: info.name }),
  );

  async function run(channel: ServerChannel, op: SshOperation): Promise<void> {
    let closed = false;
    channel.on('error', () => {});
    channel.once('close', () => {
      closed = true;
    });
    const nl = pty ? '\r\n' : '\n';
    const say = (line: string) => {
      if (!closed && channel.writable) channel.stderr.write(`${printable(line)}${nl}`);
    };
    const fail = (line: string, status: number) => {
      say(line);
      if (!closed) {
        channel.exit(status);
        channel.end();
      }
    };

    const decision = await ctx.hooks.decide(op, say).catch((err: unknown) => ({
      verdict: 'deny' as const,
      reason: `the decision failed (${(err as Error).message})`,
    }));
    if (closed) return;
    if (decision.verdict !== 'allow')
      return fail(`chaperone: denied: ${decision.reason}`, DENIED_EXIT_STATUS);

    const startedAt = performance.now();
    let opened: Awaited<ReturnType<typeof openUpstream>>;
    try {
      opened = await openUpstream(await ctx.upstream(), op, pty, env);
    } catch (err) {
      return fail(`chaperone: ${(err as Error).message}`, UPSTREAM_FAILED_EXIT_STATUS);
    }
    upstream = opened.channel;
    if (closed) return upstream.close();
    if (pty && op.kind !== 'subsystem') {
      recorder = new TerminalRecorder(ctx.channel, { term: pty.term, cols: pty.cols, rows: pty.rows }, (e) =>
        ctx.hooks.record(e),
      );
    }
    const tap = recorder;
    const res = await bridgeChannels(channel, upstream, opened.watch, {
      output: tap ? (d) => tap.output(d) : undefined,
    });
    recorder?.end();
    ctx.hooks.record(
      endEvent(ctx.channel, op, res, Math.round(performance.now() - startedAt), pty !== undefined),
    );
  }
}

async function openUpstreamSftp(ctx: SessionContext, session: Session): Promise<SFTPWrapper> {
  const client = await ctx.upstream();
  const up = await new Promise<SFTPWrapper>((resolve, reject) =>
    client.sftp((err, s) => (err ? reject(err) : resolve(s))),
  );
  // The agent may have given up while the target's SFTP server started.
  session.once('close', () => up.end());
  return up;
}

function withPty(pty: { term: string; cols: number; rows: number } | undefined) {
  return pty ? { pty } : {};
}

function openUpstream(
  client: Client,
  op: SshOperation,
  pty: PseudoTtyInfo | undefined,
  env: Record<string, string>,
): Promise<{ channel: ClientChannel; watch: UpstreamWatch }> {
  const ptyOpts = pty
    ? {
        term: pty.term,
        cols: pty.cols,
        rows: pty.rows,
        width: pty.width,
        height: pty.height,
        modes: pty.modes,
      }
    : undefined;
  return new Promise((resolve, reject) => {
    const cb = (err: Error | undefined, ch: ClientChannel) =>
      err
        ? reject(new Error(`the target refused the channel: ${err.message}`))
        : resolve({ channel: ch, watch: watchUpstream(ch) });
    try {
      if (op.kind === 'exec') client.exec(op.command, { pty: ptyOpts ?? false, env }, cb);
      else if (op.kind === 'shell') client.shell(ptyOpts ?? false, { env }, cb);
      else if (op.kind === 'subsystem') client.subsys(op.name, cb);
      else reject(new Error(`${op.kind} is not a session operation`));
    } catch (err) {
      reject(new Error(`the connection to the target is gone (${(err as Error).message})`));
    }
  });
}

function endEvent(
  channel: number,
  op: SshOperation,
  res: Awaited<ReturnType<typeof bridgeChannels>>,
  durationMs: number,
  pty: boolean,
): SshRecordEvent {
  const counts = { bytesIn: res.bytesIn, bytesOut: res.bytesOut };
  const exit = { exitStatus: res.exitStatus, ...(res.exitSignal ? { exitSignal: res.exitSignal } : {}) };
  if (op.kind === 'exec') {
    return {
      type: 'command',
      channel,
      command: op.command,
      pty,
      ...exit,
      bytesErr: res.bytesErr,
      durationMs,
      ...counts,
    };
  }
  if (op.kind === 'shell')
    return { type: 'shell', channel, ...exit, bytesErr: res.bytesErr, durationMs, ...counts };
  return {
    type: 'subsystem',
    channel,
    name: op.kind === 'subsystem' ? op.name : op.kind,
    durationMs,
    ...counts,
  };
}

/** Hook text goes to a terminal: no control characters (no escape sequences smuggled in). */
function printable(line: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: stripping them is the point
  return line.replace(/[\x00-\x08\x0b-\x1f\x7f]/g, '?').slice(0, 2000);
}
