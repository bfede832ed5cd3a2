// What `kubectl chaperone` prints, pure: the requests table, the outcome of a decision, API errors.

import type { AccessRequest } from '@chaperone/api';
import { printable } from './printable.js';

/** Kubernetes' duration.HumanDuration (what kubectl shows in AGE columns). */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < -1) return '<invalid>';
  if (seconds < 0) return '0s';
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 10) {
    const s = seconds % 60;
    return s === 0 ? `${minutes}m` : `${minutes}m${s}s`;
  }
  if (minutes < 180) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 8) {
    const m = minutes % 60;
    return m === 0 ? `${hours}h` : `${hours}h${m}m`;
  }
  if (hours < 48) return `${hours}h`;
  if (hours < 24 * 8) {
    const h = hours % 24;
    return h === 0 ? `${Math.floor(hours / 24)}d` : `${Math.floor(hours / 24)}d${h}h`;
  }
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24)}d`;
  const years = Math.floor(hours / 24 / 365);
  if (hours < 24 * 365 * 8) {
    const d = Math.floor(hours / 24) % 365;
    return d === 0 ? `${years}y` : `${years}y${d}d`;
  }
  return `${years}y`;
}

export const OPERATION_WIDTH = 60;

export function isPending(request: AccessRequest): boolean {
  return (request.status?.phase ?? 'Pending') === 'Pending' && !request.status?.decision;
}

export interface TableOptions {
  now: Date;
  allNamespaces: boolean;
}

/**
 * kubectl-style table (columns padded with three spaces). Rows are sorted oldest first, the order
 * in which they expire.
 */
export function formatRequestsTable(requests: readonly AccessRequest[], opts: TableOptions): string {
  const header = ['NAME', 'PHASE', 'CONNECTION', 'REQUESTER', 'OPERATION', 'AGE', 'EXPIRES'];
  if (opts.allNamespaces) header.unshift('NAMESPACE');
  const sorted = [...requests].sort(
    (a, b) =>
      (a.metadata.namespace ?? '').localeCompare(b.metadata.namespace ?? '') ||
      (a.metadata.creationTimestamp ?? '').localeCompare(b.metadata.creationTimestamp ?? '') ||
      (a.metadata.name ?? '').localeCompare(b.metadata.name ?? ''),
  );
  const rows = sorted.map((r) => requestCells(r, opts));
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((row) => (row[i] as string).length)));
  return all
    .map((row) =>
      row
        .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd((widths[i] as number) + 3)))
        .join('')
        .trimEnd(),
    )
    .join('\n');
}

function requestCells(r: AccessRequest, opts: TableOptions): string[] {
  const row = [
    r.metadata.name ?? '',
    phaseCell(r),
    r.spec.connection,
    requesterCell(r),
    truncate(oneLine(r.spec.operation.text), OPERATION_WIDTH),
    r.metadata.creationTimestamp
      ? humanDuration(opts.now.getTime() - Date.parse(r.metadata.creationTimestamp))
      : '<unknown>',
    expiresCell(r, opts.now),
  ];
  if (opts.allNamespaces) row.unshift(r.metadata.namespace ?? '');
  return row;
}

/** Column widths of `requests --watch` lines after the first table (kubectl -w also keeps them fixed). */
export function tableWidths(table: string): number[] {
  const header = table.split('\n')[0] ?? '';
  const widths: number[] = [];
  const re = /\S+(?: \S+)*\s*/g;
  for (let m = re.exec(header); m; m = re.exec(header)) widths.push(m[0].length);
  return widths;
}

/** One request as a line of the watch output, padded to `widths` (the table's, or defaults). */
export function formatWatchLine(r: AccessRequest, opts: TableOptions, widths?: readonly number[]): string {
  const defaults = [32, 10, 16, 28, OPERATION_WIDTH + 3, 6, 10];
  if (opts.allNamespaces) defaults.unshift(16);
  const cells = requestCells(r, opts);
  return cells
    .map((cell, i) =>
      i === cells.length - 1 ? cell : cell.padEnd(Math.max(widths?.[i] ?? defaults[i] ?? 0, cell.length + 3)),
    )
    .join('')
    .trimEnd();
}

function phaseCell(r: AccessRequest): string {
  const phase = r.status?.phase ?? 'Pending';
  const approvals = r.status?.approvals?.length ?? 0;
  return phase === 'Pending' && approvals > 0 ? `Pending(${approvals} approved)` : phase;
}

function requesterCell(r: AccessRequest): string {
  const sa = r.spec.requester.serviceAccount;
  const who = `${sa.namespace}/${sa.name}`;
  const user = r.spec.requester.onBehalfOf?.user;
  return user ? `${user} via ${who}` : who;
}

function expiresCell(r: AccessRequest, now: Date): string {
  const at = Date.parse(r.spec.expiresAt);
  if (!Number.isFinite(at)) return r.spec.expiresAt;
  const left = at - now.getTime();
  return left > 0 ? `in ${humanDuration(left)}` : `${humanDuration(-left)} ago`;
}

/** One line of recorded text, control characters escaped: they would drive the approver's terminal. */
function oneLine(text: string): string {
  return printable(text.replace(/\s+/g, ' ').trim());
}

function truncate(text: string, width: number): string {
  return text.length <= width ? text : `${text.slice(0, width - 1)}…`;
}

/**
 * The texts of an HTTP `Warning` header (RFC 7234: `299 - "text"`); fetch joins repeated headers
 * with ", ".
 */
export function parseWarningHeader(header: string | undefined): string[] {
  if (!header) return [];
  const out: string[] = [];
  const re = /\d{3}\s+\S+\s+"((?:[^"\\]|\\.)*)"/g;
  for (const m of header.matchAll(re)) out.push((m[1] as string).replace(/\\(.)/g, '$1'));
  return out;
}

export interface Outcome {
  ok: boolean;
  message: string;
}

/** What to tell the approver after the status patch went through. */
export function describeOutcome(
  name: string,
  verdict: 'Approved' | 'Denied',
  result: AccessRequest,
  warnings: readonly string[],
): Outcome {
  const phase = result.status?.phase ?? 'Pending';
  const ref = `accessrequest.chaperone.dev/${name}`;
  if (phase === verdict && result.status?.decision?.verdict === verdict) {
    return { ok: true, message: `${ref} ${verdict === 'Approved' ? 'approved' : 'denied'}` };
  }
  if (phase === 'Pending' && !result.status?.decision && verdict === 'Approved') {
    for (const w of warnings) {
      const m = /(\d+) of (\d+) approvals recorded/.exec(w);
      if (m)
        return {
          ok: true,
          message: `${ref}: approval ${m[1]} of ${m[2]} recorded; waiting for more approvers`,
        };
    }
    const count = result.status?.approvals?.length ?? 0;
    return { ok: true, message: `${ref}: approval ${count} recorded; waiting for more approvers` };
  }
  if (phase === 'Pending' && result.status?.decision) {
    return {
      ok: false,
      message:
        `${ref}: the decision was stored but nobody recorded who made it (phase is still Pending): ` +
        'the Chaperone approval webhook is not installed or not reached; ask your cluster admin',
    };
  }
  return { ok: false, message: `${ref} is ${phase}` };
}

/** kubectl's wording for an API error: `Error from server (Reason): message`. */
export function apiErrorMessage(code: number, body: unknown): string {
  const status = parseStatus(body);
  const reason = status?.reason ?? reasonFor(code);
  const message = status?.message ?? (typeof body === 'string' && body ? body : `HTTP ${code}`);
  let text = `Error from server (${reason}): ${message}`;
  if (code === 403 && !message.includes('admission webhook')) {
    text +=
      '\nApprovers need get, list and watch on accessrequests and get and patch on accessrequests/status ' +
      '(chaperone.dev); ask your cluster admin to bind you to the chaperone-approver ClusterRole';
  }
  if (code === 404) text += '\nList the pending requests with: kubectl chaperone requests';
  return text;
}

function parseStatus(body: unknown): { message?: string; reason?: string } | undefined {
  let value = body;
  if (typeof value === 'string') {
    try {
      value = JSON.parse(value);
    } catch {
      return undefined;
    }
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const { message, reason } = value as { message?: unknown; reason?: unknown };
  return {
    ...(typeof message === 'string' ? { message } : {}),
    ...(typeof reason === 'string' && reason ? { reason } : {}),
  };
}

function reasonFor(code: number): string {
  return (
    {
      400: 'BadRequest',
      401: 'Unauthorized',
      403: 'Forbidden',
      404: 'NotFound',
      409: 'Conflict',
      422: 'Invalid',
    }[code] ?? `HTTP ${code}`
  );
}
