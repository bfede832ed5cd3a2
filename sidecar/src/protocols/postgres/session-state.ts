import type { Socket } from 'node:net';
import type { SecureContext, TLSSocket } from 'node:tls';
import type { Logger } from '@chaperone/api';
import type { ApprovalGate } from '../../approvals/approval-gate.js';
import type { CredentialSource } from '../../credentials/credential-source.js';
import type { Identity } from '../../identity/identity.js';
import type { TokenVerifier } from '../../identity/token-verifier.js';
import type { Refusal } from '../../pipeline/refusal.js';
import type { SessionPipeline } from '../../pipeline/session-pipeline.js';
import type { SessionRecorder } from '../../recording/session-recorder.js';
import type { ColumnCatalog } from './column-catalog.js';
import type { DenialStandIns } from './denial-stand-ins.js';
import type { ExtendedQueryState } from './extended-query.js';
import type { MaskingContext } from './result-masking.js';
import type { ResultRecording } from './result-recording.js';
import type { SessionPolicy, SessionPolicyFactory } from './statement-guard.js';
import type { UpstreamConnection, UpstreamTarget } from './upstream.js';
import type { MessageReader } from './wire/message-reader.js';

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
  log: Logger;
}

/**
 * One session's state as the startup, client-frame and server-frame handlers see it
 * (PostgresSession implements it; an interface keeps those files free of an import circle).
 */
export interface PostgresSessionState {
  readonly id: string;
  readonly cfg: PostgresSessionConfig;
  client: Socket | TLSSocket;
  readonly clientReader: MessageReader;
  readonly pipeline: SessionPipeline<SessionPolicy>;
  readonly query: ExtendedQueryState;
  readonly denials: DenialStandIns;
  readonly results: ResultRecording;
  phase: 'startup' | 'password' | 'connecting' | 'ready';
  /** TLS / GSS encryption requests already answered (each may come once). */
  sslDone: boolean;
  gssDone: boolean;
  startupParams: Map<string, string>;
  upstream?: UpstreamConnection;
  policy?: SessionPolicy;
  catalog?: ColumnCatalog;
  maskingContext?: MaskingContext;
  /** False when policy masks nothing for this session: rows then pass through untouched. */
  masks: boolean;
  closed: boolean;
  unregisterCancel?: () => void;
  upstreamCongested: boolean;
  clientCongested: boolean;
  serverBusy: boolean;
  attachClient(sock: Socket | TLSSocket): void;
  onClientData(chunk: Buffer): void;
  onServerData(chunk: Buffer): void;
  resumeClient(): void;
  sendUp(raw: Buffer): boolean;
  toClient(buf: Buffer): void;
  refuse(refusal: Refusal): void;
  sendFatal(code: string, message: string): void;
  close(reason: string): void;
}
