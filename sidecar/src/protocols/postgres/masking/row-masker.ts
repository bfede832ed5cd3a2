import type { MaskingStrategy } from '@chaperone/api';
import type { ResultMasking } from '../../../masking/index.js';
import { maskValue } from './mask-value.js';

/** One result column as RowDescription (plus the portal's format codes) describes it. */
export interface ResultColumn {
  name: string;
  tableOid: number;
  attnum: number;
  typeOid: number;
  format: number;
}

/** Per column: leave alone (undefined), mask with a strategy, or run value detectors. */
export type CellAction = MaskingStrategy | 'detect' | undefined;

/**
 * Rewrites DataRow messages of one result according to precomputed per-column actions. Built once
 * per RowDescription; a result with no actions gets no RowMasker at all (raw bytes pass through).
 */
export class RowMasker {
  constructor(
    private readonly columns: ResultColumn[],
    private readonly actions: CellAction[],
    private readonly masking: ResultMasking,
    private readonly hashKey: Buffer,
  ) {}

  /** Masks one DataRow body; returns the new frame and how many cells were masked. */
  rewrite(body: Buffer): { frame: Buffer; masked: number } {
    const count = body.readInt16BE(0);
    const parts: Buffer[] = [];
    let masked = 0;
    let pos = 2;
    let total = 2;
    for (let i = 0; i < count; i++) {
      const len = body.readInt32BE(pos);
      pos += 4;
      const value = len < 0 ? null : body.subarray(pos, pos + len);
      if (len > 0) pos += len;
      let out = value;
      const action = this.actions[i];
      const col = this.columns[i];
      if (value && action && col) {
        const strategy = action === 'detect' ? this.detect(value, col) : action;
        if (strategy) {
          out = maskValue(value, strategy, col.typeOid, this.hashKey);
          masked++;
        }
      }
      const header = Buffer.allocUnsafe(4);
      header.writeInt32BE(out ? out.length : -1);
      parts.push(header);
      if (out) parts.push(out);
      total += 4 + (out ? out.length : 0);
    }
    const frame = Buffer.allocUnsafe(5 + total);
    frame[0] = 0x44; // 'D'
    frame.writeInt32BE(4 + total, 1);
    frame.writeInt16BE(count, 5);
    let off = 7;
    for (const p of parts) {
      p.copy(frame, off);
      off += p.length;
    }
    return { frame, masked };
  }

  private detect(value: Buffer, col: ResultColumn): MaskingStrategy | undefined {
    // Binary values of non-text types have no text to scan.
    if (col.format === 1 && ![25, 1043, 1042, 19, 114, 142].includes(col.typeOid)) return undefined;
    return this.masking.detect(value.toString('utf8'));
  }
}

/**
 * Decides per-column actions; undefined when nothing in this result needs masking. Column rules
 * apply by origin. Value detectors apply to every other column — with or without an origin —
 * because a card number in a free-text column is as sensitive as one in a computed column.
 */
export function planColumns(
  columns: ResultColumn[],
  masking: ResultMasking,
  origins: Map<string, { schema: string; table: string; column: string }>,
): CellAction[] | undefined {
  let any = false;
  const actions = columns.map((c): CellAction => {
    if (c.tableOid !== 0 && c.attnum > 0 && masking.hasColumnRules) {
      const o = origins.get(originKey(c.tableOid, c.attnum));
      // An origin we could not resolve is masked as if it were sensitive: fail closed.
      const strategy = o ? masking.strategyForColumn(o.schema, o.table, o.column) : 'redact';
      if (strategy) {
        any = true;
        return strategy;
      }
    }
    if (masking.hasDetectors) {
      any = true;
      return 'detect';
    }
    return undefined;
  });
  return any ? actions : undefined;
}

export const originKey = (tableOid: number, attnum: number) => `${tableOid}:${attnum}`;
