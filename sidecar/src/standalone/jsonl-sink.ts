import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import type { RecordingEvent } from '@chaperone/api';
import type { RecordingSink } from '../recording/session-recorder.js';

/**
 * Standalone recording: one JSON-lines file per session in a folder (the collector issue replaces
 * this with a spool that ships to the collector). Writes are buffered by the stream; flush() waits.
 */
export class JsonLinesSink implements RecordingSink {
  private stream?: WriteStream;

  constructor(
    private readonly dir: string,
    private readonly sessionId: string,
  ) {}

  write(event: RecordingEvent): void {
    if (!this.stream) {
      mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      this.stream = createWriteStream(join(this.dir, `${this.sessionId}.jsonl`), { flags: 'a', mode: 0o600 });
      this.stream.on('error', () => {});
    }
    this.stream.write(`${JSON.stringify(event)}\n`);
  }

  flush(): Promise<void> {
    const s = this.stream;
    if (!s) return Promise.resolve();
    return new Promise((resolve) => s.end(resolve));
  }
}
