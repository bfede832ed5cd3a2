import type { RecordingEvent } from '@chaperone/api';
import type { RecordingSink } from './session-recorder.js';
import type { Spool } from './spool.js';

/** A session's events go straight into the shared spool (synchronously: see Spool). */
export class SpoolSink implements RecordingSink {
  constructor(
    private readonly spool: Spool,
    private readonly onWrite: () => void,
  ) {}

  write(event: RecordingEvent, canonical: string): void {
    this.spool.append([canonical]);
    // After the append: only what is in the spool may be closed by a later sidecar process.
    this.spool.openSessions.note(event, canonical);
    this.onWrite();
  }

  async flush(): Promise<void> {}
}
