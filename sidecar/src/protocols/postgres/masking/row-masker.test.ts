import { describe, expect, it } from 'vitest';
import type { ResultMasking } from '../../../masking/index.js';
import { maskValue } from './mask-value.js';
import { planColumns, type ResultColumn, RowMasker } from './row-masker.js';

const key = Buffer.alloc(32, 7);
const masking: ResultMasking = {
  hasColumnRules: true,
  hasDetectors: true,
  strategyForColumn: (_s, t, c) =>
    t === 'customers' && c === 'ssn' ? 'redact' : t === 'customers' && c === 'email' ? 'partial' : undefined,
  detect: (text) => (/\b4111 1111 1111 1111\b/.test(text) ? 'redact' : undefined),
};

function dataRow(values: Array<string | null>): Buffer {
  const parts = values.map((v) => {
    const h = Buffer.alloc(4);
    h.writeInt32BE(v === null ? -1 : Buffer.byteLength(v));
    return v === null ? h : Buffer.concat([h, Buffer.from(v)]);
  });
  const n = Buffer.alloc(2);
  n.writeInt16BE(values.length);
  return Buffer.concat([n, ...parts]);
}

function cells(frame: Buffer): Array<string | null> {
  const out: Array<string | null> = [];
  const n = frame.readInt16BE(5);
  let pos = 7;
  for (let i = 0; i < n; i++) {
    const len = frame.readInt32BE(pos);
    pos += 4;
    out.push(len < 0 ? null : frame.toString('utf8', pos, pos + len));
    if (len > 0) pos += len;
  }
  expect(frame.readInt32BE(1)).toBe(frame.length - 1);
  return out;
}

const cols: ResultColumn[] = [
  { name: 'id', tableOid: 100, attnum: 1, typeOid: 23, format: 0 },
  { name: 'email', tableOid: 100, attnum: 3, typeOid: 25, format: 0 },
  { name: 'ssn', tableOid: 100, attnum: 4, typeOid: 25, format: 0 },
  { name: 'note', tableOid: 0, attnum: 0, typeOid: 25, format: 0 },
];
const origins = new Map([
  ['100:1', { schema: 'public', table: 'customers', column: 'id' }],
  ['100:3', { schema: 'public', table: 'customers', column: 'email' }],
  ['100:4', { schema: 'public', table: 'customers', column: 'ssn' }],
]);

describe('RowMasker', () => {
  it('masks by origin and by detector, keeps other cells and NULLs, re-frames correctly', () => {
    const actions = planColumns(cols, masking, origins);
    expect(actions).toEqual(['detect', 'partial', 'redact', 'detect']);
    const m = new RowMasker(cols, actions ?? [], masking, key);
    const { frame, masked } = m.rewrite(
      dataRow(['1', 'ada@example.com', '123-45-6789', 'card 4111 1111 1111 1111']),
    );
    expect(cells(frame)).toEqual(['1', '***********.com', '[REDACTED]', '[REDACTED]']);
    expect(masked).toBe(3);
    const nulls = m.rewrite(dataRow(['2', null, null, 'nothing here']));
    expect(cells(nulls.frame)).toEqual(['2', null, null, 'nothing here']);
    expect(nulls.masked).toBe(0);
  });

  it('runs detectors on columns with an origin too, and needs no masker when nothing is masked', () => {
    const cardColumn: ResultColumn = { name: 'note', tableOid: 100, attnum: 5, typeOid: 25, format: 0 };
    const withNote = new Map([
      ...origins,
      ['100:5', { schema: 'public', table: 'customers', column: 'note' }],
    ]);
    const m = new RowMasker([cardColumn], planColumns([cardColumn], masking, withNote) ?? [], masking, key);
    expect(cells(m.rewrite(dataRow(['paid with 4111 1111 1111 1111'])).frame)).toEqual(['[REDACTED]']);
    const plain: ResultMasking = { ...masking, hasDetectors: false };
    expect(planColumns([cols[0] as ResultColumn], plain, origins)).toBeUndefined();
  });

  it('masks an origin it cannot resolve (fail closed)', () => {
    expect(
      planColumns([{ name: 'x', tableOid: 999, attnum: 2, typeOid: 25, format: 0 }], masking, new Map()),
    ).toEqual(['redact']);
  });

  it('turns non-text values into NULL instead of a string a client would fail to parse', () => {
    expect(maskValue(Buffer.from('42'), 'redact', 23, key)).toBeNull();
    expect(maskValue(Buffer.from([0, 0, 0, 42]), 'partial', 23, key)).toBeNull();
    expect(maskValue(Buffer.from('x'), 'null', 25, key)).toBeNull();
  });

  it('hashes deterministically per key and partially reveals only the tail', () => {
    const a = maskValue(Buffer.from('123-45-6789'), 'hash', 25, key)?.toString();
    expect(a).toMatch(/^hash:[0-9a-f]{16}$/);
    expect(maskValue(Buffer.from('123-45-6789'), 'hash', 25, key)?.toString()).toBe(a);
    expect(maskValue(Buffer.from('123-45-6789'), 'hash', 25, Buffer.alloc(32, 8))?.toString()).not.toBe(a);
    expect(maskValue(Buffer.from('abc'), 'partial', 25, key)?.toString()).toBe('****');
  });
});
