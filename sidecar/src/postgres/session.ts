import { randomBytes, randomInt, randomUUID } from 'node:crypto';
import { connect as netConnect, type Socket } from 'node:net';
import { type SecureContext, TLSSocket } from 'node:tls';
import { serialize } from 'pg-protocol';
import type { ApprovalGate } from '../approvals/approval-gate.js';
import type { CredentialSource, UpstreamCredential } from '../credentials/credential-source.js';
import { describeIdentity, type Identity } from '../identity/identity.js';
import type { SessionRecorder } from '../recording/session-recorder.js';
import { ColumnCatalog } from './column-catalog.js';
import { CopyRowMasker } from './masking/copy-masker.js';
import { type CellAction, planColumns, type ResultColumn, RowMasker } from './masking/row-masker.js';
import * as msg from './protocol/backend-messages.js';
import { Backend, Frontend, PROTOCOL_3_0, SqlState } from './protocol/codes.js';
import { BodyReader, type Frame, MessageReader, ProtocolError } from './protocol/message-reader.js';
import type {
  CopyMasking,
  GuardVerdict,
  MaskStrategy,
  SessionPolicy,
  SessionPolicyFactory,
} from './statement-guard.js';
import { connectUpstream, type UpstreamConnection, UpstreamError, type UpstreamTarget } from './upstream.js';

/** Verifies an OIDC ID token the agent gave as its password. */
export interface TokenVerifier {
  verify(token: string): Promise<{ user: string; groups: string[]; issuer: string }>;
}

/** Maps the backend keys the gateway hands out to the sessions that can cancel upstream. */
export interface CancelRegistry {
  register(processId: number, secretKey: number, cancel: () => void): () => void;
  /** A CancelRequest arrived with this key; cancels the matching session's running query, if any. */
  fire(processId: number, secretKey: number): void;
}

export interface PostgresSessionConfig {
  connection: string;
  target: UpstreamTarget;
  /** Identity of the pod (ServiceAccount); an OIDC token adds user and groups. */
  podIdentity: Identity;
  credentials: CredentialSource;
  policyFor: SessionPolicyFactory;
  approvals: ApprovalGate;
  recorderFor: (sessionId: string, identity: Identity) => SessionRecorder;
  cancels: CancelRegistry;
  tokenVerifier?: TokenVerifier;
  /** Ask every client for a token (otherwise only clients whose startup user is `tokenUser`). */
  requireToken: boolean;
  tokenUser: string;
  clientTls?: SecureContext;
  maxMessageBytes: number;
  hashKey: Buffer;
  log: (level: 'info' | 'warn' | 'error', message: string, fields?: Record<string, unknown>) => void;
}

// Startup parameters an agent may pass on to the server. Anything else — notably `options`, which
// can set arbitrary GUCs such as role or search_path — is dropped.
const FORWARDED_STARTUP_PARAMS = new Set([
  'application_name',
  'DateStyle',
  'TimeZone',
  'extra_float_digits',
  'IntervalStyle',
  'datestyle',
  'timezone',
]);

type Pending =
  | { kind: 'query'; layout?: ResultLayout; copy?: CopyMasking; copyMasker?: CopyRowMasker }
  | { kind: 'parse'; statement: string }
  | { kind: 'bind' }
  | { kind: 'describe-statement'; statement: string; hidden: boolean }
  | { kind: 'describe-portal'; portal: string }
  | { kind: 'execute'; portal: string }
  | { kind: 'close' }
  | { kind: 'sync' }
  | { kind: 'function-call' };

interface ResultLayout {
  columns: ResultColumn[];
  masker?: RowMasker;
}

interface PreparedStatement {
  text: string;
  /** Columns as Describe(statement) reported them (format codes not yet known). */
  columns?: ResultColumn[];
  /** Layouts already built for this statement, by result format codes (re-bound portals reuse them). */
  layouts?: Map<string, ResultLayout>;
}

interface Portal {
  statement: string;
  formats: number[];
  layout?: ResultLayout;
}

let sessionCounter = 0;

/** Longest that results of one prepared statement are summed before they are recorded. */
const RESULT_COALESCE_MS = 1_000;

/** Client bytes we hold at most while the session waits, beyond one maximal message. */
const CLIENT_BUFFER_SLACK = 1 << 20;

/**
 * One agent connection: startup and authentication, an upstream connection with the gateway's
 * credential, then a relay that decides every statement before it reaches the server and masks
 * every row before it reaches the agent. Errors end this session only.
 */
export class PostgresSession {
  readonly id =
    `pg-${Date.now().toString(36)}-${(++sessionCounter).toString(36)}-${randomUUID().slice(0, 8)}`;
  private client: Socket | TLSSocket;
  private readonly clientReader: MessageReader;
  private readonly serverReader: MessageReader;
  private upstream?: UpstreamConnection;
  private policy?: SessionPolicy;
  private recorder?: SessionRecorder;
  private catalog?: ColumnCatalog;
  private identity: Identity;
  private credential?: UpstreamCredential;
  private readonly pending: Pending[] = [];
  private readonly statements = new Map<string, PreparedStatement>();
  private readonly portals = new Map<string, Portal>();
  /** Nonces of denial stand-ins sent upstream; their syntax errors are rewritten into our denial. */
  private readonly denials = new Map<
    string,
    { code: string; message: string; detail?: string; hint?: string }
  >();
  private clientBusy = false;
  /** One incomplete maximal message must always fit, or framing would deadlock. */
  private readonly clientBufferLimit: number;
  private upstreamCongested = false;
  private clientCongested = false;
  private serverBusy = false;
  private closed = false;
  private unregisterCancel?: () => void;
  private readonly startedAt = Date.now();
  private statementCount = 0;
  private result = { rows: 0, bytes: 0, masked: 0 };
  /** False when policy masks nothing for this session: rows then pass through untouched. */
  private masks = false;

  constructor(
    socket: Socket,
    private readonly cfg: PostgresSessionConfig,
  ) {
    this.client = socket;
    this.identity = cfg.podIdentity;
    this.clientReader = new MessageReader(cfg.maxMessageBytes);
    this.clientBufferLimit = cfg.maxMessageBytes + CLIENT_BUFFER_SLACK;
    this.serverReader = new MessageReader(Math.max(cfg.maxMessageBytes, 1 << 30));
    socket.setNoDelay(true);
  }

  start(): void {
    this.attachClient(this.client);
    this.client.on('data', (chunk: Buffer) => this.onClientData(chunk));
  }

  private attachClient(sock: Socket | TLSSocket): void {
    sock.on('error', (err) => this.close(`client error: ${err.message}`));
    sock.on('close', () => this.close('client disconnected'));
  }

  // ---------------------------------------------------------------- startup

  private phase: 'startup' | 'password' | 'connecting' | 'ready' = 'startup';

  private onClientData(chunk: Buffer): void {
    if (this.closed) return;
    this.clientReader.push(chunk);
    // While we wait (approval, upstream login) a pipelining client could keep sending: stop
    // reading once a bounded amount is buffered; the pump resumes the socket when it catches up.
    if (this.clientReader.buffered > this.clientBufferLimit) this.client.pause();
    void this.pumpClient();
  }

  /** Resumes reading from the agent unless something still needs it paused. */
  private resumeClient(): void {
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
          await this.onStartupPacket(p);
          continue;
        }
        if (this.phase === 'connecting') break;
        const frame = this.clientReader.next();
        if (!frame) break;
        if (this.phase === 'password') {
          await this.onPassword(frame);
          continue;
        }
        if (!corked && this.upstream) {
          corked = this.upstream.socket;
          corked.cork();
        }
        const work = this.onClientFrame(frame);
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

  private async onStartupPacket(p: ReturnType<MessageReader['nextStartup']> & object): Promise<void> {
    if (p.kind === 'ssl-request') {
      if (!this.cfg.clientTls) {
        this.client.write('N');
        return;
      }
      this.client.write('S');
      const rest = this.clientReader.drain();
      const plain = this.client;
      plain.removeAllListeners('data');
      const tls = new TLSSocket(plain, { isServer: true, secureContext: this.cfg.clientTls });
      if (rest.length) plain.unshift(rest);
      this.client = tls;
      this.attachClient(tls);
      tls.on('data', (chunk: Buffer) => this.onClientData(chunk));
      return;
    }
    if (p.kind === 'gssenc-request') {
      this.client.write('N'); // no GSSAPI encryption: the client falls back to TLS or plain
      return;
    }
    if (p.kind === 'cancel') {
      // Keys are 4 bytes in protocol 3.0; anything else cannot be one of ours.
      if (p.secretKey.length === 4) this.cfg.cancels.fire(p.processId, p.secretKey.readInt32BE(0));
      this.client.end();
      this.closed = true;
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
      this.client.write(msg.negotiateProtocolVersion(0, unknown));
    }
    this.startupParams = p.params;
    const user = p.params.get('user') ?? '';
    const wantsToken = this.cfg.tokenVerifier && (this.cfg.requireToken || user === this.cfg.tokenUser);
    if (wantsToken) {
      this.phase = 'password';
      this.client.write(msg.authenticationCleartextPassword());
      return;
    }
    await this.admit();
  }

  private startupParams = new Map<string, string>();

  private async onPassword(frame: Frame): Promise<void> {
    if (frame.type !== Frontend.Password) throw new ProtocolError('expected a password message');
    const token = new BodyReader(frame.body).cstring();
    try {
      const verified = await this.cfg.tokenVerifier!.verify(token);
      this.identity = {
        ...this.cfg.podIdentity,
        user: verified.user,
        groups: verified.groups,
        issuer: verified.issuer,
      };
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      this.sendFatal(SqlState.invalidPassword, `the password must be a valid OIDC ID token: ${reason}`);
      return;
    }
    await this.admit();
  }

  /** Policy admission, credentials, upstream login, then the agent's AuthenticationOk. */
  private async admit(): Promise<void> {
    this.phase = 'connecting';
    const policy = this.cfg.policyFor(this.identity);
    if ('refused' in policy) {
      this.sendFatal(SqlState.invalidAuthorization, policy.refused);
      return;
    }
    this.policy = policy;
    this.masks = policy.masking.hasColumnRules || policy.masking.hasDetectors;
    try {
      this.recorder = this.cfg.recorderFor(this.id, this.identity);
    } catch (err) {
      this.sendFatal('53000', `chaperone: ${(err as Error).message}`);
      return;
    }
    const remote = `${this.client.remoteAddress ?? '?'}:${this.client.remotePort ?? '?'}`;
    this.recorder.record('session.start', {
      protocol: 'postgres',
      client: remote,
      application: this.startupParams.get('application_name'),
    });
    try {
      this.credential = await this.cfg.credentials.credentialFor(this.cfg.connection);
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      this.sendFatal(
        SqlState.cannotConnectNow,
        `no credential for connection ${this.cfg.connection}: ${reason}`,
      );
      return;
    }
    this.recorder.record('credential.issued', {
      description: this.credential.description,
      expiresAt: this.credential.expiresAt?.toISOString(),
    });
    const forwarded: Record<string, string> = {};
    for (const [k, v] of this.startupParams) if (FORWARDED_STARTUP_PARAMS.has(k)) forwarded[k] = v;
    // The SQL analysis reads the query text as UTF-8; a client encoding such as SJIS or GBK (where a
    // backslash can be the second byte of a character) would make the server see other statements.
    forwarded.client_encoding = 'UTF8';
    try {
      this.upstream = await connectUpstream(this.cfg.target, this.credential, forwarded);
    } catch (err) {
      const e =
        err instanceof UpstreamError ? err : new UpstreamError(String(err), SqlState.connectionFailure);
      this.cfg.log('warn', 'upstream connection failed', {
        connection: this.cfg.connection,
        error: e.message,
      });
      this.sendFatal(
        SqlState.connectionFailure,
        `connection ${this.cfg.connection}: upstream login failed: ${e.message}`,
      );
      return;
    }
    if (this.closed) {
      this.upstream.socket.destroy();
      return;
    }
    const cred = this.credential;
    this.catalog = new ColumnCatalog(this.cfg.target, async () => cred);
    const up = this.upstream;
    const fakePid = randomInt(1, 2 ** 31 - 1);
    const fakeKey = randomInt(0, 2 ** 31 - 1);
    this.unregisterCancel = this.cfg.cancels.register(fakePid, fakeKey, () => this.forwardCancel());
    const out: Buffer[] = [msg.authenticationOk()];
    for (const [k, v] of up.parameters) out.push(msg.parameterStatus(k, v));
    out.push(msg.backendKeyData(fakePid, fakeKey), msg.readyForQuery('I'));
    this.client.write(Buffer.concat(out));
    up.socket.on('data', (chunk: Buffer) => this.onServerData(chunk));
    up.socket.on('error', (err) => this.close(`server error: ${err.message}`));
    up.socket.on('close', () => this.close('server closed the connection'));
    // Backpressure both ways: a slow reader pauses the other side instead of growing buffers.
    up.socket.on('drain', () => {
      this.upstreamCongested = false;
      this.resumeClient();
    });
    this.client.on('drain', () => {
      this.clientCongested = false;
      if (!this.serverBusy) up.socket.resume();
    });
    this.phase = 'ready';
    this.cfg.log('info', 'session started', { session: this.id, identity: describeIdentity(this.identity) });
    if (up.leftover.length) this.onServerData(up.leftover);
  }

  private forwardCancel(): void {
    const up = this.upstream;
    if (!up) return;
    // A CancelRequest goes on a fresh connection to the server, with the real backend key.
    const s = netConnect({ host: this.cfg.target.host, port: this.cfg.target.port }, () => {
      s.end(serialize.cancel(up.backendKey.processId, up.backendKey.secretKey));
    });
    s.on('error', (err) =>
      this.cfg.log('warn', 'cancel request failed', { session: this.id, error: err.message }),
    );
  }

  // ---------------------------------------------------------------- client → server

  /** Handles one client frame; returns a promise when the session must wait (approvals). */
  private onClientFrame(f: Frame): Promise<void> | undefined {
    const up = this.upstream?.socket;
    if (!up) return undefined;
    switch (f.type) {
      case Frontend.Query: {
        const sql = new BodyReader(f.body).cstring();
        return this.gate(sql, f.raw, (raw, allowed, copy) => {
          this.pending.push({ kind: 'query', copy: allowed ? copy : undefined });
          this.sendUp(raw);
        });
      }
      case Frontend.Parse: {
        const r = new BodyReader(f.body);
        const name = r.cstring();
        const sql = r.cstring();
        return this.gate(sql, f.raw, (raw, allowed) => {
          if (allowed) this.statements.set(name, { text: sql });
          this.pending.push({ kind: 'parse', statement: name });
          this.sendUp(raw);
        });
      }
      case Frontend.Bind: {
        const r = new BodyReader(f.body);
        const portal = r.cstring();
        const statement = r.cstring();
        const nParamFormats = r.int16();
        r.bytes(nParamFormats * 2);
        const nParams = r.int16();
        for (let i = 0; i < nParams; i++) {
          const len = r.int32();
          if (len > 0) r.bytes(len);
        }
        const nFormats = r.int16();
        const formats: number[] = [];
        for (let i = 0; i < nFormats; i++) formats.push(r.int16());
        this.portals.set(portal, { statement, formats });
        this.pending.push({ kind: 'bind' });
        return this.sendUpAsync(f.raw);
      }
      case Frontend.Describe: {
        const r = new BodyReader(f.body);
        const what = r.byte();
        const name = r.cstring();
        this.pending.push(
          what === 0x53
            ? { kind: 'describe-statement', statement: name, hidden: false }
            : { kind: 'describe-portal', portal: name },
        );
        return this.sendUpAsync(f.raw);
      }
      case Frontend.Execute: {
        const portalName = new BodyReader(f.body).cstring();
        const portal = this.portals.get(portalName);
        const stmt = portal ? this.statements.get(portal.statement) : undefined;
        // Masking needs the row layout; a client that executes without ever describing gets a
        // hidden Describe first, whose answer we keep for ourselves.
        if (this.masks && portal && stmt && !portal.layout && !stmt.columns) {
          this.pending.push({ kind: 'describe-statement', statement: portal.statement, hidden: true });
          this.sendUp(serialize.describe({ type: 'S', name: portal.statement }));
        }
        this.pending.push({ kind: 'execute', portal: portalName });
        return this.sendUpAsync(f.raw);
      }
      case Frontend.Close: {
        const r = new BodyReader(f.body);
        const what = r.byte();
        const name = r.cstring();
        if (what === 0x53) this.statements.delete(name);
        else this.portals.delete(name);
        this.pending.push({ kind: 'close' });
        return this.sendUpAsync(f.raw);
      }
      case Frontend.Sync:
        this.pending.push({ kind: 'sync' });
        return this.sendUpAsync(f.raw);
      case Frontend.Flush:
      case Frontend.CopyData:
      case Frontend.CopyDone:
      case Frontend.CopyFail:
        return this.sendUpAsync(f.raw);
      case Frontend.Terminate:
        this.sendUp(f.raw);
        this.close('client terminated');
        return undefined;
      case Frontend.FunctionCall:
        // Fast-path calls name functions by OID (lo_import and friends): no text to judge, so no.
        return this.gateDenied(
          'fast-path function call',
          'function calls through the fast-path interface are not allowed through Chaperone',
        );
      default:
        throw new ProtocolError(`unknown message type ${String.fromCharCode(f.type)}`);
    }
  }

  private sendUp(raw: Buffer): boolean {
    const up = this.upstream?.socket;
    if (!up) return true;
    const ok = up.write(raw);
    if (!ok) {
      this.upstreamCongested = true;
      this.client.pause();
    }
    return ok;
  }

  private sendUpAsync(raw: Buffer): undefined {
    this.sendUp(raw);
    return undefined;
  }

  /**
   * Decides a statement text. Allowed: forward as is. Denied: forward a stand-in that fails on
   * the server at the same place in the stream, so the server's transaction state and message
   * ordering stay exactly what the client expects; its error is rewritten into our denial.
   * Approval: tell the client at once, wait, then one of the two.
   */
  private gate(
    sql: string,
    raw: Buffer,
    forward: (raw: Buffer, allowed: boolean, copy?: CopyMasking) => void,
  ): Promise<void> | undefined {
    const policy = this.policy;
    if (!policy) return undefined;
    this.statementCount++;
    const verdict = policy.check(sql);
    // DDL may rename or drop what cached column origins point at.
    if (verdict.summary.classes.includes('ddl')) this.catalog?.invalidate();
    if (verdict.action !== 'deny' && verdict.ask && this.catalog) {
      // Views, child tables and user functions over masked columns: only the catalog can tell.
      const catalog = this.catalog;
      const ask = verdict.ask;
      return Promise.all([
        catalog.inspectRelations(ask.relations),
        catalog.inspectFunctions(ask.functions),
      ]).then(([relations, functions]) =>
        this.decide(policy.review(verdict, { relations, functions }), raw, forward),
      );
    }
    return this.decide(verdict, raw, forward);
  }

  private decide(
    verdict: GuardVerdict,
    raw: Buffer,
    forward: (raw: Buffer, allowed: boolean, copy?: CopyMasking) => void,
  ): Promise<void> | undefined {
    if (verdict.action === 'allow') {
      this.recordQuery(verdict, 'allowed');
      forward(raw, true, verdict.copy);
      return undefined;
    }
    if (verdict.action === 'deny') {
      this.recordQuery(verdict, 'denied', verdict.reason);
      forward(this.denialStandIn(raw, verdict.reason, verdict.rule), false);
      return undefined;
    }
    return this.awaitApproval(verdict, raw, forward);
  }

  /** Denies a message that has no SQL text to judge, in the simple-query shape the client expects. */
  private gateDenied(operation: string, reason: string): undefined {
    this.recorder?.record('denied', { operation, reason });
    this.pending.push({ kind: 'query' });
    this.sendUp(this.denialStandIn(undefined, reason, 'gateway'));
    return undefined;
  }

  private async awaitApproval(
    verdict: Extract<GuardVerdict, { action: 'approve' }>,
    raw: Buffer,
    forward: (raw: Buffer, allowed: boolean, copy?: CopyMasking) => void,
  ): Promise<void> {
    this.recordQuery(verdict, 'pending', verdict.reason);
    const gate = await this.cfg.approvals.open({
      sessionId: this.id,
      connection: this.cfg.connection,
      policy: verdict.policy,
      rule: verdict.rule,
      identity: this.identity,
      operation: {
        type: 'postgres',
        text: verdict.summary.text,
        fingerprint: verdict.summary.fingerprint,
        classes: verdict.summary.classes,
        riskReasons: verdict.summary.risks,
      },
      approvers: verdict.approvers,
      timeoutMs: verdict.timeoutMs,
    });
    this.recorder?.record(
      'approval.requested',
      { request: gate.name, text: verdict.summary.text, reasons: [verdict.reason] },
      verdict.rule,
    );
    this.client.write(
      msg.noticeResponse({
        code: '00000',
        message: `chaperone: waiting for approval of access request ${gate.name} (${verdict.reason})`,
        hint: gate.howToApprove,
      }),
    );
    const onGone = () => gate.cancel();
    this.client.once('close', onGone);
    const outcome = await gate.decision;
    this.client.off('close', onGone);
    if (this.closed) return;
    if (outcome.verdict === 'approved') {
      this.recorder?.record(
        'approval.decided',
        { request: gate.name, verdict: 'approved', by: outcome.by, comment: outcome.comment },
        verdict.rule,
      );
      forward(raw, true, verdict.copy);
      return;
    }
    const reason =
      outcome.verdict === 'denied'
        ? `access request ${gate.name} was denied by ${outcome.by}${outcome.comment ? `: ${outcome.comment}` : ''}`
        : outcome.verdict === 'expired'
          ? `access request ${gate.name} was not approved within ${Math.round(verdict.timeoutMs / 1000)} s`
          : `approval is unavailable: ${outcome.reason}`;
    this.recorder?.record(
      'approval.decided',
      {
        request: gate.name,
        verdict: outcome.verdict === 'denied' ? 'denied' : 'expired',
        by: outcome.verdict === 'denied' ? outcome.by : undefined,
      },
      verdict.rule,
    );
    forward(this.denialStandIn(raw, reason, verdict.rule), false);
  }

  /** A Query or Parse whose SQL is a unique syntax error standing in for the denied one. */
  private denialStandIn(raw: Buffer | undefined, reason: string, rule: string): Buffer {
    const nonce = randomBytes(8).toString('hex');
    const sql = `CHAPERONE_DENIED_${nonce}`;
    this.denials.set(nonce, {
      code: SqlState.insufficientPrivilege,
      message: `chaperone: ${reason}`,
      detail: `Denied by policy rule ${rule}.`,
      hint: 'Ask your platform team for access, or for an approver if the rule asks for approval.',
    });
    if (raw?.[0] === Frontend.Parse) {
      const r = new BodyReader(raw.subarray(5));
      const name = r.cstring();
      return serialize.parse({ name, text: sql });
    }
    return serialize.query(sql);
  }

  private recordQuery(
    verdict: GuardVerdict,
    decision: 'allowed' | 'denied' | 'pending',
    reason?: string,
  ): void {
    this.flushCoalesced();
    this.recorder?.record(
      'query',
      {
        text: verdict.summary.text,
        fingerprint: verdict.summary.fingerprint,
        classes: verdict.summary.classes,
        tables: verdict.summary.tables,
        risks: verdict.summary.risks,
        decision,
        reason,
      },
      verdict.rule,
    );
  }

  // ---------------------------------------------------------------- server → client

  private onServerData(chunk: Buffer): void {
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
        const work = this.onServerFrame(f);
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

  private toClient(buf: Buffer): void {
    if (!this.client.write(buf)) {
      this.clientCongested = true;
      this.upstream?.socket.pause();
    }
  }

  private onServerFrame(f: Frame): Promise<void> | undefined {
    const head = this.pending[0];
    switch (f.type) {
      case Backend.DataRow: {
        let layout: ResultLayout | undefined;
        if (!this.masks) {
          // Fast path: nothing to mask in this session.
        } else if (head?.kind === 'query') layout = head.layout;
        else if (head?.kind === 'execute') {
          const portal = this.portals.get(head.portal);
          layout = portal?.layout;
          const stmt = portal && !layout ? this.statements.get(portal.statement) : undefined;
          if (portal && stmt?.columns) {
            // First row of a portal nobody described: its layout is the statement's columns in
            // the formats Bind asked for, built once per statement and format list.
            const key = portal.formats.join(',');
            const cached = stmt.layouts?.get(key);
            if (cached) {
              portal.layout = cached;
              layout = cached;
            } else {
              return this.buildLayout(withFormats(stmt.columns, portal.formats)).then((l) => {
                portal.layout = l;
                stmt.layouts ??= new Map();
                stmt.layouts.set(key, l);
                this.onServerFrame(f);
              });
            }
          }
        }
        this.result.rows++;
        this.result.bytes += f.raw.length;
        if (layout?.masker) {
          const { frame, masked } = layout.masker.rewrite(f.body);
          this.result.masked += masked;
          this.toClient(frame);
        } else this.toClient(f.raw);
        return undefined;
      }
      case Backend.RowDescription: {
        const columns = parseRowDescription(f.body);
        if (head?.kind === 'describe-statement') {
          this.pending.shift();
          const st = this.statements.get(head.statement);
          if (st) st.columns = columns;
          if (head.hidden) return undefined;
          this.toClient(f.raw);
          return undefined;
        }
        this.toClient(f.raw);
        if (head?.kind === 'describe-portal') {
          this.pending.shift();
          const portal = this.portals.get(head.portal);
          if (portal && this.masks) {
            return this.buildLayout(columns).then((l) => {
              portal.layout = l;
            });
          }
          return undefined;
        }
        if (head?.kind === 'query' && this.masks) {
          return this.buildLayout(columns).then((l) => {
            head.layout = l;
          });
        }
        return undefined;
      }
      case Backend.ParameterDescription:
        if (head?.kind === 'describe-statement' && head.hidden) return undefined;
        this.toClient(f.raw);
        return undefined;
      case Backend.NoData:
        if (head?.kind === 'describe-statement' || head?.kind === 'describe-portal') {
          this.pending.shift();
          if (head.kind === 'describe-statement' && head.hidden) return undefined;
        }
        this.toClient(f.raw);
        return undefined;
      case Backend.ParseComplete:
      case Backend.BindComplete:
      case Backend.CloseComplete:
        this.pending.shift();
        this.toClient(f.raw);
        return undefined;
      case Backend.CommandComplete:
      case Backend.EmptyQueryResponse:
      case Backend.PortalSuspended: {
        this.flushResult(
          f.type === Backend.CommandComplete ? f.body.toString('utf8', 0, f.body.length - 1) : undefined,
          undefined,
          head?.kind === 'execute' ? this.portals.get(head.portal)?.statement : undefined,
        );
        if (head?.kind === 'execute') {
          this.pending.shift();
        } else if (head?.kind === 'query') {
          head.layout = undefined;
        }
        this.toClient(f.raw);
        return undefined;
      }
      case Backend.CopyOutResponse:
        this.toClient(f.raw);
        if (head?.kind === 'query' && this.masks) return this.startCopyMasking(head, f.body);
        return undefined;
      case Backend.CopyData: {
        this.result.bytes += f.raw.length;
        const masker = head?.kind === 'query' ? head.copyMasker : undefined;
        if (masker) {
          const { data, masked } = masker.rewrite(f.body);
          this.result.masked += masked;
          this.toClient(copyData(data));
        } else this.toClient(f.raw);
        this.result.rows++;
        return undefined;
      }
      case Backend.ErrorResponse: {
        const fields = msg.parseNoticeFields(f.body);
        const m = /CHAPERONE_DENIED_([0-9a-f]{16})/.exec(fields.get('M') ?? '');
        const denial = m?.[1] ? this.denials.get(m[1]) : undefined;
        if (m?.[1]) this.denials.delete(m[1]);
        this.toClient(denial ? msg.errorResponse(denial) : this.masks ? redactErrorDetail(f, fields) : f.raw);
        if (!denial) this.flushResult(undefined, fields.get('M'));
        // In the extended protocol the server now skips everything up to Sync.
        if (head && head.kind !== 'query') {
          while (this.pending.length && this.pending[0]?.kind !== 'sync') this.pending.shift();
        } else if (head?.kind === 'query') head.layout = undefined;
        return undefined;
      }
      case Backend.ReadyForQuery:
        this.pending.shift();
        // Stand-ins the server skipped (after an earlier error) will never report back.
        if (this.pending.length === 0) this.denials.clear();
        this.toClient(f.raw);
        return undefined;
      default:
        // ParameterStatus, NoticeResponse, NotificationResponse, CopyIn/Both responses, CopyDone…
        this.toClient(f.raw);
        return undefined;
    }
  }

  /** COPY … TO rows carry no RowDescription: mask them by position (see CopyMasking). */
  private async startCopyMasking(head: Extract<Pending, { kind: 'query' }>, body: Buffer): Promise<void> {
    const masking = this.policy?.masking;
    if (!masking) return;
    const positions = new Map<number, MaskStrategy>();
    for (const c of head.copy?.columns ?? []) positions.set(c.position - 1, c.strategy);
    if (head.copy?.table && this.catalog) {
      const cols = await this.catalog.tableColumns(head.copy.table);
      if (cols.length === 0) {
        throw new ProtocolError(
          `cannot resolve the columns of ${head.copy.table} to mask COPY rows`,
          SqlState.internalError,
        );
      }
      const [schema = '', table = ''] = head.copy.table.split('.');
      cols.forEach((c, i) => {
        const strategy = masking.strategyForColumn(schema, table, c.name);
        if (strategy) positions.set(i, strategy);
      });
    }
    if (positions.size === 0 && !masking.hasDetectors) return;
    // Binary COPY rows cannot be masked cell by cell here: end the session rather than leak.
    if (body[0] === 1) {
      throw new ProtocolError(
        'binary COPY of masked data is not supported; use text or CSV format',
        SqlState.featureNotSupported,
      );
    }
    head.copyMasker = new CopyRowMasker(positions, masking, this.cfg.hashKey, head.copy?.format);
  }

  /**
   * Records the result that just completed. Results of repeated executions of one prepared
   * statement (the extended-protocol hot path: Bind/Execute/Sync per transaction) are summed into
   * one event, written when another statement starts, an error happens, the session ends, or after
   * RESULT_COALESCE_MS — recording each execution cost a third of the gateway's throughput. The
   * statement and its decision were recorded, unaggregated, when it was parsed.
   */
  private flushResult(command: string | undefined, error?: string, statement?: string): void {
    const r = this.result;
    this.result = { rows: 0, bytes: 0, masked: 0 };
    if (!(r.rows || r.bytes || command || error)) return;
    const agg = this.coalesced;
    if (
      statement !== undefined &&
      !error &&
      agg &&
      agg.statement === statement &&
      Date.now() - agg.since < RESULT_COALESCE_MS
    ) {
      agg.rows += r.rows;
      agg.bytes += r.bytes;
      agg.masked += r.masked;
      agg.executions++;
      agg.command = command;
      return;
    }
    this.flushCoalesced();
    if (statement !== undefined && !error) {
      this.coalesced = { statement, since: Date.now(), executions: 1, command, ...r };
      // An idle session still gets its summed results written within the window.
      setTimeout(() => this.flushCoalesced(), RESULT_COALESCE_MS).unref();
      return;
    }
    this.recorder?.record('result', { rows: r.rows, bytes: r.bytes, maskedValues: r.masked, command, error });
  }

  private coalesced?: {
    statement: string;
    since: number;
    executions: number;
    rows: number;
    bytes: number;
    masked: number;
    command?: string;
  };

  private flushCoalesced(): void {
    const agg = this.coalesced;
    if (!agg) return;
    this.coalesced = undefined;
    this.recorder?.record('result', {
      rows: agg.rows,
      bytes: agg.bytes,
      maskedValues: agg.masked,
      command: agg.command,
      ...(agg.executions > 1 ? { executions: agg.executions } : {}),
    });
  }

  private async buildLayout(columns: ResultColumn[]): Promise<ResultLayout> {
    const masking = this.policy?.masking;
    if (!masking || (!masking.hasColumnRules && !masking.hasDetectors)) return { columns };
    let origins = new Map<string, { schema: string; table: string; column: string }>();
    const keyed = columns.filter((c) => c.tableOid !== 0 && c.attnum > 0);
    if (masking.hasColumnRules && keyed.length && this.catalog) origins = await this.catalog.resolve(keyed);
    const actions: CellAction[] | undefined = planColumns(columns, masking, origins);
    return actions
      ? { columns, masker: new RowMasker(columns, actions, masking, this.cfg.hashKey) }
      : { columns };
  }

  // ---------------------------------------------------------------- teardown

  private sendFatal(code: string, message: string): void {
    this.cfg.log('warn', 'session refused', { session: this.id, code, message });
    if (!this.client.destroyed) this.client.end(msg.errorResponse({ severity: 'FATAL', code, message }));
    this.close(message);
  }

  private fatal(err: unknown): void {
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
    this.unregisterCancel?.();
    this.upstream?.socket.destroy();
    if (!this.client.destroyed) this.client.end();
    void this.catalog?.close();
    this.flushCoalesced();
    this.recorder?.record('session.end', {
      reason,
      statements: this.statementCount,
      durationMs: Date.now() - this.startedAt,
    });
    void this.recorder?.close();
  }
}

// Constraint errors echo values: "Failing row contains (…)", "Key (ssn)=(…) already exists".
const VALUE_ECHOING_DETAIL = /^(Failing row contains|Key \(|Key \S+ is not present)/;

/** With masking on, error details that echo row values are replaced: they may hold masked data. */
function redactErrorDetail(f: Frame, fields: Map<string, string>): Buffer {
  const detail = fields.get('D');
  if (!detail || !VALUE_ECHOING_DETAIL.test(detail)) return f.raw;
  fields.set('D', 'chaperone: detail removed because it may contain masked values');
  return msg.encodeNoticeFields(Backend.ErrorResponse, fields);
}

function copyData(data: Buffer): Buffer {
  const out = Buffer.allocUnsafe(5 + data.length);
  out[0] = Backend.CopyData;
  out.writeInt32BE(4 + data.length, 1);
  data.copy(out, 5);
  return out;
}

function parseRowDescription(body: Buffer): ResultColumn[] {
  const r = new BodyReader(body);
  const n = r.int16();
  const cols: ResultColumn[] = [];
  for (let i = 0; i < n; i++) {
    const name = r.cstring();
    const tableOid = r.int32() >>> 0;
    const attnum = r.int16();
    const typeOid = r.int32() >>> 0;
    r.int16(); // typlen
    r.int32(); // typmod
    const format = r.int16();
    cols.push({ name, tableOid, attnum, typeOid, format });
  }
  return cols;
}

/** Statement columns with a portal's result format codes (none = text, one = all, else per column). */
function withFormats(columns: ResultColumn[], formats: number[]): ResultColumn[] {
  return columns.map((c, i) => ({
    ...c,
    format: formats.length === 0 ? 0 : formats.length === 1 ? (formats[0] ?? 0) : (formats[i] ?? 0),
  }));
}
