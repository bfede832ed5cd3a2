import { describe, expect, it } from 'vitest';
import type { SshRecordEvent } from './hooks.js';
import { TerminalRecorder } from './terminal-recorder.js';

describe('TerminalRecorder', () => {
  it('writes an asciicast v2 header, keeps UTF-8 split across chunks whole, and records resizes in order', () => {
    const events: SshRecordEvent[] = [];
    const rec = new TerminalRecorder(
      3,
      { term: 'xterm', cols: 80, rows: 24 },
      (e) => events.push(e),
      new Date(1_700_000_000_000),
    );
    const euro = Buffer.from('€', 'utf8');
    rec.output(Buffer.concat([Buffer.from('a'), euro.subarray(0, 1)]));
    rec.output(euro.subarray(1));
    rec.resize(100, 40);
    rec.output(Buffer.from('b'));
    rec.end();
    expect(events[0]).toEqual({
      type: 'output.start',
      channel: 3,
      header: { version: 2, width: 80, height: 24, timestamp: 1_700_000_000, env: { TERM: 'xterm' } },
    });
    const frames = events.flatMap((e) => (e.type === 'output' ? e.frames : []));
    expect(frames.map(([, k, d]) => [k, d])).toEqual([
      ['o', 'a'],
      ['o', '€'],
      ['r', '100x40'],
      ['o', 'b'],
    ]);
    expect(frames.every(([t]) => t >= 0 && t < 5)).toBe(true);
  });

  it('batches large output into events of bounded size', () => {
    const events: SshRecordEvent[] = [];
    const rec = new TerminalRecorder(1, { term: 'xterm', cols: 80, rows: 24 }, (e) => events.push(e));
    for (let i = 0; i < 100; i++) rec.output(Buffer.alloc(4096, 0x61));
    rec.end();
    const outputs = events.filter((e) => e.type === 'output');
    expect(outputs.length).toBeGreaterThanOrEqual(12);
    for (const e of outputs) {
      if (e.type === 'output')
        expect(e.frames.reduce((n, [, , d]) => n + d.length, 0)).toBeLessThanOrEqual(36 * 1024);
    }
  });
});
