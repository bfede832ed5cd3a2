import {
  appendFileSync,
  closeSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  statSync,
  truncateSync,
} from 'node:fs';
import { join } from 'node:path';
import type { RecordingEvent } from '@chaperone/api';
import { OpenSessions } from './open-sessions.js';
import type { RecordingSink } from './session-recorder.js';
import { type ClosedSession, closeSession } from './spool-recovery.js';

const TAIL_BYTES = 4096;

/**
 * The JSON-lines counterpart of closeInterruptedSessions (no collector: one file per session). At
 * start, each `*.jsonl` whose last complete line is not a session.end belongs to a session an
 * earlier process left open: a torn last line is cut off and a chained session.end
 * ("sidecar restarted") appended. Only the tail of each file is read, except for open ones.
 */
export function closeInterruptedRecordings(dir: string): {
  closed: ClosedSession[];
  failed: Array<{ file: string; error: string }>;
} {
  const closed: ClosedSession[] = [];
  const failed: Array<{ file: string; error: string }> = [];
  let files: string[];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith('.jsonl'));
  } catch {
    return { closed, failed }; // No recordings yet.
  }
  for (const file of files) {
    const path = join(dir, file);
    try {
      if (isEnd(lastLine(path))) continue;
      closed.push(...closeFile(path));
    } catch (err) {
      failed.push({ file, error: (err as Error).message });
    }
  }
  return { closed, failed };
}

function isEnd(line: string | undefined): boolean {
  try {
    return line !== undefined && (JSON.parse(line) as { type?: unknown }).type === 'session.end';
  } catch {
    return false;
  }
}

/** The last complete line of a file, reading backwards from its end in growing chunks. */
function lastLine(path: string): string | undefined {
  const size = statSync(path).size;
  const fd = openSync(path, 'r');
  try {
    for (let want = TAIL_BYTES; ; want *= 4) {
      const len = Math.min(size, want);
      const buf = Buffer.alloc(len);
      readSync(fd, buf, 0, len, size - len);
      const end = buf.lastIndexOf(0x0a);
      if (end < 0) {
        if (len === size) return undefined;
        continue;
      }
      const start = buf.lastIndexOf(0x0a, end - 1);
      if (start >= 0 || len === size) return buf.toString('utf8', start + 1, end);
    }
  } finally {
    closeSync(fd);
  }
}

function closeFile(path: string): ClosedSession[] {
  const data = readFileSync(path);
  const complete = data.lastIndexOf(0x0a) + 1;
  // A line cut by the crash: nobody was answered for it after it (see Spool), and it cannot be chained.
  if (complete < data.length) truncateSync(path, complete);
  const sessions = new OpenSessions();
  for (const line of data.toString('utf8', 0, complete).split('\n')) if (line) sessions.noteLine(line);
  const sink: RecordingSink = {
    write(_e: RecordingEvent, canonical: string) {
      appendFileSync(path, `${canonical}\n`, { mode: 0o600 });
    },
    flush: async () => {},
  };
  return sessions.entries().map(([, open]) => closeSession(sink, open));
}
