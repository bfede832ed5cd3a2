// Turns a pty channel's output and resizes into asciicast v2 frames, batched so a chatty terminal
// does not become one recording event per packet. Bytes are decoded as UTF-8 across chunk
// boundaries (a multi-byte character split between two packets stays whole).
import { StringDecoder } from 'node:string_decoder';
import type { AsciicastFrame, SshPtyInfo, SshRecordEvent } from './hooks.js';

const MAX_BATCH_CHARS = 32 * 1024;
const MAX_BATCH_MS = 200;

export class TerminalRecorder {
  private readonly start = performance.now();
  private readonly decoder = new StringDecoder('utf8');
  private frames: AsciicastFrame[] = [];
  private chars = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly channel: number,
    pty: SshPtyInfo,
    private readonly emit: (event: SshRecordEvent) => void,
    now: Date = new Date(),
  ) {
    emit({
      type: 'output.start',
      channel,
      header: {
        version: 2,
        width: pty.cols,
        height: pty.rows,
        timestamp: Math.floor(now.getTime() / 1000),
        env: { TERM: pty.term },
      },
    });
  }

  output(chunk: Buffer): void {
    const text = this.decoder.write(chunk);
    if (text) this.push('o', text);
  }

  resize(cols: number, rows: number): void {
    this.push('r', `${cols}x${rows}`);
  }

  /** Flushes what is left; call once when the channel ends. */
  end(): void {
    const rest = this.decoder.end();
    if (rest) this.push('o', rest);
    this.flush();
  }

  private push(kind: 'o' | 'r', data: string): void {
    const t = Math.round(performance.now() - this.start) / 1000;
    this.frames.push([t, kind, data]);
    this.chars += data.length;
    if (this.chars >= MAX_BATCH_CHARS) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), MAX_BATCH_MS).unref();
  }

  private flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.frames.length === 0) return;
    const frames = this.frames;
    this.frames = [];
    this.chars = 0;
    this.emit({ type: 'output', channel: this.channel, frames });
  }
}
