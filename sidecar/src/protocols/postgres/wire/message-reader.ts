import { CANCEL_REQUEST_CODE, GSSENC_REQUEST_CODE, SSL_REQUEST_CODE } from './codes.js';

/** What the client sent before (or instead of) a StartupMessage. */
export type StartupPacket =
  | { kind: 'ssl-request' }
  | { kind: 'gssenc-request' }
  | { kind: 'cancel'; processId: number; secretKey: Buffer }
  | { kind: 'startup'; protocol: number; params: Map<string, string> };

/** One message after startup: type byte, body (without the 5-byte header), and the raw bytes. */
export interface Frame {
  type: number;
  body: Buffer;
  raw: Buffer;
}

export class ProtocolError extends Error {
  constructor(
    message: string,
    readonly sqlState = '08P01',
  ) {
    super(message);
  }
}

/**
 * A startup packet whose length cannot be right. PostgreSQL logs these and closes the connection
 * without a word (the peer may not speak the protocol at all), and so does the gateway.
 */
export class StartupFramingError extends ProtocolError {}

// PostgreSQL itself rejects startup packets over 10000 bytes (MAX_STARTUP_PACKET_LENGTH).
const MAX_STARTUP_PACKET = 10_000;

/**
 * Incremental framing of protocol bytes (type byte + int32 length). Client → server framing is
 * ours (pg-protocol only parses the server side); the same splitter cuts server bytes into frames
 * so that most of them are forwarded without being decoded. Bytes are appended with push();
 * complete frames are taken with next*(); a frame larger than maxMessageBytes is a ProtocolError
 * before it is buffered, so a hostile peer cannot make us hold more than one bounded message.
 */
export class MessageReader {
  // Chunks are kept apart until a whole frame is there, so a large message that arrives in many
  // small reads is copied once, not once per read.
  private chunks: Buffer[] = [];
  private length = 0;

  constructor(readonly maxMessageBytes: number) {}

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.length += chunk.length;
  }

  /** Bytes received but not yet framed (bounded by one message). */
  get buffered(): number {
    return this.length;
  }

  /** Takes whatever bytes are buffered (used when handing the socket to TLS). */
  /** Drops everything buffered (a closed session releases its memory at once). */
  clear(): void {
    this.chunks = [];
    this.length = 0;
  }

  drain(): Buffer {
    const b = this.contiguous(this.length);
    this.chunks = [];
    this.length = 0;
    return b;
  }

  /** Makes the first n bytes one buffer and returns the head chunk (n <= length). */
  private contiguous(n: number): Buffer {
    const head = this.chunks[0];
    if (head && head.length >= n) return head;
    const merged = Buffer.concat(this.chunks, this.length);
    this.chunks = [merged];
    return merged;
  }

  private take(n: number): Buffer {
    const head = this.contiguous(n);
    const out = head.subarray(0, n);
    if (head.length === n) this.chunks.shift();
    else this.chunks[0] = head.subarray(n);
    this.length -= n;
    return out;
  }

  nextStartup(): StartupPacket | undefined {
    if (this.length < 4) return undefined;
    const len = this.contiguous(4).readInt32BE(0);
    if (len < 8 || len > MAX_STARTUP_PACKET)
      throw new StartupFramingError(`invalid startup packet length ${len}`);
    if (this.length < len) return undefined;
    const packet = this.take(len);
    const code = packet.readInt32BE(4);
    if (code === SSL_REQUEST_CODE && len === 8) return { kind: 'ssl-request' };
    if (code === GSSENC_REQUEST_CODE && len === 8) return { kind: 'gssenc-request' };
    if (code === CANCEL_REQUEST_CODE) {
      // Protocol 3.0 keys are 4 bytes; 3.2 allows up to 256.
      if (len < 16 || len > 12 + 256) throw new StartupFramingError('invalid cancel request');
      return {
        kind: 'cancel',
        processId: packet.readInt32BE(8),
        secretKey: Buffer.from(packet.subarray(12)),
      };
    }
    if (code >> 16 !== 3) {
      throw new ProtocolError(
        `unsupported frontend protocol ${code >> 16}.${code & 0xffff}: server supports 3.0 to 3.0`,
        '0A000',
      );
    }
    return { kind: 'startup', protocol: code, params: parseStartupParams(packet.subarray(8)) };
  }

  next(): Frame | undefined {
    if (this.length < 5) return undefined;
    const header = this.contiguous(5);
    const type = header[0] as number;
    const len = header.readInt32BE(1);
    if (len < 4) throw new ProtocolError(`invalid message length ${len} for message type ${typeName(type)}`);
    if (len + 1 > this.maxMessageBytes) {
      throw new ProtocolError(
        `message of ${len + 1} bytes exceeds the gateway limit of ${this.maxMessageBytes} bytes`,
        '54000',
      );
    }
    if (this.length < len + 1) return undefined;
    const raw = this.take(len + 1);
    return { type, body: raw.subarray(5), raw };
  }
}

function parseStartupParams(body: Buffer): Map<string, string> {
  const params = new Map<string, string>();
  let pos = 0;
  for (;;) {
    const end = body.indexOf(0, pos);
    if (end < 0) throw new ProtocolError('startup packet is not NUL-terminated');
    if (end === pos) break; // the final empty name
    const name = body.toString('utf8', pos, end);
    const vend = body.indexOf(0, end + 1);
    if (vend < 0) throw new ProtocolError(`startup parameter "${name}" has no value`);
    params.set(name, body.toString('utf8', end + 1, vend));
    pos = vend + 1;
  }
  return params;
}

export function typeName(type: number): string {
  return type >= 0x20 && type < 0x7f ? `'${String.fromCharCode(type)}'` : `0x${type.toString(16)}`;
}

/** Reads NUL-terminated strings and integers from a message body; throws ProtocolError when short. */
export class BodyReader {
  pos = 0;
  constructor(private readonly body: Buffer) {}

  cstring(): string {
    const end = this.body.indexOf(0, this.pos);
    if (end < 0) throw new ProtocolError('string in message is not NUL-terminated');
    const s = this.body.toString('utf8', this.pos, end);
    this.pos = end + 1;
    return s;
  }

  int16(): number {
    if (this.pos + 2 > this.body.length) throw new ProtocolError('message is too short');
    const v = this.body.readInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  int32(): number {
    if (this.pos + 4 > this.body.length) throw new ProtocolError('message is too short');
    const v = this.body.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  byte(): number {
    if (this.pos + 1 > this.body.length) throw new ProtocolError('message is too short');
    return this.body[this.pos++] as number;
  }

  bytes(n: number): Buffer {
    if (n < 0 || this.pos + n > this.body.length) throw new ProtocolError('message is too short');
    const b = this.body.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }

  get remaining(): number {
    return this.body.length - this.pos;
  }
}
