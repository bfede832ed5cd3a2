// Client-side PostgreSQL protocol frames for fuzzing a gateway: well-formed messages of every
// frontend type, startup-phase packets, and mutations of both (lengths at the limits, truncation,
// bit flips, unknown types). Deterministic for a seed, so every finding can be replayed.

/** xorshift128+: fast, seedable, good enough to pick fuzz inputs (not for anything secret). */
export class Rng {
  private s0: bigint;
  private s1: bigint;

  constructor(seed: number) {
    this.s0 = BigInt(seed >>> 0) * 0x9e3779b97f4a7c15n + 0x1234567n;
    this.s1 = (BigInt(seed >>> 0) ^ 0xdeadbeefn) * 0xbf58476d1ce4e5b9n + 0x7654321n;
    for (let i = 0; i < 8; i++) this.next();
  }

  /** A uniform 32-bit unsigned integer. */
  next(): number {
    const mask = (1n << 64n) - 1n;
    let x = this.s0;
    const y = this.s1;
    this.s0 = y;
    x = (x ^ (x << 23n)) & mask;
    this.s1 = x ^ y ^ (x >> 17n) ^ (y >> 26n);
    return Number((this.s1 + y) & 0xffffffffn);
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return n <= 1 ? 0 : this.next() % n;
  }

  chance(p: number): boolean {
    return this.next() / 0x100000000 < p;
  }

  pick<T>(items: readonly T[]): T {
    const item = items[this.int(items.length)];
    if (item === undefined) throw new Error('pick from an empty list');
    return item;
  }

  bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) b[i] = this.next() & 0xff;
    return b;
  }
}

export const PROTOCOL_3_0 = 196608;
export const SSL_REQUEST = 80877103;
export const GSSENC_REQUEST = 80877104;
export const CANCEL_REQUEST = 80877102;

// Statement texts that reach every part of a SQL gateway: reads of masked columns, writes that
// need approval, denied DDL, COPY both ways, empty and comment-only text, transaction control,
// syntax errors, multi-statement strings, and non-UTF-8 bytes.
const SQL = [
  'SELECT 1',
  '',
  ' ; ',
  '-- ping',
  'SELECT * FROM customers',
  'SELECT email, ssn FROM customers WHERE id = $1',
  'SELECT id, note FROM customers ORDER BY id',
  'SELECT upper(email) FROM customers',
  'SELECT row_to_json(c) FROM customers c',
  "UPDATE orders SET status = 'x' WHERE id = 1",
  'DELETE FROM orders',
  'DROP TABLE orders',
  'CREATE TABLE t (a int)',
  'COPY customers TO STDOUT',
  'COPY (SELECT ssn FROM customers) TO STDOUT WITH (FORMAT csv)',
  'COPY orders FROM STDIN',
  'BEGIN',
  'COMMIT',
  'ROLLBACK',
  'SELEC 1',
  'SELECT 1; SELECT 2; SELECT ssn FROM customers',
  'SELECT pg_sleep(0.01)',
  'LISTEN chan; NOTIFY chan, $$x$$',
  'SET search_path = pg_catalog',
  'SELECT $1::text',
  'PREPARE p AS SELECT ssn FROM customers',
  'EXECUTE p',
  'DECLARE c CURSOR WITH HOLD FOR SELECT * FROM customers',
  'FETCH ALL FROM c',
  'SELECT repeat($$x$$, 100000)',
];

function cstr(s: string | Buffer): Buffer {
  return Buffer.concat([typeof s === 'string' ? Buffer.from(s) : s, Buffer.from([0])]);
}

function int16(n: number): Buffer {
  const b = Buffer.allocUnsafe(2);
  b.writeInt16BE(n);
  return b;
}

function int32(n: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeInt32BE(n | 0);
  return b;
}

/** A frame: type byte, int32 length (itself included), body. */
export function frame(type: string, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from(type, 'latin1'), int32(body.length + 4), body]);
}

function untyped(body: Buffer): Buffer {
  return Buffer.concat([int32(body.length + 4), body]);
}

function sqlText(rng: Rng): Buffer {
  if (rng.chance(0.05)) return rng.bytes(rng.int(64)).map((b) => b || 1) as Buffer;
  const text = rng.pick(SQL);
  if (rng.chance(0.05)) return Buffer.from(text.toUpperCase());
  if (rng.chance(0.03)) return Buffer.from(`${text}\u0000tail`);
  return Buffer.from(text);
}

function name(rng: Rng): string {
  return rng.pick(['', '', 'p', 's1', 'c', 'portal', 'x'.repeat(rng.int(80))]);
}

/** A well-formed startup packet with random parameters. */
export function startupPacket(rng: Rng): Buffer {
  const params: [string, string][] = [
    ['user', rng.pick(['agent', 'agent', 'postgres', '', 'x'.repeat(200)])],
  ];
  if (rng.chance(0.8)) params.push(['database', rng.pick(['orders', 'orders', 'postgres', 'nope'])]);
  if (rng.chance(0.2)) params.push(['application_name', rng.pick(['fuzz', 'psql', '\u00e9t\u00e9'])]);
  if (rng.chance(0.1))
    params.push(['options', rng.pick(['-c search_path=evil', '-c statement_timeout=1', '--role=postgres'])]);
  if (rng.chance(0.05)) params.push(['replication', rng.pick(['true', 'database', 'false'])]);
  if (rng.chance(0.05)) params.push(['_pq_.unknown', 'x']);
  if (rng.chance(0.05)) params.push([rng.bytes(5).toString('hex'), rng.bytes(3).toString('hex')]);
  const body = Buffer.concat([
    int32(rng.chance(0.93) ? PROTOCOL_3_0 : rng.pick([196609, 131072, 0, 0x7fffffff, 1234 << 16])),
    ...params.map(([k, v]) => Buffer.concat([cstr(k), cstr(v)])),
    Buffer.from([0]),
  ]);
  return untyped(body);
}

/** A packet of the startup phase other than a plain startup: SSL/GSS/cancel requests and malformed ones. */
export function preStartupPacket(rng: Rng): Buffer {
  switch (rng.int(6)) {
    case 0:
      return untyped(int32(SSL_REQUEST));
    case 1:
      return untyped(int32(GSSENC_REQUEST));
    case 2:
      return untyped(
        Buffer.concat([int32(CANCEL_REQUEST), int32(rng.next()), rng.bytes(rng.pick([4, 4, 0, 2, 32]))]),
      );
    case 3:
      return Buffer.concat([int32(rng.pick([0, 4, 7, -1, 10_001, 0x7fffffff])), rng.bytes(rng.int(16))]);
    case 4:
      return frame('X', Buffer.alloc(0)); // a Terminate before any startup
    default:
      return rng.bytes(1 + rng.int(40));
  }
}

function bindBody(rng: Rng): Buffer {
  const nFormats = rng.pick([0, 1, 2, 3, -1, 32767]);
  const parts: Buffer[] = [cstr(name(rng)), cstr(name(rng)), int16(nFormats)];
  for (let i = 0; i < Math.min(Math.max(nFormats, 0), 4); i++) parts.push(int16(rng.pick([0, 1, 2, -1])));
  const nParams = rng.pick([0, 1, 2, -1, 1000]);
  parts.push(int16(nParams));
  for (let i = 0; i < Math.min(Math.max(nParams, 0), 3); i++) {
    const len = rng.pick([-1, 0, 1, 4, 100, 0x7fffffff]);
    parts.push(int32(len));
    if (len > 0 && len <= 100)
      parts.push(rng.chance(0.5) ? Buffer.from('1'.padEnd(len, '2')) : rng.bytes(len));
  }
  const nResult = rng.pick([0, 1, 2, -1]);
  parts.push(int16(nResult));
  for (let i = 0; i < Math.max(nResult, 0); i++) parts.push(int16(rng.pick([0, 1, 7])));
  return Buffer.concat(parts);
}

/** One frontend message of any type, well-formed in shape (its content may still be nonsense). */
export function clientMessage(rng: Rng): Buffer {
  switch (rng.int(20)) {
    case 0:
    case 1:
    case 2:
      return frame('Q', cstr(sqlText(rng)));
    case 3:
    case 4: {
      const nTypes = rng.pick([0, 0, 1, 2, -1]);
      const types = Array.from({ length: Math.max(nTypes, 0) }, () =>
        int32(rng.pick([0, 23, 25, 17, 999999])),
      );
      return frame('P', Buffer.concat([cstr(name(rng)), cstr(sqlText(rng)), int16(nTypes), ...types]));
    }
    case 5:
    case 6:
      return frame('B', bindBody(rng));
    case 7:
      return frame('D', Buffer.concat([Buffer.from(rng.pick(['S', 'P', 'Z'])), cstr(name(rng))]));
    case 8:
    case 9:
      return frame('E', Buffer.concat([cstr(name(rng)), int32(rng.pick([0, 0, 1, 2, -1]))]));
    case 10:
      return frame('C', Buffer.concat([Buffer.from(rng.pick(['S', 'P', 'Q'])), cstr(name(rng))]));
    case 11:
    case 12:
      return frame('S', Buffer.alloc(0));
    case 13:
      return frame('H', Buffer.alloc(0));
    case 14:
      return frame(
        'd',
        rng.chance(0.5) ? Buffer.from(`${rng.int(1000)}\t1\t2.5\topen\n`) : rng.bytes(rng.int(200)),
      );
    case 15:
      return rng.chance(0.5) ? frame('c', Buffer.alloc(0)) : frame('f', cstr('fuzz says no'));
    case 16:
      return frame('F', Buffer.concat([int32(rng.pick([1, 764, 952])), int16(0), int16(0), int16(0)]));
    case 17:
      return frame('p', cstr(rng.pick(['', 'secret', 'eyJhbGciOiJub25lIn0.e30.'])));
    case 18:
      return frame(String.fromCharCode(rng.pick([0, 0x7e, 0x41, 0x7a, 0xff, 0x20])), rng.bytes(rng.int(32)));
    default:
      return rng.chance(0.1) ? frame('X', Buffer.alloc(0)) : frame('S', Buffer.alloc(0));
  }
}

/** Damages a frame: a length at a limit, a truncation, flipped bits, inserted or repeated bytes. */
export function mutate(rng: Rng, input: Buffer): Buffer {
  const b = Buffer.from(input);
  switch (rng.int(6)) {
    case 0:
      if (b.length >= 5)
        b.writeInt32BE(rng.pick([0, 1, 3, 4, 5, -1, -2147483648, 0x7fffffff, 16 << 20, (16 << 20) + 1]), 1);
      return b;
    case 1:
      return b.subarray(0, rng.int(b.length));
    case 2:
      for (let i = 0, n = 1 + rng.int(4); i < n && b.length; i++) {
        const at = rng.int(b.length);
        b[at] = (b[at] ?? 0) ^ (1 << rng.int(8));
      }
      return b;
    case 3: {
      const at = rng.int(b.length + 1);
      return Buffer.concat([b.subarray(0, at), rng.bytes(1 + rng.int(16)), b.subarray(at)]);
    }
    case 4:
      return Buffer.concat([b, b.subarray(0, rng.int(b.length))]);
    default:
      return b.length ? Buffer.concat([b.subarray(1), b.subarray(0, 1)]) : b;
  }
}

/** What one fuzz connection sends, in write-sized chunks, and how it ends. */
export interface ConnectionScript {
  /** Startup-phase packets, sent first; the driver then waits for the login to finish. */
  startup: Buffer[];
  /** The session's traffic after login, split at random points. */
  chunks: Buffer[];
  frames: number;
  /** `end`: a FIN after the last chunk; `reset`: an RST; `linger`: wait for the server to act. */
  finish: 'end' | 'reset' | 'linger';
}

/**
 * A connection's worth of traffic: usually a valid startup then a pipeline of messages (a few of
 * them damaged), sometimes startup-phase oddities, huge claimed lengths or plain garbage.
 */
export function connectionScript(rng: Rng, maxFrames: number, mutationRate: number): ConnectionScript {
  const startup: Buffer[] = [];
  const pre = rng.int(10);
  if (pre === 0) startup.push(preStartupPacket(rng));
  else if (pre === 1) startup.push(untyped(int32(SSL_REQUEST)));
  const packet = startupPacket(rng);
  startup.push(rng.chance(mutationRate) ? mutate(rng, packet) : packet);
  const frames: Buffer[] = [];
  const n = rng.int(maxFrames);
  for (let i = 0; i < n; i++) {
    const m = clientMessage(rng);
    frames.push(rng.chance(mutationRate) ? mutate(rng, m) : m);
  }
  if (rng.chance(0.02)) {
    // CopyData outside COPY, big enough to fill socket buffers, then an unknown type and more.
    frames.push(frame('d', Buffer.alloc((1 << 20) * (1 + rng.int(4)), 0x61)), frame('~', Buffer.alloc(8)));
    frames.push(frame('d', Buffer.alloc(1 << 20, 0x62)));
  }
  if (rng.chance(0.1)) frames.push(rng.bytes(1 + rng.int(200))); // garbage after valid traffic
  // Split the stream at random points: frames straddle writes the way TCP may deliver them.
  const all = Buffer.concat(frames);
  const chunks: Buffer[] = [];
  for (let at = 0; at < all.length; ) {
    const size = rng.chance(0.3) ? 1 + rng.int(16) : 1 + rng.int(8192);
    chunks.push(all.subarray(at, at + size));
    at += size;
  }
  const finish = rng.pick(['end', 'end', 'reset', 'linger'] as const);
  return { startup, chunks, frames: startup.length + frames.length, finish };
}
