import { Backend } from './codes.js';

// Builders for the messages the gateway itself speaks to the agent (as if it were the server).

function frame(type: number, body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(5 + body.length);
  out[0] = type;
  out.writeInt32BE(4 + body.length, 1);
  body.copy(out, 5);
  return out;
}

const cstr = (s: string) => Buffer.concat([Buffer.from(s, 'utf8'), Buffer.from([0])]);
const int32 = (n: number) => {
  const b = Buffer.allocUnsafe(4);
  b.writeInt32BE(n);
  return b;
};

export const authenticationOk = () => frame(Backend.Authentication, int32(0));
export const authenticationCleartextPassword = () => frame(Backend.Authentication, int32(3));
export const parameterStatus = (name: string, value: string) =>
  frame(Backend.ParameterStatus, Buffer.concat([cstr(name), cstr(value)]));
export const backendKeyData = (processId: number, secretKey: number) =>
  frame(Backend.BackendKeyData, Buffer.concat([int32(processId), int32(secretKey)]));
export const readyForQuery = (status: 'I' | 'T' | 'E') =>
  frame(Backend.ReadyForQuery, Buffer.from(status, 'latin1'));
export const negotiateProtocolVersion = (minor: number, unrecognized: string[]) =>
  frame(
    Backend.NegotiateProtocolVersion,
    Buffer.concat([int32(minor), int32(unrecognized.length), ...unrecognized.map(cstr)]),
  );

export interface NoticeFields {
  severity: 'ERROR' | 'FATAL' | 'PANIC' | 'WARNING' | 'NOTICE' | 'DEBUG' | 'INFO' | 'LOG';
  code: string;
  message: string;
  detail?: string;
  hint?: string;
  /** 1-based character position in the query string (field P). */
  position?: number;
}

function fields(f: NoticeFields): Buffer {
  const parts: Buffer[] = [];
  const add = (tag: string, value: string | undefined) => {
    if (value !== undefined) parts.push(Buffer.from(tag, 'latin1'), cstr(value));
  };
  add('S', f.severity);
  add('V', f.severity);
  add('C', f.code);
  add('M', f.message);
  add('D', f.detail);
  add('H', f.hint);
  add('P', f.position === undefined ? undefined : String(f.position));
  parts.push(Buffer.from([0]));
  return Buffer.concat(parts);
}

export const errorResponse = (f: Omit<NoticeFields, 'severity'> & { severity?: 'ERROR' | 'FATAL' }) =>
  frame(Backend.ErrorResponse, fields({ severity: 'ERROR', ...f }));
export const noticeResponse = (f: Omit<NoticeFields, 'severity'> & { severity?: NoticeFields['severity'] }) =>
  frame(Backend.NoticeResponse, fields({ severity: 'NOTICE', ...f }));

/** Reads the fields of an ErrorResponse/NoticeResponse body into a map keyed by field tag. */
export function parseNoticeFields(body: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  let pos = 0;
  while (pos < body.length && body[pos] !== 0) {
    const tag = String.fromCharCode(body[pos] as number);
    const end = body.indexOf(0, pos + 1);
    if (end < 0) break;
    out.set(tag, body.toString('utf8', pos + 1, end));
    pos = end + 1;
  }
  return out;
}

/** Encodes an ErrorResponse/NoticeResponse from all its fields (as parseNoticeFields returns them). */
export function encodeNoticeFields(type: number, fields: Map<string, string>): Buffer {
  const parts: Buffer[] = [];
  for (const [tag, value] of fields) parts.push(Buffer.from(tag, 'latin1'), cstr(value));
  parts.push(Buffer.from([0]));
  return frame(type, Buffer.concat(parts));
}

/** Re-frames a message from its type and body. */
export { frame as encodeMessage };
