import { randomInt } from 'node:crypto';
import { connect as netConnect } from 'node:net';
import { TLSSocket } from 'node:tls';
import { serialize } from 'pg-protocol';
import { describeIdentity } from '../../identity/identity.js';
import { isRefusal } from '../../pipeline/refusal.js';
import { ColumnCatalog } from './column-catalog.js';
import type { PostgresSessionState } from './session-state.js';
import { databaseMismatch, startupSettings } from './startup-parameters.js';
import { connectUpstream, UpstreamError } from './upstream.js';
import * as msg from './wire/backend-messages.js';
import { Frontend, PROTOCOL_3_0, SqlState } from './wire/codes.js';
import { BodyReader, type Frame, type MessageReader, ProtocolError } from './wire/message-reader.js';

type StartupPacket = ReturnType<MessageReader['nextStartup']> & object;

/** SSLRequest, GSSENCRequest, CancelRequest or the StartupMessage. */
export async function onStartupPacket(s: PostgresSessionState, p: StartupPacket): Promise<void> {
  if (p.kind === 'ssl-request' || p.kind === 'gssenc-request') {
    // One negotiation of each kind, as PostgreSQL: a second request (TLS inside TLS, or after a
    // refusal) is not a startup packet it knows.
    const ssl = p.kind === 'ssl-request';
    if (ssl ? s.sslDone : s.gssDone) {
      throw new ProtocolError(
        `unsupported frontend protocol ${ssl ? '1234.5679' : '1234.5680'}: server supports 3.0 to 3.0`,
        SqlState.featureNotSupported,
      );
    }
    if (ssl) s.sslDone = true;
    else s.gssDone = true;
  }
  if (p.kind === 'ssl-request') {
    if (!s.cfg.clientTls) {
      s.client.write('N');
      return;
    }
    s.client.write('S');
    const rest = s.clientReader.drain();
    const plain = s.client;
    plain.removeAllListeners('data');
    const tls = new TLSSocket(plain, { isServer: true, secureContext: s.cfg.clientTls });
    if (rest.length) plain.unshift(rest);
    s.client = tls;
    s.attachClient(tls);
    tls.on('data', (chunk: Buffer) => s.onClientData(chunk));
    return;
  }
  if (p.kind === 'gssenc-request') {
    s.client.write('N'); // no GSSAPI encryption: the client falls back to TLS or plain
    return;
  }
  if (p.kind === 'cancel') {
    // Keys are 4 bytes in protocol 3.0; anything else cannot be one of ours.
    if (p.secretKey.length === 4) s.cfg.cancels.fire(p.processId, p.secretKey.readInt32BE(0));
    s.client.end();
    s.closed = true;
    return;
  }
  if (p.params.get('replication') && p.params.get('replication') !== 'false') {
    throw new ProtocolError(
      'replication connections are not supported through Chaperone',
      SqlState.featureNotSupported,
    );
  }
  if (p.protocol !== PROTOCOL_3_0) {
    const unknown = [...p.params.keys()].filter((k) => k.startsWith('_pq_.'));
    s.client.write(msg.negotiateProtocolVersion(0, unknown));
  }
  s.startupParams = p.params;
  const user = p.params.get('user') ?? '';
  const wantsToken = s.cfg.tokenVerifier && (s.cfg.requireToken || user === s.cfg.tokenUser);
  if (wantsToken) {
    s.phase = 'password';
    s.client.write(msg.authenticationCleartextPassword());
    return;
  }
  await admit(s);
}

/** The agent's password is an OIDC ID token: its user and groups join the pod's identity. */
export async function onPassword(s: PostgresSessionState, frame: Frame): Promise<void> {
  if (frame.type !== Frontend.Password) throw new ProtocolError('expected a password message');
  const token = new BodyReader(frame.body).cstring();
  try {
    const verified = await s.cfg.tokenVerifier!.verify(token);
    s.pipeline.identity = {
      ...s.cfg.podIdentity,
      user: verified.user,
      groups: verified.groups,
      issuer: verified.issuer,
    };
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    s.sendFatal(SqlState.invalidPassword, `the password must be a valid OIDC ID token: ${reason}`);
    return;
  }
  await admit(s);
}

/** The pipeline's admission, upstream login, then the agent's AuthenticationOk. */
async function admit(s: PostgresSessionState): Promise<void> {
  s.phase = 'connecting';
  const wrongDatabase = databaseMismatch(s.startupParams, s.cfg.target.database, s.cfg.connection);
  if (wrongDatabase) {
    s.sendFatal(wrongDatabase.code, wrongDatabase.message);
    return;
  }
  const settings = startupSettings(s.startupParams);
  if (!settings.ok) {
    s.sendFatal(settings.code, settings.message);
    return;
  }
  const remote = `${s.client.remoteAddress ?? '?'}:${s.client.remotePort ?? '?'}`;
  const admitted = await s.pipeline.admit(
    { type: 'postgres' },
    { client: remote, application: s.startupParams.get('application_name') },
  );
  if (isRefusal(admitted)) {
    s.refuse(admitted);
    return;
  }
  const policy = admitted.view;
  s.policy = policy;
  s.masks = policy.masking.hasColumnRules || policy.masking.hasDetectors;
  const forwarded: Record<string, string> = { ...settings.forward };
  // The SQL analysis reads the query text as UTF-8; a client encoding such as SJIS or GBK (where a
  // backslash can be the second byte of a character) would make the server see other statements.
  forwarded.client_encoding = 'UTF8';
  const cred = admitted.credential;
  try {
    s.upstream = await connectUpstream(s.cfg.target, cred, forwarded);
  } catch (err) {
    const e = err instanceof UpstreamError ? err : new UpstreamError(String(err), SqlState.connectionFailure);
    s.cfg.log('warn', 'upstream connection failed', { connection: s.cfg.connection, error: e.message });
    s.refuse({
      kind: 'upstream-failed',
      message: `connection ${s.cfg.connection}: upstream login failed: ${e.message}`,
    });
    return;
  }
  if (s.closed) {
    s.upstream.socket.destroy();
    return;
  }
  s.catalog = new ColumnCatalog(s.cfg.target, async () => cred);
  s.maskingContext = { masking: policy.masking, catalog: s.catalog, hashKey: s.cfg.hashKey };
  relay(s);
}

/** Upstream is logged in: hand the agent its AuthenticationOk and start relaying both ways. */
function relay(s: PostgresSessionState): void {
  const up = s.upstream!;
  // The real backend PID (pg_stat_activity, pg_terminate_backend and server logs line up with it),
  // with a cancel key of the gateway's own: the server's key never reaches the agent.
  const pid = up.backendKey.processId;
  const key = randomInt(0, 2 ** 31 - 1);
  s.unregisterCancel = s.cfg.cancels.register(pid, key, () => forwardCancel(s));
  const out: Buffer[] = [msg.authenticationOk()];
  for (const [k, v] of up.parameters) out.push(msg.parameterStatus(k, v));
  out.push(msg.backendKeyData(pid, key), msg.readyForQuery('I'));
  s.client.write(Buffer.concat(out));
  up.socket.on('data', (chunk: Buffer) => s.onServerData(chunk));
  up.socket.on('error', (err) => s.close(`server error: ${err.message}`));
  up.socket.on('close', () => s.close('server closed the connection'));
  // Backpressure both ways: a slow reader pauses the other side instead of growing buffers.
  up.socket.on('drain', () => {
    s.upstreamCongested = false;
    s.resumeClient();
  });
  s.client.on('drain', () => {
    s.clientCongested = false;
    if (!s.serverBusy) up.socket.resume();
  });
  s.phase = 'ready';
  s.cfg.log('info', 'session started', { session: s.id, identity: describeIdentity(s.pipeline.identity) });
  if (up.leftover.length) s.onServerData(up.leftover);
}

function forwardCancel(s: PostgresSessionState): void {
  const up = s.upstream;
  if (!up) return;
  // A CancelRequest goes on a fresh connection to the server, with the real backend key.
  const sock = netConnect({ host: s.cfg.target.host, port: s.cfg.target.port }, () => {
    sock.end(serialize.cancel(up.backendKey.processId, up.backendKey.secretKey));
  });
  sock.on('error', (err) =>
    s.cfg.log('warn', 'cancel request failed', { session: s.id, error: err.message }),
  );
}
