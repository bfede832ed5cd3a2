import { createHash } from 'node:crypto';
import {
  canonicalJson,
  RECORDING_SCHEMA_VERSION,
  type RecordedIdentity,
  type RecordingEvent,
  type RecordingEventType,
  validateRecordingEvent,
} from '@chaperone/api';
import type { Identity } from '../identity/identity.js';

/** Where finished events go (JSON-lines files standalone; the spool + collector later). */
export interface RecordingSink {
  /** `canonical` is the event's canonical JSON: the exact text its hash was computed over. */
  write(event: RecordingEvent, canonical: string): void;
  flush(): Promise<void>;
}

export type DataOf<T extends RecordingEventType> = Extract<RecordingEvent, { type: T }>['data'];

/**
 * Numbers and chains the events of one session: each carries the sha256 of the previous one's
 * canonical JSON, so a deleted, reordered or edited event breaks the chain.
 */
export class SessionRecorder {
  private seq = 0;
  private prevHash = '';
  private identity: RecordedIdentity;
  /** The parts of every event that never change in a session, serialized once. */
  private fixed: { connection: string; identity: string; sessionId: string };

  /**
   * A recorder that continues a session recorded by an earlier sidecar process (to close it after
   * that process died): its next event gets `seq` and `prevHash` and repeats the recorded identity.
   */
  static resume(sink: RecordingSink, at: ResumePoint): SessionRecorder {
    const r = new SessionRecorder(sink, at.sessionId, at.connection, { groups: [] });
    r.identity = at.identity;
    r.fixed = { ...r.fixed, identity: canonicalJson(at.identity) };
    r.seq = at.seq;
    r.prevHash = at.prevHash;
    return r;
  }

  constructor(
    private readonly sink: RecordingSink,
    readonly sessionId: string,
    readonly connection: string,
    identity: Identity,
  ) {
    this.identity = toRecordedIdentity(identity);
    this.fixed = {
      connection: JSON.stringify(connection),
      identity: canonicalJson(this.identity),
      sessionId: JSON.stringify(sessionId),
    };
  }

  record<T extends RecordingEventType>(type: T, data: DataOf<T>, rule?: string): void {
    const event = {
      v: RECORDING_SCHEMA_VERSION,
      type,
      sessionId: this.sessionId,
      seq: this.seq++,
      time: new Date().toISOString(),
      identity: this.identity,
      connection: this.connection,
      rule,
      prevHash: this.prevHash,
      data,
    } as RecordingEvent;
    // Validated here as well as at the collector: a producer bug surfaces where it is made, instead
    // of as a batch the collector refuses long after the session ended.
    const valid = validateRecordingEvent(event);
    if (!valid.ok)
      throw new Error(`recording event ${type} #${event.seq} is invalid: ${valid.errors.join('; ')}`);
    // Serialized once: the same text is hashed into the chain and written out.
    const canonical = this.canonical(event);
    this.prevHash = createHash('sha256').update(canonical).digest('hex');
    this.sink.write(event, canonical);
  }

  close(): Promise<void> {
    return this.sink.flush();
  }

  /**
   * canonicalJson(event), assembled with the envelope's keys in their sorted order and the
   * session-constant parts pre-serialized: this runs for every statement on the data path.
   * recording-events.test.ts-style equality with canonicalJson is checked in session-recorder.test.ts.
   */
  private canonical(e: RecordingEvent): string {
    const f = this.fixed;
    const rule = e.rule === undefined ? '' : `"rule":${JSON.stringify(e.rule)},`;
    return `{"connection":${f.connection},"data":${canonicalJson(e.data)},"identity":${f.identity},"prevHash":"${e.prevHash}",${rule}"seq":${e.seq},"sessionId":${f.sessionId},"time":"${e.time}","type":"${e.type}","v":${e.v}}`;
  }
}

export interface ResumePoint {
  sessionId: string;
  connection: string;
  identity: RecordedIdentity;
  /** The next event's seq. */
  seq: number;
  /** sha256 (hex) of the previous event's canonical JSON. */
  prevHash: string;
}

export function toRecordedIdentity(id: Identity): RecordedIdentity {
  return {
    serviceAccount: id.serviceAccount
      ? `${id.serviceAccount.namespace}/${id.serviceAccount.name}`
      : undefined,
    pod: id.pod?.name,
    user: id.user,
    groups: id.groups,
  };
}
