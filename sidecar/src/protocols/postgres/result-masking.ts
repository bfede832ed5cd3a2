import type { MaskingStrategy } from '@chaperone/api';
import type { ResultMasking } from '../../masking/index.js';
import type { ColumnCatalog } from './column-catalog.js';
import type { Pending, ResultLayout } from './extended-query.js';
import { CopyRowMasker } from './masking/copy-masker.js';
import { type CellAction, planColumns, type ResultColumn, RowMasker } from './masking/row-masker.js';
import * as msg from './wire/backend-messages.js';
import { Backend, SqlState } from './wire/codes.js';
import { type Frame, ProtocolError } from './wire/message-reader.js';

/** The masking side of a session: its plan, the catalog that names column origins, the hash key. */
export interface MaskingContext {
  masking: ResultMasking;
  catalog?: ColumnCatalog;
  hashKey: Buffer;
}

/** The layout of a result: which columns policy masks (origins looked up in the catalog). */
export async function buildLayout(ctx: MaskingContext, columns: ResultColumn[]): Promise<ResultLayout> {
  const { masking, catalog } = ctx;
  if (!masking.hasColumnRules && !masking.hasDetectors) return { columns };
  let origins = new Map<string, { schema: string; table: string; column: string }>();
  const keyed = columns.filter((c) => c.tableOid !== 0 && c.attnum > 0);
  if (masking.hasColumnRules && keyed.length && catalog) origins = await catalog.resolve(keyed);
  const actions: CellAction[] | undefined = planColumns(columns, masking, origins);
  return actions ? { columns, masker: new RowMasker(columns, actions, masking, ctx.hashKey) } : { columns };
}

/** COPY … TO rows carry no RowDescription: mask them by position (see CopyMasking). */
export async function startCopyMasking(
  ctx: MaskingContext,
  head: Extract<Pending, { kind: 'query' }>,
  body: Buffer,
): Promise<void> {
  const { masking, catalog } = ctx;
  const positions = new Map<number, MaskingStrategy>();
  for (const c of head.copy?.columns ?? []) positions.set(c.position - 1, c.strategy);
  if (head.copy?.table && catalog) {
    const cols = await catalog.tableColumns(head.copy.table);
    if (cols.length === 0) {
      throw new ProtocolError(
        `cannot resolve the columns of ${head.copy.table} to mask COPY rows`,
        SqlState.internalError,
      );
    }
    const [schema = '', table = ''] = head.copy.table.split('.');
    cols.forEach((c, i) => {
      const strategy = masking.strategyForColumn(schema, table, c.name);
      if (strategy) positions.set(i, strategy);
    });
  }
  if (positions.size === 0 && !masking.hasDetectors) return;
  // Binary COPY rows cannot be masked cell by cell here: end the session rather than leak.
  if (body[0] === 1) {
    throw new ProtocolError(
      'binary COPY of masked data is not supported; use text or CSV format',
      SqlState.featureNotSupported,
    );
  }
  head.copyMasker = new CopyRowMasker(positions, masking, ctx.hashKey, head.copy?.format);
}

// Constraint errors echo values: "Failing row contains (…)", "Key (ssn)=(…) already exists".
const VALUE_ECHOING_DETAIL = /^(Failing row contains|Key \(|Key \S+ is not present)/;

/** With masking on, error details that echo row values are replaced: they may hold masked data. */
export function redactErrorDetail(f: Frame, fields: Map<string, string>): Buffer {
  const detail = fields.get('D');
  if (!detail || !VALUE_ECHOING_DETAIL.test(detail)) return f.raw;
  fields.set('D', 'chaperone: detail removed because it may contain masked values');
  return msg.encodeNoticeFields(Backend.ErrorResponse, fields);
}

export function copyData(data: Buffer): Buffer {
  const out = Buffer.allocUnsafe(5 + data.length);
  out[0] = Backend.CopyData;
  out.writeInt32BE(4 + data.length, 1);
  data.copy(out, 5);
  return out;
}
