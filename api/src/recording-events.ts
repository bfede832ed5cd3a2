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

/**
 * An SSH command, or one Kubernetes API request. The Kubernetes fields are set for Kubernetes
 * requests only (RBAC's attributes, so that sessions can be searched by verb, resource, namespace).
 */
export interface CommandData {
  text: string;
  decision: Decision;
  reason?: string;
  verb?: string;
  /** '' is the core group. */
  apiGroup?: string;
  resource?: string;
  subresource?: string;
  namespace?: string;
  name?: string;
  /** HTTP status answered to the agent (0: it went away first). */
  status?: number;
  /** Secret values redacted in the response. */
  redactedValues?: number;
  /** The body of a write, Secret values redacted (JSON), when it could be parsed. */
  body?: string;
  /** ssh: the command's exit status once it finished (absent while pending or when killed by a signal). */
  exitStatus?: number;
  exitSignal?: string;
  durationMs?: number;
}

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
      {
        rows: number;
        bytes: number;
        maskedValues: number;
        command?: string;
        error?: string;
        /** Executions of one prepared statement summed into this event (absent = 1). */
        executions?: number;
      }
    >
  | RecordingEventBase<'command', CommandData>
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

// ---------------------------------------------------------------------------------------------
// Validation. Both ends run it: the producer before it spools (a bug surfaces where it is made),
// the collector before anything is stored (a batch with one bad event is refused as a whole).

export const RECORDING_EVENT_TYPES: readonly RecordingEventType[] = [
  'session.start',
  'session.end',
  'query',
  'result',
  'command',
  'output',
  'approval.requested',
  'approval.decided',
  'credential.issued',
  'denied',
];

/** Session ids end up in URLs, file names and log lines, so they are kept to a safe alphabet. */
export const SESSION_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$/;

export type RecordingEventValidation =
  | { ok: true; event: RecordingEvent }
  | {
      ok: false;
      /** One line per problem, each starting with the field path, e.g. `data.rows: must be …`. */
      errors: string[];
    };

type FieldSpec =
  | { kind: 'string'; optional?: boolean; nonEmpty?: boolean; oneOf?: readonly string[] }
  | { kind: 'count'; optional?: boolean }
  | { kind: 'strings'; optional?: boolean }
  | { kind: 'time'; optional?: boolean }
  | { kind: 'asciicast' };

type DataOf<T extends RecordingEventType> = Extract<RecordingEvent, { type: T }>['data'];
// Keyed by the TypeScript types above: a field added to (or removed from) an event type without
// its spec here fails to compile, so the validator cannot drift from the schema.
type DataSpecs = { [T in RecordingEventType]: { [K in keyof DataOf<T>]-?: FieldSpec } };

const DECISIONS: readonly Decision[] = ['allowed', 'denied', 'approved', 'pending'];
const text = (opts: Omit<Extract<FieldSpec, { kind: 'string' }>, 'kind'> = {}): FieldSpec => ({
  kind: 'string',
  ...opts,
});
const optionalText = text({ optional: true });

const DATA_SPECS: DataSpecs = {
  'session.start': {
    protocol: text({ oneOf: ['postgres', 'ssh', 'kubernetes'] }),
    client: text(),
    application: optionalText,
  },
  'session.end': {
    reason: text(),
    statements: { kind: 'count' },
    durationMs: { kind: 'count' },
  },
  query: {
    text: text(),
    fingerprint: text(),
    classes: { kind: 'strings' },
    tables: { kind: 'strings' },
    risks: { kind: 'strings' },
    decision: text({ oneOf: DECISIONS }),
    reason: optionalText,
  },
  result: {
    rows: { kind: 'count' },
    bytes: { kind: 'count' },
    maskedValues: { kind: 'count' },
    command: optionalText,
    error: optionalText,
    executions: { kind: 'count', optional: true },
  },
  command: {
    text: text(),
    decision: text({ oneOf: DECISIONS }),
    reason: optionalText,
    verb: optionalText,
    apiGroup: optionalText,
    resource: optionalText,
    subresource: optionalText,
    namespace: optionalText,
    name: optionalText,
    status: { kind: 'count', optional: true },
    redactedValues: { kind: 'count', optional: true },
    body: optionalText,
    exitStatus: { kind: 'count', optional: true },
    exitSignal: optionalText,
    durationMs: { kind: 'count', optional: true },
  },
  output: { asciicast: { kind: 'asciicast' } },
  'approval.requested': { request: text({ nonEmpty: true }), text: text(), reasons: { kind: 'strings' } },
  'approval.decided': {
    request: text({ nonEmpty: true }),
    verdict: text({ oneOf: ['approved', 'denied', 'expired'] }),
    by: optionalText,
    comment: optionalText,
  },
  'credential.issued': { description: text(), expiresAt: { kind: 'time', optional: true } },
  denied: { operation: text(), reason: text() },
};

type EnvelopeKey = Exclude<keyof RecordingEventBase<RecordingEventType, unknown>, 'data'>;
const ENVELOPE_KEYS: { [K in EnvelopeKey]-?: true } = {
  v: true,
  type: true,
  sessionId: true,
  seq: true,
  time: true,
  identity: true,
  connection: true,
  rule: true,
  prevHash: true,
};
const IDENTITY_KEYS: { [K in keyof RecordedIdentity]-?: true } = {
  serviceAccount: true,
  pod: true,
  user: true,
  groups: true,
};

const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;
const SHA256_HEX = /^[0-9a-f]{64}$/;

function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing (the field is missing)';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return value.length > 40 ? 'a string' : JSON.stringify(value);
  if (typeof value === 'number') return String(value);
  return typeof value === 'object' ? 'an object' : typeof value;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function isRecordingTime(value: unknown): value is string {
  return typeof value === 'string' && ISO_TIME.test(value) && Number.isFinite(Date.parse(value));
}

function checkField(path: string, spec: FieldSpec, value: unknown, errors: string[]): void {
  if (value === undefined) {
    if (!('optional' in spec && spec.optional)) errors.push(`${path}: required`);
    return;
  }
  switch (spec.kind) {
    case 'string':
      if (typeof value !== 'string') errors.push(`${path}: must be a string, got ${describeValue(value)}`);
      else if (spec.nonEmpty && value === '') errors.push(`${path}: must not be empty`);
      else if (spec.oneOf && !spec.oneOf.includes(value))
        errors.push(`${path}: must be one of ${spec.oneOf.join(', ')}, got ${describeValue(value)}`);
      return;
    case 'count':
      if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0)
        errors.push(`${path}: must be a non-negative integer, got ${describeValue(value)}`);
      return;
    case 'strings':
      if (!Array.isArray(value))
        errors.push(`${path}: must be an array of strings, got ${describeValue(value)}`);
      else
        value.forEach((item, i) => {
          if (typeof item !== 'string')
            errors.push(`${path}[${i}]: must be a string, got ${describeValue(item)}`);
        });
      return;
    case 'time':
      if (!isRecordingTime(value))
        errors.push(`${path}: must be an ISO 8601 timestamp with a zone, got ${describeValue(value)}`);
      return;
    case 'asciicast':
      if (!Array.isArray(value)) {
        errors.push(`${path}: must be an array of [seconds, "o"|"i", text], got ${describeValue(value)}`);
        return;
      }
      value.forEach((frame, i) => {
        const ok =
          Array.isArray(frame) &&
          frame.length === 3 &&
          typeof frame[0] === 'number' &&
          Number.isFinite(frame[0]) &&
          frame[0] >= 0 &&
          (frame[1] === 'o' || frame[1] === 'i') &&
          typeof frame[2] === 'string';
        if (!ok)
          errors.push(`${path}[${i}]: must be [seconds >= 0, "o"|"i", text], got ${describeValue(frame)}`);
      });
      return;
  }
}

/**
 * Checks that `value` (typically parsed JSON) is a recording event of a schema version this build
 * knows: every field present with the right type, no unknown fields (they would silently become
 * part of the hashed text), and the chain rule of seq 0 (prevHash '') versus later events (a
 * sha256 hex). Whether the chain actually links up is for verification, not for this function.
 */
export function validateRecordingEvent(value: unknown): RecordingEventValidation {
  if (!isPlainObject(value))
    return { ok: false, errors: [`<event>: must be an object, got ${describeValue(value)}`] };
  const errors: string[] = [];
  if (value.v !== RECORDING_SCHEMA_VERSION) {
    const known = `this build knows version ${RECORDING_SCHEMA_VERSION}`;
    return {
      ok: false,
      errors: [
        value.v === undefined
          ? `v: required (the schema version; ${known})`
          : `v: unsupported schema version ${describeValue(value.v)} (${known})`,
      ],
    };
  }
  for (const key of Object.keys(value)) {
    if (!Object.hasOwn(ENVELOPE_KEYS, key) && key !== 'data') errors.push(`${key}: unknown field`);
  }
  const type = value.type;
  const knownType = typeof type === 'string' && (RECORDING_EVENT_TYPES as readonly string[]).includes(type);
  if (!knownType)
    errors.push(`type: must be one of ${RECORDING_EVENT_TYPES.join(', ')}, got ${describeValue(type)}`);

  if (typeof value.sessionId !== 'string' || !SESSION_ID_PATTERN.test(value.sessionId))
    errors.push(
      `sessionId: must be 1-200 characters of A-Z a-z 0-9 . _ : - (starting alphanumeric), got ${describeValue(value.sessionId)}`,
    );
  const seq = value.seq;
  const seqOk = typeof seq === 'number' && Number.isSafeInteger(seq) && seq >= 0;
  if (!seqOk) errors.push(`seq: must be a non-negative integer, got ${describeValue(seq)}`);
  if (!isRecordingTime(value.time))
    errors.push(`time: must be an ISO 8601 timestamp with a zone, got ${describeValue(value.time)}`);
  if (typeof value.connection !== 'string' || value.connection === '')
    errors.push(`connection: must be a non-empty string, got ${describeValue(value.connection)}`);
  if (value.rule !== undefined && typeof value.rule !== 'string')
    errors.push(`rule: must be a string when present, got ${describeValue(value.rule)}`);

  const prevHash = value.prevHash;
  if (typeof prevHash !== 'string') errors.push(`prevHash: must be a string, got ${describeValue(prevHash)}`);
  else if (seqOk && seq === 0 && prevHash !== '') errors.push('prevHash: must be empty for seq 0');
  else if (seqOk && seq > 0 && !SHA256_HEX.test(prevHash))
    errors.push(
      `prevHash: must be 64 lowercase hex characters (sha256) for seq > 0, got ${describeValue(prevHash)}`,
    );

  const identity = value.identity;
  if (!isPlainObject(identity)) errors.push(`identity: must be an object, got ${describeValue(identity)}`);
  else {
    for (const key of Object.keys(identity)) {
      if (!Object.hasOwn(IDENTITY_KEYS, key)) errors.push(`identity.${key}: unknown field`);
    }
    for (const key of ['serviceAccount', 'pod', 'user'] as const) {
      checkField(`identity.${key}`, text({ optional: true, nonEmpty: true }), identity[key], errors);
    }
    checkField('identity.groups', { kind: 'strings' }, identity.groups, errors);
  }

  const data = value.data;
  if (!isPlainObject(data)) errors.push(`data: must be an object, got ${describeValue(data)}`);
  else if (knownType) {
    const specs: Record<string, FieldSpec> = DATA_SPECS[type as RecordingEventType];
    for (const key of Object.keys(data)) {
      if (!Object.hasOwn(specs, key)) errors.push(`data.${key}: unknown field for a ${type} event`);
    }
    for (const [key, spec] of Object.entries(specs)) checkField(`data.${key}`, spec, data[key], errors);
  }

  return errors.length ? { ok: false, errors } : { ok: true, event: value as unknown as RecordingEvent };
}
