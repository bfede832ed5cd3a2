// A deterministic tar writer: the same entries always give the same bytes, whatever the host's
// clock, umask, user names or directory order. Image layers and OCI archives are built with it, so
// an image digest depends only on the files that go in.
//
// Rules (what `tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner` would give):
// entries sorted by path (bytewise), mtime 0, numeric owners only (no user/group names), modes
// given by the caller (never the host's), ustar headers, a PAX header only for a path or link
// target too long for ustar, and the two zero blocks at the end (no padding to 10 KiB records:
// containerd and GNU tar read the archive without it).
import { createHash, type Hash } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';

export type TarEntry =
  | { type: 'dir'; path: string; mode: number; uid?: number; gid?: number }
  | { type: 'symlink'; path: string; target: string; uid?: number; gid?: number }
  | ({ type: 'file'; path: string; mode: number; uid?: number; gid?: number } & (
      | { data: Buffer }
      | { source: string; size: number }
    ));

const BLOCK = 512;
const ZERO = Buffer.alloc(BLOCK);

/** Bytewise (not locale) order, so the archive does not depend on ICU or LANG. */
export function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/** Removes a leading `/` or `./`; rejects `..` and empty segments, which no layer needs. */
export function normalizeTarPath(p: string): string {
  const clean = p.replace(/^\.?\/+/, '').replace(/\/+$/, '');
  if (clean === '' || clean.split('/').some((s) => s === '' || s === '.' || s === '..')) {
    throw new Error(`invalid path in a layer: ${JSON.stringify(p)}`);
  }
  return clean;
}

function octal(value: number, width: number): string {
  // width includes the terminating NUL.
  const s = value.toString(8);
  if (s.length > width - 1) throw new Error(`value ${value} does not fit a ${width}-byte tar field`);
  return `${s.padStart(width - 1, '0')}\0`;
}

function put(header: Buffer, offset: number, width: number, text: string): void {
  const bytes = Buffer.from(text);
  if (bytes.length > width) throw new Error(`tar header field overflow: ${text}`);
  bytes.copy(header, offset);
}

/** ustar splits a long path into prefix (≤155 bytes) + '/' + name (≤100 bytes). */
function splitUstarPath(p: string): { name: string; prefix: string } | undefined {
  if (Buffer.byteLength(p) <= 100) return { name: p, prefix: '' };
  for (let i = p.indexOf('/'); i >= 0; i = p.indexOf('/', i + 1)) {
    const prefix = p.slice(0, i);
    const name = p.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(name) <= 100 && name !== '') {
      return { name, prefix };
    }
  }
  return undefined;
}

function header(fields: {
  name: string;
  prefix: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  type: string;
  linkname: string;
}): Buffer {
  const h = Buffer.alloc(BLOCK);
  put(h, 0, 100, fields.name);
  put(h, 100, 8, octal(fields.mode, 8));
  put(h, 108, 8, octal(fields.uid, 8));
  put(h, 116, 8, octal(fields.gid, 8));
  put(h, 124, 12, octal(fields.size, 12));
  put(h, 136, 12, octal(0, 12));
  h.fill(0x20, 148, 156); // checksum is computed with its own field as spaces
  put(h, 156, 1, fields.type);
  put(h, 157, 100, fields.linkname);
  put(h, 257, 6, 'ustar\0');
  put(h, 263, 2, '00');
  put(h, 329, 8, octal(0, 8));
  put(h, 337, 8, octal(0, 8));
  put(h, 345, 155, fields.prefix);
  let sum = 0;
  for (const byte of h) sum += byte;
  put(h, 148, 8, `${sum.toString(8).padStart(6, '0')}\0 `);
  return h;
}

function paxRecord(key: string, value: string): string {
  // "LEN key=value\n", where LEN counts itself.
  const rest = ` ${key}=${value}\n`;
  let len = Buffer.byteLength(rest) + 1;
  while (String(len).length + Buffer.byteLength(rest) !== len) len++;
  return `${len}${rest}`;
}

function padding(size: number): Buffer {
  const rem = size % BLOCK;
  return rem === 0 ? Buffer.alloc(0) : Buffer.alloc(BLOCK - rem);
}

function* headerBlocks(
  entry: TarEntry,
  path: string,
  size: number,
  type: string,
  linkname: string,
  mode: number,
): Generator<Buffer> {
  const uid = entry.uid ?? 0;
  const gid = entry.gid ?? 0;
  const tarName = entry.type === 'dir' ? `${path}/` : path;
  let split = splitUstarPath(tarName);
  const longLink = Buffer.byteLength(linkname) > 100;
  if (split === undefined || longLink) {
    const records =
      (split === undefined ? paxRecord('path', tarName) : '') +
      (longLink ? paxRecord('linkpath', linkname) : '');
    const body = Buffer.from(records);
    // The PAX header's own name only has to be stable; readers ignore it.
    const paxName = `PaxHeaders/${path.slice(-80).replace(/^\/+/, '')}`;
    yield header({
      name: paxName.slice(0, 100),
      prefix: '',
      mode: 0o644,
      uid: 0,
      gid: 0,
      size: body.length,
      type: 'x',
      linkname: '',
    });
    yield body;
    yield padding(body.length);
    if (split === undefined) split = { name: tarName.slice(-100), prefix: '' };
  }
  yield header({
    name: split.name,
    prefix: split.prefix,
    mode,
    uid,
    gid,
    size,
    type,
    linkname: longLink ? '' : linkname,
  });
}

const CHUNK = 1 << 20;

/** File bytes, read in 1 MiB chunks; fails if the file's size changed since it was listed. */
function* fileChunks(source: string, size: number): Generator<Buffer> {
  const fd = openSync(source, 'r');
  try {
    let done = 0;
    while (done < size) {
      const buf = Buffer.allocUnsafe(Math.min(CHUNK, size - done));
      const n = readSync(fd, buf, 0, buf.length, done);
      if (n === 0) throw new Error(`${source} shrank while it was being archived`);
      done += n;
      yield n === buf.length ? buf : buf.subarray(0, n);
    }
    if (readSync(fd, Buffer.alloc(1), 0, 1, size) !== 0)
      throw new Error(`${source} grew while it was being archived`);
  } finally {
    closeSync(fd);
  }
}

/** Checks paths and sorts; duplicate paths are an error (the caller merges them first). */
export function sortEntries(entries: Iterable<TarEntry>): TarEntry[] {
  const list = [...entries].map((e) => ({ ...e, path: normalizeTarPath(e.path) }) as TarEntry);
  list.sort((a, b) => compareBytes(a.path, b.path));
  for (let i = 1; i < list.length; i++) {
    if (list[i]!.path === list[i - 1]!.path) throw new Error(`duplicate path in a layer: ${list[i]!.path}`);
  }
  return list;
}

/** The archive as a sequence of buffers (files are streamed from disk, never held whole). */
export function* tarStream(entries: Iterable<TarEntry>): Generator<Buffer> {
  for (const entry of sortEntries(entries)) {
    if (entry.type === 'dir') {
      yield* headerBlocks(entry, entry.path, 0, '5', '', entry.mode);
    } else if (entry.type === 'symlink') {
      yield* headerBlocks(entry, entry.path, 0, '2', entry.target, 0o777);
    } else if ('data' in entry) {
      yield* headerBlocks(entry, entry.path, entry.data.length, '0', '', entry.mode);
      yield entry.data;
      yield padding(entry.data.length);
    } else {
      yield* headerBlocks(entry, entry.path, entry.size, '0', '', entry.mode);
      yield* fileChunks(entry.source, entry.size);
      yield padding(entry.size);
    }
  }
  yield ZERO;
  yield ZERO;
}

export interface Digested {
  /** `sha256:<hex>` */
  digest: string;
  size: number;
}

/** Feeds a stream to a hash without keeping it. */
export function digestStream(chunks: Iterable<Buffer>, also?: (chunk: Buffer) => void): Digested {
  const hash: Hash = createHash('sha256');
  let size = 0;
  for (const chunk of chunks) {
    hash.update(chunk);
    size += chunk.length;
    also?.(chunk);
  }
  return { digest: `sha256:${hash.digest('hex')}`, size };
}
