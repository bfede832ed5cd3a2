// A transcript an auditor can read top to bottom: what was asked, what the policy decided and
// why, who approved, what came back (row counts and how many values were masked, never data).
import type { RecordingEvent } from '@chaperone/api';
import type { SessionSummary } from '../store/event-store.js';

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

function timeOfDay(iso: string): string {
  return new Date(iso).toISOString().slice(11, 23);
}

/** Continuation lines of a multi-line statement line up under its first line. */
function indent(text: string, width: number): string {
  return text.replace(/\r?\n/g, `\n${' '.repeat(width)}`);
}

export function toSqlTranscript(session: SessionSummary, events: readonly RecordingEvent[]): string {
  const id = session.identity;
  const identity = [
    id.serviceAccount ? `ServiceAccount ${id.serviceAccount}` : undefined,
    id.pod ? `pod ${id.pod}` : undefined,
    id.user ? `on behalf of ${id.user}` : undefined,
    id.groups.length ? `groups ${id.groups.join(', ')}` : undefined,
  ]
    .filter(Boolean)
    .join(', ');
  const c = session.counts;
  const out = [
    `# Chaperone session ${session.sessionId}`,
    `# connection  ${session.connection}${session.protocol ? ` (${session.protocol})` : ''}${session.client ? `, client ${session.client}` : ''}${session.application ? `, application ${session.application}` : ''}`,
    `# identity    ${identity || 'unknown'}`,
    `# started     ${session.startTime}`,
    `# last event  ${session.endTime}${session.ended ? `, ended: ${session.endReason ?? ''}` : ' (no session.end recorded)'}`,
    `# statements  ${c.statements} (${c.allowed} allowed, ${c.denied} denied, ${c.approved} approved); ${plural(c.maskedValues, 'value')} masked`,
    ...(session.missingEvents > 0 ? [`# WARNING     ${plural(session.missingEvents, 'event')} missing`] : []),
    '# times are UTC',
    '',
  ];
  let day = session.startTime.slice(0, 10);
  let nextSeq = 0;
  for (const e of events) {
    if (e.seq > nextSeq)
      out.push(
        `                   … ${e.seq - nextSeq === 1 ? `seq ${nextSeq} is` : `seq ${nextSeq}–${e.seq - 1} are`} missing …`,
      );
    nextSeq = e.seq + 1;
    const eventDay = new Date(e.time).toISOString().slice(0, 10);
    if (eventDay !== day) {
      day = eventDay;
      out.push(`--- ${day} ---`);
    }
    const prefix = `${timeOfDay(e.time)} ${`[${e.seq}]`.padEnd(6)} `;
    const line = (text: string) => out.push(prefix + indent(text, prefix.length));
    const rule = e.rule ? ` — rule ${e.rule}` : '';
    switch (e.type) {
      case 'session.start':
        line(
          `session started (${e.data.protocol}) from ${e.data.client}${e.data.application ? `, ${e.data.application}` : ''}`,
        );
        break;
      case 'credential.issued':
        line(
          `credential issued: ${e.data.description}${e.data.expiresAt ? ` (expires ${e.data.expiresAt})` : ''}`,
        );
        break;
      case 'query':
      case 'command': {
        const risks = e.type === 'query' && e.data.risks.length ? `; risks: ${e.data.risks.join(', ')}` : '';
        const reason = e.data.reason ? `; ${e.data.reason}` : '';
        line(`${e.data.decision.toUpperCase().padEnd(8)} ${e.data.text}${rule}${risks}${reason}`);
        break;
      }
      case 'result': {
        const parts = [plural(e.data.rows, 'row'), plural(e.data.bytes, 'byte')];
        if (e.data.maskedValues) parts.push(`${plural(e.data.maskedValues, 'value')} masked`);
        line(
          `    → ${e.data.error ? `error: ${e.data.error}` : (e.data.command ?? 'result')} (${parts.join(', ')})`,
        );
        break;
      }
      case 'approval.requested':
        line(
          `approval requested: ${e.data.request}${e.data.reasons.length ? ` (${e.data.reasons.join('; ')})` : ''}`,
        );
        break;
      case 'approval.decided':
        line(
          `approval ${e.data.request} ${e.data.verdict.toUpperCase()}${e.data.by ? ` by ${e.data.by}` : ''}${e.data.comment ? `: "${e.data.comment}"` : ''}`,
        );
        break;
      case 'denied':
        line(`DENIED   ${e.data.operation}: ${e.data.reason}${rule}`);
        break;
      case 'output': {
        const bytes = e.data.asciicast.reduce((n, [, , d]) => n + Buffer.byteLength(d), 0);
        line(`terminal output: ${plural(bytes, 'byte')} (replay as asciicast)`);
        break;
      }
      case 'session.end':
        line(
          `session ended: ${e.data.reason} (${plural(e.data.statements, 'statement')}, ${(e.data.durationMs / 1000).toFixed(1)} s)`,
        );
        break;
    }
  }
  return `${out.join('\n')}\n`;
}
