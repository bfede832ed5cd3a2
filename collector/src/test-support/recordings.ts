// Builds recordings the way the sidecar's SessionRecorder does (same numbering and hash chain),
// for tests and measurements.
import { createHash } from 'node:crypto';
import {
  canonicalJson,
  RECORDING_SCHEMA_VERSION,
  type RecordedIdentity,
  type RecordingEvent,
  type RecordingEventType,
} from '@chaperone/api';
import type { PreparedEvent } from '../store/event-store.js';

type DataOf<T extends RecordingEventType> = Extract<RecordingEvent, { type: T }>['data'];

export interface SessionOptions {
  connection?: string;
  identity?: RecordedIdentity;
  /** Epoch ms of seq 0. */
  startMs?: number;
}

export class RecordingBuilder {
  readonly events: RecordingEvent[] = [];
  private prevHash = '';
  private clockMs: number;
  readonly connection: string;
  readonly identity: RecordedIdentity;

  constructor(
    readonly sessionId: string,
    opts: SessionOptions = {},
  ) {
    this.clockMs = opts.startMs ?? Date.parse('2025-03-01T10:00:00.000Z');
    this.connection = opts.connection ?? 'orders-db';
    this.identity = opts.identity ?? {
      serviceAccount: 'agents/orders-agent',
      pod: 'orders-agent-0',
      groups: [],
    };
  }

  add<T extends RecordingEventType>(
    type: T,
    data: DataOf<T>,
    opts: { rule?: string; afterMs?: number } = {},
  ): this {
    this.clockMs += opts.afterMs ?? 10;
    const event = {
      v: RECORDING_SCHEMA_VERSION,
      type,
      sessionId: this.sessionId,
      seq: this.events.length,
      time: new Date(this.clockMs).toISOString(),
      identity: this.identity,
      connection: this.connection,
      rule: opts.rule,
      prevHash: this.prevHash,
      data,
    } as RecordingEvent;
    const clean = JSON.parse(canonicalJson(event)) as RecordingEvent;
    this.prevHash = sha256(canonicalJson(clean));
    this.events.push(clean);
    return this;
  }
}

export const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

export function prepare(events: readonly RecordingEvent[]): PreparedEvent[] {
  return events.map((event) => {
    const canonical = canonicalJson(event);
    return { event, canonical, hash: sha256(canonical) };
  });
}

/**
 * A typical SQL session: start, credential, an allowed SELECT with masked values, a DELETE that
 * waits for approval and gets it, a denied DROP, end. 11 events.
 */
export function sqlSession(
  sessionId: string,
  opts: SessionOptions & { table?: string } = {},
): RecordingEvent[] {
  const table = opts.table ?? 'orders';
  return new RecordingBuilder(sessionId, opts)
    .add('session.start', { protocol: 'postgres', client: '127.0.0.1:41000', application: 'psql' })
    .add('credential.issued', { description: 'JIT role chaperone_x', expiresAt: '2025-03-01T11:00:00.000Z' })
    .add(
      'query',
      {
        text: `SELECT id, email FROM ${table} WHERE id < 10`,
        fingerprint: 'fp-select',
        classes: ['read'],
        tables: [`public.${table}`],
        risks: [],
        decision: 'allowed',
      },
      { rule: 'orders/readers' },
    )
    .add('result', { rows: 9, bytes: 420, maskedValues: 9, command: 'SELECT 9' })
    .add(
      'query',
      {
        text: `DELETE FROM ${table} WHERE id = 3`,
        fingerprint: 'fp-delete',
        classes: ['write'],
        tables: [`public.${table}`],
        risks: [],
        decision: 'pending',
      },
      { rule: 'orders/writers' },
    )
    .add('approval.requested', {
      request: 'ar-1',
      text: `DELETE FROM ${table} WHERE id = 3`,
      reasons: ['write'],
    })
    .add(
      'approval.decided',
      { request: 'ar-1', verdict: 'approved', by: 'bob@example.com', comment: 'ticket 42' },
      { rule: 'orders/writers', afterMs: 5_000 },
    )
    .add('result', { rows: 1, bytes: 0, maskedValues: 0, command: 'DELETE 1' })
    .add(
      'query',
      {
        text: `DROP TABLE ${table}`,
        fingerprint: 'fp-drop',
        classes: ['ddl'],
        tables: [`public.${table}`],
        risks: ['drop'],
        decision: 'denied',
        reason: 'DDL is not allowed',
      },
      { rule: 'orders/no-ddl' },
    )
    .add('result', { rows: 0, bytes: 0, maskedValues: 0, error: 'chaperone: DDL is not allowed' })
    .add('session.end', { reason: 'client closed', statements: 3, durationMs: 6_000 }).events;
}

/** A terminal session with output frames (seconds since the session start). */
export function sshSession(sessionId: string, opts: SessionOptions = {}): RecordingEvent[] {
  return new RecordingBuilder(sessionId, { connection: 'bastion', ...opts })
    .add('session.start', { protocol: 'ssh', client: '127.0.0.1:50000' })
    .add('command', { text: 'shell', decision: 'allowed' }, { rule: 'bastion/shell' })
    .add('output', {
      asciicast: [
        [0.1, 'o', '$ '],
        [0.5, 'i', 'ls\r'],
        [0.6, 'o', 'ls\r\nREADME.md\r\n$ '],
      ],
    })
    .add('output', { asciicast: [[1.2, 'o', 'exit\r\n']] })
    .add('session.end', { reason: 'exit 0', statements: 1, durationMs: 1_300 }).events;
}
