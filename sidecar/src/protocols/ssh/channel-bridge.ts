// Joins the agent's session channel to the target's, faithfully:
// - stdout and stderr stay two streams; both directions use pipe(), so a slow reader pauses the other
//   side and ssh2 stops granting window (memory per channel is bounded by the SSH windows, ~2 MiB
//   each way, plus the streams' high-water marks);
// - the agent's EOF becomes EOF upstream (stdin closed), not a close;
// - exit-status / exit-signal is forwarded BEFORE the agent's channel is ended: ssh2's server sends
//   EOF + CLOSE on end(), after which an exit status can no longer be sent;
// - either side closing tears the other down.
import type { ClientChannel, ServerChannel } from 'ssh2';

export interface BridgeResult {
  exitStatus: number | null;
  exitSignal?: string;
  bytesIn: number;
  bytesOut: number;
  bytesErr: number;
}

export interface BridgeTap {
  /** Each chunk of the target's stdout (e.g. for the terminal recorder). */
  output?(chunk: Buffer): void;
}

type ExitInfo = { status: number } | { signal: string; coreDumped: boolean; message: string };

/**
 * What happened on the target's channel before the bridge was attached. ssh2 parses every packet of
 * a TCP read in one go: for a fast command, exit-status and close can be emitted in the same tick as
 * the channel-open callback, before an `await` continuation could listen. Call this inside that
 * callback. (Data is not at risk: it waits in the stream's buffer.)
 */
export interface UpstreamWatch {
  exit?: ExitInfo;
  closed: boolean;
}

export function watchUpstream(upstream: ClientChannel): UpstreamWatch {
  const watch: UpstreamWatch = { closed: false };
  upstream.on('exit', (code: number | null, signal?: string, coreDumped?: boolean, message?: string) => {
    if (typeof code === 'number') watch.exit = { status: code };
    else if (signal) watch.exit = { signal, coreDumped: coreDumped === true, message: message ?? '' };
  });
  upstream.once('close', () => {
    watch.closed = true;
  });
  return watch;
}

export function bridgeChannels(
  agent: ServerChannel,
  upstream: ClientChannel,
  watch: UpstreamWatch,
  tap: BridgeTap = {},
): Promise<BridgeResult> {
  const result: BridgeResult = { exitStatus: null, bytesIn: 0, bytesOut: 0, bytesErr: 0 };
  return new Promise((resolve) => {
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      resolve(result);
    };

    agent.on('data', (d: Buffer) => {
      result.bytesIn += d.length;
    });
    agent.pipe(upstream); // agent EOF -> upstream.end() -> EOF toward the target
    upstream.on('data', (d: Buffer) => {
      result.bytesOut += d.length;
      tap.output?.(d);
    });
    upstream.stderr.on('data', (d: Buffer) => {
      result.bytesErr += d.length;
    });
    upstream.pipe(agent, { end: false });
    upstream.stderr.pipe(agent.stderr, { end: false });

    // The target closed: wait until its stdout/stderr are drained into the agent's channel, then
    // exit status, then EOF + close.
    const onUpstreamClosed = () => {
      let pending = 2;
      const ended = () => {
        if (--pending > 0) return;
        const exit = watch.exit;
        if (exit && 'status' in exit) result.exitStatus = exit.status;
        else if (exit) result.exitSignal = exit.signal.replace(/^SIG/, '');
        forwardExit(agent, exit);
        agent.end();
        finish();
      };
      whenEnded(upstream, ended);
      whenEnded(upstream.stderr, ended);
    };
    if (watch.closed) onUpstreamClosed();
    else upstream.once('close', onUpstreamClosed);
    // The agent went away: nothing more can be delivered; stop the command's channel.
    agent.once('close', () => {
      upstream.unpipe(agent);
      upstream.stderr.unpipe(agent.stderr);
      upstream.close();
      finish();
    });
    agent.on('error', () => upstream.close());
    upstream.on('error', () => agent.close());
  });
}

function whenEnded(stream: NodeJS.ReadableStream & { readableEnded?: boolean }, cb: () => void): void {
  if (stream.readableEnded) cb();
  // Both streams are piped (flowing), and ssh2 ends their readable side on close.
  else stream.once('end', cb);
}

function forwardExit(agent: ServerChannel, exit: ExitInfo | undefined): void {
  if (!exit) return;
  try {
    if ('status' in exit) agent.exit(exit.status);
    else agent.exit(exit.signal, exit.coreDumped, exit.message);
  } catch {
    // A signal name ssh2 does not know: report what OpenSSH's client reports for a signal death.
    agent.exit(255);
  }
}
