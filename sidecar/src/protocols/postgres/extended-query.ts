import type { CopyRowMasker } from './masking/copy-masker.js';
import type { ResultColumn, RowMasker } from './masking/row-masker.js';
import type { CopyMasking } from './statement-guard.js';
import { BodyReader } from './wire/message-reader.js';

/**
 * What the gateway expects back from the server, in order: one entry per message sent upstream
 * that the server answers (the frame state machine pairs each answer with the head entry).
 */
export type Pending =
  | { kind: 'query'; layout?: ResultLayout; copy?: CopyMasking; copyMasker?: CopyRowMasker }
  | { kind: 'parse'; statement: string }
  | { kind: 'bind' }
  | { kind: 'describe-statement'; statement: string; hidden: boolean }
  | { kind: 'describe-portal'; portal: string }
  | { kind: 'execute'; portal: string }
  | { kind: 'close' }
  | { kind: 'sync' }
  | { kind: 'function-call' };

/** The columns of a result and, when policy masks any of them, the masker for its rows. */
export interface ResultLayout {
  columns: ResultColumn[];
  masker?: RowMasker;
}

export interface PreparedStatement {
  text: string;
  /** Columns as Describe(statement) reported them (format codes not yet known). */
  columns?: ResultColumn[];
  /** Layouts already built for this statement, by result format codes (re-bound portals reuse them). */
  layouts?: Map<string, ResultLayout>;
}

export interface Portal {
  statement: string;
  formats: number[];
  layout?: ResultLayout;
}

/** Named statements and portals of one session, as the extended-query protocol creates them. */
export class ExtendedQueryState {
  readonly pending: Pending[] = [];
  readonly statements = new Map<string, PreparedStatement>();
  readonly portals = new Map<string, Portal>();

  /** Bind: remembers the portal's statement and result format codes. */
  bind(body: Buffer): void {
    const r = new BodyReader(body);
    const portal = r.cstring();
    const statement = r.cstring();
    const nParamFormats = r.int16();
    r.bytes(nParamFormats * 2);
    const nParams = r.int16();
    for (let i = 0; i < nParams; i++) {
      const len = r.int32();
      if (len > 0) r.bytes(len);
    }
    const nFormats = r.int16();
    const formats: number[] = [];
    for (let i = 0; i < nFormats; i++) formats.push(r.int16());
    this.portals.set(portal, { statement, formats });
    this.pending.push({ kind: 'bind' });
  }

  describe(body: Buffer): void {
    const r = new BodyReader(body);
    const what = r.byte();
    const name = r.cstring();
    this.pending.push(
      what === 0x53
        ? { kind: 'describe-statement', statement: name, hidden: false }
        : { kind: 'describe-portal', portal: name },
    );
  }

  close(body: Buffer): void {
    const r = new BodyReader(body);
    const what = r.byte();
    const name = r.cstring();
    if (what === 0x53) this.statements.delete(name);
    else this.portals.delete(name);
    this.pending.push({ kind: 'close' });
  }

  /** After an error the server skips everything up to Sync: so do we. */
  skipToSync(): void {
    while (this.pending.length && this.pending[0]?.kind !== 'sync') this.pending.shift();
  }
}

/** Statement columns with a portal's result format codes (none = text, one = all, else per column). */
export function withFormats(columns: ResultColumn[], formats: number[]): ResultColumn[] {
  return columns.map((c, i) => ({
    ...c,
    format: formats.length === 0 ? 0 : formats.length === 1 ? (formats[0] ?? 0) : (formats[i] ?? 0),
  }));
}

export function parseRowDescription(body: Buffer): ResultColumn[] {
  const r = new BodyReader(body);
  const n = r.int16();
  const cols: ResultColumn[] = [];
  for (let i = 0; i < n; i++) {
    const name = r.cstring();
    const tableOid = r.int32() >>> 0;
    const attnum = r.int16();
    const typeOid = r.int32() >>> 0;
    r.int16(); // typlen
    r.int32(); // typmod
    const format = r.int16();
    cols.push({ name, tableOid, attnum, typeOid, format });
  }
  return cols;
}
