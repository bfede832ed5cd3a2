import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import type { RecordingEvent } from '@chaperone/api';
import type { RecordingSink } from './session-recorder.js';

/** Longest a recorded event waits in memory before it is written. */
const FLUSH_INTERVAL_MS = 5;
const FLUSH_BYTES = 64 * 1024;

/**
 * Standalone recording: one JSON-lines file per session in a folder (the collector issue replaces
 * this with a spool that ships to the collector). Events are batched for a few milliseconds into
 * one write — a write syscall per event cost a third of the gateway's CPU under load.
 */
export class JsonLinesSink implements RecordingSink {
  private stream?: WriteStream;
  private pending: string[] = [];
  private pendingBytes = 0;
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly dir: string,
    private readonly sessionId: string,
  ) {}

  write(_event: RecordingEvent, canonical: string): void {
    const line = `${canonical}\n`;
    this.pending.push(line);
    this.pendingBytes += line.length;
    if (this.pendingBytes >= FLUSH_BYTES) this.writeOut();
    else this.timer ??= setTimeout(() => this.writeOut(), FLUSH_INTERVAL_MS);
  }

  private writeOut(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending.length === 0) return;
    if (!this.stream) {
      mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      this.stream = createWriteStream(join(this.dir, `${this.sessionId}.jsonl`), { flags: 'a', mode: 0o600 });
      this.stream.on('error', () => {});
    }
    this.stream.write(this.pending.join(''));
    this.pending = [];
    this.pendingBytes = 0;
  }

  flush(): Promise<void> {
    this.writeOut();
    const s = this.stream;
    if (!s) return Promise.resolve();
    return new Promise((resolve) => s.end(resolve));
  }
}
