import { appendFileSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Spool } from './spool.js';

const dirs: string[] = [];
const fresh = () => {
  const d = mkdtempSync(join(tmpdir(), 'chaperone-spool-'));
  dirs.push(d);
  return d;
};
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const line = (i: number) => JSON.stringify({ seq: i, pad: 'x'.repeat(50) });

describe('Spool', () => {
  it('reads back what was appended, in order, in bounded batches, and forgets what was acknowledged', () => {
    const spool = new Spool({ dir: fresh(), maxBytes: 1 << 20, segmentBytes: 1000, fsync: 'never' });
    for (let i = 0; i < 50; i++) spool.append([line(i)]);
    const seen: number[] = [];
    for (let b = spool.read(7, 1 << 20); b.lines.length; b = spool.read(7, 1 << 20)) {
      expect(b.lines.length).toBeLessThanOrEqual(7);
      seen.push(...b.lines.map((l) => (JSON.parse(l) as { seq: number }).seq));
      spool.acknowledge(b.next);
    }
    expect(seen).toEqual([...Array(50).keys()]);
    expect(spool.pendingBytes()).toBe(0);
    spool.close();
  });

  it('rotates segments and deletes the ones shipped completely', () => {
    const dir = fresh();
    const spool = new Spool({ dir, maxBytes: 1 << 20, segmentBytes: 500, fsync: 'never' });
    for (let i = 0; i < 40; i++) spool.append([line(i)]);
    expect(readdirSync(dir).filter((f) => f.endsWith('.seg')).length).toBeGreaterThan(3);
    for (let b = spool.read(1000, 1 << 20); b.lines.length; b = spool.read(1000, 1 << 20))
      spool.acknowledge(b.next);
    expect(readdirSync(dir).filter((f) => f.endsWith('.seg')).length).toBe(1);
    spool.close();
  });

  it('resumes after a restart from the acknowledged cursor, and cuts a partial last line', () => {
    const dir = fresh();
    const a = new Spool({ dir, maxBytes: 1 << 20, fsync: 'never' });
    for (let i = 0; i < 10; i++) a.append([line(i)]);
    const first = a.read(4, 1 << 20);
    a.acknowledge(first.next);
    a.close();
    // A crash in the middle of a write:
    const seg = readdirSync(dir).find((f) => f.endsWith('.seg')) ?? '';
    appendFileSync(join(dir, seg), '{"seq":10,"pa');
    const b = new Spool({ dir, maxBytes: 1 << 20, fsync: 'never' });
    b.append([line(11)]);
    const rest = b.read(100, 1 << 20).lines.map((l) => (JSON.parse(l) as { seq: number }).seq);
    expect(rest).toEqual([4, 5, 6, 7, 8, 9, 11]);
    b.close();
  });

  it('reports full when unshipped bytes reach the bound', () => {
    const spool = new Spool({ dir: fresh(), maxBytes: 300, fsync: 'always' });
    expect(spool.isFull()).toBe(false);
    for (let i = 0; i < 6; i++) spool.append([line(i)]);
    expect(spool.isFull()).toBe(true);
    const b = spool.read(1000, 1 << 20);
    spool.acknowledge(b.next);
    expect(spool.isFull()).toBe(false);
    spool.close();
  });
});
