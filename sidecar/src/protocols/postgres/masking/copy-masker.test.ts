import { describe, expect, it } from 'vitest';
import type { ResultMasking } from '../../../masking/index.js';
import { CopyRowMasker } from './copy-masker.js';

const masking: ResultMasking = {
  hasColumnRules: true,
  hasDetectors: true,
  strategyForColumn: () => undefined,
  detect: (text) => (text.includes('4111 1111 1111 1111') ? 'redact' : undefined),
};

describe('CopyRowMasker', () => {
  it('masks by position, runs detectors on the other cells, keeps NULLs and escapes', () => {
    const m = new CopyRowMasker(
      new Map([
        [1, 'partial'],
        [2, 'redact'],
      ]),
      masking,
      Buffer.alloc(32),
    );
    const out = m.rewrite(
      Buffer.from('1\tada@example.com\t123-45-6789\t\\N\tcard 4111 1111 1111 1111\tplain\\ttab\n'),
    );
    expect(out.data.toString()).toBe('1\t***********.com\t[REDACTED]\t\\N\t[REDACTED]\tplain\\ttab\n');
    expect(out.masked).toBe(3);
  });

  it('unescapes before masking so a partial reveal never splits an escape', () => {
    const m = new CopyRowMasker(
      new Map([[0, 'partial']]),
      { ...masking, hasDetectors: false },
      Buffer.alloc(32),
    );
    expect(m.rewrite(Buffer.from('secret\\tvalue\\\\1234\n')).data.toString()).toBe('*************1234\n');
  });

  it('writes \\N for the null strategy', () => {
    const m = new CopyRowMasker(new Map([[0, 'null']]), masking, Buffer.alloc(32));
    expect(m.rewrite(Buffer.from('x\ty\n')).data.toString()).toBe('\\N\ty\n');
  });
});

describe('CopyRowMasker (CSV)', () => {
  it('masks quoted and unquoted CSV cells and keeps the empty-string NULL', () => {
    const m = new CopyRowMasker(new Map([[1, 'redact']]), masking, Buffer.alloc(32), {
      kind: 'csv',
      delimiter: ',',
      nullString: '',
    });
    const out = m.rewrite(Buffer.from('1,"123-45-6789, with comma",,"he said ""4111 1111 1111 1111"""\n'));
    expect(out.data.toString()).toBe('1,"[REDACTED]",,"[REDACTED]"\n');
    expect(out.masked).toBe(2);
  });
});
