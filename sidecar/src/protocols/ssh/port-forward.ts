// direct-tcpip (`ssh -L`, `ssh -W`): decided as a port-forward to host:port, then opened by the
// target (forwardOut) and joined with pipe() both ways (backpressure through the SSH windows).
import type {
  AcceptConnection,
  Client,
  ClientChannel,
  RejectConnection,
  ServerChannel,
  TcpipRequestInfo,
} from 'ssh2';
import type { SshSessionHooks } from './hooks.js';

export interface ForwardContext {
  readonly channel: number;
  readonly hooks: SshSessionHooks;
  upstream(): Promise<Client>;
}

export async function handleDirectTcpip(
  accept: AcceptConnection<ServerChannel>,
  reject: RejectConnection,
  info: TcpipRequestInfo,
  ctx: ForwardContext,
): Promise<void> {
  const op = {
    kind: 'port-forward' as const,
    host: info.destIP,
    port: info.destPort,
    originator: { host: info.srcIP, port: info.srcPort },
  };
  const decision = await ctx.hooks.decide(op, () => {}).catch(() => ({ verdict: 'deny' as const }));
  // SSH has no place for a reason in CHANNEL_OPEN_FAILURE that OpenSSH shows beyond one line; the
  // decision (with its reason) is the hook's to record.
  if (decision.verdict !== 'allow') return reject();
  const startedAt = performance.now();
  let remote: ClientChannel;
  try {
    const client = await ctx.upstream();
    remote = await new Promise<ClientChannel>((resolve, fail) => {
      client.forwardOut(info.srcIP, info.srcPort, info.destIP, info.destPort, (err, ch) =>
        err ? fail(err) : resolve(ch),
      );
    });
  } catch (err) {
    reject();
    ctx.hooks.record({
      type: 'forward',
      channel: ctx.channel,
      host: op.host,
      port: op.port,
      durationMs: 0,
      bytesIn: 0,
      bytesOut: 0,
      error: (err as Error).message,
    });
    return;
  }
  const local = accept();
  let bytesIn = 0;
  let bytesOut = 0;
  local.on('data', (d: Buffer) => {
    bytesIn += d.length;
  });
  remote.on('data', (d: Buffer) => {
    bytesOut += d.length;
  });
  local.on('error', () => remote.close());
  remote.on('error', () => local.close());
  local.pipe(remote);
  remote.pipe(local);
  // The target's side ending ends the agent's through pipe() once everything is delivered; the
  // agent's channel closing (either way) is the end of the forward.
  local.once('close', () => {
    remote.close();
    ctx.hooks.record({
      type: 'forward',
      channel: ctx.channel,
      host: op.host,
      port: op.port,
      durationMs: Math.round(performance.now() - startedAt),
      bytesIn,
      bytesOut,
    });
  });
}
