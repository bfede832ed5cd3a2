// `kubectl chaperone describe NAME` output, pure: the request in kubectl-describe style, then the
// session's recent statements as the collector recorded them (or why they cannot be shown).

import type { AccessRequest } from '@chaperone/api';
import { humanDuration } from './format.js';
import { printable } from './printable.js';

export { printable };

/** A statement or command of the session, as the collector's auditor API returns it. */
export interface RecentStatement {
  seq: number;
  time: string;
  type: string;
  text: string;
  decision?: string;
}

export type SessionContext =
  | { kind: 'statements'; statements: RecentStatement[]; sessionUrl: string }
  | { kind: 'unavailable'; reason: string };

/** How many statements `describe` shows. */
export const RECENT_STATEMENTS = 20;

/** Picks the statement-like events out of a page of recorded events (unknown shapes skipped). */
export function recentStatements(events: readonly unknown[], max = RECENT_STATEMENTS): RecentStatement[] {
  const out: RecentStatement[] = [];
  for (const e of events) {
    if (typeof e !== 'object' || e === null) continue;
    const ev = e as { seq?: unknown; time?: unknown; type?: unknown; data?: Record<string, unknown> };
    const data = ev.data ?? {};
    const text =
      ev.type === 'query' || ev.type === 'command' || ev.type === 'approval.requested'
        ? data.text
        : ev.type === 'denied'
          ? data.operation
          : undefined;
    if (typeof text !== 'string' || typeof ev.seq !== 'number' || typeof ev.time !== 'string') continue;
    const decision =
      typeof data.decision === 'string'
        ? data.decision
        : ev.type === 'denied'
          ? 'denied'
          : ev.type === 'approval.requested'
            ? 'paused'
            : undefined;
    out.push({
      seq: ev.seq,
      time: ev.time,
      type: ev.type as string,
      text,
      ...(decision ? { decision } : {}),
    });
  }
  return out.slice(-max);
}

function indent(text: string, by: string): string {
  return text
    .split('\n')
    .map((l) => `${by}${l}`)
    .join('\n');
}

export function formatDescribe(req: AccessRequest, ctx: SessionContext, now: Date): string {
  const s = req.spec;
  const st = req.status ?? {};
  const sa = s.requester.serviceAccount;
  const lines: string[] = [];
  const field = (k: string, v: string | undefined) => {
    if (v !== undefined && v !== '') lines.push(`${`${k}:`.padEnd(18)}${printable(v)}`);
  };
  field('Name', req.metadata.name);
  field('Namespace', req.metadata.namespace);
  field('Phase', st.phase ?? 'Pending');
  field('Requester', `${sa.namespace}/${sa.name}`);
  field('Pod', s.requester.pod?.name);
  field('On Behalf Of', s.requester.onBehalfOf?.user);
  field('Connection', s.connection);
  field('Policy', s.rule ? `${s.policy} (rule ${s.rule})` : s.policy);
  field('Session', s.sessionId);
  const created = req.metadata.creationTimestamp;
  field(
    'Created',
    created ? `${created} (${humanDuration(now.getTime() - Date.parse(created))} ago)` : undefined,
  );
  const left = Date.parse(s.expiresAt) - now.getTime();
  field(
    'Expires',
    `${s.expiresAt} (${left > 0 ? `in ${humanDuration(left)}` : `${humanDuration(-left)} ago`})`,
  );
  lines.push(`Operation:        ${s.operation.type}${s.operation.class ? ` ${s.operation.class}` : ''}`);
  lines.push(indent(printable(s.operation.text), '  '));
  if (s.operation.riskReasons?.length) {
    lines.push('Why Approval:');
    for (const r of s.operation.riskReasons) lines.push(`  - ${printable(r)}`);
  }
  if (st.approvals?.length) {
    lines.push('Approvals:');
    for (const a of st.approvals)
      lines.push(`  ${printable(a.by)} at ${a.at ?? '?'}${a.comment ? `: ${printable(a.comment)}` : ''}`);
  }
  if (st.decision) {
    const d = st.decision;
    lines.push(
      `Decision:         ${d.verdict}${d.by ? ` by ${printable(d.by)}` : ''}${d.at ? ` at ${d.at}` : ''}`,
    );
    if (d.comment) lines.push(`  ${printable(d.comment)}`);
  }
  if (st.notifications?.length) {
    lines.push('Notifications:');
    for (const n of st.notifications)
      lines.push(
        `  ${n.target} ${n.event}: ${n.state}${n.attempts !== undefined ? ` (${n.attempts} attempts)` : ''}${n.message ? ` ${printable(n.message)}` : ''}`,
      );
  }
  if ((st.phase ?? 'Pending') === 'Pending' && !st.decision) {
    const t = `${req.metadata.name} -n ${req.metadata.namespace}`;
    lines.push('Decide:');
    lines.push(`  kubectl chaperone approve ${t} [--comment TEXT]`);
    lines.push(`  kubectl chaperone deny ${t} --reason TEXT`);
  }
  if (ctx.kind === 'unavailable') {
    lines.push(`Recent Statements: not shown: ${ctx.reason}`);
  } else {
    lines.push(`Recent Statements (${ctx.statements.length}, from ${ctx.sessionUrl}):`);
    if (ctx.statements.length === 0) lines.push('  (none recorded yet)');
    for (const r of ctx.statements) {
      const time = r.time.replace(/^\d{4}-\d{2}-\d{2}T/, '').replace(/\.\d+Z$|Z$/, '');
      lines.push(
        `  ${time}  ${(r.decision ?? r.type).padEnd(8)}  ${printable(r.text.replace(/\s+/g, ' ').trim())}`,
      );
    }
  }
  return lines.join('\n');
}
