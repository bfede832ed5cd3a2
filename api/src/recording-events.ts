// The recording event schema shared by the sidecar (producer) and the collector (consumer).
// Versioned: a consumer must accept every version it knows and refuse the rest with a clear error.

export const RECORDING_SCHEMA_VERSION = 1;

export type RecordingEventType =
  | 'session.start'
  | 'session.end'
  | 'query'
  | 'result'
  | 'command'
  | 'output'
  | 'approval.requested'
  | 'approval.decided'
  | 'credential.issued'
  | 'denied';

export interface RecordedIdentity {
  serviceAccount?: string; // namespace/name
  pod?: string;
  user?: string;
  groups: string[];
}

export interface RecordingEventBase<T extends RecordingEventType, D> {
  v: typeof RECORDING_SCHEMA_VERSION;
  type: T;
  sessionId: string;
  /** 0-based, gap-free within a session. */
  seq: number;
  /** ISO 8601 with milliseconds. */
  time: string;
  identity: RecordedIdentity;
  connection: string;
  /** `policy/rule` that decided, when a decision was involved. */
  rule?: string;
  /** sha256 (hex) of the previous event of this session as canonical JSON; '' for seq 0. */
  prevHash: string;
  data: D;
}

export type Decision = 'allowed' | 'denied' | 'approved' | 'pending';

export type RecordingEvent =
  | RecordingEventBase<
      'session.start',
      { protocol: 'postgres' | 'ssh' | 'kubernetes'; client: string; application?: string }
    >
  | RecordingEventBase<'session.end', { reason: string; statements: number; durationMs: number }>
  | RecordingEventBase<
      'query',
      {
        text: string;
        fingerprint: string;
        classes: string[];
        tables: string[];
        risks: string[];
        decision: Decision;
        reason?: string;
      }
    >
  | RecordingEventBase<
      'result',
      { rows: number; bytes: number; maskedValues: number; command?: string; error?: string }
    >
  | RecordingEventBase<'command', { text: string; decision: Decision; reason?: string }>
  | RecordingEventBase<'output', { asciicast: Array<[number, 'o' | 'i', string]> }>
  | RecordingEventBase<'approval.requested', { request: string; text: string; reasons: string[] }>
  | RecordingEventBase<
      'approval.decided',
      { request: string; verdict: 'approved' | 'denied' | 'expired'; by?: string; comment?: string }
    >
  | RecordingEventBase<'credential.issued', { description: string; expiresAt?: string }>
  | RecordingEventBase<'denied', { operation: string; reason: string }>;

/**
 * Canonical JSON (keys sorted by UTF-16 code units, no whitespace, undefined members left out) —
 * the input of the hash chain. Written for speed: it runs for every recorded event.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) {
      if (i) out += ',';
      const v = value[i];
      out += v === undefined ? 'null' : canonicalJson(v);
    }
    return `${out}]`;
  }
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj).sort();
  let out = '{';
  let first = true;
  for (const k of keys) {
    const v = obj[k];
    if (v === undefined) continue;
    out += `${first ? '' : ','}${JSON.stringify(k)}:${canonicalJson(v)}`;
    first = false;
  }
  return `${out}}`;
}
