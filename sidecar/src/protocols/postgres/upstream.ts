import { connect as netConnect, type Socket } from 'node:net';
import { type TLSSocket, connect as tlsConnect } from 'node:tls';
import { serialize } from 'pg-protocol';
import type { CredentialOf } from '../../credentials/credential-source.js';
import { parseNoticeFields } from './wire/backend-messages.js';
import { Backend } from './wire/codes.js';
import { MessageReader, ProtocolError } from './wire/message-reader.js';
import { md5PasswordResponse, startScram } from './wire/scram.js';

export type TlsMode = 'disable' | 'require' | 'verify-ca' | 'verify-full';

/** Where the real server is, as a Connection describes it. */
/** A postgres credential (the login reads username and password; never logged). */
export type PostgresLogin = Omit<CredentialOf<'postgres'>, 'type'>;

export interface UpstreamTarget {
  host: string;
  port: number;
  database: string;
  tls: { mode: TlsMode; ca?: string; serverName?: string };
}

export interface UpstreamConnection {
  socket: Socket | TLSSocket;
  /** ParameterStatus values the server sent during startup, in order. */
  parameters: Array<[string, string]>;
  backendKey: { processId: number; secretKey: number };
  /** Server bytes that arrived after the first ReadyForQuery (normally none). */
  leftover: Buffer;
  tls: boolean;
}

/** The server refused us; `fields` are its ErrorResponse fields (code, message, …). */
export class UpstreamError extends Error {
  constructor(
    message: string,
    readonly sqlState: string,
  ) {
    super(message);
  }
}

const MAX_STARTUP_MESSAGE = 1 << 20;

/**
 * Opens an authenticated session on the real PostgreSQL: TLS per the Connection's mode, then
 * SCRAM-SHA-256, md5 or cleartext password, and waits for the first ReadyForQuery.
 */
export async function connectUpstream(
  target: UpstreamTarget,
  credential: PostgresLogin,
  startupParams: Record<string, string>,
  { timeoutMs = 10_000 }: { timeoutMs?: number } = {},
): Promise<UpstreamConnection> {
  const raw = netConnect({ host: target.host, port: target.port });
  raw.setNoDelay(true);
  const timer = setTimeout(
    () =>
      raw.destroy(
        new UpstreamError(
          `timed out after ${timeoutMs} ms connecting to ${target.host}:${target.port}`,
          '08006',
        ),
      ),
    timeoutMs,
  );
  try {
    await new Promise<void>((resolve, reject) => {
      raw.once('connect', resolve);
      raw.once('error', reject);
    });
    const socket = target.tls.mode === 'disable' ? raw : await startTls(raw, target);
    return await authenticate(raw, socket, target, credential, startupParams);
  } catch (err) {
    raw.destroy();
    if (err instanceof UpstreamError) throw err;
    const msg = err instanceof Error ? err.message : String(err);
    throw new UpstreamError(`cannot reach ${target.host}:${target.port}: ${msg}`, '08006');
  } finally {
    clearTimeout(timer);
  }
}

async function startTls(raw: Socket, target: UpstreamTarget): Promise<TLSSocket> {
  raw.write(serialize.requestSsl());
  const answer = await readBytes(raw, 1);
  if (answer[0] !== 0x53 /* S */) {
    throw new UpstreamError(
      `server ${target.host}:${target.port} does not support TLS but the Connection requires tls.mode=${target.tls.mode}`,
      '08006',
    );
  }
  const verify = target.tls.mode === 'verify-ca' || target.tls.mode === 'verify-full';
  const servername = target.tls.serverName ?? target.host;
  const tls = tlsConnect({
    socket: raw,
    ca: target.tls.ca,
    servername: /^[\d.]+$|:/.test(servername) ? undefined : servername,
    rejectUnauthorized: verify,
    // verify-ca checks the chain only; verify-full also checks the name (Node's default check).
    ...(target.tls.mode === 'verify-ca' ? { checkServerIdentity: () => undefined } : {}),
  });
  await new Promise<void>((resolve, reject) => {
    tls.once('secureConnect', resolve);
    tls.once('error', reject);
  });
  tls.setNoDelay(true);
  return tls;
}

function readBytes(sock: Socket, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (buf.length >= n) {
        cleanup();
        if (buf.length > n) sock.unshift(buf.subarray(n));
        resolve(buf.subarray(0, n));
      }
    };
    const onError = (err: Error) => {
      cleanup();
      reject(err);
    };
    const onClose = () => {
      cleanup();
      reject(new Error('server closed the connection'));
    };
    const cleanup = () => {
      sock.off('data', onData);
      sock.off('error', onError);
      sock.off('close', onClose);
    };
    sock.on('data', onData);
    sock.once('error', onError);
    sock.once('close', onClose);
  });
}

function authenticate(
  rawSocket: Socket,
  socket: Socket | TLSSocket,
  target: UpstreamTarget,
  cred: PostgresLogin,
  startupParams: Record<string, string>,
): Promise<UpstreamConnection> {
  return new Promise((resolve, reject) => {
    const reader = new MessageReader(MAX_STARTUP_MESSAGE);
    const parameters: Array<[string, string]> = [];
    let backendKey = { processId: 0, secretKey: 0 };
    let scram: ReturnType<typeof startScram> | undefined;
    const fail = (err: Error) => {
      cleanup();
      reject(err);
    };
    const onData = (chunk: Buffer) => {
      reader.push(chunk);
      try {
        for (let f = reader.next(); f; f = reader.next()) {
          switch (f.type) {
            case Backend.Authentication: {
              const code = f.body.readInt32BE(0);
              if (code === 0) break; // AuthenticationOk
              if (code === 3) socket.write(serialize.password(cred.password));
              else if (code === 5)
                socket.write(
                  serialize.password(
                    md5PasswordResponse(cred.username, cred.password, f.body.subarray(4, 8)),
                  ),
                );
              else if (code === 10) {
                const mechanisms = f.body.subarray(4).toString('utf8').split('\0').filter(Boolean);
                if (!mechanisms.includes('SCRAM-SHA-256')) {
                  throw new UpstreamError(
                    `server offers SASL mechanisms ${mechanisms.join(', ')}; only SCRAM-SHA-256 is supported`,
                    '28000',
                  );
                }
                scram = startScram(cred.password);
                socket.write(
                  serialize.sendSASLInitialResponseMessage('SCRAM-SHA-256', scram.clientFirstMessage),
                );
              } else if (code === 11) {
                if (!scram) throw new ProtocolError('SASLContinue before SASL started');
                socket.write(
                  serialize.sendSCRAMClientFinalMessage(
                    scram.clientFinal(f.body.subarray(4).toString('utf8')),
                  ),
                );
              } else if (code === 12) {
                if (!scram) throw new ProtocolError('SASLFinal before SASL started');
                scram.verifyServerFinal(f.body.subarray(4).toString('utf8'));
              } else {
                throw new UpstreamError(
                  `server asks for authentication method ${code}, which the gateway does not support`,
                  '28000',
                );
              }
              break;
            }
            case Backend.ParameterStatus: {
              const body = f.body;
              const nul = body.indexOf(0);
              parameters.push([
                body.toString('utf8', 0, nul),
                body.toString('utf8', nul + 1, body.length - 1),
              ]);
              break;
            }
            case Backend.BackendKeyData:
              backendKey = { processId: f.body.readInt32BE(0), secretKey: f.body.readInt32BE(4) };
              break;
            case Backend.ErrorResponse: {
              const e = parseNoticeFields(f.body);
              throw new UpstreamError(e.get('M') ?? 'server error during startup', e.get('C') ?? '08006');
            }
            case Backend.NoticeResponse:
            case Backend.NegotiateProtocolVersion:
              break;
            case Backend.ReadyForQuery:
              cleanup();
              resolve({
                socket,
                parameters,
                backendKey,
                leftover: reader.drain(),
                tls: socket !== rawSocket,
              });
              return;
            default:
              throw new ProtocolError(`unexpected message ${String.fromCharCode(f.type)} during startup`);
          }
        }
      } catch (err) {
        fail(err instanceof Error ? err : new Error(String(err)));
      }
    };
    const onError = (err: Error) => fail(err);
    const onClose = () =>
      fail(
        new UpstreamError(
          `server ${target.host}:${target.port} closed the connection during startup`,
          '08006',
        ),
      );
    const cleanup = () => {
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('close', onClose);
    };
    socket.on('data', onData);
    socket.on('error', onError);
    socket.on('close', onClose);
    socket.write(serialize.startup({ ...startupParams, user: cred.username, database: target.database }));
  });
}
