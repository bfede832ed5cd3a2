import { crc32, deflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { pngStats } from './test-png-reader.js';

function chunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}

/** An 8-bit RGB PNG; each row is [filter, ...bytes already filtered]. */
function png(width: number, rows: number[][]): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(rows.length, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(Buffer.from(rows.flat()))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

describe('pngStats', () => {
  it('sees a single colour as flat', () => {
    const s = pngStats(
      png(2, [
        [0, 9, 9, 9, 9, 9, 9],
        [2, 0, 0, 0, 0, 0, 0],
      ]),
    );
    expect(s).toEqual({ width: 2, height: 2, colours: 1, lumaVariance: 0 });
  });

  it('undoes sub, up, average and paeth filters', () => {
    // Greys, decoded by hand: row 0 (sub) 0, 255; row 1 (up) 255, 0; row 2 (average) 255, 127;
    // row 3 (paeth) 255, 127.
    const rows = [
      [1, 0, 0, 0, 255, 255, 255],
      [2, 255, 255, 255, 1, 1, 1],
      [3, 128, 128, 128, 0, 0, 0],
      [4, 0, 0, 0, 0, 0, 0],
    ];
    const s = pngStats(png(2, rows));
    expect(s.width).toBe(2);
    expect(s.height).toBe(4);
    expect(s.colours).toBe(3);
    const luma = [0, 255, 255, 0, 255, 127, 255, 127];
    const mean = luma.reduce((a, b) => a + b) / 8;
    expect(s.lumaVariance).toBeCloseTo(luma.reduce((a, b) => a + (b - mean) ** 2, 0) / 8, 6);
  });

  it('refuses what is not a PNG', () => {
    expect(() => pngStats(Buffer.from('GIF89a'))).toThrow('not a PNG');
  });
});
