import type { MaskingStrategy } from '@chaperone/api';
import type { ResultMasking } from '../../../masking/index.js';
import { maskValue } from './mask-value.js';

/** COPY's row format: PostgreSQL's text format, or CSV with the default quote and escape. */
export type CopyFormat =
  | { kind: 'text'; delimiter: string }
  | { kind: 'csv'; delimiter: string; nullString: string };

/**
 * Masks COPY … TO rows (one row per CopyData message, as the server sends them) in text format
 * (`\N` for NULL, backslash escapes) or CSV. Positions are 0-based here.
 */
export class CopyRowMasker {
  constructor(
    private readonly byPosition: ReadonlyMap<number, MaskingStrategy>,
    private readonly masking: ResultMasking,
    private readonly hashKey: Buffer,
    private readonly format: CopyFormat = { kind: 'text', delimiter: '\t' },
  ) {}

  rewrite(row: Buffer): { data: Buffer; masked: number } {
    return this.format.kind === 'csv'
      ? this.rewriteCsv(row, this.format)
      : this.rewriteText(row, this.format.delimiter);
  }

  private strategyFor(i: number, value: string): MaskingStrategy | undefined {
    return this.byPosition.get(i) ?? (this.masking.hasDetectors ? this.masking.detect(value) : undefined);
  }

  private rewriteCsv(
    row: Buffer,
    f: { delimiter: string; nullString: string },
  ): { data: Buffer; masked: number } {
    const text = row.toString('utf8');
    const nl = text.endsWith('\n') ? '\n' : '';
    const cells = parseCsvRow(nl ? text.slice(0, -1) : text, f.delimiter);
    let masked = 0;
    const out = cells.map((c, i) => {
      if (!c.quoted && c.value === f.nullString) return c.raw;
      const strategy = this.strategyFor(i, c.value);
      if (!strategy) return c.raw;
      masked++;
      const v = maskValue(Buffer.from(c.value), strategy, 25, this.hashKey);
      return v && strategy !== 'null' ? `"${v.toString('utf8').replace(/"/g, '""')}"` : f.nullString;
    });
    return { data: Buffer.from(out.join(f.delimiter) + nl), masked };
  }

  private rewriteText(row: Buffer, delimiter: string): { data: Buffer; masked: number } {
    const text = row.toString('utf8');
    const nl = text.endsWith('\n') ? '\n' : '';
    const cells = (nl ? text.slice(0, -1) : text).split(delimiter);
    let masked = 0;
    for (let i = 0; i < cells.length; i++) {
      const cell = cells[i];
      if (cell === undefined || cell === '\\N') continue;
      const strategy = this.strategyFor(i, unescapeCopyText(cell));
      if (!strategy) continue;
      // COPY text has no types: mask as text (a non-text column's masked value becomes \N).
      const out = maskValue(Buffer.from(unescapeCopyText(cell)), strategy, 25, this.hashKey);
      cells[i] = out && strategy !== 'null' ? escapeCopyText(out.toString('utf8')) : '\\N';
      masked++;
    }
    return { data: Buffer.from(cells.join(delimiter) + nl), masked };
  }
}

/** Splits one CSV row (double-quote quoting, "" inside quotes). A quoted value may hold newlines. */
function parseCsvRow(
  line: string,
  delimiter: string,
): Array<{ value: string; raw: string; quoted: boolean }> {
  const out: Array<{ value: string; raw: string; quoted: boolean }> = [];
  let i = 0;
  for (;;) {
    const start = i;
    if (line[i] === '"') {
      let value = '';
      i++;
      while (i < line.length) {
        if (line[i] === '"' && line[i + 1] === '"') {
          value += '"';
          i += 2;
        } else if (line[i] === '"') {
          i++;
          break;
        } else value += line[i++];
      }
      out.push({ value, raw: line.slice(start, i), quoted: true });
    } else {
      const end = line.indexOf(delimiter, i);
      const stop = end < 0 ? line.length : end;
      out.push({ value: line.slice(i, stop), raw: line.slice(i, stop), quoted: false });
      i = stop;
    }
    if (line[i] !== delimiter) break;
    i += delimiter.length;
  }
  return out;
}

const UNESCAPES: Record<string, string> = {
  t: '\t',
  n: '\n',
  r: '\r',
  '\\': '\\',
  b: '\b',
  f: '\f',
  v: '\v',
};

function unescapeCopyText(cell: string): string {
  return cell.includes('\\') ? cell.replace(/\\(.)/g, (_, c: string) => UNESCAPES[c] ?? c) : cell;
}

function escapeCopyText(value: string): string {
  return value.replace(/[\\\t\n\r]/g, (c) =>
    c === '\t' ? '\\t' : c === '\n' ? '\\n' : c === '\r' ? '\\r' : '\\\\',
  );
}
