import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Refusal } from '../../pipeline/refusal.js';
import { SessionPipeline } from '../../pipeline/session-pipeline.js';
import { onClientFrame } from './client-frames.js';
import type { ColumnCatalog } from './column-catalog.js';
import { DenialStandIns } from './denial-stand-ins.js';
import { ExtendedQueryState } from './extended-query.js';
import { REFUSAL_SQLSTATE } from './refusals.js';
import type { MaskingContext } from './result-masking.js';
import { ResultRecording } from './result-recording.js';
import { onServerFrame } from './server-frames.js';
import { onPassword, onStartupPacket } from './session-startup.js';
import type { PostgresSessionConfig, PostgresSessionState } from './session-state.js';
import type { SessionPolicy } from './statement-guard.js';
import type { UpstreamConnection } from './upstream.js';
import * as msg from './wire/backend-messages.js';
import { SqlState } from './wire/codes.js';
import { MessageReader, ProtocolError, StartupFramingError } from './wire/message-reader.js';

let sessionCounter = 0;

/** Client bytes we hold at most while the session waits, beyond one maximal message. */
const CLIENT_BUFFER_SLACK = 1 << 20;

/**
 * Longest a client may take from connecting to a complete login (startup packet, password). An
 * agent on localhost needs milliseconds; without a limit, idle sockets would fill the listener's
 * connection slots and lock every agent out.
 */
const STARTUP_TIMEOUT_MS = 15_000;

/** Longest a closing session waits for the agent to read its final error before the socket goes. */
const CLOSE_LINGER_MS = 2_000;

/**
 * One agent connection: startup and authentication (session-startup.ts), an upstream connection
 * with the gateway's credential, then a relay that decides every statement before it reaches the
 * server (client-frames.ts) and masks every row before it reaches the agent (server-frames.ts).
 * The protocol-neutral steps — admission, approvals, recording — are the SessionPipeline's.
 * Errors end this session only. Fields are shared with those files (internal to this folder).
 */
export class PostgresSession implements PostgresSessionState {
  readonly id =
    `pg-${Date.now().toString(36)}-${(++sessionCounter).toString(36)}-${randomUUID().slice(0, 8)}`;
  client: Socket | TLSSocket;
  readonly clientReader: MessageReader;
  readonly serverReader: MessageReader;
  readonly pipeline: SessionPipeline<SessionPolicy>;
  readonly query = new ExtendedQueryState();
  readonly denials = new DenialStandIns();
  readonly results: ResultRecording;
  phase: 'startup' | 'password' | 'connecting' | 'ready' = 'startup';
  startupParams = new Map<string, string>();
  upstream?: UpstreamConnection;
  policy?: SessionPolicy;
  catalog?: ColumnCatalog;
  maskingContext?: MaskingContext;
  /** False when policy masks nothing for this session: rows then pass through untouched. */
  masks = false;
  closed = false;
  unregisterCancel?: () => void;
  clientBusy = false;
  /** One incomplete maximal message must always fit, or framing would deadlock. */
  private readonly clientBufferLimit: number;
  upstreamCongested = false;
  clientCongested = false;
  serverBusy = false;

  constructor(
    socket: Socket,
    readonly cfg: PostgresSessionConfig,
  ) {
    this.client = socket;
    this.pipeline = new SessionPipeline(
      {
        connection: cfg.connection,
        protocol: 'postgres',
        policyFor: cfg.policyFor,
        recorderFor: cfg.recorderFor,
        credentials: cfg.credentials,
        approvals: cfg.approvals,
      },
      this.id,
      cfg.podIdentity,
    );
    this.results = new ResultRecording(this.pipeline);
    this.clientReader = new MessageReader(cfg.maxMessageBytes);
    this.clientBufferLimit = cfg.maxMessageBytes + CLIENT_BUFFER_SLACK;
    this.serverReader = new MessageReader(Math.max(cfg.maxMessageBytes, 1 << 30));
    socket.setNoDelay(true);
  }

  /** TLS and GSS encryption requests already answered: a second one is a protocol violation. */
  sslDone = false;
  gssDone = false;
  private startupTimer?: NodeJS.Timeout;

  start(): void {
    this.attachClient(this.client);
    this.client.on('data', (chunk: Buffer) => this.onClientData(chunk));
    this.startupTimer = setTimeout(() => this.onStartupTimeout(), STARTUP_TIMEOUT_MS);
    this.startupTimer.unref();
  }

  private onStartupTimeout(): void {
    if (this.closed) return;
    if (this.phase === 'startup') {
      // As PostgreSQL with an incomplete startup packet: nothing is said to a silent peer.
      this.cfg.log('info', 'session closed: no startup packet in time', { session: this.id });
      this.client.destroy();
      this.close('no startup packet in time');
    } else if (this.phase === 'password') {
      this.sendFatal(SqlState.protocolViolation, 'chaperone: authentication timed out');
    }
  }

  attachClient(sock: Socket | TLSSocket): void {
    sock.on('error', (err) => this.close(`client error: ${err.message}`));
    sock.on('close', () => this.close('client disconnected'));
  }

  // ---------------------------------------------------------------- client → server

  onClientData(chunk: Buffer): void {
    if (this.closed) return;
    this.clientReader.push(chunk);
    // While we wait (approval, upstream login) a pipelining client could keep sending: stop
    // reading once a bounded amount is buffered; the pump resumes the socket when it catches up.
    if (this.clientReader.buffered > this.clientBufferLimit) this.client.pause();
    void this.pumpClient();
  }

  /** Resumes reading from the agent unless something still needs it paused. */
  resumeClient(): void {
    if (this.closed || this.clientBusy || this.upstreamCongested) return;
    if (this.clientReader.buffered <= this.clientBufferLimit) this.client.resume();
  }

  private async pumpClient(): Promise<void> {
    if (this.clientBusy) return;
    this.clientBusy = true;
    // Frames that arrive together (Bind/Execute/Sync, pipelines) go upstream in one write.
    let corked: Socket | TLSSocket | undefined;
    const uncork = () => {
      corked?.uncork();
      corked = undefined;
    };
    try {
      while (!this.closed) {
        if (this.phase === 'startup') {
          const p = this.clientReader.nextStartup();
          if (!p) break;
          await onStartupPacket(this, p);
          continue;
        }
        if (this.phase === 'connecting') break;
        const frame = this.clientReader.next();
        if (!frame) break;
        if (this.phase === 'password') {
          await onPassword(this, frame);
          continue;
        }
        if (!corked && this.upstream) {
          corked = this.upstream.socket;
          corked.cork();
        }
        const work = onClientFrame(this, frame);
        if (work) {
          uncork();
          // Hold further client input (and so backpressure the agent) while we wait.
          this.client.pause();
          await work;
        }
      }
    } catch (err) {
      this.fatal(err);
    } finally {
      uncork();
      this.clientBusy = false;
      this.resumeClient();
    }
  }

  sendUp(raw: Buffer): boolean {
    const up = this.upstream?.socket;
    if (!up) return true;
    const ok = up.write(raw);
    if (!ok) {
      this.upstreamCongested = true;
      this.client.pause();
    }
    return ok;
  }

  // ---------------------------------------------------------------- server → client

  onServerData(chunk: Buffer): void {
    if (this.closed) return;
    this.serverReader.push(chunk);
    void this.pumpServer();
  }

  private async pumpServer(): Promise<void> {
    if (this.serverBusy) return;
    this.serverBusy = true;
    const client = this.client;
    client.cork();
    try {
      for (let f = this.serverReader.next(); f && !this.closed; f = this.serverReader.next()) {
        const work = onServerFrame(this, f);
        if (work) {
          client.uncork();
          this.upstream?.socket.pause();
          await work;
          if (!this.clientCongested) this.upstream?.socket.resume();
          client.cork();
        }
      }
    } catch (err) {
      this.fatal(err);
    } finally {
      client.uncork();
      this.serverBusy = false;
    }
  }

  toClient(buf: Buffer): void {
    if (!this.client.write(buf)) {
      this.clientCongested = true;
      this.upstream?.socket.pause();
    }
  }

  // ---------------------------------------------------------------- teardown

  /** Ends the session with the refusal as a FATAL error of its SQLSTATE. */
  refuse(refusal: Refusal): void {
    this.sendFatal(REFUSAL_SQLSTATE[refusal.kind], refusal.message);
  }

  sendFatal(code: string, message: string): void {
    this.cfg.log('warn', 'session refused', { session: this.id, code, message });
    if (!this.client.destroyed) this.client.end(msg.errorResponse({ severity: 'FATAL', code, message }));
    this.close(message);
  }

  fatal(err: unknown): void {
    // A lookup cut short by the session's own end (its catalog connection closed) is no error.
    if (this.closed) return;
    if (err instanceof StartupFramingError) {
      this.cfg.log('info', 'session closed: invalid startup packet', {
        session: this.id,
        error: err.message,
      });
      this.client.destroy();
      this.close(err.message);
      return;
    }
    const e = err instanceof ProtocolError ? err : undefined;
    const message = err instanceof Error ? err.message : String(err);
    this.cfg.log(e ? 'warn' : 'error', 'session aborted', { session: this.id, error: message });
    if (!this.client.destroyed) {
      this.client.end(
        msg.errorResponse({
          severity: 'FATAL',
          code: e?.sqlState ?? SqlState.internalError,
          message: `chaperone: ${message}`,
        }),
      );
    }
    this.close(message);
  }

  close(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.startupTimer);
    this.unregisterCancel?.();
    this.upstream?.socket.destroy();
    // Release what this session buffered, and make sure the socket goes: a client paused for
    // backpressure would otherwise never be read again, its FIN never seen, its slot never freed.
    this.clientReader.clear();
    this.serverReader.clear();
    const client = this.client;
    if (!client.destroyed) {
      client.end();
      client.resume();
      setTimeout(() => client.destroy(), CLOSE_LINGER_MS).unref();
    }
    void this.catalog?.close();
    this.results.flushCoalesced();
    this.pipeline.end(reason);
  }
}
