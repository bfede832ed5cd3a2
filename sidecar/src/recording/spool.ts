import {
  chmodSync,
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  truncateSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { OpenSessions } from './open-sessions.js';

export type FsyncPolicy = 'always' | 'interval' | 'never';

export interface SpoolOptions {
  dir: string;
  /** New sessions are refused once this many bytes wait to be shipped (running ones continue). */
  maxBytes: number;
  /** Segment files are rotated at this size. */
  segmentBytes?: number;
  fsync?: FsyncPolicy;
  fsyncIntervalMs?: number;
}

export interface SpoolBatch {
  lines: string[];
  /** Where the shipper is after this batch is acknowledged. */
  next: Cursor;
}

interface Cursor {
  segment: number;
  offset: number;
}

const SEGMENT = /^(\d{12})\.seg$/;
const CHECKPOINT = 'open-sessions.json';
const name = (n: number) => `${String(n).padStart(12, '0')}.seg`;

/**
 * The on-disk spool between the sessions and the collector: append-only segment files of canonical
 * JSON lines, and a cursor of what the collector acknowledged.
 *
 * Durability: append() writes synchronously, so an event is in the kernel before the gateway
 * answers the agent for it — a killed or crashed sidecar loses nothing the client was answered
 * for. fsync (`interval` by default, every second) bounds what a power loss of the node can take.
 *
 * Sessions open in the spool (`openSessions`, kept up to date by SpoolSink) are written to a
 * checkpoint before acknowledged segments are deleted, so that a restarted sidecar can still close
 * a session whose beginning is already gone (see recoverOpenSessions).
 */
export class Spool {
  private fd = -1;
  private active = 0;
  private activeBytes = 0;
  private cursor: Cursor = { segment: 0, offset: 0 };
  private dirty = false;
  private timer?: NodeJS.Timeout;
  private readonly segmentBytes: number;
  /** Sessions with events in the spool and no session.end yet (noted by SpoolSink). */
  readonly openSessions = new OpenSessions();

  constructor(private readonly opts: SpoolOptions) {
    this.segmentBytes = opts.segmentBytes ?? 4 * 1024 * 1024;
    mkdirSync(opts.dir, { recursive: true, mode: 0o700 });
    try {
      // mkdir's mode does not apply to a folder that exists (a volume mount, an older sidecar's).
      chmodSync(opts.dir, 0o700);
    } catch {
      // Not its owner (a volume root owned by another user): the files themselves stay 0600.
    }
    const segs = this.segments();
    this.cursor = this.readCursor(segs);
    this.active = (segs.at(-1) ?? 0) + (segs.length ? 0 : 1);
    this.openActive();
    if ((opts.fsync ?? 'interval') === 'interval') {
      this.timer = setInterval(() => this.sync(), opts.fsyncIntervalMs ?? 1000);
      this.timer.unref();
    }
  }

  /** Appends canonical JSON lines (one event each). Throws when the disk refuses. */
  append(lines: string[]): void {
    if (lines.length === 0) return;
    const data = Buffer.from(`${lines.join('\n')}\n`);
    if (this.activeBytes > 0 && this.activeBytes + data.length > this.segmentBytes) this.rotate();
    writeSync(this.fd, data);
    this.activeBytes += data.length;
    this.dirty = true;
    if (this.opts.fsync === 'always') this.sync();
  }

  /** Bytes written but not yet acknowledged by the collector. */
  pendingBytes(): number {
    let total = 0;
    for (const s of this.segments()) {
      if (s < this.cursor.segment) continue;
      const size = s === this.active ? this.activeBytes : statSync(join(this.opts.dir, name(s))).size;
      total += s === this.cursor.segment ? size - this.cursor.offset : size;
    }
    return total;
  }

  /** True when new sessions must be refused (policy: block new sessions, running ones continue). */
  isFull(): boolean {
    return this.pendingBytes() >= this.opts.maxBytes;
  }

  /** The next batch to ship, from the acknowledged cursor on; empty when all is shipped. */
  read(maxLines: number, maxBytes: number): SpoolBatch {
    const lines: string[] = [];
    let bytes = 0;
    let at = { ...this.cursor };
    for (const seg of this.segments()) {
      if (seg < at.segment) continue;
      if (seg > at.segment) at = { segment: seg, offset: 0 };
      const text = readFileSync(join(this.opts.dir, name(seg))).subarray(at.offset);
      let pos = 0;
      while (lines.length < maxLines && bytes < maxBytes) {
        const nl = text.indexOf(0x0a, pos);
        if (nl < 0) break; // a partial last line is still being written
        if (nl > pos) lines.push(text.toString('utf8', pos, nl));
        bytes += nl + 1 - pos;
        pos = nl + 1;
      }
      at = { segment: seg, offset: at.offset + pos };
      if (lines.length >= maxLines || bytes >= maxBytes || seg === this.active) break;
    }
    return { lines, next: at };
  }

  /** The collector acknowledged a batch: move the cursor and delete segments shipped completely. */
  acknowledge(next: Cursor): void {
    this.cursor = next;
    this.writeFile('cursor.json', JSON.stringify(next));
    const shipped = this.segments().filter((s) => s < next.segment && s !== this.active);
    if (shipped.length === 0) return;
    // Before the only copy of their events goes, remember where the open sessions are.
    this.writeFile(CHECKPOINT, JSON.stringify(this.openSessions.toCheckpoint()), true);
    for (const s of shipped) unlinkSync(join(this.opts.dir, name(s)));
  }

  /**
   * At start, before anything is appended: the sessions an earlier process left open. The last
   * checkpoint, then every event of every remaining segment in order (the segments hold all that
   * happened after the checkpoint, and perhaps some of what happened before: older events of a
   * known session change nothing). Reads one segment at a time.
   */
  recoverOpenSessions(): OpenSessions {
    const found = new OpenSessions();
    try {
      found.load(JSON.parse(readFileSync(join(this.opts.dir, CHECKPOINT), 'utf8')));
    } catch {
      // No checkpoint (nothing was ever deleted) or an unreadable one: the segments are all there is.
    }
    for (const seg of this.segments()) {
      const text = readFileSync(join(this.opts.dir, name(seg)), 'utf8');
      for (const line of text.split('\n')) if (line) found.noteLine(line);
    }
    return found;
  }

  sync(): void {
    if (this.dirty && this.fd >= 0) {
      fsyncSync(this.fd);
      this.dirty = false;
    }
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.sync();
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }

  /**
   * Replaces a small file atomically and owner-only. `durable`: on disk before the caller deletes
   * anything (a lost cursor only re-ships events, which the collector's ingest is idempotent on).
   */
  private writeFile(file: string, data: string, durable = false): void {
    const tmp = join(this.opts.dir, `${file}.tmp`);
    // A leftover temp file keeps its old mode through writeFileSync: start from none.
    rmSync(tmp, { force: true });
    const fd = openSync(tmp, 'wx', 0o600);
    try {
      writeSync(fd, data);
      if (durable) fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, join(this.opts.dir, file));
    if (durable) {
      // The rename itself must reach the disk before the unlinks that follow it.
      const dirFd = openSync(this.opts.dir, 'r');
      try {
        fsyncSync(dirFd);
      } finally {
        closeSync(dirFd);
      }
    }
  }

  private rotate(): void {
    this.sync();
    closeSync(this.fd);
    this.active++;
    this.openActive();
  }

  private openActive(): void {
    const path = join(this.opts.dir, name(this.active));
    // A crash in the middle of a write leaves a partial last line; nobody was answered for it
    // (append is synchronous), so cut it off rather than ship a broken event.
    try {
      const data = readFileSync(path);
      if (data.length && data[data.length - 1] !== 0x0a) truncateSync(path, data.lastIndexOf(0x0a) + 1);
    } catch {
      // New segment.
    }
    this.fd = openSync(path, 'a', 0o600);
    this.activeBytes = statSync(path).size;
  }

  private segments(): number[] {
    return readdirSync(this.opts.dir)
      .map((f) => SEGMENT.exec(f)?.[1])
      .filter((m): m is string => m !== undefined)
      .map(Number)
      .sort((a, b) => a - b);
  }

  private readCursor(segs: number[]): Cursor {
    try {
      const c = JSON.parse(readFileSync(join(this.opts.dir, 'cursor.json'), 'utf8')) as Cursor;
      if (Number.isInteger(c.segment) && Number.isInteger(c.offset)) return c;
    } catch {
      // No cursor yet: start at the oldest segment.
    }
    return { segment: segs[0] ?? 1, offset: 0 };
  }
}
